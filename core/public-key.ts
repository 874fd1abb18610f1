/**
 * A node's public key as text: the 32 bytes of its X25519 public key in standard base64 (44
 * characters, as `wg pubkey` prints them). Leases, Node annotations and config entries carry it;
 * the sealed tunnel (tunnel/seal/) holds the private half.
 */

export const PUBLIC_KEY_BYTES = 32;
const PUBLIC_KEY_RE = /^[A-Za-z0-9+/]{43}=$/;

/** The key's bytes; throws an Error whose message is the reason when `text` is not one. */
export function parsePublicKeyText(text: string): Buffer {
  if (!PUBLIC_KEY_RE.test(text)) {
    throw new Error(`expected ${PUBLIC_KEY_BYTES} bytes in base64 (44 characters ending in "="), got ${text.length} characters`);
  }
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== PUBLIC_KEY_BYTES || bytes.toString('base64') !== text) throw new Error('not canonical base64');
  if (bytes.every((b) => b === 0)) throw new Error('the all-zero key is not a public key');
  return bytes;
}

export function publicKeyText(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}
