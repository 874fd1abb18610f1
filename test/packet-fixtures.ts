/**
 * Packets for tests. IPv4 with a 20-byte header comes from the npm `ip-packet` package; IPv6,
 * IPv4 with options, TCP, UDP and ICMP headers are built by hand. Helpers return fresh Buffers
 * (tests are not the hot path).
 */
import ipPacket from 'ip-packet';
import { parseAddress } from '../core/cidr.js';
import { finishChecksum, internetChecksum, sumWords } from '../router/checksum.js';
import { VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_HDR_LEN } from '../core/packet-batch.js';
import type { PacketBatch } from '../core/packet-batch.js';

export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMPV6 = 58;

export interface Ipv4Options {
  src: string;
  dst: string;
  protocol?: number;
  ttl?: number;
  payload?: Buffer;
  identification?: number;
  /** 3 bits: 0b010 = DF, 0b001 = MF. */
  flags?: number;
  /** In 8-byte units. */
  fragmentOffset?: number;
}

/** An IPv4 packet with a 20-byte header and a correct header checksum (ip-packet). */
export function ipv4(options: Ipv4Options): Buffer {
  const packet = {
    version: 4 as const,
    ttl: options.ttl ?? 64,
    protocol: options.protocol ?? PROTO_UDP,
    identification: options.identification ?? 0x1234,
    flags: options.flags ?? 0b010,
    fragmentOffset: options.fragmentOffset ?? 0,
    sourceIp: options.src,
    destinationIp: options.dst,
    data: options.payload ?? udp(40000, 53, Buffer.from('hello')),
  };
  const state = { start: 0, end: 0, buffer: Buffer.alloc(0) };
  ipPacket.preencode(state, packet);
  state.buffer = Buffer.alloc(state.end);
  ipPacket.encode(state, packet);
  ipPacket.checksum(state.buffer);
  return state.buffer;
}

/** An IPv4 packet whose header carries `optionsLen` bytes of NOP options (IHL > 5), by hand. */
export function ipv4WithOptions(options: Ipv4Options, optionsLen: number): Buffer {
  const plain = ipv4(options);
  const headerLen = 20 + optionsLen;
  const out = Buffer.alloc(plain.length + optionsLen);
  plain.copy(out, 0, 0, 20);
  out.fill(1, 20, headerLen);
  plain.copy(out, headerLen, 20);
  out[0] = 0x40 | (headerLen / 4);
  out.writeUInt16BE(out.length, 2);
  out.writeUInt16BE(0, 10);
  out.writeUInt16BE(internetChecksum(out, 0, headerLen), 10);
  return out;
}

export interface Ipv6Options {
  src: string;
  dst: string;
  nextHeader?: number;
  hopLimit?: number;
  /** May begin with extension headers; `nextHeader` then names the first. */
  payload?: Buffer;
}

/** An IPv6 packet by hand: fixed header + payload (which may begin with extension headers). */
export function ipv6(options: Ipv6Options): Buffer {
  const payload = options.payload ?? udp(40000, 53, Buffer.from('hello'));
  const out = Buffer.alloc(40 + payload.length);
  out.writeUInt32BE(0x60000000, 0);
  out.writeUInt16BE(payload.length, 4);
  out[6] = options.nextHeader ?? PROTO_UDP;
  out[7] = options.hopLimit ?? 64;
  Buffer.from(parseAddress(options.src).bytes).copy(out, 8);
  Buffer.from(parseAddress(options.dst).bytes).copy(out, 24);
  payload.copy(out, 40);
  return out;
}

/** An IPv6 extension header (hop-by-hop, routing, dest options): `len8` 8-octet units in all. */
export function ipv6ExtHeader(nextHeader: number, len8: number): Buffer {
  const out = Buffer.alloc(len8 * 8);
  out[0] = nextHeader;
  out[1] = len8 - 1;
  return out;
}

/** An IPv6 fragment header: offset in bytes (multiple of 8), more-fragments flag. */
export function ipv6FragmentHeader(nextHeader: number, offsetBytes: number, more: boolean, id = 0xabcd): Buffer {
  const out = Buffer.alloc(8);
  out[0] = nextHeader;
  out.writeUInt16BE((offsetBytes & 0xfff8) | (more ? 1 : 0), 2);
  out.writeUInt32BE(id, 4);
  return out;
}

