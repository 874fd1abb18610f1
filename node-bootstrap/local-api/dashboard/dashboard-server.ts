/**
 * The live dashboard: a small node:http server (off by default; config `dashboard: { listen }`)
 * serving one static page, uPlot's files read from node_modules/uplot/dist at start (no build
 * step, no network), and read-only JSON. Nothing on it changes state.
 *
 *   /events        server-sent events: one snapshot per interval, while someone watches
 *   /status        the same snapshot, once
 *   /api/history   the link history (link-history.ts): the last 15 minutes per peer, sampled
 *                  every sampleIntervalMs from start whether anyone watches or not, and the
 *                  events (state changes, switches); `?since=ms` for only what is newer
 *   /api/links     this node's own links now (what its peers' cluster views ask)
 *   /api/cluster   every node's links, asked of the peers' dashboards (cluster-view.ts)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../../../core/config-check.js';
import type { StatusReport } from '../../../api/status-schema.js';
import type { Logger } from '../../../core/logger.js';
import type { PeerEndpoints, TransportSwitch } from '../../../core/transport.js';
import { LinkHistory } from '../link-history.js';
import { LINKS_PATH, createClusterView, linksOf } from './cluster-view.js';

export interface DashboardOptions {
  /** "host:port" ("[::1]:9403" for IPv6); port 0 picks a free one. */
  listen: string;
  /** The node's GET /status report; may be async (e.g. read from a status socket). */
  getStatus: () => StatusReport | Promise<StatusReport>;
  log: Logger;
  /** Snapshot period (default 1000 ms). */
  intervalMs?: number;
  /** Concurrent `/events` clients; more get 503 (default 8). */
  maxClients?: number;
  /** Link history sampling period (default DEFAULT_SAMPLE_INTERVAL_MS). */
  sampleIntervalMs?: number;
  /** How far back the link history goes (default 15 min). */
  historyWindowMs?: number;
  /** Peers' dashboards answer on this port at their lease address; undefined: the cluster view is this node alone. */
  peerPort?: number | undefined;
}

export interface Dashboard {
  /** The port it listens on (the real one when asked for 0). */
  readonly port: number;
  /** Ends the event streams and stops listening. Safe twice. */
  close(): Promise<void>;
}

/** One peer in a snapshot: what the page draws. */
export interface PeerSnapshot {
  node: string;
  subnets: readonly string[];
  endpoint: string | null;
  /** Its lease's endpoints by transport kind (a WebSocket-carried peer shows `ws`). */
  endpoints: PeerEndpoints;
  state: string;
  transport: string | null;
  rttMs: number | null;
  txBytes: number;
  rxBytes: number;
  txPackets: number;
  rxPackets: number;
  spoofed: number;
  lastSwitch: TransportSwitch | null;
  /** Why it is not up ("authentication failed", "no handshake answer", ...), and what that came from. */
  downReason: string | null;
  downDetail: string | null;
  /** How it and this node disagree on who owns which subnets; null when they agree. */
  ownershipMismatch: string | null;
  /** ms since anything was heard from it; null when nothing ever was. */
  lastHeardAgeMs: number | null;
  /** Its traffic is sealed on the carrying transport, and since when the session's keys are. */
  sealed: boolean;
  lastHandshakeAgeMs: number | null;
}

/** What `/events` sends every interval and `/status` returns. */
export interface DashboardSnapshot {
  /** Wall-clock milliseconds when the stats were read. */
  t: number;
  node: string;
  localSubnets: readonly string[];
  peers: PeerSnapshot[];
  drops: Readonly<Record<string, number>>;
  transport: Readonly<Record<string, number>>;
  /** Set when getStatus failed; the rest is empty then. */
  error?: string;
}

interface Assets {
  html: Buffer;
  js: Buffer;
  uplotJs: Buffer;
  uplotCss: Buffer;
}

