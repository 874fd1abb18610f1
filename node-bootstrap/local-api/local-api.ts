/**
 * The daemon's local API, read-only: always on a Unix socket, optionally on a TCP address
 * (`api.listen`, for Prometheus). Nothing on it changes state.
 *
 *   GET /status   StatusReport JSON (api/status-schema.ts, built by status-report.ts); 503
 *                 {"error"} while the router is not built yet
 *   GET /healthz  200 "ok" while the process's event loop runs (answering is the proof)
 *   GET /readyz   200 {"ready":true} once TUN, transports, routes and lease are up; else 503
 *                 {"ready":false,"reason":...,"checks":{...}} (readiness.ts)
 *   GET /metrics  Prometheus text (metrics.ts)
 *   GET /cni      what the CNI plugins need, only once ready: 200 {"ready":true,"node","subnets",
 *                 "mtu","clusterCidrs"}; else 503 {"ready":false,"reason"} (the plugin answers
 *                 CNI error 11, try again later). A socket, not a file: it cannot be stale.
 *
 * Each server (the socket, TCP) holds at most `maxConnections`; a new one beyond evicts the
 * oldest connection with no request in progress (idle, or slow to send its headers), so a flood
 * of idle connections on one cannot starve the CNI plugin's short requests on either. Headers
 * must arrive within headersTimeoutMs (a new connection's too), a whole request within
 * requestTimeoutMs; an idle keep-alive connection closes after keepAliveTimeoutMs.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { STATUS_PATH } from '../../api/api-client.js';
import type { HostPort } from '../../core/config-check.js';
import type { LogFields } from '../../core/log-fields.js';
import type { Logger } from '../../core/logger.js';
import type { RouterStats } from '../../router/router.js';
import type { PodtunMetrics } from './metrics.js';
import type { Readiness } from './readiness.js';
import { buildStatusReport } from './status-report.js';

export interface LocalApiOptions {
  /** Unix socket path; undefined: none. */
  socketPath: string | undefined;
  /** TCP address; undefined: none. */
  tcp: HostPort | undefined;
  /** The router's stats; undefined while starting. */
  stats: () => RouterStats | undefined;
  readiness: Readiness;
  metrics: PodtunMetrics;
  /** This node's pod network for the CNI plugins; undefined until the lease is known. */
  podNetwork: () => PodNetworkInfo | undefined;
  log: Logger;
  /** Connection limits and timeouts per server; defaults: DEFAULT_LOCAL_API_LIMITS. */
  limits?: Partial<LocalApiLimits>;
}

