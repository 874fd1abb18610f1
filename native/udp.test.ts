/**
 * The addon's UDP socket over loopback: sendPackets splits super-packets and finishes checksums,
 * equal-size datagrams leave as GSO sends, the receiver reports GRO datagrams as their segments,
 * malformed input is dropped and counted, never sent, never fatal.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { addon } from './addon.js';
import type { NativeUdp } from './addon.js';
import {
  F_NEEDS_CSUM,
  GSO_NONE,
  TCP_ACK,
  VNET_HDR_LEN,
  fold,
  ipv4Addr,
  ipv4HeaderOk,
  packBatch,
  payloadOf,
  pseudoSum,
  superPacket,
  tcpChecksumOk,
  tcpPacket,
  vnetHeader,
} from './test-packets.js';

const HEADER = Buffer.from([1, 1, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]);
const open: NativeUdp[] = [];

function openUdp(host: string): NativeUdp {
  const u = addon.openUdp({ host, port: 0, recvBufferBytes: 4 << 20, sendBufferBytes: 4 << 20 });
  open.push(u);
  return u;
}

afterEach(() => {
  for (const u of open.splice(0)) u.close();
});

interface Received {
  datagrams: Buffer[];
  sources: { host: string; port: number }[];
}

/** Starts receiving on `u`; resolves once `want` datagrams arrived (or rejects after 5 s). */
function receive(u: NativeUdp, want: number): Promise<Received> {
  const buf = Buffer.alloc(32 * 65536);
  const offs = new Int32Array(2 * 4096);
  const got: Received = { datagrams: [], sources: [] };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`received ${got.datagrams.length} of ${want}`)), 5_000);
    u.start(buf, offs, 4096, (count) => {
      for (let i = 0; i < count; i++) {
        const off = offs[2 * i] ?? 0;
        got.datagrams.push(Buffer.from(buf.subarray(off, off + (offs[2 * i + 1] ?? 0))));
        got.sources.push(u.sourceOf(i));
      }
      if (got.datagrams.length >= want) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

const flow = { src: ipv4Addr('10.1.0.1'), dst: ipv4Addr('10.2.0.1'), sport: 1234, dport: 80 };

function identity(n: number): Int32Array {
  return new Int32Array(n).map((_, i) => i);
}

describe.each([
  ['127.0.0.1', 0],
  ['::1', 0],
  ['::', 0],
  ['127.0.0.1', addon.tunHeadroom],
  ['::1', addon.tunHeadroom],
])('UDP socket bound to %s, %d bytes of headroom', (host, headroom) => {
  it('sends split super-packets and finished checksums, received with source and header', async () => {
    const rx = openUdp(host);
    const tx = openUdp(host);
    tx.setPeer(7, host === '::' ? '127.0.0.1' : host, rx.port);
    const payload = randomBytes(20 * 1400);
    const small = tcpPacket({ ...flow, seq: 5, ack: 1, flags: TCP_ACK, payload: randomBytes(10) });
    small.writeUInt16BE(fold(pseudoSum(small, small.length - 20)), 36); // partial, as the kernel hands it
    const partial = Buffer.concat([
      vnetHeader({ flags: F_NEEDS_CSUM, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 20, csumOffset: 16 }),
      small,
    ]);
    const { buf, offs } = packBatch([superPacket({ ...flow, seq: 1, ack: 1, flags: TCP_ACK, payload }, 1400), partial], headroom);
    const done = receive(rx, 21);
    expect(tx.sendPackets(7, HEADER, HEADER.length, buf, offs, identity(2), 2, headroom)).toBe(2);
    const got = await done;
    // With headroom the small packet went where it lay: its tunnel header now sits right before
    // its IP header in the caller's buffer (no copy); without, the input is as it was but for the checksum.
    const ipAt = (offs[2] ?? 0) + VNET_HDR_LEN;
    const inPlace = buf.subarray(ipAt - HEADER.length, ipAt).equals(HEADER);
    expect(inPlace).toBe(headroom > 0);
    expect(got.datagrams).toHaveLength(21);
    for (const d of got.datagrams) {
      expect(d.subarray(0, HEADER.length).equals(HEADER)).toBe(true);
      const ip = d.subarray(HEADER.length);
      expect(ipv4HeaderOk(ip) && tcpChecksumOk(ip)).toBe(true);
    }
    const segs = got.datagrams.slice(0, 20).map((d) => payloadOf(d.subarray(HEADER.length)));
    expect(Buffer.concat(segs).equals(payload)).toBe(true);
    for (const s of got.sources) expect(s).toEqual({ host: host === '::' ? '127.0.0.1' : host, port: tx.port });
    const txStats = tx.stats();
    expect(txStats['splitSupers']).toBe(1);
    expect(txStats['sends']).toBe(21);
    if (tx.gso) expect(txStats['gsoSends']).toBeGreaterThan(0);
    if (rx.gro && tx.gso) expect(rx.stats()['groDatagrams']).toBeGreaterThan(0);
  });
});

describe('UDP socket', () => {
  it('drops and counts malformed packets, sends the good ones of the same batch', async () => {
    const rx = openUdp('127.0.0.1');
    const tx = openUdp('127.0.0.1');
    tx.setPeer(0, '127.0.0.1', rx.port);
    const good = superPacket({ ...flow, seq: 1, ack: 1, flags: TCP_ACK, payload: randomBytes(3000) }, 1400);
    const udpClaimingTso = Buffer.from(good);
    udpClaimingTso[VNET_HDR_LEN + 9] = 17;
    const truncated = good.subarray(0, VNET_HDR_LEN + 30);
    const garbage = Buffer.concat([Buffer.alloc(VNET_HDR_LEN), Buffer.from([0x00, 1, 2, 3, 4, 5])]);
    const badHeader = Buffer.concat([vnetHeader({ flags: 0, gsoType: 77, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 }), good.subarray(VNET_HDR_LEN)]);
    const { buf, offs } = packBatch([truncated, udpClaimingTso, garbage, good, badHeader, Buffer.alloc(3)]);
    // idx 9 and -1 point outside offs; the offsets of pair 5 are then corrupted below.
    const idx = Int32Array.from([0, 1, 2, 3, 4, 9, -1, 5]);
    offs[11] = 1 << 30;
    const done = receive(rx, 3);
    expect(tx.sendPackets(0, HEADER, HEADER.length, buf, offs, idx, idx.length, 0)).toBe(1);
    expect(tx.stats()['malformedDrops']).toBe(7);
    expect((await done).datagrams).toHaveLength(3);
    expect(() => tx.sendPackets(0, HEADER, HEADER.length, buf, offs, idx, idx.length + 1, 0)).toThrow(RangeError);
  });

  it('counts sends to an empty slot as drops', () => {
    const tx = openUdp('127.0.0.1');
    const { buf, offs } = packBatch([superPacket({ ...flow, seq: 1, ack: 1, flags: TCP_ACK, payload: randomBytes(10) }, 1400)]);
    expect(tx.sendPackets(3, HEADER, HEADER.length, buf, offs, identity(1), 1, 0)).toBe(0);
    expect(tx.stats()['noPeerDrops']).toBe(1);
    expect(tx.sendTo(3, HEADER, 4)).toBe(false);
  });

  it('sends control datagrams to a slot and to an address', async () => {
    const rx = openUdp('::');
    const tx = openUdp('127.0.0.1');
    tx.setPeer(1, '127.0.0.1', rx.port);
    const done = receive(rx, 2);
    expect(tx.sendTo(1, Buffer.from('probe-1xx'), 7)).toBe(true);
    expect(tx.sendToAddress('127.0.0.1', rx.port, Buffer.from('reply'), 5)).toBe(true);
    const got = await done;
    expect(got.datagrams.map((d) => d.toString())).toEqual(['probe-1', 'reply']);
  });

  it('rejects bad addresses and arguments with stable codes', () => {
    expect(() => addon.openUdp({ host: 'localhost', port: 0, recvBufferBytes: 0, sendBufferBytes: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_PODTUN_UDP_ADDRESS' }),
    );
    const a = openUdp('127.0.0.1');
    expect(() => addon.openUdp({ host: '127.0.0.1', port: a.port, recvBufferBytes: 0, sendBufferBytes: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_PODTUN_UDP_OPEN', message: expect.stringMatching(/Address already in use/) }),
    );
    expect(() => a.setPeer(0, 'fd00::1', 1)).toThrow(expect.objectContaining({ code: 'ERR_PODTUN_UDP_ADDRESS' }));
    expect(() => a.setPeer(4096, '127.0.0.1', 1)).toThrow(RangeError);
    expect(() => a.sourceOf(0)).toThrow(expect.objectContaining({ code: 'ERR_PODTUN_NOT_IN_BATCH' }));
    const v6 = openUdp('::1');
    expect(() => v6.setPeer(0, '::1', 9)).not.toThrow();
    a.close();
    a.close();
    expect(() => a.sendTo(0, HEADER, 1)).toThrow(expect.objectContaining({ code: 'ERR_PODTUN_CLOSED' }));
  });

  it('keeps GSO sends within the 64-segment and 64000-byte limits', async () => {
    const rx = openUdp('127.0.0.1');
    const tx = openUdp('127.0.0.1');
    tx.setPeer(0, '127.0.0.1', rx.port);
    // 200 tiny equal datagrams (one GSO run would be 200 segments) and one of 46 x 1400.
    const acks = Array.from({ length: 200 }, (_, i) =>
      Buffer.concat([Buffer.alloc(VNET_HDR_LEN), tcpPacket({ ...flow, seq: i, ack: 1, flags: TCP_ACK, payload: Buffer.alloc(0) })]),
    );
    const big = superPacket({ ...flow, seq: 1, ack: 1, flags: TCP_ACK, payload: randomBytes(46 * 1400) }, 1400);
    const { buf, offs } = packBatch([...acks, big], addon.tunHeadroom);
    const done = receive(rx, 246);
    expect(tx.sendPackets(0, HEADER, HEADER.length, buf, offs, identity(201), 201, addon.tunHeadroom)).toBe(201);
    expect((await done).datagrams).toHaveLength(246);
    const s = tx.stats();
    expect(s['errorDrops']).toBe(0);
    expect(s['gsoFallbacks']).toBe(0);
    if (tx.gso) expect(s['gsoSends']).toBeGreaterThanOrEqual(5); // 64+64+64+8 acks, 45+1 segments
  });

  it('never reports more datagrams than asked, even for a GRO datagram of many segments', async () => {
    const rx = openUdp('127.0.0.1');
    const tx = openUdp('127.0.0.1');
    tx.setPeer(0, '127.0.0.1', rx.port);
    const acks = Array.from({ length: 64 }, (_, i) =>
      Buffer.concat([Buffer.alloc(VNET_HDR_LEN), tcpPacket({ ...flow, seq: i, ack: 1, flags: TCP_ACK, payload: Buffer.alloc(0) })]),
    );
    const { buf, offs } = packBatch(acks);
    const counts: number[] = [];
    const done = new Promise<void>((resolve) => {
      rx.start(Buffer.alloc(65536), new Int32Array(2 * 4), 4, (count) => {
        counts.push(count);
        resolve();
      });
    });
    expect(tx.sendPackets(0, HEADER, HEADER.length, buf, offs, identity(64), 64, 0)).toBe(64);
    await done;
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const c of counts) expect(c).toBeLessThanOrEqual(4);
    const s = rx.stats();
    expect(s['recvSegments']).toBeGreaterThan(0);
    if (tx.gso && rx.gro) expect(s['truncatedDrops']).toBeGreaterThan(0);
  });
});
