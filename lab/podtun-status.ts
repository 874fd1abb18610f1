/**
 * Reading a running node's `GET /status` (its schema: api/status-schema.ts) on the Unix socket
 * the harness names in PODTUN_STATUS_SOCKET, and waiting on what it reports per peer (state,
 * transport).
 */
import { existsSync } from 'node:fs';
import { fetchStatusReport } from '../api/api-client.js';
import type { PeerReport, StatusReport } from '../api/status-schema.js';
import type { PeerState } from '../core/transport.js';
import type { Cluster } from './cluster.js';
import { pollUntil } from './shell.js';

/** `GET /status` of node i; throws naming the socket when podtun does not serve it. */
export async function readStatus(cluster: Cluster, i: number): Promise<StatusReport> {
  const socketPath = cluster.node(i).statusSocket;
  if (!existsSync(socketPath)) {
    throw new Error(`no status socket at ${socketPath}: \`podtun run\` should serve GET /status there (env PODTUN_STATUS_SOCKET)`);
  }
  return fetchStatusReport(socketPath);
}

/** A drop counter by reason name ('spoofed', 'bad_header', 'malformed', ...); 0 when absent. */
export function dropCount(status: StatusReport, reason: string): number {
  return status.drops[reason] ?? 0;
}

/** A transport counter (`status.transport[key]`, e.g. 'ws.authRejected'); 0 when absent. */
export function transportStat(status: StatusReport, key: string): number {
  return status.transport[key] ?? 0;
}

/** The sum of the transport counters whose key matches `pattern`. */
export function transportStatSum(status: StatusReport, pattern: RegExp): number {
  let sum = 0;
  for (const [key, value] of Object.entries(status.transport)) {
    if (pattern.test(key)) sum += value;
  }
  return sum;
}

export function peerView(status: StatusReport, node: string): PeerReport | undefined {
  return status.peers.find((p) => p.node === node);
}

/** One line per peer: `n2 ws up`. */
export function describePeers(status: StatusReport): string {
  return status.peers.map((p) => `${p.node} ${p.transport ?? '?'} ${p.state}`).join(', ');
}

export interface PeerWait {
  /** Expected transport; undefined: any. */
  transport?: string;
  /** Expected state; default 'up'. */
  state?: PeerState;
}

/**
 * Waits until node i reports each of `peers` (node names) with the transport and state asked
 * for; resolves with the milliseconds it took. The error names what each peer showed last.
 */
export async function waitPeers(
  cluster: Cluster,
  i: number,
  peers: readonly string[],
  want: PeerWait,
  timeoutMs: number,
  intervalMs = 100,
): Promise<number> {
  const started = Date.now();
  let last = '';
  const state = want.state ?? 'up';
  try {
    await pollUntil(
      `${cluster.node(i).name}: peers ${peers.join(',')} ${want.transport ?? ''} ${state}`,
      async () => {
        const status = await readStatus(cluster, i);
        last = describePeers(status);
        const ok = peers.every((name) => {
          const p = peerView(status, name);
          return p !== undefined && p.state === state && (want.transport === undefined || p.transport === want.transport);
        });
        return ok ? true : undefined;
      },
      timeoutMs,
      intervalMs,
    );
  } catch (error: unknown) {
    throw new Error(`${error instanceof Error ? error.message : String(error)} (last seen: ${last})`, { cause: error });
  }
  return Date.now() - started;
}

/** The names of every node but i. */
export function peersOf(cluster: Cluster, i: number): string[] {
  return cluster.nodes().filter((n) => n.index !== i).map((n) => n.name);
}

/** podtun's JSON log lines of node i whose `msg` is `msg`. */
export function logEntries(cluster: Cluster, i: number, msg: string): Array<Record<string, unknown>> {
  const entries: Array<Record<string, unknown>> = [];
  for (const line of cluster.readLog(i).split('\n')) {
    if (!line.includes(msg)) continue;
    try {
      const parsed = JSON.parse(line) as unknown;
      if (typeof parsed === 'object' && parsed !== null && (parsed as { msg?: unknown }).msg === msg) {
        entries.push(parsed as Record<string, unknown>);
      }
    } catch {
      // a non-JSON line (pretty output): match on the text alone
      entries.push({ msg, line });
    }
  }
  return entries;
}
