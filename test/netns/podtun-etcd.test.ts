/**
 * podtun end to end with leases in a real etcd: nodes acquire distinct subnets, keep them across a
 * quick restart, lose them after the TTL when gone, and keep forwarding through an etcd outage.
 *
 * ```
 *                 underlay ns (bridge ul0, 192.168.77.0/24)
 *        /            |             |              \
 *   etcd ns        n1             n2              n3        (subnetManager: etcd, ttl 4 s)
 *   .250:2379      pod a1  <== ping -i 0.2 across a 30 s etcd outage ==>  pod a2
 *                  (pods attached through cnitool + the installed `podtun` CNI plugin)
 * ```
 */
import { describe, expect, it } from 'vitest';
import { CLUSTER_CIDR_V4, CLUSTER_CIDR_V6 } from '../../lab/cluster.js';
import type { Cluster } from '../../lab/cluster.js';
import { cnitoolSkipReason } from '../../lab/cnitool.js';
import { readStatus } from '../../lab/podtun-status.js';
import { pollUntil, sleep } from '../../lab/shell.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';
import { cidrContains, parseCidr } from '../../core/cidr.js';

const skipReason = netnsSkipReason(['ping', 'etcd']) ?? podtunSkipReason() ?? cnitoolSkipReason();
printSkip('podtun-etcd.test.ts', skipReason);

const TTL_SECONDS = 4;
const OUTAGE_MS = 30_000;

async function leaseOf(c: Cluster, i: number): Promise<readonly string[]> {
  return (await readStatus(c, i)).lease;
}

async function routeNodes(c: Cluster, i: number): Promise<Map<string, string>> {
  return new Map((await readStatus(c, i)).routes.map((r) => [r.subnet, r.node]));
}

describe.skipIf(skipReason !== undefined)('podtun: leases in etcd', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 0, ipv6: true, mode: 'podtun', podtun: { etcd: { ttlSeconds: TTL_SECONDS } } });

  it('gives 3 nodes 3 distinct subnets inside the cluster CIDRs, and every node routes to the others', async () => {
    const c = cluster();
    const leases = await Promise.all([1, 2, 3].map((i) => leaseOf(c, i)));
    for (const lease of leases) {
      expect(lease).toHaveLength(2);
      expect(cidrContains(parseCidr(CLUSTER_CIDR_V4), parseCidr(lease[0] ?? ''))).toBe(true);
      expect(cidrContains(parseCidr(CLUSTER_CIDR_V6), parseCidr(lease[1] ?? ''))).toBe(true);
    }
    expect(new Set(leases.flat()).size).toBe(6);
    for (const i of [1, 2, 3]) {
      const routes = await routeNodes(c, i);
      for (const j of [1, 2, 3]) {
        for (const subnet of leases[j - 1] ?? []) expect(routes.get(subnet), `n${i} route to ${subnet}`).toBe(i === j ? `n${i}` : `n${j}`);
      }
    }
  });

  it('keeps the subnet across a restart within the TTL', { timeout: 60_000 }, async () => {
    const c = cluster();
    const before = await leaseOf(c, 2);
    await c.stopNode(2);
    await c.startNode(2);
    expect(await leaseOf(c, 2)).toEqual(before);
  });

  it('forwards through a 30 s etcd outage, then routers pick up a lease change made after it', { timeout: 150_000 }, async () => {
    const c = cluster();
    const a1 = await c.attachPod(1, 'a1');
    const a2 = await c.attachPod(2, 'a2');
    const warm = await c.outcome(a1.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', a2.ipv4]);
    expect(parsePing(warm.stdout).received).toBe(3);

    // 0.2 s pings for the outage and some margin either side.
    const count = Math.ceil((OUTAGE_MS + 6_000) / 200);
    const ping = c.spawnIn(a1.ns, ['ping', '-i', '0.2', '-c', String(count), '-W', '1', a2.ipv4]);
    let out = '';
    ping.stdout?.setEncoding('utf8');
    ping.stdout?.on('data', (d: string) => {
      out += d;
    });
    const pingDone = new Promise<void>((resolve) => ping.once('exit', () => resolve()));

    await sleep(2_000);
    const etcd = c.etcd;
    if (etcd === undefined) throw new Error('no etcd');
    await etcd.stop();
    // Node 3 leaves while etcd is away: its lease cannot be seen to change until etcd is back.
    const n3Before = await leaseOf(c, 3);
    await c.stopNode(3);
    await sleep(OUTAGE_MS);
    await etcd.start();
    await pingDone;

    const summary = parsePing(out);
    expect(summary.transmitted).toBe(count);
    // Forwarding never depended on etcd: at most one echo lost to scheduling noise.
    expect(summary.received, out.slice(-400)).toBeGreaterThanOrEqual(count - 1);

    // A change after the restart: n3 comes back (its lease had lapsed while etcd was down or
    // is still held: either way it gets a subnet) and the others route to it again.
    await c.startNode(3);
    const n3After = await leaseOf(c, 3);
    expect(n3After).toHaveLength(2);
    for (const i of [1, 2]) {
      await pollUntil(`n${i} routes to n3's ${n3After[0] ?? ''}`, async () => ((await routeNodes(c, i)).get(n3After[0] ?? '') === 'n3' ? true : undefined), 15_000, 200);
    }
    const a3 = await c.attachPod(3, 'a3');
    const reach = await c.outcome(a1.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', a3.ipv4]);
    expect(parsePing(reach.stdout).received, `a1 -> a3 (n3 was ${n3Before.join(', ')}, now ${n3After.join(', ')})`).toBe(3);
  });

  it('drops a killed node\'s routes from the others once its lease expires', { timeout: 60_000 }, async () => {
    const c = cluster();
    const gone = await leaseOf(c, 3);
    await c.killNode(3);
    const killedAt = Date.now();
    for (const i of [1, 2]) {
      await pollUntil(`n${i} drops n3's routes`, async () => {
        const routes = await routeNodes(c, i);
        return gone.every((s) => !routes.has(s)) ? true : undefined;
      }, (TTL_SECONDS + 10) * 1000, 200);
    }
    // Only by expiry: the last renewal (every TTL/3) was at most TTL/3 before the kill.
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual((TTL_SECONDS * 1000 * 2) / 3 - 500);
  });
});

describe.skipIf(skipReason !== undefined)('podtun: 20 nodes start at once against one etcd', () => {
  const cluster = useCluster({ nodes: 20, podsPerNode: 0, ipv6: false, mode: 'podtun', podtun: { etcd: { ttlSeconds: 10 }, ws: false, readyTimeoutMs: 60_000 } });

  it('gives all 20 distinct subnets', { timeout: 60_000 }, async () => {
    const c = cluster();
    const leases = await Promise.all(c.nodes().map((n) => leaseOf(c, n.index)));
    const v4 = leases.map((l) => l[0]);
    expect(v4.every((s) => s !== undefined && cidrContains(parseCidr(CLUSTER_CIDR_V4), parseCidr(s)))).toBe(true);
    expect(new Set(v4).size).toBe(20);
    // Every node knows all 20 leases.
    await pollUntil('n1 routes to all 19 peers', async () => ((await routeNodes(c, 1)).size === 20 ? true : undefined), 15_000, 200);
  });
});
