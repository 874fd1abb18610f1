import { describe, expect, it } from 'vitest';
import { MemoryRegistry } from './memory-registry.js';
import { recorder, registryContract, waitFor } from './registry-contract.js';

registryContract('memory', async () => {
  const registry = new MemoryRegistry();
  return {
    registry,
    ttlSeconds: 0.3,
    putRaw: async (subnet, value) => {
      registry.put(subnet, value);
    },
    deleteRaw: async (subnet) => registry.delete(subnet),
    compact: async () => registry.compact(),
    down: async () => registry.disconnect(),
    up: async () => registry.reconnect(),
    close: () => registry.close(),
  };
});

describe('MemoryRegistry test controls', () => {
  it('expire() ends a lease at once, with one delete batch for all its records', async () => {
    const registry = new MemoryRegistry({ sweepIntervalMs: 0 });
    const watch = recorder();
    registry.watch(registry.currentRevision + 1, watch);
    await registry.claim([{ subnet: '10.244.1.0/24', ifRevision: 0 }, { subnet: 'fd00::/64', ifRevision: 0 }], 'a', 60);
    expect(registry.expire('fd00::/64')).toBe(true);
    expect(registry.expire('fd00::/64')).toBe(false);
    await waitFor('the events', () => watch.batches.length === 2, 1000);
    expect(watch.batches[1]?.map((e) => e.type)).toEqual(['delete', 'delete']);
    expect(registry.snapshot().size).toBe(0);
    expect(registry.liveLeases).toBe(0);
    await registry.close();
  });

  it('leases follow the injected clock; reconnect() gives every lease a fresh TTL', async () => {
    let now = 1_000_000;
    const registry = new MemoryRegistry({ now: () => now, sweepIntervalMs: 0 });
    const claim = await registry.claim([{ subnet: '10.244.1.0/24', ifRevision: 0 }], 'a', 10);
    now += 9_000;
    registry.sweep();
    expect(registry.snapshot().size).toBe(1);
    registry.disconnect();
    now += 60_000;
    registry.sweep();
    expect(registry.snapshot().size).toBe(1);
    registry.reconnect();
    now += 9_000;
    registry.sweep();
    expect(registry.snapshot().size).toBe(1);
    expect(claim === undefined ? undefined : await registry.renew(claim)).toBe('renewed');
    now += 10_000;
    registry.sweep();
    expect(registry.snapshot().size).toBe(0);
    await registry.close();
  });
});
