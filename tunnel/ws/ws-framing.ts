/**
 * The WebSocket tunnel's message format: one binary WebSocket message carries a batch of packets.
 *
 *   message  = packet{1..MAX_PACKETS_PER_MESSAGE}
 *   packet   = length:u32 big-endian | bytes[length]
 *   bytes    = 10-byte virtio_net_hdr | IP packet   (exactly as read from the TUN: TSO
 *              super-packets of up to 64 KiB stay whole, partial checksums stay partial)
 *
 * No header or version field inside the message: the WebSocket subprotocol (WS_SUBPROTOCOL,
 * negotiated at the upgrade) names the format, and WebSocket already delimits messages.
 * A message is at most the connection's `maxPayload` bytes; senders split a batch into several
 * messages rather than exceed it (planMessages).
 *
 * Receivers refuse a whole message (decodeMessage returns a negative FRAME_ERR_*) when a length
 * runs past the end, a packet is shorter than a virtio header plus a minimal IPv4 header, or it
 * holds more than MAX_PACKETS_PER_MESSAGE packets. Nothing here throws on peer input.
 */
import type { InboundBatch, PacketBatch } from '../../core/packet-batch.js';
import { VNET_HDR_LEN } from '../../core/packet-batch.js';

/**
 * Names this format and the handshake (ws-handshake.ts) in the WebSocket upgrade
 * (Sec-WebSocket-Protocol). v2: the client's first message is its proof over the server's nonce;
 * a v1 node is refused at the upgrade (400) rather than left waiting for a proof it never sends.
 */
export const WS_SUBPROTOCOL = 'podtun.v2';
/** Bytes of the length prefix before each packet. */
export const FRAME_LEN_BYTES = 4;
/** Smallest packet carried: virtio header + a 20-byte IPv4 header. */
export const MIN_FRAMED_PACKET_LEN = VNET_HDR_LEN + 20;
/** Largest packet carried: virtio header + a 64 KiB IP packet (a TSO super-packet). */
export const MAX_FRAMED_PACKET_LEN = VNET_HDR_LEN + 65535;
/** Bound on packets in one message (sizes the receiver's reused offset arrays). */
export const MAX_PACKETS_PER_MESSAGE = 4096;

/** decodeMessage results below zero: why a message was refused. */
export const FRAME_ERR_EMPTY = -1;
export const FRAME_ERR_TRUNCATED = -2;
export const FRAME_ERR_BAD_LENGTH = -3;
export const FRAME_ERR_TOO_MANY = -4;

const FRAME_ERR_NAMES: Readonly<Record<number, string>> = {
  [FRAME_ERR_EMPTY]: 'empty message',
  [FRAME_ERR_TRUNCATED]: 'packet length runs past the end of the message',
  [FRAME_ERR_BAD_LENGTH]: 'packet length out of range',
  [FRAME_ERR_TOO_MANY]: `more than ${MAX_PACKETS_PER_MESSAGE} packets in one message`,
};

/** Text for a FRAME_ERR_* code (for logs). */
export function frameErrorName(code: number): string {
  return FRAME_ERR_NAMES[code] ?? `frame error ${code}`;
}

/** Whether a packet of `len` bytes may be framed at all (else the sender drops it). */
export function isFramablePacket(len: number): boolean {
  return len >= MIN_FRAMED_PACKET_LEN && len <= MAX_FRAMED_PACKET_LEN;
}

/** A plan starts with room for this many messages and doubles when a batch needs more. */
const INITIAL_PLAN_ENTRIES = 64;

/**
 * How one batch goes out, worked out in one pass over its packets (planMessages) so that each
 * packet's framed size is read once: the batch's total for the congestion check, then its
 * messages in order. Reused from batch to batch; grown only for a batch that needs more entries
 * than any before (at most one per packet).
 */
export class MessagePlan {
  /** Framed bytes of every packet of the batch, whether it can be framed or not. */
  totalBytes = 0;
  /** Entries in use in `packets` and `bytes`, in batch order. */
  entries = 0;
  /** Per entry: packets in the message; 0 = one packet that cannot be framed at all (dropped). */
  packets = new Int32Array(INITIAL_PLAN_ENTRIES);
  /** Per entry: the message's framed bytes; for a dropped packet, its length. */
  bytes = new Int32Array(INITIAL_PLAN_ENTRIES);
}

