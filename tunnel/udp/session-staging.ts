/**
 * Packets for a peer whose session is still being made (its first handshake, or a new one after
 * it restarted), held briefly instead of dropped, as WireGuard stages them: the first packets of
 * a connection (a TCP SYN, a DNS query) would otherwise wait out a retransmit timer.
 *
 * Bounded per peer (STAGE_PACKETS packets, STAGE_BYTES bytes: more are dropped and counted by the
 * caller) and in time (STAGE_MAX_AGE_MS after the first one, the rest are given up: a handshake
 * that slow is not coming soon). A queue exists only while its peer waits: STAGE_BYTES per peer
 * waiting for a session, none otherwise.
 */
import type { PacketBatch } from '../../core/packet-batch.js';

export const STAGE_PACKETS = 128;
export const STAGE_BYTES = 256 * 1024;
export const STAGE_MAX_AGE_MS = 5_000;

/** One peer's staged packets, as a batch the addon's sendPackets takes (virtio header first, no headroom). */
export class StagedPackets implements PacketBatch {
  readonly buf = Buffer.allocUnsafe(STAGE_BYTES);
  readonly offs = new Int32Array(2 * STAGE_PACKETS);
  readonly idx = Int32Array.from({ length: STAGE_PACKETS }, (_, i) => i);
  count = 0;
  readonly headroom = 0;
  /** When the oldest staged packet came. */
  sinceMs = 0;
  private used = 0;

  /**
   * Copies packets `idx[0..count)` of `batch` in (borrowed: nothing kept); returns how many did
   * not fit.
   */
  add(batch: PacketBatch, idx: Int32Array, count: number, nowMs: number): number {
    if (this.count === 0) this.sinceMs = nowMs;
    let refused = 0;
    for (let k = 0; k < count; k++) {
      const p = idx[k] ?? 0;
      const off = batch.offs[2 * p] ?? 0;
      const len = batch.offs[2 * p + 1] ?? 0;
      if (this.count === STAGE_PACKETS || this.used + len > STAGE_BYTES) {
        refused++;
        continue;
      }
      batch.buf.copy(this.buf, this.used, off, off + len);
      this.offs[2 * this.count] = this.used;
      this.offs[2 * this.count + 1] = len;
      this.count++;
      this.used += len;
    }
    return refused;
  }
}
