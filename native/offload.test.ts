/**
 * The pure offload paths of the addon, checked against an independent JS checksum verifier:
 * TSO split (what sendPackets sends) and TCP coalescing (what write(bare) hands the kernel).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { addon } from './addon.js';
import {
  F_NEEDS_CSUM,
  GSO_NONE,
  GSO_TCPV4,
  GSO_TCPV6,
  TCP_ACK,
  TCP_CWR,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  VNET_HDR_LEN,
  csumAdd,
  fold,
  ipv4Addr,
  ipv4HeaderOk,
  ipv6Addr,
  packBatch,
  payloadOf,
  pseudoSum,
  readVnet,
  superPacket,
  tcpChecksumOk,
  tcpPacket,
  unpackBatch,
  vnetHeader,
} from './test-packets.js';
import type { TcpSpec } from './test-packets.js';

const MSS = 1400;
const OUT_BYTES = 4 * 1024 * 1024;

function split(pkt: Buffer): Buffer[] | -1 {
  const out = Buffer.alloc(OUT_BYTES);
  const offs = new Int32Array(2 * 256);
  const n = addon.splitForTest(pkt, out, offs);
  return n < 0 ? -1 : unpackBatch(out, offs, n);
}

function splitOk(pkt: Buffer): Buffer[] {
  const segs = split(pkt);
  if (segs === -1) throw new Error('split refused a valid packet');
  return segs;
}

function merge(pkts: readonly Buffer[]): Buffer[] {
  const { buf, offs } = packBatch(pkts);
  const out = Buffer.alloc(OUT_BYTES);
  const outOffs = new Int32Array(2 * 256);
  return unpackBatch(out, outOffs, addon.mergeForTest(buf, offs, pkts.length, out, outOffs));
}

const flowV4 = { src: ipv4Addr('10.1.0.1'), dst: ipv4Addr('10.2.0.1'), sport: 40000, dport: 5201 };
const flowV6 = { src: ipv6Addr('fd00:1::1'), dst: ipv6Addr('fd00:2::1'), sport: 40000, dport: 5201 };

function bulk(flow: Pick<TcpSpec, 'src' | 'dst' | 'sport' | 'dport'>, payload: Buffer, seq = 0xfffff000): TcpSpec {
  // seq near 2^32: segment numbers wrap inside the super-packet.
  return { ...flow, seq, ack: 77, flags: TCP_ACK | TCP_PSH, payload, tsval: 123456, id: 0xfff0 };
}

/** One TCP segment of a flow, for the merge tests. */
function seg(seq: number, len: number, flags = TCP_ACK, flow = flowV4, extra: Partial<TcpSpec> = {}): Buffer {
  return tcpPacket({ ...flow, seq, ack: 5, flags, payload: randomBytes(len), tsval: 99, ...extra });
}

