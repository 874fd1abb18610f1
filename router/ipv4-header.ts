/** IPv4 header (RFC 791) read and patched in place. Offsets are from the start of the header. */
import { updateChecksum16 } from './checksum.js';
import { DropReason } from '../core/drop-reason.js';
import { IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP, PARSE_OK } from './packet-view.js';
import type { PacketView, ParseResult } from './packet-view.js';

export const IPV4_MIN_HEADER_LEN = 20;
export const IPV4_OFFSET_VERSION_IHL = 0;
export const IPV4_OFFSET_TOS = 1;
export const IPV4_OFFSET_TOTAL_LEN = 2;
export const IPV4_OFFSET_ID = 4;
export const IPV4_OFFSET_FLAGS_FRAG = 6;
export const IPV4_OFFSET_TTL = 8;
export const IPV4_OFFSET_PROTOCOL = 9;
export const IPV4_OFFSET_CHECKSUM = 10;
export const IPV4_OFFSET_SRC = 12;
export const IPV4_OFFSET_DST = 16;

export const IPV4_FLAG_DF = 0x4000;
export const IPV4_FLAG_MF = 0x2000;
export const IPV4_FRAG_OFFSET_MASK = 0x1fff;

const TCP_OFFSET_DATA_OFFSET = 12;
const TCP_MIN_HEADER_LEN = 20;
const UDP_HEADER_LEN = 8;

/** Reads a big-endian u16; caller has checked bounds. */
export function readU16(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

/** Reads a big-endian u32 as an unsigned number; caller has checked bounds. */
export function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export function writeU16(buf: Uint8Array, off: number, value: number): void {
  buf[off] = (value >>> 8) & 0xff;
  buf[off + 1] = value & 0xff;
}

export function writeU32(buf: Uint8Array, off: number, value: number): void {
  buf[off] = (value >>> 24) & 0xff;
  buf[off + 1] = (value >>> 16) & 0xff;
  buf[off + 2] = (value >>> 8) & 0xff;
  buf[off + 3] = value & 0xff;
}

/**
 * Parses the IPv4 packet at `buf[off..off+len)` into `view` (borrowed buffer).
 * Malformed: shorter than 20 bytes, version not 4, IHL < 5, header longer than captured,
 * total length below the header or beyond what was captured.
 */
export function parseIpv4(buf: Uint8Array, off: number, len: number, view: PacketView): ParseResult {
  view.reset();
  if (len < IPV4_MIN_HEADER_LEN) return DropReason.Malformed;
  const versionIhl = buf[off + IPV4_OFFSET_VERSION_IHL]!;
  if (versionIhl >> 4 !== 4) return DropReason.Malformed;
  const headerLen = (versionIhl & 0x0f) * 4;
  if (headerLen < IPV4_MIN_HEADER_LEN || headerLen > len) return DropReason.Malformed;
  const totalLen = readU16(buf, off + IPV4_OFFSET_TOTAL_LEN);
  if (totalLen < headerLen || totalLen > len) return DropReason.Malformed;
  const flagsFrag = readU16(buf, off + IPV4_OFFSET_FLAGS_FRAG);
  const fragOffsetBytes = (flagsFrag & IPV4_FRAG_OFFSET_MASK) * 8;
  const protocol = buf[off + IPV4_OFFSET_PROTOCOL]!;
  const l4Off = off + headerLen;
  const l4Len = totalLen - headerLen;

  view.version = 4;
  view.ipOff = off;
  view.capturedLen = len;
  view.headerLen = headerLen;
  view.totalLen = totalLen;
  view.protocol = protocol;
  view.l4Off = l4Off;
  view.ttl = buf[off + IPV4_OFFSET_TTL]!;
  view.srcOff = off + IPV4_OFFSET_SRC;
  view.dstOff = off + IPV4_OFFSET_DST;
  view.src4 = readU32(buf, off + IPV4_OFFSET_SRC);
  view.dst4 = readU32(buf, off + IPV4_OFFSET_DST);
  view.moreFragments = (flagsFrag & IPV4_FLAG_MF) !== 0;
  view.dontFragment = (flagsFrag & IPV4_FLAG_DF) !== 0;
  view.fragOffsetBytes = fragOffsetBytes;
  view.isFragment = view.moreFragments || fragOffsetBytes !== 0;
  if (fragOffsetBytes === 0) readL4(buf, protocol, l4Off, l4Len, IP_PROTO_ICMP, view);
  return PARSE_OK;
}

/**
 * Fills the upper-layer fields (ICMP type, TCP/UDP header length) from the first fragment.
 * A short or odd L4 header is not the router's business: the fields stay unknown.
 */
export function readL4(
  buf: Uint8Array,
  protocol: number,
  l4Off: number,
  l4Len: number,
  icmpProtocol: number,
  view: PacketView,
): void {
  if (protocol === icmpProtocol) {
    if (l4Len >= 1) view.icmpType = buf[l4Off]!;
  } else if (protocol === IP_PROTO_TCP) {
    if (l4Len >= TCP_MIN_HEADER_LEN) {
      const dataOffset = (buf[l4Off + TCP_OFFSET_DATA_OFFSET]! >> 4) * 4;
      if (dataOffset >= TCP_MIN_HEADER_LEN && dataOffset <= l4Len) view.l4HeaderLen = dataOffset;
    }
  } else if (protocol === IP_PROTO_UDP) {
    if (l4Len >= UDP_HEADER_LEN) view.l4HeaderLen = UDP_HEADER_LEN;
  }
}

/**
 * Decrements the TTL of the IPv4 header at `off` and patches the header checksum
 * incrementally (RFC 1624). The header checksum stays complete even with virtio NEEDS_CSUM
 * (only the L4 checksum is partial). Caller checked TTL > 1. Borrowed buffer, patched in place.
 */
export function decrementIpv4Ttl(buf: Uint8Array, off: number): void {
  const ttl = buf[off + IPV4_OFFSET_TTL]!;
  const protocol = buf[off + IPV4_OFFSET_PROTOCOL]!;
  const oldWord = (ttl << 8) | protocol;
  const newWord = ((ttl - 1) << 8) | protocol;
  buf[off + IPV4_OFFSET_TTL] = ttl - 1;
  const checksum = readU16(buf, off + IPV4_OFFSET_CHECKSUM);
  writeU16(buf, off + IPV4_OFFSET_CHECKSUM, updateChecksum16(checksum, oldWord, newWord));
}
