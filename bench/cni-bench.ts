/**
 * The control-plane figures of `npm run bench`:
 *
 *  1. CNI ADD end to end, as a runtime sees it: `cnitool add` (libcni) of a fresh pod namespace
 *     through the conflist podtun installed (podtun -> bridge -> podtun-ipam, the single
 *     executables), beside the reference pair measured in the same node namespace right after:
 *     `bridge` + `host-local` from /usr/lib/cni on a bridge of their own. Each ADD is followed by
 *     an untimed DEL, so both ranges stay small. Median and p99 of ADD_SAMPLES each.
 *  2. Node start to ready: `podtun run` spawned (etcd lease manager, lease held from the previous
 *     start) until GET /readyz answers 200, polled every 10 ms; median of READY_SAMPLES restarts.
 *
 * One node, one etcd in its own namespace (test/netns/cluster.ts, `podtun.etcd`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCluster } from '../lab/cluster.js';
import type { Cluster } from '../lab/cluster.js';
import { fetchApi } from '../api/api-client.js';
import { sleep } from '../lab/shell.js';

const ADD_SAMPLES = 40;
const READY_SAMPLES = 5;
const READY_POLL_MS = 10;
const READY_LIMIT_MS = 30_000;
const REFERENCE_NETWORK = 'reference';

export interface CniBenchResult {
  podtunAddMs: number[];
  referenceAddMs: number[];
  startToReadyMs: number[];
  error: string | undefined;
}

export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export async function measureCni(log: (line: string) => void): Promise<CniBenchResult> {
  const result: CniBenchResult = { podtunAddMs: [], referenceAddMs: [], startToReadyMs: [], error: undefined };
  let cluster: Cluster | undefined;
  try {
    cluster = await createCluster({ nodes: 1, podsPerNode: 0, ipv6: false, mode: 'podtun', podtun: { etcd: { ttlSeconds: 30 }, ws: false } });
    const c = cluster;
    const confDir = join(c.dir, 'reference-net.d');
    mkdirSync(confDir, { recursive: true });
    writeFileSync(join(confDir, '10-reference.conflist'), JSON.stringify({
      cniVersion: '1.0.0',
      name: REFERENCE_NETWORK,
      plugins: [{
        type: 'bridge', bridge: 'ref0', isGateway: true, isDefaultGateway: true, ipMasq: false, hairpinMode: true, mtu: 1460,
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.99.0.0/24' }]], dataDir: join(c.dir, 'reference-ipam') },
      }],
    }));

    // Warm-up (the first ADD creates the bridge; page cache for the executables), untimed.
    for (const network of ['podtun', REFERENCE_NETWORK] as const) await timedAdd(c, network === 'podtun' ? {} : { network, confDir }, 'w');
    for (let k = 0; k < ADD_SAMPLES; k++) {
      result.podtunAddMs.push(await timedAdd(c, {}, `p${k}`));
      result.referenceAddMs.push(await timedAdd(c, { network: REFERENCE_NETWORK, confDir }, `r${k}`));
    }
    log(`  CNI ADD: podtun median ${fmt(percentile(result.podtunAddMs, 50))} ms, reference bridge+host-local ${fmt(percentile(result.referenceAddMs, 50))} ms`);

    for (let k = 0; k < READY_SAMPLES; k++) {
      await c.stopNode(1);
      const startedAt = performance.now();
      const starting = c.startNode(1);
      const socket = c.node(1).statusSocket;
      let readyAt: number | undefined;
      while (readyAt === undefined && performance.now() - startedAt < READY_LIMIT_MS) {
        const r = await fetchApi(socket, '/readyz').catch(() => undefined);
        if (r?.status === 200) readyAt = performance.now();
        else await sleep(READY_POLL_MS);
      }
      await starting;
      if (readyAt === undefined) throw new Error(`node not ready within ${READY_LIMIT_MS} ms`);
      result.startToReadyMs.push(readyAt - startedAt);
    }
    log(`  node start to ready: median ${fmt(percentile(result.startToReadyMs, 50))} ms`);
  } catch (err: unknown) {
    result.error = err instanceof Error ? err.message : String(err);
    log(`  failed: ${result.error}`);
  } finally {
    await cluster?.destroy();
  }
  return result;
}

/** Times one `cnitool add` of a fresh namespace; DEL and namespace removal are not timed. */
async function timedAdd(c: Cluster, options: { network?: string; confDir?: string }, name: string): Promise<number> {
  const ns = await c.createNamespace(`${options.network === undefined ? 'b' : 'x'}${name}`);
  const t0 = performance.now();
  const added = await c.cni(1, 'add', ns, options);
  const ms = performance.now() - t0;
  if (added.exitCode !== 0) throw new Error(`cnitool add (${options.network ?? 'podtun'}) failed: ${added.stderr}${added.stdout}`);
  const deleted = await c.cni(1, 'del', ns, options);
  if (deleted.exitCode !== 0) throw new Error(`cnitool del (${options.network ?? 'podtun'}) failed: ${deleted.stderr}`);
  c.removeNamespace(ns);
  return ms;
}

export function cniTable(r: CniBenchResult): string[] {
  if (r.error !== undefined && r.podtunAddMs.length === 0) return [`- CNI: not measured (${r.error}).`];
  const row = (label: string, values: readonly number[]): string =>
    `| ${label} | ${fmt(percentile(values, 50))} | ${fmt(percentile(values, 99))} | ${values.length} |`;
  const ratio = (percentile(r.podtunAddMs, 50) ?? NaN) / (percentile(r.referenceAddMs, 50) ?? NaN);
  return [
    `| CNI ADD, end to end (cnitool add) | median ms | p99 ms | samples |`,
    '|---|---|---|---|',
    row('podtun (podtun -> bridge -> podtun-ipam, single executables)', r.podtunAddMs),
    row('reference bridge + host-local', r.referenceAddMs),
    '',
    `- CNI ADD median, podtun / reference: ${Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'}x.`,
    `- Node start to ready (\`podtun run\` with the etcd lease manager until /readyz is 200): median ${fmt(percentile(r.startToReadyMs, 50))} ms of ${r.startToReadyMs.map((v) => v.toFixed(0)).join(', ')} ms.`,
    ...(r.error === undefined ? [] : [`- CNI measurement stopped early: ${r.error}`]),
  ];
}

function fmt(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(1);
}
