import { describe, expect, it } from 'vitest';
import { HandshakeLimiter } from './handshake-limiter.js';

function limiter(perSecond: number, perSourcePerSecond: number, maxSources?: number) {
  const clock = { now: 0 };
  const l = new HandshakeLimiter({ perSecond, perSourcePerSecond, nowMs: () => clock.now, ...(maxSources === undefined ? {} : { maxSources }) });
  return { l, clock };
}

function admitted(l: HandshakeLimiter, source: string, times: number): number {
  let n = 0;
  for (let i = 0; i < times; i++) if (l.admit(source)) n++;
  return n;
}

describe('handshake limiter', () => {
  it('admits a burst of the global rate, then refills with time', () => {
    const { l, clock } = limiter(10, 100);
    expect(admitted(l, 's', 50)).toBe(10);
    clock.now += 500;
    expect(admitted(l, 's', 50)).toBe(5);
  });

  it('holds one source to twice its rate in a burst, leaving others their share', () => {
    const { l, clock } = limiter(100, 2);
    expect(admitted(l, 'flooder', 10)).toBe(4);
    expect(admitted(l, 'peer', 1)).toBe(1);
    clock.now += 1_000;
    expect(admitted(l, 'flooder', 10)).toBe(2);
  });

  it('lets a proven source through on its own bucket when the global one is empty', () => {
    const { l } = limiter(1, 5);
    expect(l.admit('a')).toBe(true);
    expect(l.admit('peer')).toBe(false);
    expect(l.admitProven('peer')).toBe(true);
    let proven = 1;
    while (l.admitProven('peer')) proven++;
    expect(proven).toBe(10);
  });

  it('forgets idle sources and caps how many it tracks', () => {
    const { l, clock } = limiter(1_000, 1, 3);
    for (const s of ['a', 'b', 'c']) expect(l.admit(s)).toBe(true);
    expect(l.admit('d')).toBe(false);
    expect(l.trackedSources).toBe(3);
    clock.now += 1_000;
    l.sweep();
    expect(l.trackedSources).toBe(0);
    expect(l.admit('d')).toBe(true);
  });
});
