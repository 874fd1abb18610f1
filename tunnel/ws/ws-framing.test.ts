import { describe, expect, it } from 'vitest';
import type { PacketBatch } from '../../core/packet-batch.js';
import {
  FRAME_ERR_BAD_LENGTH,
  FRAME_ERR_EMPTY,
  FRAME_ERR_TOO_MANY,
  FRAME_ERR_TRUNCATED,
  FRAME_LEN_BYTES,
  MAX_PACKETS_PER_MESSAGE,
  MIN_FRAMED_PACKET_LEN,
  MessagePlan,
  decodeMessage,
  encodeMessage,
  newInboundBatch,
  planMessages,
} from './ws-framing.js';
import { batchOf } from '../../test/packet-fixtures.js';

/** A packet of `len` bytes whose content identifies it (virtio header + IP are opaque here). */
function packet(len: number, seed: number): Buffer {
  const p = Buffer.alloc(len);
  for (let i = 0; i < len; i++) p[i] = (seed * 31 + i) & 0xff;
  return p;
}

/** The plan of all of `idx` as [packets, bytes] per entry, and its total. */
function planOf(batch: PacketBatch, idx: Int32Array, maxPayloadBytes: number): { entries: [number, number][]; totalBytes: number } {
  const plan = new MessagePlan();
  planMessages(batch, idx, idx.length, maxPayloadBytes, plan);
  const entries: [number, number][] = [];
  for (let k = 0; k < plan.entries; k++) entries.push([plan.packets[k] ?? -1, plan.bytes[k] ?? -1]);
  return { entries, totalBytes: plan.totalBytes };
}

/** Encodes all of `idx` as the transport does, splitting at maxPayloadBytes. */
function encodeAll(batch: PacketBatch, idx: Int32Array, maxPayloadBytes: number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const [n, bytes] of planOf(batch, idx, maxPayloadBytes).entries) {
    if (n === 0) throw new Error(`packet ${at} does not fit`);
    const message = Buffer.alloc(bytes);
    encodeMessage(batch, idx, at, n, message);
    out.push(message);
    at += n;
  }
  return out;
}

function decodeAll(messages: Buffer[], slot: number): Buffer[] {
  const inbound = newInboundBatch();
  const got: Buffer[] = [];
  for (const m of messages) {
    const n = decodeMessage(m, slot, inbound);
    expect(n).toBeGreaterThan(0);
    expect(inbound.count).toBe(n);
    expect(inbound.vnetHdr).toBe(true);
    expect(inbound.buf).toBe(m);
    for (let i = 0; i < n; i++) {
      expect(inbound.peers[i]).toBe(slot);
      const off = inbound.offs[2 * i] ?? 0;
      got.push(Buffer.from(m.subarray(off, off + (inbound.offs[2 * i + 1] ?? 0))));
    }
  }
  return got;
}

