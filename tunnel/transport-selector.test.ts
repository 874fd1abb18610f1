/**
 * TransportSelector over memory transports standing in for UDP and WebSocket (and a third, to
 * show a preference of any length); their `peerState` plays the probes' verdict, a hand-driven
 * clock plays time.
 *
 *   router --send(slot)--> TransportSelector --current[slot]--> udp (memory) | ws (memory)
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PacketBatch } from '../core/packet-batch.js';
import { MemoryTransport } from '../test/memory-transport.js';
import { TransportSelector } from './transport-selector.js';
import type { TransportSelectorOptions } from './transport-selector.js';
import { TransportError } from './transport-error.js';
import type { PeerSpec } from '../core/transport.js';

import { recordingLogger } from '../test/recording-logger.js';
import type { LogLine } from '../test/recording-logger.js';

const SLOT = 2;
const HOLD_MS = 2000;
const batch: PacketBatch = { buf: Buffer.alloc(64), offs: Int32Array.from([0, 64]), count: 1, headroom: 0 };
const idx = Int32Array.from([0]);

/** The config's words for the usual preferences. */
type Mode = 'udp' | 'ws' | 'auto';
const PREFERENCE: Record<Mode, string[]> = { udp: ['udp'], ws: ['ws'], auto: ['udp', 'ws'] };

function spec(mode: Mode | string[], node = 'node-b'): PeerSpec {
  return {
    node,
    endpoints: { udp: '192.168.77.2:8285', ws: 'ws://192.168.77.2:8443' },
    transports: Array.isArray(mode) ? mode : PREFERENCE[mode],
  };
}

