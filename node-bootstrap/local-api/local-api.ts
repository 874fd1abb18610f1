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
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { STATUS_PATH } from '../../api/api-client.js';
import type { HostPort } from '../../core/config-check.js';
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
}

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
      const server = createServer(handler);
      servers.push(server);
      await listen(server, socketPath, socketPath);
      log.info({ socket: socketPath }, 'local API listening');
    }
    if (tcp !== undefined) {
      const server = createServer(handler);
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