describe('ws framing', () => {
  it('round-trips a 64 KiB super-packet and many small packets in one message', () => {
    const packets = [packet(10 + 65535, 1), ...Array.from({ length: 500 }, (_, i) => packet(30 + (i % 1400), i + 2))];
    const { batch, idx } = batchOf(packets, 7);
    const messages = encodeAll(batch, idx, 4 * 1024 * 1024);
    expect(messages).toHaveLength(1);
    expect(messages[0]?.length).toBe(packets.reduce((sum, p) => sum + FRAME_LEN_BYTES + p.length, 0));
    expect(planOf(batch, idx, 4 * 1024 * 1024).totalBytes).toBe(messages[0]?.length);
    expect(messages[0]?.readUInt32BE(0)).toBe(10 + 65535);
    expect(decodeAll(messages, 7)).toEqual(packets);
  });

  it('encodes a subset selected by idx, in idx order', () => {
    const packets = Array.from({ length: 6 }, (_, i) => packet(40 + i, i));
    const { batch } = batchOf(packets, 7);
    const idx = Int32Array.from([4, 1, 5]);
    const messages = encodeAll(batch, idx, 1 << 20);
    expect(decodeAll(messages, 0)).toEqual([packets[4], packets[1], packets[5]]);
  });

  it('splits a batch across messages of at most maxPayloadBytes, in order', () => {
    const packets = [
      packet(10 + 65535, 1), packet(10 + 65535, 2), packet(1500, 3), packet(10 + 40000, 4),
      ...Array.from({ length: 300 }, (_, i) => packet(60 + i, i + 5)),
    ];
    const { batch, idx } = batchOf(packets, 7);
    const max = 70_000;
    const messages = encodeAll(batch, idx, max);
    expect(messages.length).toBeGreaterThan(3);
    for (const m of messages) expect(m.length).toBeLessThanOrEqual(max);
    expect(decodeAll(messages, 3)).toEqual(packets);
  });

  it('caps packets per message and refuses packets that cannot be framed', () => {
    const packets = Array.from({ length: MAX_PACKETS_PER_MESSAGE + 10 }, (_, i) => packet(MIN_FRAMED_PACKET_LEN, i));
    const { batch, idx } = batchOf(packets, 7);
    expect(planOf(batch, idx, 1 << 30).entries.map(([n]) => n)).toEqual([MAX_PACKETS_PER_MESSAGE, 10]);
    expect(decodeAll(encodeAll(batch, idx, 1 << 30), 1)).toHaveLength(packets.length);

    const runt = MIN_FRAMED_PACKET_LEN - 1;
    const odd = batchOf([packet(100, 1), packet(runt, 2), packet(100, 3), packet(2000, 4)], 7);
    // The runt ends the first message and is dropped on its own; 2000 B fits in 1 MiB, not in 1000.
    expect(planOf(odd.batch, odd.idx, 1 << 20)).toEqual({
      entries: [[1, 104], [0, runt], [2, 104 + 2004]], totalBytes: 104 + 4 + runt + 104 + 2004 });
    expect(planOf(odd.batch, odd.idx, 1000).entries).toEqual([[1, 104], [0, runt], [1, 104], [0, 2000]]);

    // A plan grows past its first 64 entries for a batch that needs more.
    const alternating = batchOf(Array.from({ length: 300 }, (_, i) => packet(i % 2 === 0 ? 100 : runt, i)), 7);
    const grown = planOf(alternating.batch, alternating.idx, 1 << 20).entries;
    expect(grown).toHaveLength(300);
    expect(grown.every(([n, bytes], k) => (k % 2 === 0 ? n === 1 && bytes === 104 : n === 0 && bytes === runt))).toBe(true);
  });

  it('refuses garbled messages whole, without throwing', () => {
    const good = encodeAll(batchOf([packet(100, 1), packet(200, 2)], 7).batch, Int32Array.from([0, 1]), 1 << 20)[0] as Buffer;
    const lenAt = (m: Buffer, at: number, len: number): Buffer => {
      const c = Buffer.from(m);
      c.writeUInt32BE(len, at);
      return c;
    };
    const tooMany = Buffer.alloc((MAX_PACKETS_PER_MESSAGE + 1) * (4 + MIN_FRAMED_PACKET_LEN));
    for (let at = 0; at < tooMany.length; at += 4 + MIN_FRAMED_PACKET_LEN) tooMany.writeUInt32BE(MIN_FRAMED_PACKET_LEN, at);
    const cases: Array<[string, Buffer, number]> = [
      ['empty', Buffer.alloc(0), FRAME_ERR_EMPTY],
      ['cut inside a packet', good.subarray(0, good.length - 1), FRAME_ERR_TRUNCATED],
      ['cut inside a length', Buffer.concat([good, Buffer.from([0, 0])]), FRAME_ERR_TRUNCATED],
      ['length past the end', lenAt(good, 0, 10_000), FRAME_ERR_TRUNCATED],
      ['second length past the end', lenAt(good, 104, 201), FRAME_ERR_TRUNCATED],
      ['length below a minimal packet', lenAt(good, 0, MIN_FRAMED_PACKET_LEN - 1), FRAME_ERR_BAD_LENGTH],
      ['zero length', lenAt(good, 0, 0), FRAME_ERR_BAD_LENGTH],
      ['length 0xffffffff', lenAt(good, 0, 0xffffffff), FRAME_ERR_BAD_LENGTH],
      ['too many packets', tooMany, FRAME_ERR_TOO_MANY],
    ];
    const inbound = newInboundBatch();
    for (const [name, message, code] of cases) {
      expect({ name, result: decodeMessage(message, 1, inbound) }).toEqual({ name, result: code });
      expect(inbound.count).toBe(0);
    }
    expect(decodeMessage(good, 1, inbound)).toBe(2);
    for (let i = 0; i < 2000; i++) {
      const junk = Buffer.alloc(1 + Math.floor(Math.random() * 300));
      for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(Math.random() * 256);
      const n = decodeMessage(junk, 1, inbound);
      expect(n === inbound.count || n < 0).toBe(true);
    }
  });
});
