/**
 * The header podtun puts in front of every UDP tunnel datagram.
 *
 * ```
 *  0               1               2               3
 *  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
 * +---------------+---------------+-------------------------------+
 * |  version = 1  |     type      |  flags (bit 0: authenticated) |
 * +---------------+---------------+-------------------------------+
 * |                sender node id (FNV-1a of its name)            |
 * +---------------------------------------------------------------+
 * |   sequence number (probe, probe reply); 0 for data (reserved) |
 * +---------------------------------------------------------------+
 * ```
 *
 * 12 bytes, big endian. Types: 1 data, 2 probe, 3 probe reply.
 * - data: followed by exactly one IP packet (checksums complete, no virtio header); flags 0.
 * - probe: flags = 1, followed by the sender's 8-byte timestamp (IEEE 754 double, ms), then a
 *   16-byte tag, then optional padding:
 *
 *   ```
 *   | header (12) | timestamp (8) | tag (16) | padding... |
 *   ```
 *
 *   tag = first 16 bytes of HMAC-SHA256(cluster secret, "podtun-udp-probe", sender id (4 bytes),
 *   sequence (4 bytes), timestamp (8 bytes)), each part length-prefixed (tunnel/cluster-auth.ts).
 * - probe reply: flags = 1, the probe's sequence number and timestamp echoed, then the replier's
 *   own tag over "podtun-udp-reply", its sender id, the sequence and the timestamp; sent to the
 *   probe's source address (so a peer behind NAT whose source port changes is still answered).
 *
 * Flag bit 0 (the least significant bit of the 16-bit field) says "authenticated: a tag follows
 * the timestamp". Only probes and replies carry it; other bits are reserved and refused.
 * A probe or reply without the flag, or with a tag that does not verify, is dropped as
 * `unauthenticated` by the transport (not here: checking a tag needs the secret).
 *
 * The sender node id (tunnel/node-id.ts), not the source address, says which peer a datagram is
 * from. Receivers drop a datagram whose version, type or flags they do not know, or that is too
 * short for its type.
 *
 * Overhead on the underlay: 12 + 8 (UDP) + 20 (IPv4) = 40 bytes; 60 bytes over IPv6.
 * TUN MTU = underlay MTU - overhead (1460 on a 1500-byte IPv4 underlay).
 */

export const HEADER_LEN = 12;
export const HEADER_VERSION = 1;

export const HEADER_OFFSET_VERSION = 0;
export const HEADER_OFFSET_TYPE = 1;
export const HEADER_OFFSET_FLAGS = 2;
export const HEADER_OFFSET_SENDER = 4;
export const HEADER_OFFSET_SEQ = 8;

export const MSG_DATA = 1;
export const MSG_PROBE = 2;
export const MSG_PROBE_REPLY = 3;

/** Flag bit 0: a probe / reply carrying a tag after its timestamp. */
export const FLAG_AUTHENTICATED = 0x0001;
/** Every flag bit a receiver knows; a datagram with any other bit set is refused. */
const FLAGS_KNOWN = FLAG_AUTHENTICATED;

/** Probe and probe reply: the 8-byte sender timestamp right after the header. */
export const PROBE_OFFSET_TIMESTAMP = HEADER_LEN;
/** Authenticated probe and probe reply: the tag right after the timestamp. */
export const PROBE_OFFSET_TAG = HEADER_LEN + 8;
/** The tag: HMAC-SHA256 truncated to 16 bytes. */
export const PROBE_TAG_LEN = 16;
/** Smallest probe / probe reply without a tag (refused as unauthenticated by the transport). */
export const PROBE_MIN_LEN = HEADER_LEN + 8;
/** An authenticated probe / probe reply, as podtun sends them; longer ones carry padding. */
export const PROBE_LEN = PROBE_OFFSET_TAG + PROBE_TAG_LEN;

/** What a probe's tag proves (the first part of the tagged message). */
export const PROBE_TAG_PURPOSE = 'podtun-udp-probe';
/** What a probe reply's tag proves. */
export const REPLY_TAG_PURPOSE = 'podtun-udp-reply';

/** Smallest data datagram: the header and a 20-byte IPv4 header. */
export const DATA_MIN_LEN = HEADER_LEN + 20;

const UDP_HEADER_LEN = 8;
const IPV4_HEADER_LEN = 20;
const IPV6_HEADER_LEN = 40;

/** Bytes added around each inner packet on an IPv4 underlay. */
export const UDP_OVERHEAD_IPV4 = HEADER_LEN + UDP_HEADER_LEN + IPV4_HEADER_LEN;
/** Bytes added around each inner packet on an IPv6 underlay. */
export const UDP_OVERHEAD_IPV6 = HEADER_LEN + UDP_HEADER_LEN + IPV6_HEADER_LEN;