function addEntry(plan: MessagePlan, packets: number, bytes: number): void {
  const k = plan.entries;
  if (k === plan.packets.length) {
    const packetsGrown = new Int32Array(2 * k);
    const bytesGrown = new Int32Array(2 * k);
    packetsGrown.set(plan.packets);
    bytesGrown.set(plan.bytes);
    plan.packets = packetsGrown;
    plan.bytes = bytesGrown;
  }
  plan.packets[k] = packets;
  plan.bytes[k] = bytes;
  plan.entries = k + 1;
}

/**
 * Plans packets `idx[0..count)` of `batch` into `plan`: as few messages of at most
 * `maxPayloadBytes` as they fit in order, each ending before the first packet that would not
 * fit or at MAX_PACKETS_PER_MESSAGE; a packet that fits in no message (isFramablePacket, or
 * longer than `maxPayloadBytes` once framed) is an entry of its own, to be dropped.
 */
export function planMessages(
  batch: PacketBatch, idx: Int32Array, count: number, maxPayloadBytes: number, plan: MessagePlan,
): void {
  const offs = batch.offs;
  let total = 0;
  let n = 0;
  let bytes = 0;
  plan.entries = 0;
  for (let i = 0; i < count; i++) {
    const len = offs[2 * (idx[i] ?? 0) + 1] ?? 0;
    const framed = FRAME_LEN_BYTES + len;
    total += framed;
    if (!isFramablePacket(len) || framed > maxPayloadBytes) {
      if (n > 0) addEntry(plan, n, bytes);
      addEntry(plan, 0, len);
      n = 0;
      bytes = 0;
      continue;
    }
    if (n === MAX_PACKETS_PER_MESSAGE || bytes + framed > maxPayloadBytes) {
      addEntry(plan, n, bytes);
      n = 0;
      bytes = 0;
    }
    n++;
    bytes += framed;
  }
  if (n > 0) addEntry(plan, n, bytes);
  plan.totalBytes = total;
}

/**
 * Writes the message holding packets `idx[start..start+count)` of `batch` (one planned message)
 * into `out` from `outOffset` (room left in front for a sealed header), the plan's `bytes` of it.
 * Borrowed batch: copied out, not kept.
 */
export function encodeMessage(batch: PacketBatch, idx: Int32Array, start: number, count: number, out: Buffer, outOffset = 0): void {
  const src = batch.buf;
  const offs = batch.offs;
  let at = outOffset;
  for (let i = start; i < start + count; i++) {
    const p = idx[i] ?? 0;
    const off = offs[2 * p] ?? 0;
    const len = offs[2 * p + 1] ?? 0;
    out.writeUInt32BE(len, at);
    src.copy(out, at + FRAME_LEN_BYTES, off, off + len);
    at += FRAME_LEN_BYTES + len;
  }
}

/** A reusable InboundBatch able to hold any valid message (offsets point into the message). */
export function newInboundBatch(): InboundBatch {
  return {
    buf: Buffer.alloc(0),
    offs: new Int32Array(2 * MAX_PACKETS_PER_MESSAGE),
    count: 0,
    headroom: 0,
    peers: new Int32Array(MAX_PACKETS_PER_MESSAGE),
    vnetHdr: true,
  };
}

/**
 * Decodes `message` into `out` (made by newInboundBatch): `out.buf = message`, offsets point at
 * each packet's virtio header, every `peers[i] = slot`. Returns the packet count, or a negative
 * FRAME_ERR_* when the message must be dropped whole (then `out.count` is 0).
 * `message` is borrowed by `out` until the next decode.
 */
export function decodeMessage(message: Buffer, slot: number, out: InboundBatch): number {
  out.count = 0;
  out.buf = message;
  out.vnetHdr = true;
  const end = message.length;
  if (end === 0) return FRAME_ERR_EMPTY;
  const offs = out.offs;
  const peers = out.peers;
  const max = Math.min(peers.length, offs.length >>> 1);
  let at = 0;
  let n = 0;
  while (at < end) {
    if (n >= max) return FRAME_ERR_TOO_MANY;
    if (end - at < FRAME_LEN_BYTES) return FRAME_ERR_TRUNCATED;
    const len = message.readUInt32BE(at);
    if (!isFramablePacket(len)) return FRAME_ERR_BAD_LENGTH;
    at += FRAME_LEN_BYTES;
    if (len > end - at) return FRAME_ERR_TRUNCATED;
    offs[2 * n] = at;
    offs[2 * n + 1] = len;
    peers[n] = slot;
    n++;
    at += len;
  }
  out.count = n;
  return n;
}
