/**
 * A PacketDevice in memory: `inject` hands a batch to whoever started it (the router's inside
 * pipeline), and everything written to it is recorded as copies.
 */
import type { PacketBatch } from '../core/packet-batch.js';
import { VNET_HDR_LEN } from '../core/packet-batch.js';
import type { PacketDevice } from '../core/packet-device.js';

export interface WrittenPacket {
  /** The bare IP packet (virtio header removed when the writer passed one). */
  ip: Buffer;
  /** The virtio header the writer passed, if any. */
  vnetHdr: Buffer | undefined;
}

export class MemoryDevice implements PacketDevice {
  readonly written: WrittenPacket[] = [];
  /** Number of write calls (one per batch is the contract the pipelines keep). */
  writeCalls = 0;
  closed = false;
  closeCalls = 0;
  private onBatch: ((batch: PacketBatch) => void) | undefined;

  constructor(readonly name = 'mem0') {}

  start(onBatch: (batch: PacketBatch) => void): void {
    this.onBatch = onBatch;
  }

  /**
   * Delivers `frames` as one batch, each a TUN frame (virtio header + IP packet: see
   * withVnetHdr), laid out in one buffer like the native device does. Frames are copied.
   */
  inject(frames: Buffer[]): void {
    if (this.onBatch === undefined || this.closed) throw new Error('memory device not started');
    const gap = 7; // packets need not be adjacent or aligned
    const size = frames.reduce((n, f) => n + f.length + gap, gap);
    const buf = Buffer.alloc(size);
    const offs = new Int32Array(frames.length * 2);
    let at = gap;
    frames.forEach((frame, i) => {
      frame.copy(buf, at);
      offs[2 * i] = at;
      offs[2 * i + 1] = frame.length;
      at += frame.length + gap;
    });
    this.onBatch({ buf, offs, count: frames.length, headroom: 0 });
  }

  write(batch: PacketBatch, idx: Int32Array, count: number, vnetHdr: boolean): number {
    this.writeCalls++;
    for (let k = 0; k < count; k++) {
      const i = idx[k] ?? -1;
      const off = batch.offs[2 * i] ?? 0;
      const len = batch.offs[2 * i + 1] ?? 0;
      const frame = Buffer.from(batch.buf.subarray(off, off + len));
      this.written.push(
        vnetHdr
          ? { ip: frame.subarray(VNET_HDR_LEN), vnetHdr: frame.subarray(0, VNET_HDR_LEN) }
          : { ip: frame, vnetHdr: undefined },
      );
    }
    return count;
  }

  /** Returns and forgets what was written so far. */
  take(): WrittenPacket[] {
    return this.written.splice(0);
  }

  close(): void {
    this.closeCalls++;
    this.closed = true;
    this.onBatch = undefined;
  }
}
