/**
 * The SubnetManager contract (test/subnet-manager-contract.ts) against the static manager (a
 * node list in memory), the etcd manager over the in-memory registry, and the etcd manager over
 * a real, throwaway etcd (lab/etcd-server.ts; each fixture under a key prefix of its own).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe } from 'vitest';
import type { Lease } from '../core/lease.js';
import { etcdDelete, etcdPut, etcdSkipReason, startEtcd } from '../lab/etcd-server.js';
import type { EtcdServer } from '../lab/etcd-server.js';
import { MemoryRegistry } from '../test/memory-registry.js';
import { quietLogger } from '../test/recording-logger.js';
import { skipUnlessMet } from '../test/requirement.js';
import { CONTRACT_CLUSTER_CIDRS, CONTRACT_NODE, CONTRACT_NODE_SUBNET, subnetManagerContract } from '../test/subnet-manager-contract.js';
import type { SubnetManagerFixture } from '../test/subnet-manager-contract.js';
import { createEtcdRegistry } from './etcd-registry.js';
import { decodeLeaseRecord, encodeLeaseRecord } from './lease-record.js';
import type { Registry, RegistryEntry } from './registry.js';
import { RegistrySubnetManager } from './registry-subnet-manager.js';
import { StaticSubnetManager } from './static-subnet-manager.js';

const OWN_ENDPOINTS = { udp: '192.168.77.1:8285' };

subnetManagerContract('static', async () => {
  let leases: readonly Lease[] = [{ node: CONTRACT_NODE, subnets: [CONTRACT_NODE_SUBNET], endpoints: OWN_ENDPOINTS }];
  const manager = new StaticSubnetManager({
    node: CONTRACT_NODE,
    source: { initial: leases, reload: () => Promise.resolve(leases), watchPath: undefined },
    log: quietLogger,
  });
  // The static source is the config file: an edit, then a reload (what SIGHUP does).
  const edit = async (next: readonly Lease[]): Promise<void> => {
    leases = next;
    await manager.reload();
  };
  return {
    manager,
    putPeer: (lease) => edit([...leases.filter((l) => l.node !== lease.node), lease]),
    removePeer: (node) => edit(leases.filter((l) => l.node !== node)),
    published: () => Promise.resolve(leases.find((l) => l.node === CONTRACT_NODE)),
    close: () => Promise.resolve(),
  };
});

/** A registry's records as the test reaches them around the manager (an operator's hand). */
interface RawRecords {
  put(subnet: string, value: string): Promise<void>;
  delete(subnet: string): Promise<void>;
  entries(): Promise<RegistryEntry[]>;
}

/** The etcd manager of CONTRACT_NODE over `registry`, its peers written as raw records. */
function registryFixture(registry: Registry, raw: RawRecords, closeSource: () => Promise<void>): SubnetManagerFixture {
  const manager = new RegistrySubnetManager({
    registry,
    ownsRegistry: true,
    node: CONTRACT_NODE,
    clusterCidrs: CONTRACT_CLUSTER_CIDRS,
    subnetLengthV4: 24,
    subnetLengthV6: 64,
    ttlSeconds: 3,
    advertise: { endpoints: OWN_ENDPOINTS, transports: undefined, mtu: undefined },
    log: quietLogger,
    retryMs: 50,
  });
  const peerSubnets = new Map<string, readonly string[]>();
  return {
    manager,
    putPeer: async (lease) => {
      for (const subnet of peerSubnets.get(lease.node) ?? []) if (!lease.subnets.includes(subnet)) await raw.delete(subnet);
      for (const subnet of lease.subnets) await raw.put(subnet, encodeLeaseRecord(lease));
      peerSubnets.set(lease.node, lease.subnets);
    },
    removePeer: async (node) => {
      for (const subnet of peerSubnets.get(node) ?? []) await raw.delete(subnet);
      peerSubnets.delete(node);
    },
    published: async () => publishedIn(await raw.entries(), CONTRACT_NODE),
    close: closeSource,
  };
}

/** `node`'s lease as its records say: its newest record, with the subnets whose keys it holds. */
function publishedIn(entries: readonly RegistryEntry[], node: string): Lease | undefined {
  const own = entries.flatMap((entry) => {
    try {
      const lease = decodeLeaseRecord(entry.value);
      return lease.node === node ? [{ entry, lease }] : [];
    } catch {
      return [];
    }
  });
  const newest = own.reduce<(typeof own)[number] | undefined>((best, r) => (best === undefined || r.entry.revision > best.entry.revision ? r : best), undefined);
  if (newest === undefined) return undefined;
  const keys = new Set(own.map((r) => r.entry.subnet));
  return { ...newest.lease, subnets: newest.lease.subnets.filter((s) => keys.has(s)) };
}

subnetManagerContract('etcd manager, memory registry', async () => {
  const registry = new MemoryRegistry();
  return registryFixture(
    registry,
    {
      put: async (subnet, value) => {
        registry.put(subnet, value);
      },
      delete: async (subnet) => registry.delete(subnet),
      entries: async () => [...registry.snapshot().values()],
    },
    () => registry.close(),
  );
});

const etcdMissing = skipUnlessMet('ipam/subnet-manager-contract.test.ts', etcdSkipReason());

describe.skipIf(etcdMissing)('on a real etcd', () => {
  let server: EtcdServer | undefined;

  beforeAll(async () => {
    server = await startEtcd();
  });

  afterAll(async () => {
    await server?.destroy();
  });

  subnetManagerContract('etcd manager, real etcd', async () => {
    const endpoint = server?.endpoint;
    if (endpoint === undefined) throw new Error('etcd not started');
    const prefix = `/podtun-contract-${randomBytes(4).toString('hex')}/`;
    const keyOf = (subnet: string): string => `${prefix}subnets/${subnet.replace('/', '-')}`;
    const open = (): Registry => createEtcdRegistry({ endpoints: [endpoint], prefix, dialTimeoutMs: 1000, log: quietLogger });
    // The test's own client, for reading the records back: opened on first use only, so that a
    // test that does not read holds no connection of its own.
    let reader: Registry | undefined;
    return registryFixture(
      open(),
      {
        put: async (subnet, value) => {
          await etcdPut(endpoint, keyOf(subnet), value);
        },
        delete: (subnet) => etcdDelete(endpoint, keyOf(subnet)),
        entries: async () => (await (reader ??= open()).list()).entries,
      },
      async () => {
        await reader?.close();
      },
    );
  });
});
