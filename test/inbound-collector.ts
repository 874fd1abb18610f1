/** An InboundSink that copies out every packet it is given (batches are borrowed). */
import type { InboundBatch } from '../core/packet-batch.js';

export interface Received {
  packet: Buffer;
  slot: number;
  vnetHdr: boolean;
}

export function collector(): { sink: (b: InboundBatch) => void; got: Received[]; calls: number[] } {
  const got: Received[] = [];
  const calls: number[] = [];
  const sink = (b: InboundBatch): void => {
    calls.push(b.count);
    for (let i = 0; i < b.count; i++) {
      const off = b.offs[2 * i] ?? 0;
      const len = b.offs[2 * i + 1] ?? 0;
      got.push({ packet: Buffer.from(b.buf.subarray(off, off + len)), slot: b.peers[i] ?? -1, vnetHdr: b.vnetHdr });
    }
  };
  return { sink, got, calls };
}
