/**
 * ICMP errors the router sends back into the device about packets it cannot forward:
 * no route, TTL / hop limit exceeded, too big for the tunnel. They are built in a scratch batch
 * owned by `IcmpErrorWriter` and written to the device once per batch.
 *
 * Never sent (RFC 1812 4.3.2.7, RFC 4443 2.4 e): about an ICMP error, about a non-first
 * fragment, to an unspecified / multicast / broadcast (/ loopback) source, about a packet sent
 * to a multicast or broadcast destination (ICMPv6 packet-too-big excepted). Generation is
 * rate-limited by a token bucket so floods do not amplify.
 */
import { internetChecksum, finishChecksum, sumWords } from './checksum.js';
import { IPV4_MIN_HEADER_LEN, writeU16, writeU32 } from './ipv4-header.js';
import { IPV6_ADDR_LEN, IPV6_HEADER_LEN } from './ipv6-header.js';
import type { PacketBatch } from '../core/packet-batch.js';
import type { PacketDevice } from '../core/packet-device.js';
import { IP_PROTO_ICMP, IP_PROTO_ICMPV6 } from './packet-view.js';
import type { PacketView } from './packet-view.js';
import { TokenBucket } from './token-bucket.js';

export const ICMP_HEADER_LEN = 8;
export const ICMP_OFFSET_TYPE = 0;
export const ICMP_OFFSET_CODE = 1;
export const ICMP_OFFSET_CHECKSUM = 2;
/** Rest of header: unused, or (IPv4 frag needed) next-hop MTU in the low 16 bits, (IPv6 too big) MTU. */
export const ICMP_OFFSET_REST = 4;
export const ICMPV4_OFFSET_NEXT_HOP_MTU = 6;

export const ICMPV4_DEST_UNREACHABLE = 3;
export const ICMPV4_SOURCE_QUENCH = 4;
export const ICMPV4_REDIRECT = 5;
export const ICMPV4_TIME_EXCEEDED = 11;
export const ICMPV4_PARAMETER_PROBLEM = 12;
export const ICMPV4_CODE_NET_UNREACHABLE = 0;
export const ICMPV4_CODE_FRAG_NEEDED = 4;
export const ICMPV4_CODE_TTL_EXCEEDED = 0;

export const ICMPV6_DEST_UNREACHABLE = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_CODE_NO_ROUTE = 0;
export const ICMPV6_CODE_HOP_LIMIT_EXCEEDED = 0;
/** ICMPv6 types below this are errors. */
export const ICMPV6_FIRST_INFO_TYPE = 128;

/** Largest error built: RFC 1812 (IPv4) and RFC 4443 (IPv6, the minimum MTU). */
export const ICMPV4_ERROR_MAX_LEN = 576;
export const ICMPV6_ERROR_MAX_LEN = 1280;

const ERROR_TTL = 64;
const IPV4_TOS_INTERNETWORK_CONTROL = 0xc0;

/** Why the router is answering. */
export const enum IcmpErrorKind {
  NoRoute = 0,
  TimeExceeded = 1,
  TooBig = 2,
}

/** Whether an ICMP error may be sent about the parsed packet (borrowed buffer). */
export function icmpErrorAllowed(buf: Uint8Array, view: PacketView, kind: IcmpErrorKind): boolean {
  if (view.fragOffsetBytes !== 0) return false;
  if (view.version === 4) {
    if (view.protocol === IP_PROTO_ICMP && isIcmpv4ErrorOrUnknown(view.icmpType)) return false;
    const src = view.src4;
    const srcTop = src >>> 24;
    if (src === 0 || srcTop === 127 || srcTop >= 224) return false;
    if (view.dst4 >>> 24 >= 224) return false;
    return true;
  }
  if (view.version === 6) {
    if (view.protocol === IP_PROTO_ICMPV6 && (view.icmpType < 0 || view.icmpType < ICMPV6_FIRST_INFO_TYPE)) return false;
    if (buf[view.srcOff] === 0xff || isUnspecified6(buf, view.srcOff)) return false;
    if (buf[view.dstOff] === 0xff && kind !== IcmpErrorKind.TooBig) return false;
    return true;
  }
  return false;
}

function isIcmpv4ErrorOrUnknown(type: number): boolean {
  return (
    type < 0 ||
    type === ICMPV4_DEST_UNREACHABLE ||
    type === ICMPV4_SOURCE_QUENCH ||
    type === ICMPV4_REDIRECT ||
    type === ICMPV4_TIME_EXCEEDED ||
    type === ICMPV4_PARAMETER_PROBLEM
  );
}