describe('TransportSelector', () => {
  const selectors: TransportSelector[] = [];
  let lines: LogLine[] = [];
  let now = 1_000_000;

  afterEach(async () => {
    for (const s of selectors.splice(0)) await s.close();
    lines = [];
  });

  async function setup(mode: Mode | string[], options: TransportSelectorOptions = {}) {
    const udp = new MemoryTransport('node-a', { kind: 'udp' });
    const ws = new MemoryTransport('node-a', { kind: 'ws' });
    const relay = new MemoryTransport('node-a', { kind: 'relay' });
    udp.peerState = 'unknown';
    ws.peerState = 'unknown';
    relay.peerState = 'unknown';
    const sel = new TransportSelector([udp, ws, relay], recordingLogger(lines), {
      switchCheckMs: 60_000, upHoldMs: HOLD_MS, nowMs: () => now, ...options,
    });
    selectors.push(sel);
    await sel.start(() => {});
    sel.setPeer(SLOT, spec(mode));
    /** Sends one packet and says which transport got it. */
    const sentVia = (): string => {
      const all = [udp, ws, relay];
      const before = all.map((t) => t.sendCalls.length);
      sel.send(SLOT, batch, idx, 1);
      const via = all.find((t, i) => t.sendCalls.length > (before[i] ?? 0));
      if (via === undefined) throw new Error('sent nowhere');
      return via.kind;
    };
    const step = (ms: number): void => {
      now += ms;
      sel.evaluate();
    };
    const status = () => {
      const s = sel.peerStatus().find((p) => p.slot === SLOT);
      if (s === undefined) throw new Error('no status');
      return s;
    };
    return { udp, ws, relay, sel, sentVia, step, status };
  }

  it('gives every peer to every transport, and removes it from all', async () => {
    const { udp, ws, relay, sel } = await setup('auto');
    expect(udp.peers.get(SLOT)?.node).toBe('node-b');
    expect(ws.peers.get(SLOT)?.endpoints['ws']).toBe('ws://192.168.77.2:8443');
    expect(relay.peers.get(SLOT)?.node).toBe('node-b');
    sel.removePeer(SLOT);
    expect(udp.peers.size + ws.peers.size + relay.peers.size).toBe(0);
    expect(sel.peerStatus()).toEqual([]);
  });

  it('auto: starts on udp; to ws when udp goes down and ws is up; back after the hold, not before', async () => {
    const { udp, ws, sel, sentVia, step, status } = await setup('auto');
    expect(sentVia()).toBe('udp');
    udp.peerState = 'up';
    ws.peerState = 'up';
    step(250);
    expect(sentVia()).toBe('udp');

    udp.peerState = 'down';
    step(250);
    expect(sentVia()).toBe('ws');
    expect(status()).toMatchObject({ transport: 'ws', state: 'up', lastSwitch: { from: 'udp', to: 'ws', atMs: now } });
    expect(status().lastSwitch?.reason).toMatch(/^udp probes unanswered for \d+ ms$/);
    expect(lines.filter((l) => l.msg === 'peer transport switched').map((l) => l.obj))
      .toEqual([{ peer: 'node-b', from: 'udp', to: 'ws', reason: status().lastSwitch?.reason }]);

    // UDP answers again, but flaps: the hold restarts each time it is not up.
    udp.peerState = 'up';
    step(250);
    step(HOLD_MS - 500);
    expect(sentVia()).toBe('ws');
    udp.peerState = 'down';
    step(250);
    udp.peerState = 'up';
    step(250);
    step(HOLD_MS - 250);
    expect(sentVia()).toBe('ws');
    step(250);
    expect(sentVia()).toBe('udp');
    expect(status()).toMatchObject({ transport: 'udp', lastSwitch: { from: 'ws', to: 'udp', reason: 'udp answering again' } });
    expect(sel.stats()['switches']).toBe(2);
  });

  it('auto: never to a websocket that is not up', async () => {
    const { udp, ws, sentVia, step, status } = await setup('auto');
    udp.peerState = 'down';
    for (const state of ['unknown', 'down'] as const) {
      ws.peerState = state;
      step(1000);
      expect(sentVia()).toBe('udp');
    }
    expect(status()).toMatchObject({ transport: 'udp', state: 'down' });
    expect(status().lastSwitch).toBeUndefined();
    expect(lines.filter((l) => l.msg === 'peer transport switched')).toEqual([]);
  });

  it('auto: while udp is still unknown (first probes in flight), stays on udp even with the websocket up', async () => {
    const { udp, ws, sentVia, step, status } = await setup('auto');
    expect(sentVia()).toBe('udp');
    ws.peerState = 'up';
    step(1000);
    expect(sentVia()).toBe('udp');
    expect(status().lastSwitch).toBeUndefined();
    udp.peerState = 'down';
    step(250);
    expect(sentVia()).toBe('ws');
    expect(status().lastSwitch?.reason).toMatch(/^udp probes unanswered for \d+ ms$/);
  });

  it('auto: back to udp at once when the websocket goes down while udp answers', async () => {
    const { udp, ws, sentVia, step, status } = await setup('auto');
    udp.peerState = 'down';
    ws.peerState = 'up';
    step(250);
    expect(sentVia()).toBe('ws');
    udp.peerState = 'up';
    step(250);
    ws.peerState = 'down';
    step(250);
    expect(sentVia()).toBe('udp');
    expect(status().lastSwitch?.reason).toBe('ws down, udp answering');
    // Both down: the current one is kept, nothing logged.
    udp.peerState = 'down';
    step(5000);
    expect(sentVia()).toBe('udp');
  });

  it.each([
    { mode: 'udp' as const, via: 'udp' },
    { mode: 'ws' as const, via: 'ws' },
  ])('$mode mode is fixed whatever the states', async ({ mode, via }) => {
    const { udp, ws, sel, sentVia, step, status } = await setup(mode);
    for (const [u, w] of [['up', 'up'], ['down', 'up'], ['up', 'down'], ['down', 'down']] as const) {
      udp.peerState = u;
      ws.peerState = w;
      step(HOLD_MS + 1000);
      expect(sentVia()).toBe(via);
      expect(status().transport).toBe(via);
    }
    expect(sel.stats()['switches']).toBe(0);
  });

  it('a lease changing the mode switches at once; back to auto keeps ws until udp holds', async () => {
    const { udp, ws, sel, sentVia, step, status } = await setup('udp');
    udp.peerState = 'up';
    ws.peerState = 'up';
    sel.setPeer(SLOT, spec('ws'));
    expect(sentVia()).toBe('ws');
    expect(status().lastSwitch).toMatchObject({ from: 'udp', to: 'ws', reason: 'transport set to ws' });
    sel.setPeer(SLOT, spec('auto'));
    step(250);
    expect(sentVia()).toBe('ws');
    step(HOLD_MS);
    expect(sentVia()).toBe('udp');
    // The same lease again changes nothing.
    sel.setPeer(SLOT, spec('auto'));
    expect(sentVia()).toBe('udp');
    expect(sel.stats()['switches']).toBe(2);
  });

  it('sends land on the current transport only, with the same arguments; drops are passed back', async () => {
    const { udp, ws, sel, step } = await setup('auto');
    udp.peerState = 'down';
    ws.peerState = 'up';
    step(250);
    ws.refuse = true;
    expect(sel.send(SLOT, batch, idx, 1)).toBe(1);
    expect(ws.sendCalls).toEqual([{ slot: SLOT, count: 1 }]);
    expect(udp.sendCalls).toEqual([]);
    // Unknown and out-of-range slots go to UDP, which counts them.
    sel.send(4095, batch, idx, 1);
    sel.send(-1, batch, idx, 1);
    sel.send(1e9, batch, idx, 1);
    expect(udp.sendCalls.map((c) => c.slot)).toEqual([4095, -1, 1e9]);
  });

  it('reports one status per peer, with the carrier\'s endpoint, and every transport\'s stats under its kind', async () => {
    const { sel, udp, ws } = await setup('auto');
    sel.setPeer(5, spec('ws', 'node-c'));
    udp.peerState = 'up';
    ws.peerState = 'up';
    expect(sel.peerStatus().map((p) => [p.slot, p.node, p.transport, p.state, p.endpoint])).toEqual([
      [SLOT, 'node-b', 'udp', 'up', '192.168.77.2:8285'],
      [5, 'node-c', 'ws', 'up', 'ws://192.168.77.2:8443'],
    ]);
    ws.refuse = true;
    sel.send(5, batch, idx, 1);
    expect(sel.stats()).toEqual({ 'udp.packetsOut': 0, 'ws.packetsOut': 0, 'ws.drop.congested': 1, 'relay.packetsOut': 0, switches: 0 });
    expect(sel.drops()).toEqual({ 'ws.congested': 1 });
  });

  it('a preference of three: down the list as each goes down, back up it as each holds', async () => {
    const { udp, ws, relay, sentVia, step, status } = await setup(['udp', 'ws', 'relay']);
    relay.peerState = 'up';
    udp.peerState = 'down';
    ws.peerState = 'down';
    step(250);
    expect(sentVia()).toBe('relay');
    expect(status().lastSwitch?.reason).toMatch(/^udp probes unanswered for \d+ ms$/);
    ws.peerState = 'up';
    step(250);
    step(HOLD_MS);
    expect(sentVia()).toBe('ws');
    expect(status().lastSwitch).toMatchObject({ from: 'relay', to: 'ws', reason: 'ws answering again' });
    udp.peerState = 'up';
    step(250);
    step(HOLD_MS);
    expect(sentVia()).toBe('udp');
  });

  it('an order of its own: [ws, udp] prefers WebSocket; a kind left out never carries the peer', async () => {
    const { udp, ws, relay, sentVia, step } = await setup(['ws', 'udp']);
    expect(sentVia()).toBe('ws');
    ws.peerState = 'down';
    udp.peerState = 'up';
    relay.peerState = 'up';
    step(250);
    expect(sentVia()).toBe('udp');
    udp.peerState = 'down';
    step(HOLD_MS + 250);
    expect(sentVia()).toBe('udp');
  });

  it('re-evaluates on its own timer', async () => {
    const { udp, ws, sentVia } = await setup('auto', { switchCheckMs: 10, nowMs: () => Date.now() });
    udp.peerState = 'down';
    ws.peerState = 'up';
    for (let i = 0; i < 100 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(sentVia()).toBe('ws');
  });

  it('closes every transport; close twice; no timer left', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const { udp, ws, relay, sel } = await setup('auto', { switchCheckMs: 10 });
    await sel.close();
    await sel.close();
    expect(udp.closed && ws.closed && relay.closed).toBe(true);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(before);
  });

  it('closes the others even when one fails to close', async () => {
    const { udp, ws, sel } = await setup('auto');
    selectors.pop();
    udp.close = () => Promise.reject(new Error('udp close failed'));
    await expect(sel.close()).rejects.toThrow('udp close failed');
    await expect(sel.close()).rejects.toThrow('udp close failed');
    expect(ws.closed).toBe(true);
  });

  it('refuses bad options', () => {
    const t = new MemoryTransport('x');
    expect(() => new TransportSelector([t], recordingLogger(lines), { switchCheckMs: 0 })).toThrow(TransportError);
    expect(() => new TransportSelector([t], recordingLogger(lines), { upHoldMs: -1 })).toThrow(/upHoldMs must be/);
    expect(() => new TransportSelector([], recordingLogger(lines))).toThrow(/needs 1-255 transports/);
  });
});