/** A UDP datagram (checksum left 0: the router does not look at it). */
export function udp(srcPort: number, dstPort: number, data: Buffer): Buffer {
  const out = Buffer.alloc(8 + data.length);
  out.writeUInt16BE(srcPort, 0);
  out.writeUInt16BE(dstPort, 2);
  out.writeUInt16BE(out.length, 4);
  data.copy(out, 8);
  return out;
}

/** A TCP segment with a 20-byte header (+ `optionsLen` bytes of NOPs), ACK set, checksum 0. */
export function tcp(srcPort: number, dstPort: number, data: Buffer, optionsLen = 0): Buffer {
  const headerLen = 20 + optionsLen;
  const out = Buffer.alloc(headerLen + data.length);
  out.writeUInt16BE(srcPort, 0);
  out.writeUInt16BE(dstPort, 2);
  out.writeUInt32BE(1000, 4);
  out.writeUInt32BE(2000, 8);
  out[12] = (headerLen / 4) << 4;
  out[13] = 0x10;
  out.writeUInt16BE(65535, 14);
  out.fill(1, 20, headerLen);
  data.copy(out, headerLen);
  return out;
}

/** An ICMPv4 message with a correct checksum (echo request by default). */
export function icmpv4(type = 8, code = 0, rest = Buffer.from([0, 1, 0, 1, 1, 2, 3, 4])): Buffer {
  const out = Buffer.alloc(4 + rest.length);
  out[0] = type;
  out[1] = code;
  rest.copy(out, 4);
  out.writeUInt16BE(internetChecksum(out, 0, out.length), 2);
  return out;
}

/** An ICMPv6 message (checksum needs the pseudo-header: see icmpv6Checksum). */
export function icmpv6(type = 128, code = 0, rest = Buffer.from([0, 1, 0, 1, 1, 2, 3, 4])): Buffer {
  const out = Buffer.alloc(4 + rest.length);
  out[0] = type;
  out[1] = code;
  rest.copy(out, 4);
  return out;
}

/** An IPv6 packet carrying ICMPv6 with a correct checksum. */
export function ipv6Icmp(src: string, dst: string, type = 128, code = 0, hopLimit = 64): Buffer {
  const packet = ipv6({ src, dst, nextHeader: PROTO_ICMPV6, hopLimit, payload: icmpv6(type, code) });
  packet.writeUInt16BE(icmpv6Checksum(packet, 40, packet.length - 40), 42);
  return packet;
}

/** ICMPv6 checksum of `packet[off..off+len)` (checksum field zero) with the IPv6 pseudo-header. */
export function icmpv6Checksum(packet: Buffer, off: number, len: number): number {
  let sum = sumWords(packet, 8, 32, 0);
  sum += len + PROTO_ICMPV6;
  return finishChecksum(sumWords(packet, off, len, sum));
}

export interface VnetOptions {
  flags?: number;
  gsoType?: number;
  hdrLen?: number;
  gsoSize?: number;
  csumStart?: number;
  csumOffset?: number;
}

/** A TUN frame: the 10-byte virtio header (little endian, as the kernel writes it) + the IP packet. */
export function withVnetHdr(packet: Buffer, options: VnetOptions = {}): Buffer {
  const out = Buffer.alloc(VNET_HDR_LEN + packet.length);
  out[0] = options.flags ?? 0;
  out[1] = options.gsoType ?? VNET_GSO_NONE;
  out.writeUInt16LE(options.hdrLen ?? 0, 2);
  out.writeUInt16LE(options.gsoSize ?? 0, 4);
  out.writeUInt16LE(options.csumStart ?? 0, 6);
  out.writeUInt16LE(options.csumOffset ?? 0, 8);
  packet.copy(out, VNET_HDR_LEN);
  return out;
}

export { VNET_F_NEEDS_CSUM };

/**
 * The packets laid end to end in one buffer as a PacketBatch, with `gapBytes` of 0xee filler
 * before each (so offsets are not simply cumulative), and an `idx` selecting all of them.
 */
export function batchOf(packets: Buffer[], gapBytes = 0): { batch: PacketBatch; idx: Int32Array } {
  const buf = Buffer.concat(packets.flatMap((p) => [Buffer.alloc(gapBytes, 0xee), p]));
  const offs = new Int32Array(2 * packets.length);
  let at = 0;
  packets.forEach((p, i) => {
    offs[2 * i] = at + gapBytes;
    offs[2 * i + 1] = p.length;
    at += gapBytes + p.length;
  });
  return { batch: { buf, offs, count: packets.length, headroom: 0 }, idx: Int32Array.from(packets.keys()) };
}