function isUnspecified6(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < IPV6_ADDR_LEN; i++) if (buf[off + i] !== 0) return false;
  return true;
}

/**
 * Writes an ICMPv4 error about the packet in `view` at `out[outOff..)` and returns its length:
 * a 20-byte IPv4 header from `src4` to the packet's source, the ICMP header (`restWord` in its
 * last 4 bytes: the next-hop MTU for frag-needed, else 0), then as much of the original packet
 * as fits in 576 bytes. `buf` is borrowed; `out` needs ICMPV4_ERROR_MAX_LEN bytes of room.
 */
export function writeIcmpv4Error(
  out: Buffer,
  outOff: number,
  buf: Buffer,
  view: PacketView,
  type: number,
  code: number,
  restWord: number,
  src4: number,
): number {
  const quoteLen = Math.min(view.totalLen, ICMPV4_ERROR_MAX_LEN - IPV4_MIN_HEADER_LEN - ICMP_HEADER_LEN);
  const icmpLen = ICMP_HEADER_LEN + quoteLen;
  const totalLen = IPV4_MIN_HEADER_LEN + icmpLen;
  const o = outOff;
  out[o] = 0x45;
  out[o + 1] = IPV4_TOS_INTERNETWORK_CONTROL;
  writeU16(out, o + 2, totalLen);
  writeU32(out, o + 4, 0);
  out[o + 8] = ERROR_TTL;
  out[o + 9] = IP_PROTO_ICMP;
  writeU16(out, o + 10, 0);
  writeU32(out, o + 12, src4);
  buf.copy(out, o + 16, view.srcOff, view.srcOff + 4);
  writeU16(out, o + 10, internetChecksum(out, o, IPV4_MIN_HEADER_LEN));

  const icmp = o + IPV4_MIN_HEADER_LEN;
  out[icmp + ICMP_OFFSET_TYPE] = type;
  out[icmp + ICMP_OFFSET_CODE] = code;
  writeU16(out, icmp + ICMP_OFFSET_CHECKSUM, 0);
  writeU32(out, icmp + ICMP_OFFSET_REST, restWord);
  buf.copy(out, icmp + ICMP_HEADER_LEN, view.ipOff, view.ipOff + quoteLen);
  writeU16(out, icmp + ICMP_OFFSET_CHECKSUM, internetChecksum(out, icmp, icmpLen));
  return totalLen;
}

/**
 * Writes an ICMPv6 error about the packet in `view` at `out[outOff..)` and returns its length:
 * an IPv6 header from `src6` (16 bytes, borrowed) to the packet's source, the ICMPv6 header
 * (`restWord`: the MTU for packet-too-big, else 0), then as much of the original packet as fits
 * in 1280 bytes. Checksum over the pseudo-header. `out` needs ICMPV6_ERROR_MAX_LEN bytes of room.
 */
export function writeIcmpv6Error(
  out: Buffer,
  outOff: number,
  buf: Buffer,
  view: PacketView,
  type: number,
  code: number,
  restWord: number,
  src6: Uint8Array,
): number {
  const quoteLen = Math.min(view.totalLen, ICMPV6_ERROR_MAX_LEN - IPV6_HEADER_LEN - ICMP_HEADER_LEN);
  const icmpLen = ICMP_HEADER_LEN + quoteLen;
  const o = outOff;
  writeU32(out, o, 0x60000000);
  writeU16(out, o + 4, icmpLen);
  out[o + 6] = IP_PROTO_ICMPV6;
  out[o + 7] = ERROR_TTL;
  out.set(src6, o + 8);
  buf.copy(out, o + 24, view.srcOff, view.srcOff + IPV6_ADDR_LEN);

  const icmp = o + IPV6_HEADER_LEN;
  out[icmp + ICMP_OFFSET_TYPE] = type;
  out[icmp + ICMP_OFFSET_CODE] = code;
  writeU16(out, icmp + ICMP_OFFSET_CHECKSUM, 0);
  writeU32(out, icmp + ICMP_OFFSET_REST, restWord);
  buf.copy(out, icmp + ICMP_HEADER_LEN, view.ipOff, view.ipOff + quoteLen);
  // Pseudo-header: source, destination, upper-layer length (32 bits), next header.
  let sum = sumWords(out, o + 8, 2 * IPV6_ADDR_LEN, 0);
  sum += icmpLen + IP_PROTO_ICMPV6;
  sum = sumWords(out, icmp, icmpLen, sum);
  writeU16(out, icmp + ICMP_OFFSET_CHECKSUM, finishChecksum(sum));
  return IPV6_HEADER_LEN + icmpLen;
}

