import { describe, expect, it } from 'vitest';
import { nextTimestamp, timestampAfter } from './tai64n.js';

describe('tai64n timestamps', () => {
  it('encodes TAI64 seconds (2^62 + 10 + unix seconds) and nanoseconds, big endian', () => {
    const stamp = nextTimestamp(Date.UTC(2100, 0, 1, 0, 0, 0, 250));
    expect(stamp.length).toBe(12);
    expect(stamp.readBigUInt64BE(0)).toBe(0x4000_0000_0000_000an + BigInt(Date.UTC(2100, 0, 1) / 1000));
    expect(stamp.readUInt32BE(8)).toBe(250_000_000);
  });

  it('keeps growing within the process when the clock stands still or steps back', () => {
    const base = Date.UTC(2101, 0, 1);
    let last = nextTimestamp(base);
    for (const ms of [base, base, base - 60_000, base - 1, base + 1]) {
      const stamp = nextTimestamp(ms);
      expect(timestampAfter(stamp, last)).toBe(true);
      last = stamp;
    }
    // Back on a clock ahead of every stamp issued: the clock's value again.
    const later = nextTimestamp(base + 5_000);
    expect(later.readUInt32BE(8)).toBe(0);
    expect(timestampAfter(later, last)).toBe(true);
  });
});
