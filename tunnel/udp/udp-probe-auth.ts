/**
 * Tags on UDP probes and probe replies (layout in udp-header.ts): proof that the sender holds
 * the cluster secret, over what it claims (its node id, the sequence, the timestamp). Without
 * it anyone who can reach the port could bring a peer up, keep a dead one up, or redirect a
 * roaming peer's traffic to themselves.
 *
 * Data datagrams are not tagged (per-packet MACs are a later step); a peer's data is still
 * confined to its own pod subnet by the outside pipeline's source check.
 */
import { authTag, verifyAuthTag } from '../cluster-auth.js';
import {
  FLAG_AUTHENTICATED,
  HEADER_OFFSET_SENDER,
  HEADER_OFFSET_SEQ,
  PROBE_LEN,
  PROBE_OFFSET_TAG,
  PROBE_OFFSET_TIMESTAMP,
  PROBE_TAG_LEN,
  readFlags,
} from './udp-header.js';

/**
 * Writes the tag of the probe (or reply) whose header and timestamp are at `buf[off..off+20)`,
 * filling `buf[off+20..off+36)`. `purpose` is PROBE_TAG_PURPOSE or REPLY_TAG_PURPOSE. The header
 * must already carry FLAG_AUTHENTICATED. Control path (about once per second per peer).
 */
export function writeProbeTag(secret: Uint8Array, purpose: string, buf: Buffer, off: number): void {
  const tag = authTag(secret, purpose, ...taggedParts(buf, off));
  tag.copy(buf, off + PROBE_OFFSET_TAG, 0, PROBE_TAG_LEN);
}

/**
 * Whether the probe (or reply) `buf[off..off+len)` carries the authenticated flag and a tag that
 * verifies under `secret` for `purpose`. Constant-time comparison.
 */
export function probeTagValid(secret: Uint8Array, purpose: string, buf: Buffer, off: number, len: number): boolean {
  if ((readFlags(buf, off) & FLAG_AUTHENTICATED) === 0 || len < PROBE_LEN) return false;
  const tag = buf.subarray(off + PROBE_OFFSET_TAG, off + PROBE_OFFSET_TAG + PROBE_TAG_LEN);
  return verifyAuthTag(secret, tag, purpose, ...taggedParts(buf, off));
}

/** Sender id, sequence and timestamp, as the bytes on the wire. */
function taggedParts(buf: Buffer, off: number): [Uint8Array, Uint8Array, Uint8Array] {
  return [
    buf.subarray(off + HEADER_OFFSET_SENDER, off + HEADER_OFFSET_SENDER + 4),
    buf.subarray(off + HEADER_OFFSET_SEQ, off + HEADER_OFFSET_SEQ + 4),
    buf.subarray(off + PROBE_OFFSET_TIMESTAMP, off + PROBE_OFFSET_TIMESTAMP + 8),
  ];
}
