/**
 * The timestamp of a handshake initiation: TAI64N (8 bytes of TAI seconds with the 2^62 label,
 * 4 bytes of nanoseconds, both big endian), as WireGuard's. A responder accepts a peer's
 * initiation only when its timestamp is greater than any it accepted from that peer, so a
 * recorded initiation cannot be replayed to it. Big endian makes "greater" a byte comparison.
 *
 * Taken from the wall clock (so it keeps growing across restarts), to the millisecond (finer
 * would tell observers the clock's exact value, for nothing). Strictly increasing within the
 * process even when the clock steps back or two initiations fall in one millisecond: each
 * stamp is at least the previous one plus a nanosecond. A clock stepped back across a restart
 * is not covered: peers refuse our initiations until the clock passes the last one they saw.
 */
import { TIMESTAMP_LEN } from './sealed-format.js';

/** TAI64 label (2^62) plus TAI - UTC (10 s, as WireGuard and libsodium's tai64n take it). */
const TAI64_BASE = 0x4000_0000_0000_000an;
const NS_PER_S = 1_000_000_000;

/** The last stamp this process issued: seconds since the epoch, nanoseconds. */
let lastSeconds = -1;
let lastNanos = 0;

/** A fresh timestamp for `wallClockMs` (epoch ms), greater than every earlier one of this process. */
export function nextTimestamp(wallClockMs: number): Buffer {
  let seconds = Math.floor(wallClockMs / 1000);
  let nanos = Math.floor(wallClockMs - seconds * 1000) * 1_000_000;
  if (seconds < lastSeconds || (seconds === lastSeconds && nanos <= lastNanos)) {
    seconds = lastSeconds;
    nanos = lastNanos + 1;
    if (nanos === NS_PER_S) {
      seconds += 1;
      nanos = 0;
    }
  }
  lastSeconds = seconds;
  lastNanos = nanos;
  const stamp = Buffer.allocUnsafe(TIMESTAMP_LEN);
  stamp.writeBigUInt64BE(TAI64_BASE + BigInt(seconds), 0);
  stamp.writeUInt32BE(nanos, 8);
  return stamp;
}

/** Whether timestamp `a` is later than `b` (both TIMESTAMP_LEN bytes). */
export function timestampAfter(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) > 0;
}
