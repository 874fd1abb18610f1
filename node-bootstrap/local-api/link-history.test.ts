import { describe, expect, it } from 'vitest';
import { LinkHistory } from './link-history.js';
import type { LinkCounters } from './link-history.js';

const T0 = 1_700_000_000_000;

function peer(node: string, more: Partial<LinkCounters> = {}): LinkCounters {
  return { node, state: 'up', transport: 'udp', rttMs: 0.5, txBytes: 0, rxBytes: 0, txPackets: 0, rxPackets: 0, ...more };
}

describe('LinkHistory', () => {
  it('turns counters into rates per interval; the first sample and a counter reset have none', () => {
    const h = new LinkHistory({ intervalMs: 2000 });
    h.add(T0, [peer('n2')]);
    h.add(T0 + 2000, [peer('n2', { txBytes: 250_000, rxBytes: 2500, txPackets: 200, rxPackets: 20 })]);
    h.add(T0 + 4000, [peer('n2', { txBytes: 100, rxBytes: 2500, txPackets: 1, rxPackets: 20 })]);
    const s = h.toJSON(T0 + 4000).peers['n2'];
    expect(s?.t).toEqual([T0, T0 + 2000, T0 + 4000]);
    expect(s?.txBps).toEqual([null, 1_000_000, null]);
    expect(s?.rxBps).toEqual([null, 10_000, null]);
    expect(s?.txPps).toEqual([null, 100, null]);
    expect(s?.rxPps).toEqual([null, 10, null]);
    expect(h.latest('n2')).toEqual({ txBps: null, rxBps: null, txPps: null, rxPps: null });
    expect(h.latest('n9')).toBeUndefined();
  });

  it('keeps only the window: the ring wraps and old samples age out', () => {
    const h = new LinkHistory({ intervalMs: 1000, windowMs: 10_000 });
    for (let k = 0; k <= 100; k++) h.add(T0 + k * 1000, [peer('n2', { txBytes: k * 1000, rttMs: k })]);
    const now = T0 + 100_000;
    const s = h.toJSON(now).peers['n2'];
    expect(s?.t).toEqual(Array.from({ length: 10 }, (_, k) => T0 + (91 + k) * 1000));
    expect(s?.txBps.every((v) => v === 8000)).toBe(true);
    expect(s?.rttMs.at(-1)).toBe(100);
    // `since` returns only what is newer, for a page that already has the rest.
    expect(h.toJSON(now, now - 2500).peers['n2']?.t).toEqual([now - 2000, now - 1000, now]);
    // Nothing sampled for a while: the window empties.
    expect(h.toJSON(now + 20_000).peers['n2']?.t).toEqual([]);
  });

  it('records state changes with their reason, switches once, and removed peers', () => {
    const h = new LinkHistory({ intervalMs: 1000 });
    const sw = { atMs: T0 + 1500, from: 'udp', to: 'ws', reason: 'udp silent 3s' };
    h.add(T0, [peer('n2'), peer('n3')]);
    h.add(T0 + 2000, [peer('n2', { transport: 'ws', lastSwitch: sw }), peer('n3', { state: 'down', rttMs: undefined, downReason: 'no handshake answer' })]);
    h.add(T0 + 3000, [peer('n2', { transport: 'ws', lastSwitch: sw }), peer('n3', { state: 'down', downReason: 'no handshake answer' })]);
    h.add(T0 + 4000, [peer('n2', { transport: 'ws', lastSwitch: sw })]);
    const json = h.toJSON(T0 + 4000);
    expect(json.events).toEqual([
      { t: T0 + 1500, peer: 'n2', kind: 'switch', from: 'udp', to: 'ws', reason: 'udp silent 3s' },
      { t: T0 + 2000, peer: 'n3', kind: 'state', from: 'up', to: 'down', reason: 'no handshake answer' },
      { t: T0 + 4000, peer: 'n3', kind: 'removed', from: 'down', to: null, reason: null },
    ]);
    expect(Object.keys(json.peers)).toEqual(['n2']);
    expect(json.peers['n2']?.transport).toEqual(['udp', 'ws', 'ws', 'ws']);
  });

  it('stays bounded under churn: maxPeers tracked, events capped', () => {
    const h = new LinkHistory({ intervalMs: 1000, maxPeers: 3, maxEvents: 5 });
    for (let k = 0; k < 50; k++) {
      h.add(T0 + k * 1000, [peer(`a${k}`), peer(`b${k}`), peer(`c${k}`), peer(`d${k}`)]);
    }
    const json = h.toJSON(T0 + 49_000);
    expect(Object.keys(json.peers)).toEqual(['a49', 'b49', 'c49']);
    expect(json.untracked).toBe(1);
    expect(json.events).toHaveLength(5);
    expect(json.events.every((e) => e.kind === 'removed')).toBe(true);
  });

  it('refuses an interval of 0', () => {
    expect(() => new LinkHistory({ intervalMs: 0 })).toThrow(/intervalMs/);
  });
});
