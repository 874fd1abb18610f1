/**
 * RegistrySubnetManager against the in-memory registry (test/memory-registry.ts): allocation,
 * restarts, expiry, outages and bad records, on short TTLs (0.3 s: renewal every 100 ms).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryRegistry } from '../test/memory-registry.js';
import { quietLogger, recordingLogger } from '../test/recording-logger.js';
import type { LogLine } from '../test/recording-logger.js';
import { sleep, waitFor } from '../test/registry-contract.js';
import { encodeLeaseRecord } from './lease-record.js';
import { LeaseError } from './lease-error.js';
import { RegistrySubnetManager } from './registry-subnet-manager.js';
import type { RegistrySubnetManagerOptions } from './registry-subnet-manager.js';
import type { Lease, LeaseEvent } from '../core/lease.js';

const TTL_SECONDS = 0.3;
const CLUSTER_V4 = '10.244.0.0/16';
const CLUSTER_V6 = 'fd00:10:244::/48';

interface Watching {
  batches: LeaseEvent[][];
  /** Every event so far as "+node subnets" / "-node". */
  brief(): string[];
  stop(): Promise<void>;
}

describe('RegistrySubnetManager (memory registry)', () => {
  let registry: MemoryRegistry;
  const managers: RegistrySubnetManager[] = [];
  const watches: Watching[] = [];

  const manager = (node: string, options: Partial<RegistrySubnetManagerOptions> = {}): RegistrySubnetManager => {
    registry ??= new MemoryRegistry();
    const m = new RegistrySubnetManager({
      registry,
      node,
      clusterCidrs: [CLUSTER_V4],
      subnetLengthV4: 24,
      subnetLengthV6: 64,
      ttlSeconds: TTL_SECONDS,
      advertise: { endpoints: { udp: `192.168.77.${managers.length + 1}:8285` }, transports: undefined, mtu: undefined },
      log: quietLogger,
      retryMs: 20,
      ...options,
    });
    managers.push(m);
    return m;
  };

  const watch = (m: RegistrySubnetManager): Watching => {
    const batches: LeaseEvent[][] = [];
    const abort = new AbortController();
    const done = m.watchLeases(abort.signal, (events) => batches.push(events));
    const w: Watching = {
      batches,
      brief: () =>
        batches.flat().map((e) => (e.type === 'added' ? `+${e.lease.node} ${e.lease.subnets.join(' ')}` : `-${e.lease.node}`)),
      stop: async () => {
        abort.abort();
        await done;
      },
    };
    watches.push(w);
    return w;
  };

  /** Records in the registry as node -> subnets. */
  const holders = (): Record<string, string[]> => {
    const out: Record<string, string[]> = {};
    for (const [subnet, entry] of registry.snapshot()) {
      const node = (JSON.parse(entry.value) as { node?: string }).node ?? '?';
      (out[node] ??= []).push(subnet);
    }
    return out;
  };

  afterEach(async () => {
    for (const w of watches.splice(0)) await w.stop();
    for (const m of managers.splice(0)) await m.close();
    await registry?.close();
    registry = undefined as unknown as MemoryRegistry;
  });

  it('three nodes get three distinct subnets in the cluster CIDR, none of them subnet 0', async () => {
    const leases = await Promise.all(['node-a', 'node-b', 'node-c'].map((n) => manager(n).localLease()));
    const subnets = leases.map((l) => l.subnets[0]);
    expect(new Set(subnets).size).toBe(3);
    for (const s of subnets) expect(s).toMatch(/^10\.244\.([1-9]|1[0-6])\.0\/24$/);
    expect(leases.map((l) => l.node)).toEqual(['node-a', 'node-b', 'node-c']);
    expect(leases[0]?.endpoints['udp']).toBe('192.168.77.1:8285');
    expect(Object.keys(holders()).sort()).toEqual(['node-a', 'node-b', 'node-c']);
  });

  it('20 nodes starting at once all get distinct subnets', async () => {
    const nodes = Array.from({ length: 20 }, (_, i) => `node-${i}`);
    const leases = await Promise.all(nodes.map((n) => manager(n).localLease()));
    expect(new Set(leases.map((l) => l.subnets[0])).size).toBe(20);
    expect(registry.snapshot().size).toBe(20);
  });

  it('localLease twice resolves to the same lease with one claim', async () => {
    const m = manager('node-a');
    const [a, b] = await Promise.all([m.localLease(), m.localLease()]);
    expect(a).toEqual(b);
    expect(await m.localLease()).toEqual(a);
    expect(registry.calls.claim).toBe(1);
  });

  it('watch: the first batch is the full set with the own lease, then one diff per change', async () => {
    const a = manager('node-a');
    const leaseA = await a.localLease();
    const w = watch(a);
    await waitFor('the first batch', () => w.batches.length === 1, 2000);
    expect(w.brief()).toEqual([`+node-a ${leaseA.subnets[0]}`]);
    const leaseB = await manager('node-b').localLease();
    await waitFor('node-b added', () => w.batches.length === 2, 2000);
    expect(w.batches[1]).toEqual([{ type: 'added', lease: leaseB }]);
  });

  it('renews at about a third of the TTL and keeps the lease well past it', async () => {
    const a = manager('node-a');
    await a.localLease();
    await sleep(TTL_SECONDS * 1000 * 3);
    expect(registry.calls.renew).toBeGreaterThanOrEqual(4);
    expect(registry.calls.renew).toBeLessThanOrEqual(12);
    expect(Object.keys(holders())).toEqual(['node-a']);
  });

  it('a restart within the TTL keeps the subnet; a changed endpoint reaches the watchers', async () => {
    const a = manager('node-a');
    const first = await a.localLease();
    const other = manager('node-b');
    await other.localLease();
    const w = watch(other);
    await waitFor('the first batch', () => w.batches.length === 1, 2000);
    await a.close();
    const again = manager('node-a', { advertise: { endpoints: { udp: '192.168.77.99:8285' }, transports: undefined, mtu: undefined } });
    const second = await again.localLease();
    expect(second.subnets).toEqual(first.subnets);
    expect(second.endpoints['udp']).toBe('192.168.77.99:8285');
    await waitFor('the update', () => w.batches.length === 2, 2000);
    expect(w.batches[1]?.map((e) => `${e.type} ${e.lease.endpoints['udp'] ?? ''}`)).toEqual(['removed 192.168.77.1:8285', 'added 192.168.77.99:8285']);
    // Well past the old claim's TTL the subnet is still held: the new process renews it.
    await sleep(TTL_SECONDS * 1000 * 2);
    expect(holders()['node-a']).toEqual(first.subnets);
  });

  it("a node that stops renewing loses its lease after the TTL; the others' watchers get 'removed'", async () => {
    const a = manager('node-a');
    const b = manager('node-b');
    await a.localLease();
    const leaseB = await b.localLease();
    const w = watch(a);
    await waitFor('the first batch', () => w.batches.length === 1, 2000);
    const closedAt = Date.now();
    await b.close();
    await waitFor('node-b removed', () => w.batches.length === 2, 3000);
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(TTL_SECONDS * 1000 * 0.5);
    expect(w.batches[1]).toEqual([{ type: 'removed', lease: leaseB }]);
    expect(Object.keys(holders())).toEqual(['node-a']);
  });

  it('a node whose old subnet was given to another node gets a new one, never a conflict', async () => {
    const a = manager('node-a');
    const first = await a.localLease();
    const subnet = first.subnets[0] ?? '';
    await a.close();
    registry.expire(subnet);
    const c = await registry.claim([{ subnet, ifRevision: 0 }], encodeLeaseRecord({ node: 'node-c', subnets: [subnet], endpoints: {} }), 60);
    expect(c).toBeDefined();
    const lines: LogLine[] = [];
    const again = manager('node-a', { log: recordingLogger(lines) });
    const second = await again.localLease();
    expect(second.subnets[0]).not.toBe(subnet);
    expect(holders()).toEqual({ 'node-c': [subnet], 'node-a': second.subnets });
    expect(lines.find((l) => l.msg === 'subnet lease acquired')?.obj['reason']).toBe('newly allocated');
  });

  it('a lease that expired in the registry is re-acquired with the same subnet, and reported', async () => {
    const lines: LogLine[] = [];
    const lost: string[] = [];
    const a = manager('node-a', { log: recordingLogger(lines), onLeaseLost: (r) => lost.push(r) });
    const lease = await a.localLease();
    const w = watch(manager('node-b'));
    await waitFor('the first batch', () => w.batches.length === 1, 2000);
    registry.expire(lease.subnets[0] ?? '');
    await waitFor('the re-acquisition', () => lines.some((l) => l.msg === 'subnet lease re-acquired (same subnets)'), 2000);
    expect(holders()).toEqual({ 'node-a': lease.subnets });
    await waitFor('removed then added', () => w.brief().length === 3, 2000);
    expect(w.brief()).toEqual([`+node-a ${lease.subnets[0]}`, '-node-a', `+node-a ${lease.subnets[0]}`]);
    expect(lost).toEqual([]);
    expect(await a.localLease()).toEqual(lease);
  });

  it('a lease that expired and was taken by another node calls onLeaseLost once and stops renewing', async () => {
    const lost: string[] = [];
    const a = manager('node-a', { onLeaseLost: (r) => lost.push(r) });
    const lease = await a.localLease();
    const subnet = lease.subnets[0] ?? '';
    const w = watch(a);
    await waitFor('the first batch', () => w.batches.length === 1, 2000);
    registry.expire(subnet);
    await registry.claim([{ subnet, ifRevision: 0 }], encodeLeaseRecord({ node: 'node-x', subnets: [subnet], endpoints: {} }), 60);
    await waitFor('onLeaseLost', () => lost.length > 0, 2000);
    const renewals = registry.calls.renew;
    await sleep(TTL_SECONDS * 1000);
    expect(lost).toHaveLength(1);
    expect(lost[0]).toContain(`subnet ${subnet} is now held by node-x`);
    expect(registry.calls.renew).toBe(renewals);
    expect(holders()).toEqual({ 'node-x': [subnet] });
  });

  it('an unreachable registry at start: localLease retries with backoff and resolves once it is back', async () => {
    registry = new MemoryRegistry();
    registry.disconnect();
    const lines: LogLine[] = [];
    const a = manager('node-a', { log: recordingLogger(lines) });
    const pending = a.localLease();
    await sleep(300);
    const attempts = registry.calls.list;
    expect(attempts).toBeGreaterThanOrEqual(3);
    expect(attempts).toBeLessThan(20);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    registry.reconnect();
    const lease = await pending;
    expect(holders()).toEqual({ 'node-a': lease.subnets });
  });

  it('an outage: watchers emit nothing, renewals resume after it, and the resync delivers what changed meanwhile', async () => {
    const a = manager('node-a');
    const b = manager('node-b');
    const leaseA = await a.localLease();
    const leaseB = await b.localLease();
    const w = watch(a);
    await waitFor('the first batch', () => w.batches.length === 1, 2000);
    registry.disconnect();
    // Changes the watchers cannot see while the registry is unreachable (an operator's hand).
    registry.delete(leaseB.subnets[0] ?? '');
    registry.put('10.244.200.0/24', encodeLeaseRecord({ node: 'node-c', subnets: ['10.244.200.0/24'], endpoints: { udp: '192.168.77.3:8285' } }));
    const renewsBefore = registry.calls.renew;
    await sleep(TTL_SECONDS * 1000 * 3);
    expect(w.batches).toHaveLength(1);
    expect(registry.calls.renew).toBeGreaterThan(renewsBefore);
    registry.reconnect();
    await waitFor('the resync', () => w.batches.length === 2, 3000);
    expect(w.batches[1]?.map((e) => `${e.type} ${e.lease.node}`)).toEqual(['removed node-b', 'added node-c']);
    await sleep(TTL_SECONDS * 1000 * 2);
    expect(holders()['node-a']).toEqual(leaseA.subnets);
    expect(w.batches).toHaveLength(2);
  });

  it('dual stack: one IPv4 and one IPv6 subnet, claimed together; a restart keeps both', async () => {
    const options = { clusterCidrs: [CLUSTER_V4, CLUSTER_V6] };
    const a = manager('node-a', options);
    const lease = await a.localLease();
    expect(lease.subnets).toHaveLength(2);
    expect(lease.subnets[0]).toMatch(/^10\.244\.\d+\.0\/24$/);
    expect(lease.subnets[1]).toMatch(/^fd00:10:244:[0-9a-f]+::\/64$/);
    const b = await manager('node-b', options).localLease();
    expect(b.subnets[1]).not.toBe(lease.subnets[1]);
    await a.close();
    const again = await manager('node-a', options).localLease();
    expect(again.subnets).toEqual(lease.subnets);
    expect(holders()['node-a']?.sort()).toEqual([...lease.subnets].sort());
  });

  it('IPv6 only', async () => {
    const lease = await manager('node-a', { clusterCidrs: [CLUSTER_V6], subnetLengthV6: 80 }).localLease();
    expect(lease.subnets).toHaveLength(1);
    expect(lease.subnets[0]).toMatch(/^fd00:10:244:0:[0-9a-f]+::\/80$/);
  });

  it('unusable records are ignored with one warning each, and their keys still count as taken', async () => {
    registry = new MemoryRegistry();
    const taken: string[] = [];
    const put = (subnet: string, value: string): void => {
      registry.put(subnet, value);
      taken.push(subnet);
    };
    // Fill the 16 lowest subnets with junk, so a random pick among the lowest free cannot dodge them by luck.
    for (let i = 1; i <= 12; i++) put(`10.244.${i}.0/24`, '{"not json');
    put('10.244.13.0/24', JSON.stringify({ version: 3, node: 'future', subnets: ['10.244.13.0/24'] }));
    put('10.244.14.0/24', encodeLeaseRecord({ node: 'liar', subnets: ['10.244.99.0/24'], endpoints: {} }));
    put('10.244.15.0/24', JSON.stringify({ version: 2, node: 'wide', subnets: ['10.244.15.0/24'], endpoints: { udp: 8285 } }));
    put('10.244.16.0/24', encodeLeaseRecord({ node: 'elsewhere', subnets: ['10.99.0.0/24'], endpoints: {} }));
    registry.put('not-a-subnet', encodeLeaseRecord({ node: 'odd', subnets: ['10.244.17.0/24'], endpoints: {} }));
    registry.put('10.245.1.0/24', encodeLeaseRecord({ node: 'outside', subnets: ['10.245.1.0/24'], endpoints: {} }));
    const lines: LogLine[] = [];
    const a = manager('node-a', { log: recordingLogger(lines) });
    const lease = await a.localLease();
    expect(taken).not.toContain(lease.subnets[0]);
    const w = watch(a);
    await waitFor('the first batch', () => w.batches.length === 1, 2000);
    expect(w.brief()).toEqual([`+node-a ${lease.subnets[0]}`]);
    const warnings = lines.filter((l) => l.msg === 'unusable lease record in the registry ignored');
    expect(warnings.map((l) => l.obj['subnet']).sort()).toEqual([...taken, 'not-a-subnet', '10.245.1.0/24'].sort());
    expect(warnings.find((l) => l.obj['subnet'] === '10.244.13.0/24')?.obj['reason']).toContain('version');
    // A new bad record arriving through the watch is ignored as well.
    registry.put('10.244.40.0/24', '[]');
    registry.put('10.244.41.0/24', encodeLeaseRecord({ node: 'node-z', subnets: ['10.244.41.0/24'], endpoints: {} }));
    await waitFor('node-z', () => w.batches.length === 2, 2000);
    expect(w.brief().at(-1)).toBe('+node-z 10.244.41.0/24');
  });

  it("a record of ours that no longer fits the config is not taken over, and only the newest record makes the node's lease", async () => {
    registry = new MemoryRegistry();
    registry.put('10.244.5.0/25', encodeLeaseRecord({ node: 'node-a', subnets: ['10.244.5.0/25'], endpoints: { udp: '192.168.77.1:8285' } }));
    const a = manager('node-a');
    const lease = await a.localLease();
    expect(lease.subnets[0]).toMatch(/\/24$/);
    const w = watch(manager('node-b'));
    await waitFor('the first batch', () => w.batches.length === 1, 2000);
    expect(w.brief()).toContain(`+node-a ${lease.subnets[0]}`);
    expect(w.brief().filter((e) => e.startsWith('+node-a'))).toHaveLength(1);
  });

  it('a record listing a subnet whose key the node does not hold yields only the subnets it holds', async () => {
    registry = new MemoryRegistry();
    registry.put('10.244.9.0/24', encodeLeaseRecord({ node: 'node-q', subnets: ['10.244.9.0/24', 'fd00:10:244:7::/64'], endpoints: {} }));
    const w = watch(manager('node-a', { clusterCidrs: [CLUSTER_V4, CLUSTER_V6] }));
    await waitFor('the first batch', () => w.batches.length === 1, 2000);
    expect(w.brief()).toEqual(['+node-q 10.244.9.0/24']);
  });

  it('exhaustion is a LeaseError naming the cluster CIDR', async () => {
    const options = { clusterCidrs: ['10.244.0.0/23'], subnetLengthV4: 24 };
    await manager('node-a', options).localLease();
    const err = await manager('node-b', options).localLease().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LeaseError);
    expect((err as LeaseError).code).toBe('ERR_PODTUN_LEASE');
    expect((err as Error).message).toMatch(/^failed to acquire a subnet in 10\.244\.0\.0\/23: no free \/24 subnet left/);
  });

  it.each<[string, Partial<RegistrySubnetManagerOptions>, RegExp]>([
    ['a bad cluster CIDR', { clusterCidrs: ['10.244.0.1/16'] }, /cluster CIDR "10.244.0.1\/16"/],
    ['no cluster CIDR', { clusterCidrs: [] }, /no cluster CIDR/],
    ['a subnet length shorter than the cluster', { subnetLengthV4: 8 }, /\/8 does not fit cluster CIDR 10.244.0.0\/16/],
    ['a v6 subnet length past 128', { clusterCidrs: [CLUSTER_V6], subnetLengthV6: 129 }, /\/129 does not fit/],
    ['a zero TTL', { ttlSeconds: 0 }, /ttlSeconds/],
    ['an empty node name', { node: '' }, /node name/],
  ])('refuses %s', (_name, options, message) => {
    expect(() => manager('node-a', options)).toThrow(message);
    managers.pop();
  });

  it('close(): safe twice, ends watches, rejects a pending localLease, leaves no timer', async () => {
    registry = new MemoryRegistry({ sweepIntervalMs: 0 });
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    await sleep(10);
    const baseline = timers();
    const a = manager('node-a');
    await a.localLease();
    const abort = new AbortController();
    const watching = a.watchLeases(abort.signal, () => undefined);
    await sleep(50);
    const b = manager('node-b');
    registry.disconnect();
    const pending = b.localLease().then(
      () => 'resolved',
      (e: unknown) => (e instanceof LeaseError ? e.message : 'other error'),
    );
    await sleep(50);
    await Promise.all([a.close(), a.close(), b.close()]);
    await a.close();
    await watching;
    expect(await pending).toMatch(/closed/);
    await expect(b.localLease()).rejects.toThrow(LeaseError);
    // (<=: a timer of the test runner's own may end meanwhile.)
    await sleep(20);
    expect(timers()).toBeLessThanOrEqual(baseline);
    expect(registry.openWatches).toBe(0);
    // Closing does not delete the record: a restart within the TTL can take it over.
    expect(registry.snapshot().size).toBe(1);
  });

  it('watchLeases with an aborted signal returns at once; a watch handler that throws does not stop the watch', async () => {
    const a = manager('node-a');
    await a.localLease();
    const aborted = new AbortController();
    aborted.abort();
    await a.watchLeases(aborted.signal, () => {
      throw new Error('never called');
    });
    const abort = new AbortController();
    const seen: Lease[] = [];
    const watching = a.watchLeases(abort.signal, (events) => {
      seen.push(...events.map((e) => e.lease));
      throw new Error('handler bug');
    });
    await manager('node-b').localLease();
    await waitFor('both leases', () => seen.length === 2, 2000);
    abort.abort();
    await watching;
  });
});
