/**
 * One parsed IP packet, read straight off a borrowed buffer. The pipelines own one instance
 * each and reuse it for every packet: parsing allocates nothing. Fields are valid until the
 * next parse into the same view; offsets point into the buffer that was parsed.
 */

/** Parse succeeded. Every other result is the DropReason to count (Malformed). */
export const PARSE_OK = -1;

/** PARSE_OK or a DropReason. */
export type ParseResult = number;

export const IP_PROTO_ICMP = 1;
export const IP_PROTO_TCP = 6;
export const IP_PROTO_UDP = 17;
export const IP_PROTO_ICMPV6 = 58;

export class PacketView {
  /** 4 or 6 after a successful parse. */
  version = 0;
  /** Where the IP header starts in the buffer. */
  ipOff = 0;
  /** Bytes captured from ipOff (at least totalLen; more means trailing padding). */
  capturedLen = 0;
  /** IPv4: IHL * 4. IPv6: 40 (the fixed header; extension headers end at l4Off). */
  headerLen = 0;
  /** Length of the IP packet according to its header. */
  totalLen = 0;
  /** Upper-layer protocol: IPv4 protocol, IPv6 next header after the extension headers. */
  protocol = 0;
  /** Offset of the upper-layer header in the buffer. */
  l4Off = 0;
  /** Length of the upper-layer header when known (TCP data offset, UDP 8), else 0. */
  l4HeaderLen = 0;
  /** IPv4 TTL or IPv6 hop limit. */
  ttl = 0;
  /** IPv4 source and destination as unsigned 32-bit numbers (0 for IPv6). */
  src4 = 0;
  dst4 = 0;
  /** Offsets of the source and destination addresses in the buffer (4 or 16 bytes). */
  srcOff = 0;
  dstOff = 0;
  /** The packet is a fragment (IPv4 MF or offset, or an IPv6 fragment header). */
  isFragment = false;
  /** Fragment offset in bytes; non-zero means the upper-layer header is not in this packet. */
  fragOffsetBytes = 0;
  moreFragments = false;
  /** IPv4 DF bit. */
  dontFragment = false;
  /** ICMP / ICMPv6 type; -1 when not ICMP or the type byte is not in this packet. */
  icmpType = -1;

  reset(): void {
    this.version = 0;
    this.headerLen = 0;
    this.totalLen = 0;
    this.protocol = 0;
    this.l4Off = 0;
    this.l4HeaderLen = 0;
    this.ttl = 0;
    this.src4 = 0;
    this.dst4 = 0;
    this.srcOff = 0;
    this.dstOff = 0;
    this.isFragment = false;
    this.fragOffsetBytes = 0;
    this.moreFragments = false;
    this.dontFragment = false;
    this.icmpType = -1;
  }
}
