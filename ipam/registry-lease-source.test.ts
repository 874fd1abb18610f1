/**
 * The registry as a lease watch source, against the in-memory registry: how a transaction, a
 * compaction and an outage come out of it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryRegistry } from '../test/memory-registry.js';
import { quietLogger } from '../test/recording-logger.js';
import { waitFor } from '../test/registry-contract.js';
import type { LeaseChange, WatchOutcome } from './lease-watch-loop.js';
import { encodeLeaseRecord } from './lease-record.js';
import { registryLeaseSource } from './registry-lease-source.js';
import { RecordReader } from './registry-records.js';
import { RegistryError } from './registry.js';
import { planSubnets } from './subnet-plan.js';

const V4 = '10.244.1.0/24';
const V6 = 'fd00:10:244:1::/64';

describe('registryLeaseSource', () => {
  let registry: MemoryRegistry;
  const aborts: AbortController[] = [];

  afterEach(async () => {
    for (const a of aborts.splice(0)) a.abort();
    await registry.close();
  });

  const source = (views: number[] = []) => {
    registry = new MemoryRegistry({ sweepIntervalMs: 0 });
    const records = new RecordReader(planSubnets(['10.244.0.0/16', 'fd00:10:244::/48'], 24, 64), quietLogger);
    return registryLeaseSource({ registry, records, onView: (_view, revision) => views.push(revision) });
  };

  const watching = (s: ReturnType<typeof source>, from: number) => {
    const turns: LeaseChange<number>[][] = [];
    const abort = new AbortController();
    aborts.push(abort);
    let turn: LeaseChange<number>[] | undefined;
    const ended = s.watch(
      from,
      (change) => {
        // Changes of one turn go together: a new turn starts after a microtask.
        if (turn === undefined) {
          turn = [];
          turns.push(turn);
          queueMicrotask(() => {
            turn = undefined;
          });
        }
        turn.push(change);
      },
      abort.signal,
    );
    return { turns, ended, abort };
  };

  it('a dual-stack claim is one turn with one change for its node, at the claim revision; the views follow', async () => {
    const views: number[] = [];
    const s = source(views);
    const listed = await s.list(new AbortController().signal);
    expect(listed.leases).toEqual([]);
    const w = watching(s, listed.version);
    const lease = { node: 'node-a', subnets: [V4, V6], endpoints: { udp: '192.168.77.1:8285' } };
    const claim = await registry.claim([{ subnet: V4, ifRevision: 0 }, { subnet: V6, ifRevision: 0 }], encodeLeaseRecord(lease), 60);
    await waitFor('the claim', () => w.turns.length === 1, 2000);
    expect(w.turns).toEqual([[{ version: claim?.revision, lease }]]);
    registry.delete(V6);
    await waitFor('the delete', () => w.turns.length === 2, 2000);
    expect(w.turns[1]).toEqual([{ version: registry.currentRevision, lease: { ...lease, subnets: [V4] } }]);
    registry.delete(V4);
    await waitFor('the last delete', () => w.turns.length === 3, 2000);
    expect(w.turns[2]).toEqual([{ version: registry.currentRevision, removed: 'node-a' }]);
    expect(views).toEqual([listed.version, claim?.revision, registry.currentRevision - 1, registry.currentRevision]);
  });

  it.each<[string, (r: MemoryRegistry) => void, (ended: Promise<WatchOutcome<number>>) => Promise<void>]>([
    ['a watch from a compacted revision is expired', (r) => r.compact(), async (ended) => {
      expect(await ended).toMatchObject({ kind: 'expired', reason: expect.stringMatching(/compacted/) as unknown });
    }],
    ['an outage rejects with a RegistryError', (r) => r.disconnect(), async (ended) => {
      await expect(ended).rejects.toThrow(RegistryError);
    }],
  ])('%s', async (_name, act, check) => {
    const s = source();
    const listed = await s.list(new AbortController().signal);
    registry.put(V4, encodeLeaseRecord({ node: 'node-b', subnets: [V4], endpoints: {} }));
    act(registry);
    await check(watching(s, listed.version).ended);
  });

  it('an abort closes the registry watch and resolves as aborted', async () => {
    const s = source();
    const listed = await s.list(new AbortController().signal);
    const w = watching(s, listed.version);
    await waitFor('the watch', () => registry.openWatches === 1, 2000);
    w.abort.abort();
    expect(await w.ended).toEqual({ kind: 'aborted' });
    expect(registry.openWatches).toBe(0);
  });
});