export interface IcmpErrorWriterOptions {
  /** Source of ICMPv4 errors (the TUN address) as an unsigned number; undefined: none sent. */
  sourceV4: number | undefined;
  /** Source of ICMPv6 errors (16 bytes); undefined: none sent. */
  sourceV6: Uint8Array | undefined;
  /** Errors per second allowed on average, and how many may be sent in a burst. */
  ratePerSec: number;
  burst: number;
  /** Errors one batch can hold; more are not sent. */
  maxPerBatch: number;
  /** Monotonic clock, ms. */
  nowMs: () => number;
}

/**
 * Collects ICMP errors for one batch into its own scratch buffer (`batch`, bare IP packets,
 * owned by the writer and overwritten after `flush`), then writes them to the device at once.
 */
export class IcmpErrorWriter {
  readonly batch: PacketBatch;
  private readonly idx: Int32Array;
  private readonly bucket: TokenBucket;
  private readonly maxPerBatch: number;
  sourceV4: number | undefined;
  sourceV6: Uint8Array | undefined;
  /** Errors not sent because of the rate limit or a full batch. */
  suppressed = 0;

  constructor(options: IcmpErrorWriterOptions) {
    this.maxPerBatch = options.maxPerBatch;
    this.batch = {
      buf: Buffer.alloc(options.maxPerBatch * ICMPV6_ERROR_MAX_LEN),
      offs: new Int32Array(options.maxPerBatch * 2),
      count: 0,
      headroom: 0,
    };
    this.idx = new Int32Array(options.maxPerBatch);
    for (let i = 0; i < options.maxPerBatch; i++) this.idx[i] = i;
    this.bucket = new TokenBucket(options.ratePerSec, options.burst, options.nowMs);
    this.sourceV4 = options.sourceV4;
    this.sourceV6 = options.sourceV6;
  }

  /**
   * Queues the error of `kind` about the parsed packet (borrowed `buf`); `mtu` is reported for
   * TooBig. Returns whether an error was queued (not for a packet that must not get one, without
   * a source address for its family, over the rate limit, or with the batch full).
   */
  add(buf: Buffer, view: PacketView, kind: IcmpErrorKind, mtu: number): boolean {
    if (!icmpErrorAllowed(buf, view, kind)) return false;
    const batch = this.batch;
    const slot = batch.count;
    if (view.version === 4 ? this.sourceV4 === undefined : this.sourceV6 === undefined) return false;
    if (slot >= this.maxPerBatch || !this.bucket.tryTake()) {
      this.suppressed++;
      return false;
    }
    const off = slot * ICMPV6_ERROR_MAX_LEN;
    let len: number;
    if (view.version === 4) {
      const type = kind === IcmpErrorKind.TimeExceeded ? ICMPV4_TIME_EXCEEDED : ICMPV4_DEST_UNREACHABLE;
      const code = kind === IcmpErrorKind.TooBig ? ICMPV4_CODE_FRAG_NEEDED : ICMPV4_CODE_NET_UNREACHABLE;
      const rest = kind === IcmpErrorKind.TooBig ? mtu & 0xffff : 0;
      len = writeIcmpv4Error(batch.buf, off, buf, view, type, code, rest, this.sourceV4 ?? 0);
    } else {
      const type =
        kind === IcmpErrorKind.TimeExceeded
          ? ICMPV6_TIME_EXCEEDED
          : kind === IcmpErrorKind.TooBig
            ? ICMPV6_PACKET_TOO_BIG
            : ICMPV6_DEST_UNREACHABLE;
      const rest = kind === IcmpErrorKind.TooBig ? mtu >>> 0 : 0;
      len = writeIcmpv6Error(batch.buf, off, buf, view, type, 0, rest, this.sourceV6 as Uint8Array);
    }
    batch.offs[2 * slot] = off;
    batch.offs[2 * slot + 1] = len;
    batch.count = slot + 1;
    return true;
  }

  /** Writes the queued errors to the device in one write (bare IP, no virtio header) and empties the batch. */
  flush(device: PacketDevice): void {
    const count = this.batch.count;
    if (count === 0) return;
    device.write(this.batch, this.idx, count, false);
    this.batch.count = 0;
  }
}
