/**
 * Hand-built TCP/IP packets and an independent checksum verifier (plain JS, big-endian words)
 * for the addon's tests: the C code must agree with this, not with itself.
 */
export const VNET_HDR_LEN = 10;
export const F_NEEDS_CSUM = 1;
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_TCPV6 = 4;
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_CWR = 0x80;

/** One's complement sum of big-endian 16-bit words of buf[start, end). */
export function csumAdd(buf: Uint8Array, start: number, end: number, sum = 0): number {
  let s = sum;
  for (let i = start; i + 1 < end; i += 2) s += ((buf[i] ?? 0) << 8) | (buf[i + 1] ?? 0);
  if ((end - start) % 2 === 1) s += (buf[end - 1] ?? 0) << 8;
  return s;
}

export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

export function ipv4Addr(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

export function ipv6Addr(text: string): Buffer {
  const [head = '', tail = ''] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : text.includes('::') ? tail.split(':') : [];
  const groups = [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

export interface TcpSpec {
  src: Buffer; // 4 bytes: IPv4, 16 bytes: IPv6
  dst: Buffer;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  payload: Buffer;
  window?: number;
  id?: number;
  ttl?: number;
  /** Adds a 12-byte timestamp option (NOP NOP TS) with this TSval. */
  tsval?: number;
}

export function isV6(pkt: Buffer): boolean {
  return (pkt[0] ?? 0) >> 4 === 6;
}

export function ipHeaderLen(pkt: Buffer): number {
  return isV6(pkt) ? 40 : ((pkt[0] ?? 0) & 15) * 4;
}

export function tcpHeaderLen(pkt: Buffer): number {
  return ((pkt[ipHeaderLen(pkt) + 12] ?? 0) >> 4) * 4;
}

/** Pseudo-header sum (not folded) for a TCP length of `tcpLen`. */
export function pseudoSum(pkt: Buffer, tcpLen: number): number {
  const v6 = isV6(pkt);
  const s = v6 ? csumAdd(pkt, 8, 40) : csumAdd(pkt, 12, 20);
  return s + 6 + (tcpLen & 0xffff) + Math.floor(tcpLen / 0x10000);
}

export function tcpChecksumOk(pkt: Buffer): boolean {
  const iphl = ipHeaderLen(pkt);
  return fold(csumAdd(pkt, iphl, pkt.length, pseudoSum(pkt, pkt.length - iphl))) === 0xffff;
}

export function ipv4HeaderOk(pkt: Buffer): boolean {
  return fold(csumAdd(pkt, 0, ipHeaderLen(pkt))) === 0xffff;
}

/** A plain packet with complete checksums. */
export function tcpPacket(spec: TcpSpec): Buffer {
  const v6 = spec.src.length === 16;
  const iphl = v6 ? 40 : 20;
  const tcphl = spec.tsval === undefined ? 20 : 32;
  const len = iphl + tcphl + spec.payload.length;
  const p = Buffer.alloc(len);
  if (v6) {
    p[0] = 0x60;
    p.writeUInt16BE(len - 40, 4);
    p[6] = 6;
    p[7] = spec.ttl ?? 64;
    spec.src.copy(p, 8);
    spec.dst.copy(p, 24);
  } else {
    p[0] = 0x45;
    p.writeUInt16BE(len, 2);
    p.writeUInt16BE(spec.id ?? 0x1234, 4);
    p[6] = 0x40; // DF
    p[8] = spec.ttl ?? 64;
    p[9] = 6;
    spec.src.copy(p, 12);
    spec.dst.copy(p, 16);
    p.writeUInt16BE(0xffff - fold(csumAdd(p, 0, 20)), 10);
  }
  const t = iphl;
  p.writeUInt16BE(spec.sport, t);
  p.writeUInt16BE(spec.dport, t + 2);
  p.writeUInt32BE(spec.seq >>> 0, t + 4);
  p.writeUInt32BE(spec.ack >>> 0, t + 8);
  p[t + 12] = (tcphl / 4) << 4;
  p[t + 13] = spec.flags;
  p.writeUInt16BE(spec.window ?? 502, t + 14);
  if (spec.tsval !== undefined) {
    p[t + 20] = 1;
    p[t + 21] = 1;
    p[t + 22] = 8;
    p[t + 23] = 10;
    p.writeUInt32BE(spec.tsval, t + 24);
    p.writeUInt32BE(7, t + 28);
  }
  spec.payload.copy(p, iphl + tcphl);
  p.writeUInt16BE(0xffff - fold(csumAdd(p, t, len, pseudoSum(p, len - t))), t + 16);
  return p;
}

export interface Vnet {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export function readVnet(buf: Buffer, off = 0): Vnet {
  return {
    flags: buf.readUInt8(off),
    gsoType: buf.readUInt8(off + 1),
    hdrLen: buf.readUInt16LE(off + 2),
    gsoSize: buf.readUInt16LE(off + 4),
    csumStart: buf.readUInt16LE(off + 6),
    csumOffset: buf.readUInt16LE(off + 8),
  };
}

export function vnetHeader(v: Vnet): Buffer {
  const b = Buffer.alloc(VNET_HDR_LEN);
  b.writeUInt8(v.flags, 0);
  b.writeUInt8(v.gsoType, 1);
  b.writeUInt16LE(v.hdrLen, 2);
  b.writeUInt16LE(v.gsoSize, 4);
  b.writeUInt16LE(v.csumStart, 6);
  b.writeUInt16LE(v.csumOffset, 8);
  return b;
}

/**
 * A TSO super-packet as the kernel hands it over a TUN with offloads: virtio header, one IP
 * header for the whole payload, the TCP checksum field holding only the pseudo-header sum.
 */
export function superPacket(spec: TcpSpec, gsoSize: number): Buffer {
  const p = tcpPacket(spec);
  const iphl = ipHeaderLen(p);
  p.writeUInt16BE(fold(pseudoSum(p, p.length - iphl)), iphl + 16);
  const v = vnetHeader({
    flags: F_NEEDS_CSUM,
    gsoType: isV6(p) ? GSO_TCPV6 : GSO_TCPV4,
    hdrLen: iphl + tcpHeaderLen(p),
    gsoSize,
    csumStart: iphl,
    csumOffset: 16,
  });
  return Buffer.concat([v, p]);
}

/** Packets laid end to end in one buffer, as a batch. */
/** The packets laid out in one buffer, each `headroom` (0xee filler) bytes after the previous, as a TUN read lays them. */
export function packBatch(pkts: readonly Buffer[], headroom = 0): { buf: Buffer; offs: Int32Array } {
  const buf = Buffer.concat(pkts.flatMap((p) => [Buffer.alloc(headroom, 0xee), p]));
  const offs = new Int32Array(pkts.length * 2);
  let off = 0;
  pkts.forEach((p, i) => {
    offs[2 * i] = off + headroom;
    offs[2 * i + 1] = p.length;
    off += headroom + p.length;
  });
  return { buf, offs };
}

/** The packets of a batch, copied out. */
export function unpackBatch(buf: Buffer, offs: Int32Array, count: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const off = offs[2 * i] ?? 0;
    out.push(Buffer.from(buf.subarray(off, off + (offs[2 * i + 1] ?? 0))));
  }
  return out;
}

export function payloadOf(pkt: Buffer): Buffer {
  return pkt.subarray(ipHeaderLen(pkt) + tcpHeaderLen(pkt));
}
