/**
 * The live dashboard: a small node:http server (off by default; config `dashboard: { listen }`)
 * serving one static page, uPlot's files read from node_modules/uplot/dist at start (no build
 * step, no network), `/events` (server-sent events: one JSON snapshot per second) and `/status`
 * (the same snapshot, once). Nothing on it changes state.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../core/logger.js';

export interface DashboardOptions {
  /** "host:port" ("[::1]:9403" for IPv6); port 0 picks a free one. */
  listen: string;
  /** Router stats (RouterStats-like); may be async (e.g. read from a status socket). */
  getStatus: () => unknown;
  log: Logger;
  /** Snapshot period (default 1000 ms). */
  intervalMs?: number;
  /** Concurrent `/events` clients; more get 503 (default 8). */
  maxClients?: number;
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
  subnets: string[];
  endpoint: string | null;
  state: string;
  transport: string | null;
  rttMs: number | null;
  txBytes: number;
  rxBytes: number;
  txPackets: number;
  rxPackets: number;
  spoofed: number;
  lastSwitch: { atMs: number; from: string; to: string; reason: string } | null;
}

/** What `/events` sends every interval and `/status` returns. */
export interface DashboardSnapshot {
  /** Wall-clock milliseconds when the stats were read. */
  t: number;
  node: string;
  localSubnets: string[];
  peers: PeerSnapshot[];
  drops: Record<string, number>;
  transport: Record<string, number>;
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

  const snapshot = async (): Promise<DashboardSnapshot> => {
    try {
      return toSnapshot(await getStatus());
    } catch (error: unknown) {
      return { ...toSnapshot(undefined), error: error instanceof Error ? error.message : String(error) };
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
    const path = (req.url ?? '/').split('?')[0];
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
        void snapshot().then((snap) => {
          res.writeHead(snap.error === undefined ? 200 : 502, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          res.end(JSON.stringify(snap));
        });
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
    }
  });

  await listen(server, host, port);
  const address = server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  log.info({ listen: `${host.includes(':') ? `[${host}]` : host}:${boundPort}` }, 'dashboard listening');

  let closing: Promise<void> | undefined;
  return {
    port: boundPort,
    close() {
      closing ??= (async () => {
        closed = true;
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
 * dist, so from dist/node-bootstrap/dashboard the source folder under the repo root is used.
 */
function loadAssets(): Assets {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [here, join(here, '..', '..', '..', 'node-bootstrap', 'dashboard')];
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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function numbers(value: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (!isRecord(value)) return out;
  for (const [k, v] of Object.entries(value)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

/** RouterStats (or its JSON from the status socket) to the compact snapshot the page reads. */
export function toSnapshot(raw: unknown, now = Date.now()): DashboardSnapshot {
  const s = isRecord(raw) ? raw : {};
  const peers = Array.isArray(s['peers']) ? s['peers'].filter(isRecord) : [];
  return {
    t: now,
    node: str(s['node']) ?? '?',
    localSubnets: strings(s['localSubnets']),
    peers: peers.map((p): PeerSnapshot => {
      const sw = p['lastSwitch'];
      return {
        node: str(p['node']) ?? '?',
        subnets: strings(p['subnets']),
        endpoint: str(p['endpoint']),
        state: str(p['state']) ?? 'unknown',
        transport: str(p['transport']),
        rttMs: typeof p['rttMs'] === 'number' ? p['rttMs'] : null,
        txBytes: num(p['txBytes']),
        rxBytes: num(p['rxBytes']),
        txPackets: num(p['txPackets']),
        rxPackets: num(p['rxPackets']),
        spoofed: num(p['spoofed']),
        lastSwitch: isRecord(sw)
          ? { atMs: num(sw['atMs']), from: str(sw['from']) ?? '?', to: str(sw['to']) ?? '?', reason: str(sw['reason']) ?? '' }
          : null,
      };
    }),
    drops: numbers(s['drops']),
    transport: numbers(s['transport']),
  };
}
