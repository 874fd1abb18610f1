import { describe, expect, it } from 'vitest';
import { generateX25519, privateKeyFromRaw, publicKeyFromRaw, rawPrivateKey, rawPublicKey, sharedSecret } from './x25519.js';

// RFC 7748, section 6.1.
const ALICE_PRIVATE = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
const ALICE_PUBLIC = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
const BOB_PUBLIC = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
const SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';

describe('x25519', () => {
  it('matches the RFC 7748 test vector through the raw conversions', () => {
    const alice = privateKeyFromRaw(Buffer.from(ALICE_PRIVATE, 'hex'));
    expect(rawPublicKey(alice).toString('hex')).toBe(ALICE_PUBLIC);
    expect(rawPrivateKey(alice).toString('hex')).toBe(ALICE_PRIVATE);
    const bob = publicKeyFromRaw(Buffer.from(BOB_PUBLIC, 'hex'));
    expect(sharedSecret(alice, bob)?.toString('hex')).toBe(SHARED);
  });

  it('agrees on a secret between generated pairs', () => {
    const a = generateX25519();
    const b = generateX25519();
    const ab = sharedSecret(a.privateKey, publicKeyFromRaw(b.publicKey));
    expect(ab).toBeDefined();
    expect(ab).toEqual(sharedSecret(b.privateKey, publicKeyFromRaw(a.publicKey)));
  });

  it('gives no secret with a small-order public key', () => {
    const a = generateX25519();
    expect(sharedSecret(a.privateKey, publicKeyFromRaw(Buffer.alloc(32)))).toBeUndefined();
    const one = Buffer.alloc(32);
    one[0] = 1;
    expect(sharedSecret(a.privateKey, publicKeyFromRaw(one))).toBeUndefined();
  });

  it('refuses raw keys of the wrong length', () => {
    expect(() => privateKeyFromRaw(Buffer.alloc(31))).toThrow(RangeError);
    expect(() => publicKeyFromRaw(Buffer.alloc(33))).toThrow(RangeError);
  });
});