export interface LocalApiLimits {
  /** Connections one server holds at most; a new one beyond evicts the oldest without a request in progress. */
  maxConnections: number;
  /** A request's headers (a new connection's first ones included) must arrive within this. */
  headersTimeoutMs: number;
  /** A whole request must arrive within this (at least headersTimeoutMs). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_LOCAL_API_LIMITS: Readonly<LocalApiLimits> = Object.freeze({
  maxConnections: 64,
  headersTimeoutMs: 2000,
  requestTimeoutMs: 5000,
  keepAliveTimeoutMs: 2000,
});
/** Evictions are logged at warn at most this often (with how many since the last line). */
const EVICTION_LOG_INTERVAL_MS = 10_000;

/** The body of GET /cni: what a pod on this node is attached with. */
export interface PodNetworkInfo {
  node: string;
  /** This node's pod subnets (IPv4 first). */
  subnets: readonly string[];
  /** The pod interface MTU: the tunnel MTU. */
  mtu: number;
  clusterCidrs: readonly string[];
}

export interface LocalApi {
  /** Where TCP is served (the bound port, when 0 was asked for); undefined without TCP. */
  readonly tcpAddress: { host: string; port: number } | undefined;
  close(): Promise<void>;
}

export class LocalApiError extends Error {
  readonly code = 'ERR_PODTUN_LOCAL_API';
}

export async function startLocalApi(options: LocalApiOptions): Promise<LocalApi> {
  const { socketPath, tcp, log } = options;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    handle(options, req, res).catch((err: unknown) => {
      log.warn({ err }, 'local API request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  };
  const limits: LocalApiLimits = { ...DEFAULT_LOCAL_API_LIMITS, ...options.limits };
  const serverOptions: ServerOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // How often Node checks the two timeouts above (its default, 30 s, would let them slip).
    connectionsCheckingInterval: Math.max(50, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)),
  };
  const servers: Server[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all(
      servers.splice(0).map((server) => {
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      }),
    );
    if (socketPath !== undefined) await rm(socketPath, { force: true });
  };

  let tcpAddress: LocalApi['tcpAddress'];
  try {
    if (socketPath !== undefined) {
      await mkdir(dirname(socketPath), { recursive: true });
      // A socket file left by a killed daemon would make listen() fail with EADDRINUSE.
      await rm(socketPath, { force: true });
      const server = createServer(serverOptions, handler);
      limitConnections(server, limits.maxConnections, log, { socket: socketPath });
      servers.push(server);
      await listen(server, socketPath, socketPath);
      log.info({ socket: socketPath }, 'local API listening');
    }
    if (tcp !== undefined) {
      const server = createServer(serverOptions, handler);
      limitConnections(server, limits.maxConnections, log, { listen: tcp.text });
      servers.push(server);
      await listen(server, { host: tcp.host, port: tcp.port }, tcp.text);
      const bound = server.address();
      tcpAddress = typeof bound === 'object' && bound !== null ? { host: bound.address, port: bound.port } : { host: tcp.host, port: tcp.port };
      log.info({ listen: tcp.text }, 'local API listening');
    }
  } catch (err: unknown) {
    await closeAll();
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    tcpAddress,
    close() {
      closing ??= closeAll();
      return closing;
    },
  };
}

async function handle(options: LocalApiOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'text/plain', 'only GET\n');
    return;
  }
  switch (path) {
    case STATUS_PATH: {
      const stats = options.stats();
      if (stats === undefined) sendJson(res, 503, { error: options.readiness.reason() ?? 'starting' });
      else sendJson(res, 200, buildStatusReport(stats));
      return;
    }
    case '/healthz':
      send(res, 200, 'text/plain', 'ok\n');
      return;
    case '/readyz': {
      const reason = options.readiness.reason();
      if (reason === undefined) sendJson(res, 200, { ready: true });
      else sendJson(res, 503, { ready: false, reason, checks: options.readiness.checks });
      return;
    }
    case '/metrics':
      send(res, 200, options.metrics.contentType, await options.metrics.render());
      return;
    case '/cni': {
      const reason = options.readiness.reason();
      const network = options.podNetwork();
      if (reason !== undefined || network === undefined) sendJson(res, 503, { ready: false, reason: reason ?? 'lease not up' });
      else sendJson(res, 200, { ready: true, ...network });
      return;
    }
    default:
      send(res, 404, 'text/plain', 'not found (GET /status, /healthz, /readyz, /metrics, /cni)\n');
  }
}

/**
 * Holds `server` to `max` connections: a new one beyond evicts the oldest connection without a
 * request in progress; when every one has a request in progress, the new one is closed instead.
 */
function limitConnections(server: Server, max: number, log: Logger, where: LogFields): void {
  /** Open connections, oldest first (a Set keeps insertion order). */
  const open = new Set<Socket>();
  /** Those with a request in progress. */
  const busy = new Set<Socket>();
  let evicted = 0;
  let lastLogMs = Number.NEGATIVE_INFINITY;
  server.prependListener('connection', (socket: Socket) => {
    if (open.size >= max) {
      let victim: Socket | undefined;
      for (const s of open) {
        if (!busy.has(s)) {
          victim = s;
          break;
        }
      }
      (victim ?? socket).destroy();
      evicted++;
      const nowMs = performance.now();
      if (nowMs - lastLogMs >= EVICTION_LOG_INTERVAL_MS) {
        lastLogMs = nowMs;
        log.warn({ ...where, count: evicted, reason: `over ${max} connections` }, 'local API connection closed to make room');
        evicted = 0;
      }
      if (victim === undefined) return;
    }
    open.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      busy.delete(socket);
    });
  });
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as Socket;
    busy.add(socket);
    res.once('close', () => busy.delete(socket));
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json', JSON.stringify(body));
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType });
  res.end(body);
}

function listen(server: Server, where: string | { host: string; port: number }, label: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new LocalApiError(`cannot serve the local API on ${label}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (typeof where === 'string') server.listen(where, done);
    else server.listen(where.port, where.host, done);
  });
}
