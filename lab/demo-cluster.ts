/**
 * The demo's cluster, built the same way by `podtun demo` and `podtun lab up`: 3 nodes x 2 pods
 * in network namespaces, dual stack; n3's underlay drops all UDP (nftables), so its peers reach it
 * over WebSocket without any setting; every node serves its dashboard inside its own namespace.
 *
 * ```
 *                  underlay ns (bridge ul0, 192.168.77.0/24)
 *               /               |                \
 *    n1: podtun run        n2: podtun run        n3: podtun run      n1 <-> n2: UDP :8285
 *                                                [UDP dropped]       n3 <-> n1/n2: WebSocket :8443
 *     p1a   p1b             p2a   p2b             p3a   p3b          (10.244.N.10/.11)
 * ```
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createCluster, findRepoRoot } from './cluster.js';
import type { Cluster } from './cluster.js';
import { missingCommand } from './requirements.js';

export type DemoMode = 'podtun' | 'kernel-routing';

/** The node whose underlay drops UDP. */
export const WS_ONLY_NODE = 3;
/** Each node's `dashboard.listen`, inside its namespace (the root namespace gets no address). */
export const DEMO_DASHBOARD_LISTEN = '127.0.0.1:9403';

/**
 * Why `command` cannot build the cluster on this machine (not Linux, not root, no iproute2, no
 * build), or undefined.
 */
export function demoHostProblem(command: string, mode: DemoMode): string | undefined {
  if (process.platform !== 'linux') return `${command} needs Linux (network namespaces)`;
  if (process.getuid?.() !== 0) {
    return `${command} needs root: it creates network namespaces (try: sudo ${command})`;
  }
  const missing = missingCommand(['ip', 'bridge', 'ss']);
  if (missing !== undefined) return `${command}: ${missing}`;
  if (mode === 'podtun' && !existsSync(join(findRepoRoot(), 'dist', 'node-bootstrap', 'cli', 'cli.js'))) {
    return `${command}: dist/ is missing, run \`npm run build\` first`;
  }
  return undefined;
}

export interface DemoClusterOptions {
  mode: DemoMode;
  /** A fixed run id and folder (the lab's); default a throwaway run's. */
  runId?: string;
  dir?: string;
  /** Told what the cluster has to do without (no nft: n3's UDP is not blocked). */
  note(line: string): void;
}

export interface DemoCluster {
  cluster: Cluster;
  /** n3's UDP is blocked (false without nftables). */
  udpBlocked: boolean;
}

/** Builds the cluster and starts podtun on every node; on failure nothing is left. */
export async function createDemoCluster(options: DemoClusterOptions): Promise<DemoCluster> {
  const cluster = await createCluster({
    nodes: 3,
    podsPerNode: 2,
    ipv6: true,
    mode: options.mode,
    startNodes: false,
    podtun: { config: { dashboard: { listen: DEMO_DASHBOARD_LISTEN } } },
    ...(options.runId === undefined ? {} : { runId: options.runId }),
    ...(options.dir === undefined ? {} : { dir: options.dir }),
  });
  if (options.mode !== 'podtun') return { cluster, udpBlocked: false };
  try {
    const noNft = missingCommand(['nft']);
    if (noNft === undefined) {
      await cluster.blockUdp(WS_ONLY_NODE);
    } else {
      options.note(`(${noNft}: n3's UDP is not blocked, every peer stays on UDP)`);
    }
    await Promise.all(cluster.nodes().map((node) => cluster.startNode(node.index)));
    return { cluster, udpBlocked: noNft === undefined };
  } catch (error: unknown) {
    await cluster.destroy();
    throw error;
  }
}