describe.each([
  ['IPv4', flowV4, GSO_TCPV4, 20],
  ['IPv6', flowV6, GSO_TCPV6, 40],
])('split and merge over %s', (_name, flow, gsoType, iphl) => {
  const payload = randomBytes(45 * MSS - 333); // 44 full segments and a short one
  const spec = bulk(flow, payload);
  const segs = splitOk(superPacket(spec, MSS));

  it('cuts a super-packet into gso_size segments with verified headers and checksums', () => {
    expect(segs).toHaveLength(45);
    segs.forEach((s, i) => {
      const last = i === segs.length - 1;
      expect(tcpChecksumOk(s)).toBe(true);
      if (iphl === 20) {
        expect(ipv4HeaderOk(s)).toBe(true);
        expect(s.readUInt16BE(2)).toBe(s.length);
        expect(s.readUInt16BE(4)).toBe((0xfff0 + i) & 0xffff);
      } else {
        expect(s.readUInt16BE(4)).toBe(s.length - 40);
      }
      expect(s.readUInt32BE(iphl + 4)).toBe((spec.seq + i * MSS) >>> 0);
      expect(payloadOf(s).length).toBe(last ? MSS - 333 : MSS);
      expect((s[iphl + 13] ?? 0) & TCP_PSH).toBe(last ? TCP_PSH : 0);
    });
    expect(Buffer.concat(segs.map(payloadOf)).equals(payload)).toBe(true);
  });

  it('merges the segments back into one super-packet the kernel can re-split', () => {
    const merged = merge(segs);
    expect(merged).toHaveLength(1);
    const m = merged[0] ?? Buffer.alloc(0);
    const v = readVnet(m);
    expect(v).toEqual({
      flags: F_NEEDS_CSUM,
      gsoType,
      hdrLen: iphl + 32,
      gsoSize: MSS,
      csumStart: iphl,
      csumOffset: 16,
    });
    const ip = m.subarray(VNET_HDR_LEN);
    if (iphl === 20) {
      expect(ip.readUInt16BE(2)).toBe(ip.length);
      expect(ipv4HeaderOk(ip)).toBe(true);
    } else {
      expect(ip.readUInt16BE(4)).toBe(ip.length - 40);
    }
    // Partial checksum: the folded, not complemented, pseudo-header sum of the whole TCP length.
    expect(ip.readUInt16BE(iphl + 16)).toBe(fold(pseudoSum(ip, ip.length - iphl)));
    expect((ip[iphl + 13] ?? 0) & TCP_PSH).toBe(TCP_PSH);
    expect(payloadOf(ip).equals(payload)).toBe(true);
    // What the kernel would do with it: finishing the checksum makes the whole packet verify...
    const finished = Buffer.from(ip);
    finished.writeUInt16BE(0xffff - fold(csumAdd(finished, iphl, finished.length)), iphl + 16);
    expect(tcpChecksumOk(finished)).toBe(true);
    // ...and segmenting it again gives back exactly the segments we started from.
    const again = splitOk(m);
    expect(again.length).toBe(segs.length);
    again.forEach((s, i) => expect(s.equals(segs[i] ?? Buffer.alloc(0))).toBe(true));
  });
});

describe('split', () => {
  it('keeps FIN and PSH on the last segment and CWR on the first only', () => {
    const spec = { ...bulk(flowV4, randomBytes(3 * MSS)), flags: TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR };
    const segs = splitOk(superPacket(spec, MSS));
    expect(segs.map((s) => s[33])).toEqual([TCP_ACK | TCP_CWR, TCP_ACK, TCP_ACK | TCP_PSH | TCP_FIN]);
  });

  it('finishes the partial checksum of a packet that is not a super-packet', () => {
    const p = tcpPacket({ ...flowV4, seq: 1, ack: 2, flags: TCP_ACK, payload: randomBytes(7) });
    p.writeUInt16BE(fold(pseudoSum(p, p.length - 20)), 36);
    const v = vnetHeader({ flags: F_NEEDS_CSUM, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 20, csumOffset: 16 });
    const segs = splitOk(Buffer.concat([v, p]));
    expect(segs).toHaveLength(1);
    expect(tcpChecksumOk(segs[0] ?? Buffer.alloc(0))).toBe(true);
  });

  it('refuses malformed packets', () => {
    const good = superPacket(bulk(flowV4, randomBytes(3000)), MSS);
    const udp = Buffer.from(good);
    udp[VNET_HDR_LEN + 9] = 17; // GSO TCPV4 claimed on a UDP packet
    const v6claim = Buffer.from(good);
    v6claim[1] = GSO_TCPV6;
    const badCsum = Buffer.from(good);
    badCsum.writeUInt16LE(60000, 6); // csum_start past the end
    badCsum[1] = GSO_NONE;
    for (const bad of [good.subarray(0, 45), udp, v6claim, badCsum, randomBytes(5), Buffer.alloc(100)]) {
      expect(split(bad)).toBe(-1);
    }
  });
});

