/**
 * The Registry contract (ipam/registry.ts), run against every implementation: the in-memory
 * fake and real etcd. Call inside a test file:
 *
 *   registryContract('memory', async () => memoryFixture());
 *
 * Each fixture is a registry over its own empty key space plus the hooks the contract needs to
 * play the outside world: an operator's write, a compaction, an outage.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RegistryError } from '../ipam/registry.js';
import type { Claim, Registry, RegistryEvent, RegistryWatchBreak, RegistryWatchListener } from '../ipam/registry.js';

export interface RegistryFixture {
  readonly registry: Registry;
  /** TTL for claims in these tests: short, but at least what the store honours. */
  readonly ttlSeconds: number;
  /** Writes a record without a lease (an operator with etcdctl). */
  putRaw(subnet: string, value: string): Promise<void>;
  deleteRaw(subnet: string): Promise<void>;
  /** Drops the change history up to now. */
  compact(): Promise<void>;
  /** The store goes away (etcd: the process stops) / comes back on the same data. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Closes the registry (if the test did not) and frees the key space. */
  close(): Promise<void>;
}

export interface Recorder extends RegistryWatchListener {
  readonly batches: RegistryEvent[][];
  readonly breaks: string[];
  /** The kind of each break, in the same order. */
  readonly breakKinds: RegistryWatchBreak[];
  /** Every event so far as "+subnet" / "-subnet". */
  brief(): string[];
}

