/**
 * IPv6 header (RFC 8200) read in place, walking the extension headers a router must step over
 * to find the upper layer: hop-by-hop, routing, fragment, destination options (bounded).
 */
import { DropReason } from '../core/drop-reason.js';
import { readL4, readU16 } from './ipv4-header.js';
import { IP_PROTO_ICMPV6, PARSE_OK } from './packet-view.js';
import type { PacketView, ParseResult } from './packet-view.js';

export const IPV6_HEADER_LEN = 40;
export const IPV6_OFFSET_VERSION = 0;
export const IPV6_OFFSET_PAYLOAD_LEN = 4;
export const IPV6_OFFSET_NEXT_HEADER = 6;
export const IPV6_OFFSET_HOP_LIMIT = 7;
export const IPV6_OFFSET_SRC = 8;
export const IPV6_OFFSET_DST = 24;
export const IPV6_ADDR_LEN = 16;

export const IPV6_EXT_HOP_BY_HOP = 0;
export const IPV6_EXT_ROUTING = 43;
export const IPV6_EXT_FRAGMENT = 44;
export const IPV6_EXT_DEST_OPTIONS = 60;

/** Extension headers (next header, length in 8-octet units past the first 8). */
const EXT_OFFSET_NEXT_HEADER = 0;
const EXT_OFFSET_LEN = 1;
const EXT_MIN_LEN = 8;
/** Fragment header: offset (13 bits, 8-octet units) << 3 | M flag. */
const FRAG_HEADER_LEN = 8;
const FRAG_OFFSET_OFFSET_FLAGS = 2;
const FRAG_OFFSET_MASK = 0xfff8;
const FRAG_FLAG_M = 0x0001;

/** More extension headers than this and the packet is refused: bounded work per packet. */
export const IPV6_MAX_EXT_HEADERS = 8;

/**
 * Parses the IPv6 packet at `buf[off..off+len)` into `view` (borrowed buffer).
 * Malformed: shorter than 40 bytes, version not 6, payload length beyond what was captured,
 * an extension header running past the payload, or more than IPV6_MAX_EXT_HEADERS of them.
 * Jumbograms (payload length 0 with a jumbo option) are refused as malformed.
 */
export function parseIpv6(buf: Uint8Array, off: number, len: number, view: PacketView): ParseResult {
  view.reset();
  if (len < IPV6_HEADER_LEN) return DropReason.Malformed;
  if (buf[off + IPV6_OFFSET_VERSION]! >> 4 !== 6) return DropReason.Malformed;
  const totalLen = IPV6_HEADER_LEN + readU16(buf, off + IPV6_OFFSET_PAYLOAD_LEN);
  if (totalLen > len) return DropReason.Malformed;

  const end = off + totalLen;
  let nextHeader = buf[off + IPV6_OFFSET_NEXT_HEADER]!;
  let pos = off + IPV6_HEADER_LEN;
  let headers = 0;
  let upperLayerHere = true;
  for (;;) {
    if (
      nextHeader === IPV6_EXT_HOP_BY_HOP ||
      nextHeader === IPV6_EXT_ROUTING ||
      nextHeader === IPV6_EXT_DEST_OPTIONS
    ) {
      if (++headers > IPV6_MAX_EXT_HEADERS || pos + EXT_MIN_LEN > end) return DropReason.Malformed;
      const extLen = (buf[pos + EXT_OFFSET_LEN]! + 1) * 8;
      if (pos + extLen > end) return DropReason.Malformed;
      nextHeader = buf[pos + EXT_OFFSET_NEXT_HEADER]!;
      pos += extLen;
    } else if (nextHeader === IPV6_EXT_FRAGMENT) {
      if (++headers > IPV6_MAX_EXT_HEADERS || pos + FRAG_HEADER_LEN > end) return DropReason.Malformed;
      const offsetFlags = readU16(buf, pos + FRAG_OFFSET_OFFSET_FLAGS);
      view.isFragment = true;
      view.fragOffsetBytes = offsetFlags & FRAG_OFFSET_MASK;
      view.moreFragments = (offsetFlags & FRAG_FLAG_M) !== 0;
      nextHeader = buf[pos + EXT_OFFSET_NEXT_HEADER]!;
      pos += FRAG_HEADER_LEN;
      // A later fragment carries payload bytes, not headers: stop walking.
      if (view.fragOffsetBytes !== 0) {
        upperLayerHere = false;
        break;
      }
    } else {
      break;
    }
  }

  view.version = 6;
  view.ipOff = off;
  view.capturedLen = len;
  view.headerLen = IPV6_HEADER_LEN;
  view.totalLen = totalLen;
  view.protocol = nextHeader;
  view.l4Off = pos;
  view.ttl = buf[off + IPV6_OFFSET_HOP_LIMIT]!;
  view.srcOff = off + IPV6_OFFSET_SRC;
  view.dstOff = off + IPV6_OFFSET_DST;
  if (upperLayerHere) readL4(buf, nextHeader, pos, end - pos, IP_PROTO_ICMPV6, view);
  return PARSE_OK;
}

/** Decrements the hop limit of the IPv6 header at `off` in place (no header checksum in IPv6). */
export function decrementIpv6HopLimit(buf: Uint8Array, off: number): void {
  buf[off + IPV6_OFFSET_HOP_LIMIT] = buf[off + IPV6_OFFSET_HOP_LIMIT]! - 1;
}
