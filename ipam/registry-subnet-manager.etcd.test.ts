/**
 * RegistrySubnetManager over the etcd Registry against a real, throwaway etcd
 * (test/etcd-server.ts). Every manager has its own etcd client, as every node has; each test
 * uses its own key prefix. TTLs of 2-3 s keep the whole file around 20 s.
 *
 *   node-a --client--\
 *   node-b --client---+--> etcd 127.0.0.1:<free port>   <prefix>subnets/10.244.N.0-24
 *   node-c --client--/
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { quietLogger, recordingLogger } from '../test/recording-logger.js';
import type { LogLine } from '../test/recording-logger.js';
import { etcdKeys, etcdPut, etcdSkipReason, startEtcd } from '../lab/etcd-server.js';
import type { EtcdServer } from '../lab/etcd-server.js';
import { sleep, waitFor } from '../test/registry-contract.js';
import { skipUnlessMet } from '../test/requirement.js';
import { createEtcdRegistry } from './etcd-registry.js';
import { encodeLeaseRecord } from './lease-record.js';
import type { Registry } from './registry.js';
import { RegistrySubnetManager } from './registry-subnet-manager.js';
import type { RegistrySubnetManagerOptions } from './registry-subnet-manager.js';
import type { LeaseEvent } from '../core/lease.js';

const etcdMissing = skipUnlessMet('ipam/registry-subnet-manager.etcd.test.ts', etcdSkipReason());

interface Node {
  manager: RegistrySubnetManager;
  registry: Registry;
  closed: boolean;
  close(): Promise<void>;
}

interface Watching {
  batches: LeaseEvent[][];
  brief(): string[];
}

describe.skipIf(etcdMissing)('RegistrySubnetManager on etcd', () => {
  let server: EtcdServer | undefined;
  let prefix = '';
  const nodes: Node[] = [];
  const aborts: AbortController[] = [];
  const watchDone: Promise<void>[] = [];

  beforeAll(async () => {
    server = await startEtcd();
  });

  afterAll(async () => {
    await server?.destroy();
  });

  afterEach(async () => {
    for (const a of aborts.splice(0)) a.abort();
    await Promise.all(watchDone.splice(0));
    await Promise.all(nodes.splice(0).map((n) => n.close()));
  });

  const endpoint = (): string => {
    if (server === undefined) throw new Error('etcd not started');
    return server.endpoint;
  };

  const newPrefix = (): string => {
    prefix = `/podtun-it-${randomBytes(4).toString('hex')}/`;
    return prefix;
  };

  const start = (name: string, options: Partial<RegistrySubnetManagerOptions> = {}): Node => {
    const registry = createEtcdRegistry({ endpoints: [endpoint()], prefix, dialTimeoutMs: 1000, log: quietLogger });
    const manager = new RegistrySubnetManager({
      registry,
      node: name,
      clusterCidrs: ['10.244.0.0/16'],
      subnetLengthV4: 24,
      subnetLengthV6: 64,
      ttlSeconds: 2,
      advertise: { endpoints: { udp: `192.168.77.${nodes.length + 1}:8285` }, transports: undefined, mtu: undefined },
      log: quietLogger,
      retryMs: 100,
      ...options,
    });
    const node: Node = {
      manager,
      registry,
      closed: false,
      close: async () => {
        if (node.closed) return;
        node.closed = true;
        await manager.close();
        await registry.close();
      },
    };
    nodes.push(node);
    return node;
  };

  const watch = (node: Node): Watching => {
    const batches: LeaseEvent[][] = [];
    const abort = new AbortController();
    aborts.push(abort);
    watchDone.push(node.manager.watchLeases(abort.signal, (events) => batches.push(events)));
    return {
      batches,
      brief: () =>
        batches.flat().map((e) => (e.type === 'added' ? `+${e.lease.node} ${e.lease.subnets.join(' ')}` : `-${e.lease.node}`)),
    };
  };

  const keys = async (): Promise<string[]> => (await etcdKeys(endpoint(), prefix)).map((k) => k.slice(prefix.length));
  const keyOf = (subnet: string): string => `subnets/${subnet.replace('/', '-')}`;

  it('three nodes get three distinct subnets, stored one key each', async () => {
    newPrefix();
    const leases = await Promise.all(['node-a', 'node-b', 'node-c'].map((n) => start(n).manager.localLease()));
    const subnets = leases.map((l) => l.subnets[0] ?? '');
    expect(new Set(subnets).size).toBe(3);
    expect(await keys()).toEqual(subnets.map(keyOf).sort());
  });

  it('20 nodes starting at once all get distinct subnets', async () => {
    newPrefix();
    const started = Date.now();
    const leases = await Promise.all(Array.from({ length: 20 }, (_, i) => start(`node-${i}`).manager.localLease()));
    expect(new Set(leases.map((l) => l.subnets[0])).size).toBe(20);
    expect(await keys()).toHaveLength(20);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a restart within the TTL (a new manager, same node name) keeps the subnet', async () => {
    newPrefix();
    const first = start('node-a');
    const lease = await first.manager.localLease();
    const other = start('node-b');
    await other.manager.localLease();
    const w = watch(other);
    await waitFor('the first batch', () => w.batches.length === 1, 5000);
    await first.close();
    const lines: LogLine[] = [];
    const again = start('node-a', { log: recordingLogger(lines), advertise: { endpoints: { udp: lease.endpoints['udp'] ?? '' }, transports: undefined, mtu: undefined } });
    expect(await again.manager.localLease()).toEqual(lease);
    expect(lines.find((l) => l.msg === 'subnet lease acquired')?.obj['reason']).toBe('kept from the previous run');
    // Past the first process's TTL the subnet is still held, and watchers saw no change at all.
    await sleep(3000);
    expect(await keys()).toContain(keyOf(lease.subnets[0] ?? ''));
    expect(w.batches).toHaveLength(1);
  });

  it("a node that stops renewing loses its lease after the TTL, and the others' watchers get 'removed'", async () => {
    newPrefix();
    const a = start('node-a');
    const b = start('node-b');
    await a.manager.localLease();
    const leaseB = await b.manager.localLease();
    const w = watch(a);
    await waitFor('the first batch', () => w.batches.length === 1, 5000);
    await b.close();
    await waitFor('node-b removed', () => w.batches.length === 2, 6000);
    expect(w.batches[1]).toEqual([{ type: 'removed', lease: leaseB }]);
    expect(await keys()).not.toContain(keyOf(leaseB.subnets[0] ?? ''));
  });

  it('a node back after its lease expired and its subnet was taken gets a new subnet', async () => {
    newPrefix();
    const a = start('node-a');
    const old = (await a.manager.localLease()).subnets[0] ?? '';
    await a.close();
    await waitFor('the lease to expire', async () => !(await keys()).includes(keyOf(old)), 6000);
    await etcdPut(endpoint(), `${prefix}${keyOf(old)}`, encodeLeaseRecord({ node: 'node-x', subnets: [old], endpoints: {} }));
    const lost: string[] = [];
    const again = start('node-a', { onLeaseLost: (r) => lost.push(r) });
    const lease = await again.manager.localLease();
    expect(lease.subnets[0]).not.toBe(old);
    expect((await keys()).sort()).toEqual([keyOf(old), keyOf(lease.subnets[0] ?? '')].sort());
    expect(lost).toEqual([]);
  });

  it('dual stack: distinct IPv4 and IPv6 subnets per node, kept across a restart', async () => {
    newPrefix();
    const options = { clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/48'] };
    const nodesUp = ['node-a', 'node-b', 'node-c'].map((n) => start(n, options));
    const leases = await Promise.all(nodesUp.map((n) => n.manager.localLease()));
    for (const lease of leases) {
      expect(lease.subnets).toHaveLength(2);
      expect(lease.subnets[1]).toMatch(/^fd00:10:244:[0-9a-f]+::\/64$/);
    }
    expect(new Set(leases.map((l) => l.subnets[1])).size).toBe(3);
    expect(await keys()).toHaveLength(6);
    const w = watch(nodesUp[1] as Node);
    await waitFor('the first batch', () => w.batches.length === 1, 5000);
    expect(w.brief().sort()).toEqual(leases.map((l) => `+${l.node} ${l.subnets.join(' ')}`).sort());
    await nodesUp[0]?.close();
    expect((await start('node-a', options).manager.localLease()).subnets).toEqual(leases[0]?.subnets);
  });

  it('etcd down for a few seconds: no removals meanwhile, renewals resume, and a node joining afterwards reaches the watchers', async () => {
    newPrefix();
    const logs: LogLine[] = [];
    const ttl = { ttlSeconds: 3 };
    const a = start('node-a', { ...ttl, log: recordingLogger(logs, { n: 'a' }) });
    const b = start('node-b', { ...ttl, log: recordingLogger(logs, { n: 'b' }) });
    const leaseA = await a.manager.localLease();
    const leaseB = await b.manager.localLease();
    const w = watch(a);
    await waitFor('the first batch', () => w.batches.length === 1, 5000);

    await server?.stop();
    await sleep(3500);
    expect(w.batches).toHaveLength(1);
    expect(logs.some((l) => l.msg === 'subnet lease renewal failed; retrying' && l.obj['n'] === 'a')).toBe(true);
    await server?.restart();

    await waitFor(
      'both renewals to resume',
      () => ['a', 'b'].every((n) => logs.some((l) => l.msg === 'subnet lease renewed again after failures' && l.obj['n'] === n)),
      8000,
    );
    await waitFor('the watch to resync', () => logs.some((l) => l.msg === 'lease watch resynced'), 8000);
    const leaseC = await start('node-c', ttl).manager.localLease();
    await waitFor('node-c to reach the watcher', () => w.brief().some((e) => e.startsWith('+node-c')), 5000);
    expect(w.brief().slice(0, 2).sort()).toEqual([leaseA, leaseB].map((l) => `+${l.node} ${l.subnets[0]}`));
    expect(w.brief().slice(2)).toEqual([`+node-c ${leaseC.subnets[0]}`]);
    // Past a whole TTL after the restart, A and B still hold their subnets: renewal really works again.
    await sleep(3500);
    expect(await keys()).toEqual([leaseA, leaseB, leaseC].map((l) => keyOf(l.subnets[0] ?? '')).sort());
    expect(w.brief().filter((e) => e.startsWith('-'))).toEqual([]);
  });
});
