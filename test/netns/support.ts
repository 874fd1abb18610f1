/**
 * Shared pieces of the namespace test files: skip reasons, a per-file cluster with teardown
 * that keeps logs when a test failed, and output parsers for ping.
 */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { createCluster, findRepoRoot, tail } from './cluster.js';
import type { Cluster, ClusterOptions } from './cluster.js';
import { ensureProbeAgent } from './probe.js';

export { netnsSkipReason, podtunSkipReason } from './requirements.js';

export function printSkip(file: string, reason: string | undefined): boolean {
  if (reason === undefined) return false;
  process.stdout.write(`[skip] ${file}: ${reason}\n`);
  return true;
}

/**
 * A cluster for the enclosing describe block: built in beforeAll, destroyed in afterAll. When a
 * test failed, the configs and podtun logs are kept and their tails printed.
 */
export function useCluster(options: ClusterOptions): () => Cluster {
  let cluster: Cluster | undefined;
  let failed = false;
  beforeAll(async () => {
    await ensureProbeAgent(findRepoRoot());
    cluster = await createCluster(options);
  });
  beforeEach((ctx) => {
    ctx.onTestFailed(() => {
      failed = true;
    });
  });
  afterAll(async () => {
    if (cluster === undefined) return;
    if (failed && cluster.mode === 'podtun') {
      for (const node of cluster.nodes()) {
        process.stderr.write(`--- ${node.logFile} (tail) ---\n${tail(cluster.readLog(node.index), 40)}\n`);
      }
    }
    await cluster.destroy({ keepLogs: failed });
  });
  return () => {
    if (cluster === undefined) throw new Error('cluster not built (see beforeAll error)');
    return cluster;
  };
}

export interface PingSummary {
  transmitted: number;
  received: number;
  avgMs: number | undefined;
}

/** Parses iputils ping's summary lines. */
export function parsePing(output: string): PingSummary {
  const counts = /(\d+) packets transmitted, (\d+) received/.exec(output);
  const rtt = /= [\d.]+\/([\d.]+)\/[\d.]+\/[\d.]+ ms/.exec(output);
  return {
    transmitted: Number(counts?.[1] ?? 0),
    received: Number(counts?.[2] ?? 0),
    avgMs: rtt?.[1] === undefined ? undefined : Number(rtt[1]),
  };
}