describe('merge', () => {
  it('merges a run, keeps the shorter last segment, refuses anything after it', () => {
    const pkts = [seg(1000, 500), seg(1500, 500), seg(2000, 200), seg(2200, 500)];
    const merged = merge(pkts);
    expect(merged).toHaveLength(2);
    expect(readVnet(merged[0] ?? Buffer.alloc(0)).gsoSize).toBe(500);
    expect(readVnet(merged[1] ?? Buffer.alloc(0)).gsoType).toBe(GSO_NONE);
  });

  it('refuses a gap in sequence numbers', () => {
    expect(merge([seg(1000, 500), seg(1500, 500), seg(2500, 500)]).map((p) => p[1])).toEqual([GSO_TCPV4, GSO_NONE]);
  });

  it.each([
    ['SYN', TCP_SYN | TCP_ACK],
    ['FIN', TCP_FIN | TCP_ACK],
    ['RST', TCP_RST | TCP_ACK],
    ['CWR', TCP_CWR | TCP_ACK],
  ])('does not merge across a %s', (_name, flags) => {
    const out = merge([seg(0, 100), seg(100, 100, flags), seg(200, 100), seg(300, 100)]);
    expect(out.map((p) => p[1])).toEqual([GSO_NONE, GSO_NONE, GSO_TCPV4]);
  });

  it('ends a run at PSH', () => {
    const out = merge([seg(0, 100), seg(100, 100, TCP_ACK | TCP_PSH), seg(200, 100), seg(300, 100)]);
    expect(out.map((p) => p[1])).toEqual([GSO_TCPV4, GSO_TCPV4]);
  });

  it('keeps different flows apart', () => {
    const other = { ...flowV4, sport: 40001 };
    const out = merge([seg(0, 100), seg(0, 100, TCP_ACK, other), seg(100, 100), seg(100, 100, TCP_ACK, other)]);
    expect(out.map((p) => p[1])).toEqual([GSO_NONE, GSO_NONE, GSO_NONE, GSO_NONE]);
    const v6 = merge([seg(0, 100), seg(100, 100, TCP_ACK, flowV6)]);
    expect(v6.map((p) => p[1])).toEqual([GSO_NONE, GSO_NONE]);
  });

  it.each([
    ['TTL', { ttl: 3 }],
    ['ack number', { ack: 6 }],
    ['window', { window: 9 }],
    ['timestamp option', { tsval: 100 }],
  ])('does not merge when the %s differs', (_name, extra) => {
    const out = merge([seg(0, 100), seg(100, 100, TCP_ACK, flowV4, extra)]);
    expect(out.map((p) => p[1])).toEqual([GSO_NONE, GSO_NONE]);
  });

  it('does not merge a segment whose checksum is wrong (the kernel would trust it)', () => {
    const bad = seg(100, 100);
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0xff;
    const out = merge([seg(0, 100), bad]);
    expect(out.map((p) => p[1])).toEqual([GSO_NONE, GSO_NONE]);
    expect(out[1]?.subarray(VNET_HDR_LEN).equals(bad)).toBe(true); // untouched: the kernel drops it
  });

  it('stops at 64 segments and at 64 KiB', () => {
    const small = Array.from({ length: 100 }, (_, i) => seg(i * 100, 100));
    expect(merge(small).map((p) => readVnet(p).gsoType)).toEqual([GSO_TCPV4, GSO_TCPV4]);
    expect(merge(small).map((p) => p.length - VNET_HDR_LEN - 52)).toEqual([6400, 3600]);
    const big = Array.from({ length: 50 }, (_, i) => seg(i * MSS, MSS));
    const out = merge(big);
    expect(out).toHaveLength(2);
    for (const p of out) expect(p.length - VNET_HDR_LEN).toBeLessThanOrEqual(65535);
    expect(Buffer.concat(out.map((p) => payloadOf(p.subarray(VNET_HDR_LEN)))).equals(Buffer.concat(big.map(payloadOf)))).toBe(
      true,
    );
  });

  it('passes other packets through alone behind an all-zero header', () => {
    const ack = seg(0, 0);
    const junk = randomBytes(30);
    const out = merge([ack, junk]);
    expect(out).toHaveLength(2);
    expect(out[0]?.subarray(0, VNET_HDR_LEN).equals(Buffer.alloc(VNET_HDR_LEN))).toBe(true);
    expect(out[1]?.subarray(VNET_HDR_LEN).equals(junk)).toBe(true);
  });
});
