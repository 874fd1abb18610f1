import { describe, expect, it } from 'vitest';
import { PeerLiveness } from './peer-liveness.js';
import type { LivenessChange } from './peer-liveness.js';

const config = { probeIntervalMs: 1000, deadAfterMs: 3000 };

function make(startMs = 10_000): { live: PeerLiveness; changes: LivenessChange[] } {
  const changes: LivenessChange[] = [];
  const live = new PeerLiveness(config, startMs, (c) => changes.push(c));
  return { live, changes };
}

describe('PeerLiveness', () => {
  it('probes once per interval with increasing sequence numbers', () => {
    const { live } = make();
    expect(live.tick(10_000)).toBe(1);
    expect(live.tick(10_500)).toBe(-1);
    expect(live.tick(10_999)).toBe(-1);
    expect(live.tick(11_000)).toBe(2);
    expect(live.tick(11_001)).toBe(-1);
    expect(live.tick(12_000)).toBe(3);
  });

  it('comes up on the first reply, with its RTT', () => {
    const { live, changes } = make();
    expect(live.state).toBe('unknown');
    const seq = live.tick(10_000);
    expect(live.onProbeReply(seq, 10_000, 10_004)).toBe(true);
    expect(live.state).toBe('up');
    expect(live.rttMs).toBe(4);
    expect(live.lastSeenMs).toBe(10_004);
    expect(changes).toEqual([{ state: 'up', previous: 'unknown', rttMs: 4, lastSeenMs: 10_004 }]);
  });

  it('smooths the RTT like TCP srtt (gain 1/8)', () => {
    const { live, changes } = make();
    let t = 10_000;
    const reply = (rtt: number): void => {
      const seq = live.tick(t);
      expect(live.onProbeReply(seq, t, t + rtt)).toBe(true);
      t += 1000;
    };
    reply(8);
    reply(16);
    expect(live.rttMs).toBe(9);
    reply(1);
    expect(live.rttMs).toBe(8);
    expect(changes).toHaveLength(1);
  });

  it('goes down after deadAfterMs of silence, then back up on a reply', () => {
    const { live, changes } = make();
    const seq = live.tick(10_000);
    live.onProbeReply(seq, 10_000, 10_002);
    for (let t = 11_000; t < 13_002; t += 500) live.tick(t);
    expect(live.state).toBe('up');
    live.tick(13_002);
    expect(live.state).toBe('down');
    expect(changes.at(-1)).toEqual({ state: 'down', previous: 'up', rttMs: 2, lastSeenMs: 10_002 });
    live.tick(20_000);
    expect(changes).toHaveLength(2);
    const again = live.tick(21_000);
    expect(live.onProbeReply(again, 21_000, 21_006)).toBe(true);
    expect(live.state).toBe('up');
    expect(live.rttMs).toBeCloseTo(2 + (6 - 2) / 8);
    expect(changes.map((c) => c.state)).toEqual(['up', 'down', 'up']);
  });

  it('goes down without replies even while the peer keeps sending (UDP blocked one way)', () => {
    const { live } = make();
    live.onProbeReply(live.tick(10_000), 10_000, 10_001);
    for (let t = 10_500; t <= 20_000; t += 500) {
      live.onInbound(t);
      live.tick(t);
    }
    expect(live.state).toBe('down');
    expect(live.lastSeenMs).toBe(20_000);
  });

  it('inbound traffic alone does not bring a peer up', () => {
    const { live, changes } = make();
    live.onInbound(10_100);
    live.tick(10_200);
    expect(live.state).toBe('unknown');
    expect(changes).toEqual([]);
  });

  it('a peer that never answers goes from unknown to down', () => {
    const { live, changes } = make();
    for (let t = 10_000; t < 13_000; t += 1000) live.tick(t);
    expect(live.state).toBe('unknown');
    live.tick(13_000);
    expect(changes).toEqual([{ state: 'down', previous: 'unknown', rttMs: undefined, lastSeenMs: undefined }]);
  });

  it('ignores replies to probes it never sent or long ago', () => {
    const { live } = make();
    expect(live.onProbeReply(1, 10_000, 10_001)).toBe(false);
    const seq = live.tick(10_000);
    expect(live.onProbeReply(seq + 1, 10_000, 10_001)).toBe(false);
    expect(live.onProbeReply(0, 10_000, 10_001)).toBe(false);
    expect(live.onProbeReply(seq, 10_002, 10_001)).toBe(false);
    expect(live.onProbeReply(seq, Number.NaN, 10_001)).toBe(false);
    expect(live.onProbeReply(seq, 9_000, 10_001)).toBe(false);
    let t = 10_000;
    for (let i = 0; i < 100; i++) live.tick((t += 1000));
    expect(live.onProbeReply(seq, t, t + 1)).toBe(false);
    expect(live.state).not.toBe('up');
  });
});
