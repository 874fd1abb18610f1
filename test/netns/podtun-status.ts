/**
 * Reading a running node's counters from its status endpoint (node-bootstrap/status-server.ts,
 * `GET /status` on the Unix socket the harness names in PODTUN_STATUS_SOCKET).
 */
import { existsSync } from 'node:fs';
import { fetchStatus } from '../../node-bootstrap/status-server.js';
import type { Cluster } from './cluster.js';

/** The parts of RouterStats (router/router.ts) the tests look at. */
export interface NodeStatus {
  drops?: Record<string, number>;
  peers?: Array<{ node: string; spoofed?: number; state?: string; rxPackets?: number }>;
  [key: string]: unknown;
}

/** `GET /status` of node i; throws naming the socket when podtun does not serve it. */
export async function readStatus(cluster: Cluster, i: number): Promise<NodeStatus> {
  const socketPath = cluster.node(i).statusSocket;
  if (!existsSync(socketPath)) {
    throw new Error(`no status socket at ${socketPath}: \`podtun run\` should serve GET /status there (env PODTUN_STATUS_SOCKET)`);
  }
  return (await fetchStatus(socketPath)) as NodeStatus;
}

/** A drop counter by reason name ('spoofed', 'bad_header', 'malformed', ...); 0 when absent. */
export function dropCount(status: NodeStatus, reason: string): number {
  return status.drops?.[reason] ?? 0;
}