/** `checkHeader` results below zero: why a datagram is refused. */
export const HEADER_ERR_SHORT = -1;
export const HEADER_ERR_VERSION = -2;
export const HEADER_ERR_TYPE = -3;
export const HEADER_ERR_FLAGS = -4;
/** Long enough for a header but not for what its type says follows. */
export const HEADER_ERR_TRUNCATED = -5;

/** Names of the `checkHeader` codes, for tests and diagnostics. */
export function headerCheckName(code: number): string {
  switch (code) {
    case MSG_DATA: return 'data';
    case MSG_PROBE: return 'probe';
    case MSG_PROBE_REPLY: return 'probe_reply';
    case HEADER_ERR_SHORT: return 'short';
    case HEADER_ERR_VERSION: return 'bad_version';
    case HEADER_ERR_TYPE: return 'bad_type';
    case HEADER_ERR_FLAGS: return 'bad_flags';
    case HEADER_ERR_TRUNCATED: return 'truncated';
    default: return 'unknown';
  }
}

/**
 * Writes a header at `buf[off..off+12)`. `senderId` and `seq` are unsigned 32-bit; `flags`
 * defaults to 0 (data). Borrowed buffer: written during the call only.
 */
export function writeHeader(buf: Buffer, off: number, type: number, senderId: number, seq: number, flags = 0): void {
  buf[off + HEADER_OFFSET_VERSION] = HEADER_VERSION;
  buf[off + HEADER_OFFSET_TYPE] = type;
  buf.writeUInt16BE(flags, off + HEADER_OFFSET_FLAGS);
  buf.writeUInt32BE(senderId >>> 0, off + HEADER_OFFSET_SENDER);
  buf.writeUInt32BE(seq >>> 0, off + HEADER_OFFSET_SEQ);
}

/**
 * Validates the datagram `buf[off..off+len)`: returns its type (MSG_DATA, MSG_PROBE,
 * MSG_PROBE_REPLY) or a negative HEADER_ERR_* code. Data must have flags 0; a probe or reply with
 * the authenticated flag must be long enough for its tag (whether the tag is right, and whether
 * one is there at all, is the transport's check). Hot path: allocates nothing.
 */
export function checkHeader(buf: Buffer, off: number, len: number): number {
  if (len < HEADER_LEN) return HEADER_ERR_SHORT;
  if (buf[off + HEADER_OFFSET_VERSION] !== HEADER_VERSION) return HEADER_ERR_VERSION;
  const type = buf[off + HEADER_OFFSET_TYPE] ?? 0;
  const flags = readFlags(buf, off);
  if ((flags & ~FLAGS_KNOWN) !== 0) return HEADER_ERR_FLAGS;
  if (type === MSG_DATA) {
    if (flags !== 0) return HEADER_ERR_FLAGS;
    return len < DATA_MIN_LEN ? HEADER_ERR_TRUNCATED : MSG_DATA;
  }
  if (type === MSG_PROBE || type === MSG_PROBE_REPLY) {
    const min = (flags & FLAG_AUTHENTICATED) !== 0 ? PROBE_LEN : PROBE_MIN_LEN;
    return len < min ? HEADER_ERR_TRUNCATED : type;
  }
  return HEADER_ERR_TYPE;
}

/** The 16-bit flags of a header. */
export function readFlags(buf: Buffer, off: number): number {
  return ((buf[off + HEADER_OFFSET_FLAGS] ?? 0) << 8) | (buf[off + HEADER_OFFSET_FLAGS + 1] ?? 0);
}

/** The sender node id of a header (unsigned). */
export function readSenderId(buf: Buffer, off: number): number {
  return buf.readUInt32BE(off + HEADER_OFFSET_SENDER);
}

/** The sequence number of a header (unsigned). */
export function readSeq(buf: Buffer, off: number): number {
  return buf.readUInt32BE(off + HEADER_OFFSET_SEQ);
}

/** Writes a probe (or reply) timestamp, ms, after the header at `off`. */
export function writeProbeTimestamp(buf: Buffer, off: number, timestampMs: number): void {
  buf.writeDoubleBE(timestampMs, off + PROBE_OFFSET_TIMESTAMP);
}

/** The timestamp of a probe or probe reply whose header starts at `off`. */
export function readProbeTimestamp(buf: Buffer, off: number): number {
  return buf.readDoubleBE(off + PROBE_OFFSET_TIMESTAMP);
}