export function recorder(): Recorder {
  const batches: RegistryEvent[][] = [];
  const breaks: string[] = [];
  const breakKinds: RegistryWatchBreak[] = [];
  return {
    batches,
    breaks,
    breakKinds,
    events: (batch) => batches.push(batch),
    broken: (reason, kind) => {
      breaks.push(reason);
      breakKinds.push(kind);
    },
    brief: () => batches.flat().map((e) => (e.type === 'put' ? `+${e.entry.subnet}` : `-${e.subnet}`)),
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 20 ms until it returns true; fails after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Alive resources by type ("Timeout", "TCPSocketWrap", ...), as process.getActiveResourcesInfo() counts them. */
export function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/**
 * The fewest of each type seen over 150 ms: the test runner's own timers come and go (it reports
 * to the main process on a timer of about 100 ms), while one left behind is in every sample.
 */
export async function settledResources(): Promise<Map<string, number>> {
  const fewest = resources();
  for (let i = 0; i < 30; i++) {
    await sleep(5);
    const now = resources();
    for (const [type, n] of fewest) fewest.set(type, Math.min(n, now.get(type) ?? 0));
  }
  return fewest;
}

/** The types of which `now` has more than `baseline`, as "Timeout +1". */
export function resourcesAbove(baseline: ReadonlyMap<string, number>, now: ReadonlyMap<string, number>): string[] {
  return [...now].filter(([type, n]) => n > (baseline.get(type) ?? 0)).map(([type, n]) => `${type} +${n - (baseline.get(type) ?? 0)}`);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err: unknown) {
    return err;
  }
  throw new Error('expected a rejection');
}

export function registryContract(name: string, create: () => Promise<RegistryFixture>): void {
  describe(`Registry contract: ${name}`, () => {
    const open: RegistryFixture[] = [];
    const fixture = async (): Promise<RegistryFixture> => {
      const f = await create();
      open.push(f);
      return f;
    };
    afterEach(async () => {
      for (const f of open.splice(0)) await f.close();
    });

    const free = (subnet: string) => ({ subnet, ifRevision: 0 });
    const values = async (registry: Registry): Promise<Record<string, string>> =>
      Object.fromEntries((await registry.list()).entries.map((e) => [e.subnet, e.value]));

    it('an empty registry lists nothing, at a positive revision', async () => {
      const { registry } = await fixture();
      const snapshot = await registry.list();
      expect(snapshot.entries).toEqual([]);
      expect(snapshot.revision).toBeGreaterThan(0);
    });

    it('claims free subnets; the list shows them at the claim revision', async () => {
      const { registry, ttlSeconds } = await fixture();
      const before = await registry.list();
      const claim = await registry.claim([free('10.244.1.0/24'), free('fd00:10:244:1::/64')], 'node-a', ttlSeconds);
      expect(claim).toBeDefined();
      expect(claim?.revision).toBeGreaterThan(before.revision);
      const after = await registry.list();
      expect(after.revision).toBeGreaterThanOrEqual(claim?.revision ?? Infinity);
      expect(after.entries.sort((a, b) => a.subnet.localeCompare(b.subnet))).toEqual([
        { subnet: '10.244.1.0/24', value: 'node-a', revision: claim?.revision },
        { subnet: 'fd00:10:244:1::/64', value: 'node-a', revision: claim?.revision },
      ]);
    });

    it('a claim of a taken subnet fails and writes nothing; a multi-subnet claim is all or nothing', async () => {
      const { registry, ttlSeconds } = await fixture();
      expect(await registry.claim([free('10.244.1.0/24')], 'node-a', ttlSeconds)).toBeDefined();
      expect(await registry.claim([free('10.244.1.0/24')], 'node-b', ttlSeconds)).toBeUndefined();
      expect(await registry.claim([free('10.244.2.0/24'), free('10.244.1.0/24')], 'node-b', ttlSeconds)).toBeUndefined();
      expect(await values(registry)).toEqual({ '10.244.1.0/24': 'node-a' });
    });

    it('takes a record over only at the revision it was read at', async () => {
      const { registry, ttlSeconds } = await fixture();
      const first = await registry.claim([free('10.244.1.0/24')], 'node-a v1', ttlSeconds);
      const read = (await registry.list()).entries[0];
      expect(read?.revision).toBe(first?.revision);
      const second = await registry.claim([{ subnet: '10.244.1.0/24', ifRevision: read?.revision ?? 0 }], 'node-a v2', ttlSeconds);
      expect(second).toBeDefined();
      expect(second?.id).not.toBe(first?.id);
      // The revision read before the takeover is stale now.
      expect(await registry.claim([{ subnet: '10.244.1.0/24', ifRevision: read?.revision ?? 0 }], 'node-b', ttlSeconds)).toBeUndefined();
      // A revision condition on an absent subnet fails too.
      expect(await registry.claim([{ subnet: '10.244.9.0/24', ifRevision: read?.revision ?? 0 }], 'node-b', ttlSeconds)).toBeUndefined();
      expect(await values(registry)).toEqual({ '10.244.1.0/24': 'node-a v2' });
    });

    it('renewal keeps a claim alive; without it the records expire (a taken-over record does not go with its old lease)', async () => {
      const { registry, ttlSeconds } = await fixture();
      const start = await registry.list();
      const watch = recorder();
      const handle = registry.watch(start.revision + 1, watch);
      const old = (await registry.claim([free('10.244.1.0/24')], 'a v1', ttlSeconds)) as Claim;
      const read = (await registry.list()).entries.find((e) => e.subnet === '10.244.1.0/24');
      const kept = (await registry.claim([{ subnet: '10.244.1.0/24', ifRevision: read?.revision ?? 0 }], 'a v2', ttlSeconds)) as Claim;
      const dropped = (await registry.claim([free('10.244.2.0/24')], 'b', ttlSeconds)) as Claim;
      expect([old, kept, dropped].every((c) => c !== undefined)).toBe(true);

      const ttlMs = ttlSeconds * 1000;
      let renewals = 0;
      await waitFor(
        'the unrenewed record to expire',
        async () => {
          if (renewals++ % 5 === 0) expect(await registry.renew(kept)).toBe('renewed');
          return (await values(registry))['10.244.2.0/24'] === undefined;
        },
        ttlMs + 3000,
      );
      // Renewing every ~100 ms kept the taken-over record well past its TTL and past the old lease.
      await sleep(Math.min(ttlMs / 2, 500));
      expect(await registry.renew(kept)).toBe('renewed');
      expect(await values(registry)).toEqual({ '10.244.1.0/24': 'a v2' });
      expect(await registry.renew(dropped)).toBe('expired');
      expect(await registry.renew(old)).toBe('expired');
      await waitFor('the expiry event', () => watch.brief().length === 4, 2000);
      expect(watch.brief()).toEqual(['+10.244.1.0/24', '+10.244.1.0/24', '+10.244.2.0/24', '-10.244.2.0/24']);
      const deletion = watch.batches.flat().at(-1);
      expect(deletion?.type === 'delete' && deletion.revision > dropped.revision).toBe(true);
      expect(watch.breaks).toEqual([]);
      await handle.close();
    });

    it('a watch from a revision replays the later changes in order, one batch per transaction', async () => {
      const { registry, ttlSeconds } = await fixture();
      const start = await registry.list();
      const a = await registry.claim([free('10.244.1.0/24'), free('fd00:10:244:1::/64')], 'a', ttlSeconds);
      const b = await registry.claim([free('10.244.2.0/24')], 'b', ttlSeconds);
      const all = recorder();
      const fromB = recorder();
      const h1 = registry.watch(start.revision + 1, all);
      const h2 = registry.watch(b?.revision ?? 0, fromB);
      await waitFor('the replay', () => all.brief().length === 3 && fromB.brief().length === 1, 3000);
      expect(all.batches.map((batch) => batch.map((e) => (e.type === 'put' ? e.entry.subnet : '')).sort())).toEqual([
        ['10.244.1.0/24', 'fd00:10:244:1::/64'],
        ['10.244.2.0/24'],
      ]);
      const first = all.batches[0]?.[0];
      expect(first?.type === 'put' && first.entry).toEqual({ subnet: '10.244.1.0/24', value: 'a', revision: a?.revision });
      expect(fromB.brief()).toEqual(['+10.244.2.0/24']);
      // Live changes follow the replay.
      await registry.claim([free('10.244.3.0/24')], 'c', ttlSeconds);
      await waitFor('the live event', () => all.brief().length === 4 && fromB.brief().length === 2, 3000);
      expect(all.brief().at(-1)).toBe('+10.244.3.0/24');
      await h1.close();
      await h2.close();
    });

    it("a watch sees an operator's writes and deletes", async () => {
      const f = await fixture();
      const start = await f.registry.list();
      const watch = recorder();
      const handle = f.registry.watch(start.revision + 1, watch);
      await f.putRaw('10.244.7.0/24', '{"garbage');
      await f.deleteRaw('10.244.7.0/24');
      await waitFor('two events', () => watch.brief().length === 2, 3000);
      expect(watch.brief()).toEqual(['+10.244.7.0/24', '-10.244.7.0/24']);
      const put = watch.batches[0]?.[0];
      expect(put?.type === 'put' && put.entry.value).toBe('{"garbage');
      await handle.close();
    });

    it('a closed watch delivers nothing more and never breaks', async () => {
      const { registry, ttlSeconds } = await fixture();
      const start = await registry.list();
      const watch = recorder();
      const handle = registry.watch(start.revision + 1, watch);
      await registry.claim([free('10.244.1.0/24')], 'a', ttlSeconds);
      await waitFor('the first event', () => watch.brief().length === 1, 3000);
      await handle.close();
      await handle.close();
      await registry.claim([free('10.244.2.0/24')], 'b', ttlSeconds);
      await sleep(200);
      expect(watch.brief()).toEqual(['+10.244.1.0/24']);
      expect(watch.breaks).toEqual([]);
    });

    it("a watch from a compacted revision breaks, as 'compacted'", async () => {
      const f = await fixture();
      const start = await f.registry.list();
      await f.registry.claim([free('10.244.1.0/24')], 'a', f.ttlSeconds);
      await f.registry.claim([free('10.244.2.0/24')], 'b', f.ttlSeconds);
      await f.compact();
      const watch = recorder();
      const handle = f.registry.watch(start.revision + 1, watch);
      await waitFor('the break', () => watch.breaks.length > 0, 3000);
      expect(watch.breaks[0]).toMatch(/compact/i);
      expect(watch.breakKinds).toEqual(['compacted']);
      expect(watch.batches).toEqual([]);
      await handle.close();
    });

    it("an outage: calls throw RegistryError and watches break ('failed'); afterwards the records and their lease are still there", async () => {
      const f = await fixture();
      const claim = (await f.registry.claim([free('10.244.1.0/24')], 'a', f.ttlSeconds)) as Claim;
      const start = await f.registry.list();
      const watch = recorder();
      f.registry.watch(start.revision + 1, watch);
      await f.down();
      try {
        await waitFor('the watch to break', () => watch.breaks.length === 1, 5000);
        expect(watch.breakKinds).toEqual(['failed']);
        const err = await rejection(f.registry.list());
        expect(err).toBeInstanceOf(RegistryError);
        expect((err as RegistryError).code).toBe('ERR_PODTUN_REGISTRY');
        expect(await rejection(f.registry.renew(claim))).toBeInstanceOf(RegistryError);
      } finally {
        await f.up();
      }
      await waitFor(
        'the registry to answer again',
        async () => {
          try {
            await f.registry.list();
            return true;
          } catch {
            return false;
          }
        },
        10_000,
      );
      expect(await f.registry.renew(claim)).toBe('renewed');
      expect(await values(f.registry)).toEqual({ '10.244.1.0/24': 'a' });
      // A new watch works again, from where the list left off.
      const after = await f.registry.list();
      const again = recorder();
      const handle = f.registry.watch(after.revision + 1, again);
      await f.registry.claim([free('10.244.2.0/24')], 'b', f.ttlSeconds);
      await waitFor('an event after the outage', () => again.brief().length === 1, 5000);
      expect(watch.breaks).toHaveLength(1);
      await handle.close();
    });

    it('close ends open watches without breaking them; later calls throw, later watches break', async () => {
      const { registry } = await fixture();
      const watch = recorder();
      registry.watch((await registry.list()).revision + 1, watch);
      await registry.close();
      await registry.close();
      expect(await rejection(registry.list())).toBeInstanceOf(RegistryError);
      const late = recorder();
      await registry.watch(1, late).close();
      const later = recorder();
      registry.watch(1, later);
      await sleep(50);
      expect(watch.breaks).toEqual([]);
      expect(late.breaks).toEqual([]);
      expect(later.breaks).toEqual(['registry closed']);
      expect(later.breakKinds).toEqual(['failed']);
    });
  });
}
