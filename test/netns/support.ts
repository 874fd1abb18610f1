/**
 * Shared pieces of the namespace test files: skip reasons, a per-file cluster with teardown
 * that keeps logs when a test failed, and output parsers for ping.
 */
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { skipUnlessMet } from '../requirement.js';
import { createCluster, findRepoRoot, tail } from '../../lab/cluster.js';
import type { Cluster, ClusterOptions } from '../../lab/cluster.js';
import { ensureProbeAgent, probe, startProbe } from '../../lab/probe.js';
import type { ProbeServer, RttResult } from '../../lab/probe.js';

export { netnsSkipReason, podtunSkipReason } from '../../lab/requirements.js';

/** Skips (printing why) or, in CI, fails the file when `reason` says something is missing (test/requirement.ts). */
export function printSkip(file: string, reason: string | undefined): boolean {
  return skipUnlessMet(`test/netns/${file}`, reason);
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

const ECHO_PORT = 7000;

/**
 * Pod `from`'s first pod and each `others` node's first pod reach each other both ways: 3 pings
 * and 5 TCP round trips in each direction.
 */
export async function expectBothWays(c: Cluster, from: number, others: readonly number[]): Promise<void> {
  const p = c.pod(from, 0);
  const servers: ProbeServer<unknown>[] = [];
  try {
    for (const pod of c.pods()) servers.push(await startProbe(c, pod.ns, 'echo-server', { port: ECHO_PORT, 'timeout-ms': 60_000 }));
    for (const i of others) {
      const other = c.pod(i, 0);
      for (const [a, b] of [
        [p, other],
        [other, p],
      ] as const) {
        const ping = await c.outcome(a.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', b.ipv4]);
        expect(parsePing(ping.stdout).received, `${a.name} -> ${b.name} ping`).toBe(3);
        const rtt = await probe<RttResult>(c, a.ns, 'tcp-rtt', { to: b.ipv4, port: ECHO_PORT, count: 5, 'timeout-ms': 10_000 });
        expect(rtt.count, `${a.name} -> ${b.name} tcp`).toBe(5);
      }
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}
