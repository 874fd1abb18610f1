/**
 * Proof of cluster membership: HMAC-SHA256 keyed by the cluster secret over a message naming
 * what is proven (node, purpose, time, nonce). Both transports' control paths use it: the UDP
 * probes and the WebSocket handshake. Comparison is constant-time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const AUTH_TAG_LEN = 32;
/** Shortest secret accepted (bytes): guessing must be out of reach. */
export const MIN_SECRET_BYTES = 16;

/** The tag over `parts`, joined unambiguously (each part length-prefixed). */
export function authTag(secret: Uint8Array, ...parts: Array<string | Uint8Array>): Buffer {
  const mac = createHmac('sha256', secret);
  const len = Buffer.allocUnsafe(4);
  for (const part of parts) {
    const bytes = typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
    len.writeUInt32BE(bytes.length, 0);
    mac.update(len);
    mac.update(bytes);
  }
  return mac.digest();
}

/** Whether `tag` (or its first `tag.length` bytes, at least 16) is the tag over `parts`. */
export function verifyAuthTag(secret: Uint8Array, tag: Uint8Array, ...parts: Array<string | Uint8Array>): boolean {
  if (tag.length < 16 || tag.length > AUTH_TAG_LEN) return false;
  const expected = authTag(secret, ...parts).subarray(0, tag.length);
  return timingSafeEqual(expected, tag);
}
