/**
 * The SubnetManager contract (core/subnet-manager.ts), run against every implementation: the
 * static list, etcd over the in-memory registry and over a real etcd, and the Kubernetes
 * manager. Call inside a test file:
 *
 *   subnetManagerContract('static', async () => staticFixture());
 *
 * Each fixture is a manager for node CONTRACT_NODE over its own empty source, in the cluster
 * CONTRACT_CLUSTER_CIDRS with /24 node subnets, plus the hooks the contract needs to play the
 * other nodes: publish or change another node's lease in the source, take it away, and read what
 * this node published there. Peers get the subnets of contractPeer(), far above the low ones an
 * allocator hands out first.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Lease, LeaseEvent } from '../core/lease.js';
import type { SubnetManager } from '../core/subnet-manager.js';
import { resources, resourcesAbove, settledResources, sleep, waitFor } from './registry-contract.js';

export const CONTRACT_NODE = 'node-a';
export const CONTRACT_CLUSTER_CIDRS: readonly string[] = ['10.244.0.0/16'];
/** This node's own subnet, for a source where the test assigns it (a config list, a podCIDR). */
export const CONTRACT_NODE_SUBNET = '10.244.1.0/24';

export interface SubnetManagerFixture {
  /** The manager of CONTRACT_NODE; the contract closes it (safe twice). */
  readonly manager: SubnetManager;
  /** Adds or changes another node's lease in the source, as that node or its control plane would. */
  putPeer(lease: Lease): Promise<void>;
  /** Takes another node's lease out of the source. */
  removePeer(node: string): Promise<void>;
  /** What CONTRACT_NODE has published in the source now; undefined: nothing. */
  published(): Promise<Lease | undefined>;
  /** Frees the source (after the manager's close). */
  close(): Promise<void>;
}

/** Peer number `n` (1-based): subnet 10.244.(199 + n).0/24, reached at 192.168.77.(100 + n). */
export function contractPeer(n: number, endpointHost = 100 + n): Lease {
  return { node: `peer-${n}`, subnets: [`10.244.${199 + n}.0/24`], endpoints: { udp: `192.168.77.${endpointHost}:8285` } };
}

/** How long any change may take to reach a watcher (a control plane, a real etcd). */
const EVENT_TIMEOUT_MS = 10_000;

/** What the contract compares of a lease: a source may add defaults (transports, MTU) of its own. */
function essence(lease: Lease): { node: string; subnets: string[]; endpoints: Readonly<Record<string, string>> } {
  return { node: lease.node, subnets: [...lease.subnets].sort(), endpoints: lease.endpoints };
}

function brief(event: LeaseEvent): string {
  return `${event.type === 'added' ? '+' : '-'}${event.lease.node} ${event.lease.endpoints['udp'] ?? ''}`;
}

interface Watching {
  readonly batches: LeaseEvent[][];
  /** Every event after the first batch, as "+node endpoint" / "-node endpoint". */
  after(): string[];
  readonly done: Promise<void>;
  /** Whether `done` has resolved. */
  ended(): boolean;
  stop(): Promise<void>;
}

