/** Dispatches on the IP version nibble to the IPv4 or IPv6 header parser. */
import { DropReason } from '../core/drop-reason.js';
import { parseIpv4 } from './ipv4-header.js';
import { parseIpv6 } from './ipv6-header.js';
import type { PacketView, ParseResult } from './packet-view.js';

/**
 * Parses the IP packet at `buf[off..off+len)` into `view`. Borrowed buffer: read during the call;
 * the view keeps offsets into it. Never throws, never allocates.
 */
export function parseIpPacket(buf: Uint8Array, off: number, len: number, view: PacketView): ParseResult {
  if (len < 1) return DropReason.Malformed;
  const version = buf[off]! >> 4;
  if (version === 4) return parseIpv4(buf, off, len, view);
  if (version === 6) return parseIpv6(buf, off, len, view);
  return DropReason.Malformed;
}