const DEFAULT_INTERVAL_MS = 1000;
const DEFAULT_MAX_CLIENTS = 8;
const DEFAULT_SAMPLE_INTERVAL_MS = 2000;

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const { getStatus, log } = options;
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
  const { host, port } = parseListen(options.listen);
  const assets = loadAssets();
  const clients = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | undefined;
  let ticking = false;
  let closed = false;
  const history = new LinkHistory({
    intervalMs: options.sampleIntervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS,
    ...(options.historyWindowMs === undefined ? {} : { windowMs: options.historyWindowMs }),
  });
  const rates = history.latest.bind(history);
  const cluster = createClusterView({ status: async () => getStatus(), rates, peerPort: options.peerPort });

  const snapshot = async (): Promise<DashboardSnapshot> => {
    try {
      return toSnapshot(await getStatus());
    } catch (error: unknown) {
      return { ...emptySnapshot(), error: errorMessage(error) };
    }
  };

  const send = (res: ServerResponse, snap: DashboardSnapshot): void => {
    res.write(`data: ${JSON.stringify(snap)}\n\n`);
  };

  const tick = async (): Promise<void> => {
    // A slow getStatus skips beats instead of piling up reads.
    if (ticking || clients.size === 0) return;
    ticking = true;
    try {
      const snap = await snapshot();
      for (const res of clients) send(res, snap);
    } finally {
      ticking = false;
    }
  };

  // The history is what a late viewer sees, so it is sampled from start, not only while watched.
  let sampling = false;
  const sample = async (): Promise<void> => {
    if (sampling || closed) return;
    sampling = true;
    try {
      const report = await getStatus();
      if (!closed) history.add(Date.now(), report.peers);
    } catch (error: unknown) {
      // A gap in the chart; /status and /events report the error to whoever looks.
      log.debug({ err: error }, 'dashboard sample skipped');
    } finally {
      sampling = false;
    }
  };

  const startTimer = (): void => {
    if (timer !== undefined || closed) return;
    timer = setInterval(() => void tick(), intervalMs);
    timer.unref();
  };
  const stopTimerIfIdle = (): void => {
    if (clients.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  const handleEvents = (req: IncomingMessage, res: ServerResponse): void => {
    if (clients.size >= maxClients) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '5' });
      res.end('too many dashboard clients\n');
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    res.write(`retry: ${Math.max(intervalMs, 1000)}\n\n`);
    clients.add(res);
    const drop = (): void => {
      clients.delete(res);
      stopTimerIfIdle();
    };
    req.on('close', drop);
    res.on('error', drop);
    startTimer();
    // The first snapshot now, so the page draws without waiting a whole interval.
    void snapshot().then((snap) => {
      if (clients.has(res)) send(res, snap);
    });
  };

  const server = createServer((req, res) => {
    const url = URL.canParse(req.url ?? '/', 'http://dashboard') ? new URL(req.url ?? '/', 'http://dashboard') : undefined;
    if (url === undefined) return sendJson(res, 400, { error: 'bad request target' });
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' });
      res.end('method not allowed\n');
      return;
    }
    switch (path) {
      case '/':
      case '/index.html':
        return serveFile(res, assets.html, 'text/html; charset=utf-8');
      case '/dashboard.js':
        return serveFile(res, assets.js, 'text/javascript; charset=utf-8');
      case '/uplot.min.js':
        return serveFile(res, assets.uplotJs, 'text/javascript; charset=utf-8');
      case '/uplot.min.css':
        return serveFile(res, assets.uplotCss, 'text/css; charset=utf-8');
      case '/events':
        return handleEvents(req, res);
      case '/status':
        void snapshot().then((snap) => sendJson(res, snap.error === undefined ? 200 : 502, snap));
        return;
      case '/api/history': {
        const since = url.searchParams.get('since');
        if (since !== null && !Number.isFinite(Number(since))) return sendJson(res, 400, { error: 'since: expected wall-clock ms' });
        const now = Date.now();
        return sendJson(res, 200, { t: now, ...history.toJSON(now, since === null ? undefined : Number(since)) });
      }
      case LINKS_PATH:
        void Promise.resolve()
          .then(getStatus)
          .then(
            (report) => sendJson(res, 200, linksOf(report, rates, Date.now())),
            (error: unknown) => sendJson(res, 502, { error: errorMessage(error) }),
          );
        return;
      case '/api/cluster':
        void cluster.get().then(
          (reply) => sendJson(res, 200, reply),
          (error: unknown) => sendJson(res, 502, { error: errorMessage(error) }),
        );
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
    }
  });

  await listen(server, host, port);
  const sampler = setInterval(() => void sample(), history.intervalMs);
  sampler.unref();
  void sample();
  const address = server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  log.info({ listen: `${host.includes(':') ? `[${host}]` : host}:${boundPort}` }, 'dashboard listening');

  let closing: Promise<void> | undefined;
  return {
    port: boundPort,
    close() {
      closing ??= (async () => {
        closed = true;
        clearInterval(sampler);
        cluster.close();
        if (timer !== undefined) clearInterval(timer);
        timer = undefined;
        for (const res of clients) res.end();
        clients.clear();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function serveFile(res: ServerResponse, body: Buffer, type: string): void {
  res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-cache' });
  res.end(body);
}

/** "127.0.0.1:9403", "[::1]:9403", "localhost:0". */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (m === null || host === undefined || !Number.isInteger(port) || port > 65535) {
    throw new Error(`dashboard listen "${text}": expected host:port (e.g. 127.0.0.1:9403)`);
  }
  return { host, port };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new Error(`cannot serve the dashboard on ${host}:${port}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * The page and script sit next to this file in the source tree; tsc does not copy them to
 * dist, so from dist/node-bootstrap/local-api/dashboard the same folder under the repo root is used.
 */
function loadAssets(): Assets {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [here, join(here, '..', '..', '..', '..', 'node-bootstrap', 'local-api', 'dashboard')];
  const dir = candidates.find((d) => existsSync(join(d, 'dashboard.html')));
  if (dir === undefined) throw new Error(`dashboard.html not found (looked in ${candidates.join(', ')})`);
  const require = createRequire(import.meta.url);
  const uplotDist = join(dirname(require.resolve('uplot/package.json')), 'dist');
  return {
    html: readFileSync(join(dir, 'dashboard.html')),
    js: readFileSync(join(dir, 'dashboard.js')),
    uplotJs: readFileSync(join(uplotDist, 'uPlot.iife.min.js')),
    uplotCss: readFileSync(join(uplotDist, 'uPlot.min.css')),
  };
}

/** What the page reads, from a StatusReport: the views it draws and nothing more. */
function toSnapshot(report: StatusReport): DashboardSnapshot {
  return {
    t: Date.now(),
    node: report.node,
    localSubnets: report.localSubnets,
    peers: report.peers.map((p): PeerSnapshot => ({
      node: p.node,
      subnets: p.subnets,
      endpoint: p.endpoint ?? null,
      endpoints: p.endpoints,
      state: p.state,
      transport: p.transport ?? null,
      rttMs: p.rttMs ?? null,
      txBytes: p.txBytes,
      rxBytes: p.rxBytes,
      txPackets: p.txPackets,
      rxPackets: p.rxPackets,
      spoofed: p.spoofed,
      lastSwitch: p.lastSwitch ?? null,
      downReason: p.downReason ?? null,
      downDetail: p.downDetail ?? null,
      ownershipMismatch: p.ownershipMismatch ?? null,
      lastHeardAgeMs: p.lastHeardAgeMs ?? null,
      sealed: p.sealed === true,
      lastHandshakeAgeMs: p.lastHandshakeAgeMs ?? null,
    })),
    drops: report.drops,
    transport: report.transport,
  };
}

/** The snapshot when getStatus failed (sent with its `error`). */
function emptySnapshot(): DashboardSnapshot {
  return { t: Date.now(), node: '?', localSubnets: [], peers: [], drops: {}, transport: {} };
}
