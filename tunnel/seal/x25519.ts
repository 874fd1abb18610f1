/**
 * Raw 32-byte X25519 keys with node:crypto, which only speaks KeyObjects. The wire and the key
 * files carry raw keys; these functions convert at the edge and do the Diffie-Hellman.
 *
 * Two encodings, chosen by cost (OpenSSL 3.0 on Node 20, per call): a static private key is read
 * once, from PKCS#8 DER (a fixed prefix + the raw key); public keys arrive with every handshake
 * (the peer's ephemeral), and importing one as JWK takes ~55 us where SPKI DER takes ~300 us.
 * Ephemeral keys are generated as KeyObjects and their public half exported as JWK (~6 us; DER
 * export ~400 us).
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

export const X25519_KEY_LEN = 32;

/** PKCS#8 (RFC 8410) of an X25519 private key, before its 32 raw bytes. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** An X25519 key pair: the private key as node:crypto holds it, the public key raw. */
export interface X25519KeyPair {
  readonly privateKey: KeyObject;
  /** 32 bytes. */
  readonly publicKey: Buffer;
}

/** The KeyObject of a raw 32-byte private key (any 32 bytes are a key: X25519 clamps them). */
export function privateKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== X25519_KEY_LEN) throw new RangeError(`an X25519 private key is ${X25519_KEY_LEN} bytes, got ${raw.length}`);
  const der = Buffer.concat([PKCS8_PREFIX, raw]);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

/** The KeyObject of a raw 32-byte public key. */
export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== X25519_KEY_LEN) throw new RangeError(`an X25519 public key is ${X25519_KEY_LEN} bytes, got ${raw.length}`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** The raw 32 bytes of a public KeyObject, or of the public half of a private one. */
export function rawPublicKey(key: KeyObject): Buffer {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return jwkBytes(publicKey.export({ format: 'jwk' }).x);
}

/** The raw 32 bytes of a private KeyObject (for key files and `podtun key generate`). */
export function rawPrivateKey(key: KeyObject): Buffer {
  return jwkBytes(key.export({ format: 'jwk' }).d);
}

/** A fresh key pair (static keys and the ephemeral key of each handshake). */
export function generateX25519(): X25519KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicKey: rawPublicKey(publicKey) };
}

/**
 * X25519(privateKey, publicKey), or undefined when the result is all zeros: the public key is
 * of small order, chosen so that the "shared" secret is known to everyone (RFC 7748, 6.1).
 * OpenSSL itself refuses most such points; the check covers the rest.
 */
export function sharedSecret(privateKey: KeyObject, publicKey: KeyObject): Buffer | undefined {
  let secret: Buffer;
  try {
    secret = diffieHellman({ privateKey, publicKey });
  } catch {
    return undefined;
  }
  let bits = 0;
  for (let i = 0; i < secret.length; i++) bits |= secret[i] ?? 0;
  return bits === 0 ? undefined : secret;
}

function jwkBytes(field: unknown): Buffer {
  const bytes = typeof field === 'string' ? Buffer.from(field, 'base64url') : Buffer.alloc(0);
  if (bytes.length !== X25519_KEY_LEN) throw new RangeError('not an X25519 key');
  return bytes;
}
