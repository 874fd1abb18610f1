/**
 * Reading a running node's counters from its status endpoint (node-bootstrap/status-server.ts,
 * `GET /status` on the Unix socket the harness names in PODTUN_STATUS_SOCKET).
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import type { Cluster } from './cluster.js';

/** The parts of RouterStats (router/router.ts) the tests look at. */
export interface NodeStatus {
  drops?: Record<string, number>;
  peers?: Array<{ node: string; spoofed?: number; state?: string; rxPackets?: number }>;
  [key: string]: unknown;
}

/** `GET /status` of node i; throws naming the socket when podtun does not serve it. */
export function readStatus(cluster: Cluster, i: number): Promise<NodeStatus> {
  const socketPath = cluster.node(i).statusSocket;
  if (!existsSync(socketPath)) {
    return Promise.reject(
      new Error(
        `no status socket at ${socketPath}: \`podtun run\` should serve GET /status there (env PODTUN_STATUS_SOCKET)`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/status', method: 'GET', timeout: 3_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as NodeStatus);
        } catch (error: unknown) {
          reject(new Error(`bad /status reply from ${socketPath}`, { cause: error }));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET /status on ${socketPath} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** A drop counter by reason name ('spoofed', 'bad_header', 'malformed', ...); 0 when absent. */
export function dropCount(status: NodeStatus, reason: string): number {
  return status.drops?.[reason] ?? 0;
}

/** Sum of all drop counters. */
export function totalDrops(status: NodeStatus): number {
  return Object.values(status.drops ?? {}).reduce((sum, n) => sum + n, 0);
}