function watch(manager: SubnetManager): Watching {
  const batches: LeaseEvent[][] = [];
  const abort = new AbortController();
  let ended = false;
  const done = manager.watchLeases(abort.signal, (events) => batches.push(events)).then(() => {
    ended = true;
  });
  return {
    batches,
    after: () => batches.slice(1).flat().map(brief),
    done,
    ended: () => ended,
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}

export function subnetManagerContract(name: string, create: () => Promise<SubnetManagerFixture>): void {
  describe(`SubnetManager contract: ${name}`, () => {
    const open: SubnetManagerFixture[] = [];
    const watches: Watching[] = [];
    const fixture = async (): Promise<SubnetManagerFixture> => {
      const f = await create();
      open.push(f);
      return f;
    };
    const watching = (manager: SubnetManager): Watching => {
      const w = watch(manager);
      watches.push(w);
      return w;
    };
    afterEach(async () => {
      for (const w of watches.splice(0)) await w.stop();
      for (const f of open.splice(0)) {
        await f.manager.close();
        await f.close();
      }
    });

    it("localLease gives this node's lease, as it is published in the source", async () => {
      const f = await fixture();
      const lease = await f.manager.localLease();
      expect(lease.node).toBe(CONTRACT_NODE);
      expect(lease.subnets.length).toBeGreaterThan(0);
      for (const subnet of lease.subnets) expect(subnet).toMatch(/^10\.244\.\d+\.0\/24$/);
      const published = await f.published();
      expect(published && essence(published)).toEqual(essence(lease));
      expect(await f.manager.localLease()).toEqual(lease);
    });

    it('the first watch batch is the full set, this node included, all added', async () => {
      const f = await fixture();
      const peer = contractPeer(1);
      await f.putPeer(peer);
      const own = await f.manager.localLease();
      const w = watching(f.manager);
      await waitFor('the first batch', () => w.batches.length >= 1 && w.batches[0]?.length === 2, EVENT_TIMEOUT_MS);
      const first = w.batches[0] ?? [];
      expect(first.every((e) => e.type === 'added')).toBe(true);
      const leases = first.map((e) => essence(e.lease)).sort((a, b) => a.node.localeCompare(b.node));
      expect(leases).toEqual([essence(own), essence(peer)]);
    });

    it('another node added, changed, removed arrives as events; a change is removed, then added', async () => {
      const f = await fixture();
      await f.manager.localLease();
      const w = watching(f.manager);
      await waitFor('the first batch', () => w.batches.length >= 1, EVENT_TIMEOUT_MS);
      const peer = contractPeer(2);
      const moved = contractPeer(2, 222);
      await f.putPeer(peer);
      await waitFor('peer-2 added', () => w.after().length >= 1, EVENT_TIMEOUT_MS);
      await f.putPeer(moved);
      await waitFor('peer-2 changed', () => w.after().length >= 3, EVENT_TIMEOUT_MS);
      await f.removePeer(peer.node);
      await waitFor('peer-2 removed', () => w.after().length >= 4, EVENT_TIMEOUT_MS);
      expect(w.after()).toEqual([
        '+peer-2 192.168.77.102:8285',
        '-peer-2 192.168.77.102:8285',
        '+peer-2 192.168.77.222:8285',
        '-peer-2 192.168.77.222:8285',
      ]);
      const added = w.batches.slice(1).flat().find((e) => e.type === 'added');
      expect(added && essence(added.lease)).toEqual(essence(peer));
    });

    it('two watchers both get the events', async () => {
      const f = await fixture();
      await f.manager.localLease();
      const one = watching(f.manager);
      const two = watching(f.manager);
      await waitFor('both first batches', () => one.batches.length >= 1 && two.batches.length >= 1, EVENT_TIMEOUT_MS);
      await f.putPeer(contractPeer(3));
      await waitFor('the event at both', () => one.after().length >= 1 && two.after().length >= 1, EVENT_TIMEOUT_MS);
      expect(one.after()).toEqual(['+peer-3 192.168.77.103:8285']);
      expect(two.after()).toEqual(['+peer-3 192.168.77.103:8285']);
    });

    it('a watch resolves when its signal aborts, and hands on nothing after it', async () => {
      const f = await fixture();
      await f.manager.localLease();
      const w = watching(f.manager);
      const other = watching(f.manager);
      await waitFor('the first batches', () => w.batches.length >= 1 && other.batches.length >= 1, EVENT_TIMEOUT_MS);
      await w.stop();
      await f.putPeer(contractPeer(4));
      // The other watcher shows the change went out; the stopped one must not have it.
      await waitFor('the event at the other watcher', () => other.after().length >= 1, EVENT_TIMEOUT_MS);
      expect(w.batches).toHaveLength(1);
    });

    it('close() ends running watches, is safe twice and leaves no timer or handle behind', async () => {
      const f = await fixture();
      const baseline = await settledResources();
      await f.manager.localLease();
      const w = watching(f.manager);
      await waitFor('the first batch', () => w.batches.length >= 1, EVENT_TIMEOUT_MS);
      await Promise.all([f.manager.close(), f.manager.close()]);
      await f.manager.close();
      await waitFor('the watch to end', () => w.ended(), EVENT_TIMEOUT_MS);
      // No timer may outlive close() by more than a moment (a renewal would, rescheduling itself
      // forever). A moment: etcd3's watch manager paces a reconnect after its stream ends with a
      // one-shot timer (500 ms here, etcd-registry.ts), which finds no watcher and does nothing.
      const timers = (counts: ReadonlyMap<string, number>): string[] => resourcesAbove(baseline, counts).filter((r) => r.startsWith('Timeout '));
      const timersDeadline = Date.now() + 2000;
      while (timers(await settledResources()).length > 0 && Date.now() < timersDeadline) await sleep(50);
      expect(timers(await settledResources())).toEqual([]);
      const deadline = Date.now() + 5000;
      while (resourcesAbove(baseline, resources()).length > 0 && Date.now() < deadline) await sleep(20);
      expect(resourcesAbove(baseline, resources())).toEqual([]);
    });

    it('a watch started after close() gets nothing and resolves', async () => {
      const f = await fixture();
      await f.manager.localLease();
      await f.manager.close();
      const w = watching(f.manager);
      await waitFor('the late watch to resolve', () => w.ended(), EVENT_TIMEOUT_MS);
      expect(w.batches).toEqual([]);
    });
  });
}
