/**
 * The host-side probes `podtun doctor` runs: commands through execFile (never a shell) with a
 * hard timeout, sysctl reads from /proc/sys (per network namespace), a bounded TCP connect, and
 * a defensive reader for the daemon's `GET /status` reply. Every probe resolves with an answer;
 * none throws on a failing host, so one broken layer never hides the others.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { fetchStatus } from '../api/api-client.js';

export interface ExecOutcome {
  /** 0 on success; the exit code otherwise; -1 when killed (timeout) or not started. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** What the checks need from the host; tests may swap any of them. */
export interface DoctorProbes {
  exec(argv: readonly string[], timeoutMs: number): Promise<ExecOutcome>;
  /** A /proc/sys value by path ("net/ipv4/ip_forward"), trimmed; undefined when unreadable. */
  sysctl(path: string): Promise<string | undefined>;
  /** Resolves with undefined when connected, else the reason. */
  tcpConnect(host: string, port: number, timeoutMs: number): Promise<string | undefined>;
  status(socketPath: string): Promise<unknown>;
}

const MAX_BUFFER_BYTES = 4 * 1024 * 1024;

export function execBounded(argv: readonly string[], timeoutMs: number): Promise<ExecOutcome> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.resolve({ code: -1, stdout: '', stderr: 'empty command' });
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_BUFFER_BYTES, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ code: 0, stdout, stderr });
          return;
        }
        const code = typeof error.code === 'number' ? error.code : -1;
        const why = error.killed === true ? `timed out after ${timeoutMs} ms` : error.message;
        resolve({ code, stdout, stderr: stderr.trim() === '' ? why : stderr });
      },
    );
    child.stdin?.end();
  });
}

/** Takes a slash path: interface names may hold dots ("net/ipv4/conf/pod.tun/rp_filter"). */
export async function readSysctl(path: string): Promise<string | undefined> {
  if (path.split('/').some((part) => part === '' || part === '..')) return undefined;
  try {
    return (await readFile(`/proc/sys/${path}`, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

export function tcpConnect(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (reason: string | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => done(undefined));
    socket.once('error', (err: Error) => done(err.message));
  });
}

/** fetchStatus with an outer bound (its own request timeout does not cover a stuck connect). */
export function statusWithin(socketPath: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply from ${socketPath} within ${timeoutMs} ms`)), timeoutMs);
    fetchStatus(socketPath).then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

export const defaultProbes: DoctorProbes = {
  exec: execBounded,
  sysctl: readSysctl,
  tcpConnect,
  status: (socketPath) => statusWithin(socketPath, 3_000),
};

// --- /status, read defensively (the daemon may be older or newer than this doctor) ---

export interface StatusPeer {
  node: string;
  state: string | undefined;
  transport: string | undefined;
  endpoint: string | undefined;
  rttMs: number | undefined;
  tunnelMtu: number | undefined;
  lastSwitch: { atMs: number; from: string; to: string; reason: string } | undefined;
  /** Per-transport state if the daemon reports it (`udp: { state, lastSeenMs }`). */
  udp: { state: string | undefined; lastSeenMs: number | undefined } | undefined;
}

export interface StatusView {
  node: string | undefined;
  peers: StatusPeer[];
  drops: Record<string, number>;
}

export function parseStatus(raw: unknown): StatusView | undefined {
  if (!isRecord(raw)) return undefined;
  const peers: StatusPeer[] = [];
  const rawPeers = raw['peers'];
  if (Array.isArray(rawPeers)) {
    for (const p of rawPeers as unknown[]) {
      if (!isRecord(p) || typeof p['node'] !== 'string') continue;
      const sw = p['lastSwitch'];
      const udp = p['udp'];
      peers.push({
        node: p['node'],
        state: str(p['state']),
        transport: str(p['transport']),
        endpoint: str(p['endpoint']),
        rttMs: num(p['rttMs']),
        tunnelMtu: num(p['tunnelMtu']),
        lastSwitch:
          isRecord(sw) && typeof sw['atMs'] === 'number'
            ? { atMs: sw['atMs'], from: str(sw['from']) ?? '?', to: str(sw['to']) ?? '?', reason: str(sw['reason']) ?? '' }
            : undefined,
        udp: isRecord(udp) ? { state: str(udp['state']), lastSeenMs: num(udp['lastSeenMs']) } : undefined,
      });
    }
  }
  const drops: Record<string, number> = {};
  const rawDrops = raw['drops'];
  if (isRecord(rawDrops)) {
    for (const [k, v] of Object.entries(rawDrops)) if (typeof v === 'number') drops[k] = v;
  }
  return { node: str(raw['node']), peers, drops };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
