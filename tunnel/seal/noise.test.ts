import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  chooseCipher,
  consumeInitiation,
  consumeResponse,
  createCookieReply,
  createInitiation,
  createResponse,
  derivePsk,
  handshakeType,
  mac1Of,
  mac1Valid,
  mac2Valid,
  makeCookie,
  noiseIdentity,
  noiseRemote,
  openCookieReply,
  receiverIndexOf,
  senderIndexOf,
  writeMacs,
} from './noise.js';
import type { NoiseIdentity, NoiseRemote } from './noise.js';
import {
  CAP_AES_HW,
  CIPHER_AES_256_GCM,
  CIPHER_CHACHA20_POLY1305,
  MAC_LEN,
  SEALED_COOKIE_LEN,
  SEALED_COOKIE_OFFSET_NONCE,
  SEALED_INIT_LEN,
  SEALED_INIT_OFFSET_EPHEMERAL,
  SEALED_RESPONSE_LEN,
  SEALED_RESPONSE_OFFSET_EPHEMERAL,
  SEALED_TYPE_COOKIE,
  SEALED_TYPE_INIT,
  SEALED_TYPE_RESPONSE,
} from './sealed-format.js';
import { nextTimestamp } from './tai64n.js';
import { generateX25519 } from './x25519.js';

const secret = Buffer.from('the cluster secret, any length really');
const psk = derivePsk(secret);

function party(withPsk = psk): NoiseIdentity {
  return noiseIdentity(generateX25519(), withPsk);
}

/** `local`'s view of the peers, as the engine's lookup by static key. */
function lookupOf(local: NoiseIdentity, ...peers: NoiseIdentity[]): (s: Buffer) => NoiseRemote | undefined {
  const remotes = peers.map((p) => noiseRemote(local, p.publicKey));
  return (s) => remotes.find((r) => r.publicKey.equals(s));
}

function initiation(a: NoiseIdentity, b: NoiseIdentity, cookie?: Buffer) {
  return createInitiation(a, noiseRemote(a, b.publicKey), 0x12345001, nextTimestamp(Date.now()), CAP_AES_HW, cookie);
}

function flipped(msg: Buffer, bit: number): Buffer {
  const copy = Buffer.from(msg);
  copy[bit >> 3] = (copy[bit >> 3] ?? 0) ^ (1 << (bit & 7));
  return copy;
}

describe('noise IKpsk2 handshake', () => {
  it('completes between two parties with the same psk; the keys match crosswise', () => {
    const a = party();
    const b = party();
    const timestamp = nextTimestamp(Date.now());
    const { message: init, handshake } = createInitiation(a, noiseRemote(a, b.publicKey), 0xabcde001, timestamp, CAP_AES_HW, undefined);
    expect(init.length).toBe(SEALED_INIT_LEN);
    expect(handshakeType(init)).toBe(SEALED_TYPE_INIT);
    expect(senderIndexOf(init)).toBe(0xabcde001);
    expect(mac1Valid(b.mac1Key, init)).toBe(true);

    const opened = consumeInitiation(b, init, lookupOf(b, a));
    if (!opened.ok) throw new Error(`refused: ${opened.reason}`);
    expect(opened.handshake.remote.publicKey).toEqual(a.publicKey);
    expect(opened.handshake.remoteIndex).toBe(0xabcde001);
    expect(opened.handshake.timestamp).toEqual(timestamp);
    expect(opened.handshake.capabilities).toBe(CAP_AES_HW);

    const { message: response, keys: bKeys } = createResponse(b, opened.handshake, 0x54321002, CIPHER_AES_256_GCM);
    expect(response.length).toBe(SEALED_RESPONSE_LEN);
    expect(handshakeType(response)).toBe(SEALED_TYPE_RESPONSE);
    expect(receiverIndexOf(response)).toBe(0xabcde001);
    expect(mac1Valid(a.mac1Key, response)).toBe(true);

    const result = consumeResponse(a, handshake, response, true);
    if (result === undefined) throw new Error('response refused');
    expect(result.remoteIndex).toBe(0x54321002);
    expect(result.cipher).toBe(CIPHER_AES_256_GCM);
    expect(result.keys.sendKey).toEqual(bKeys.recvKey);
    expect(result.keys.recvKey).toEqual(bKeys.sendKey);
    expect(result.keys.sendKey).not.toEqual(result.keys.recvKey);
    expect(result.keys.sendKey.length).toBe(32);
  });

  it('gives every handshake its own keys', () => {
    const a = party();
    const b = party();
    const keys = [1, 2].map(() => {
      const { message, handshake } = initiation(a, b);
      const opened = consumeInitiation(b, message, lookupOf(b, a));
      if (!opened.ok) throw new Error('refused');
      const { message: response } = createResponse(b, opened.handshake, 7, CIPHER_CHACHA20_POLY1305);
      return consumeResponse(a, handshake, response, false)?.keys.sendKey;
    });
    expect(keys[0]).toBeDefined();
    expect(keys[0]).not.toEqual(keys[1]);
  });

  it.each([
    [CAP_AES_HW, true, CIPHER_AES_256_GCM],
    [CAP_AES_HW, false, CIPHER_CHACHA20_POLY1305],
    [0, true, CIPHER_CHACHA20_POLY1305],
    [0, false, CIPHER_CHACHA20_POLY1305],
  ])('chooses the cipher: initiator capabilities %i, responder AES in hardware %s -> %i', (caps, hw, cipher) => {
    expect(chooseCipher(caps, hw)).toBe(cipher);
  });

  it('refuses at mac1 a party with another cluster secret, both ways', () => {
    const a = party();
    const b = party(derivePsk(Buffer.from('another secret of the same kind')));
    expect(mac1Valid(b.mac1Key, initiation(a, b).message)).toBe(false);
    expect(mac1Valid(a.mac1Key, initiation(b, a).message)).toBe(false);
  });

  it('refuses an initiation made for another responder key', () => {
    const a = party();
    const b = party();
    const oldB = party();
    const { message } = initiation(a, oldB);
    expect(mac1Valid(b.mac1Key, message)).toBe(false);
    // Even with a mac1 made for b (a forger holding the psk), the static key does not open.
    writeMacs(message, b.mac1Key, undefined);
    expect(mac1Valid(b.mac1Key, message)).toBe(true);
    expect(consumeInitiation(b, message, lookupOf(b, a))).toEqual({ ok: false, reason: 'decrypt' });
  });

  it('says key_unknown for an initiator whose static key is no peer of the responder', () => {
    const a = party();
    const b = party();
    const stranger = party();
    const { message } = initiation(stranger, b);
    expect(mac1Valid(b.mac1Key, message)).toBe(true);
    const result = consumeInitiation(b, message, lookupOf(b, a));
    expect(result.ok).toBe(false);
    if (result.ok || result.reason !== 'key_unknown') throw new Error('expected key_unknown');
    expect(result.initiatorStatic).toEqual(stranger.publicKey);
  });

  it('refuses an initiation with any bit flipped', () => {
    const a = party();
    const b = party();
    const cookie = randomBytes(16);
    const { message } = initiation(a, b, cookie);
    const lookup = lookupOf(b, a);
    const macsAt = SEALED_INIT_LEN - 2 * MAC_LEN;
    for (let bit = 0; bit < SEALED_INIT_LEN * 8; bit++) {
      const bad = flipped(message, bit);
      if (bit < 32) {
        if (handshakeType(bad) !== 0) expect(mac1Valid(b.mac1Key, bad)).toBe(false); // type byte 1 -> 3 keeps a handshake type
        continue;
      }
      if (bit >= (macsAt + MAC_LEN) * 8) {
        expect(mac2Valid(cookie, bad)).toBe(false);
        continue;
      }
      expect(mac1Valid(b.mac1Key, bad)).toBe(false);
      // A forger with the psk can remake mac1, not the AEADs: past the sender index nothing opens.
      if (bit >= SEALED_INIT_OFFSET_EPHEMERAL * 8 && bit < macsAt * 8) {
        writeMacs(bad, b.mac1Key, undefined);
        expect(consumeInitiation(b, bad, lookup).ok).toBe(false);
      }
    }
  });

  it('refuses a response with any bit flipped', () => {
    const a = party();
    const b = party();
    const { message, handshake } = initiation(a, b);
    const opened = consumeInitiation(b, message, lookupOf(b, a));
    if (!opened.ok) throw new Error('refused');
    const { message: response } = createResponse(b, opened.handshake, 9, CIPHER_CHACHA20_POLY1305);
    const macsAt = SEALED_RESPONSE_LEN - 2 * MAC_LEN;
    for (let bit = 32; bit < macsAt * 8; bit++) {
      const bad = flipped(response, bit);
      expect(mac1Valid(a.mac1Key, bad)).toBe(false);
      if (bit >= SEALED_RESPONSE_OFFSET_EPHEMERAL * 8) {
        writeMacs(bad, a.mac1Key, undefined);
        expect(consumeResponse(a, handshake, bad, true)).toBeUndefined();
      }
    }
    for (let bit = macsAt * 8; bit < (macsAt + MAC_LEN) * 8; bit++) expect(mac1Valid(a.mac1Key, flipped(response, bit))).toBe(false);
    expect(consumeResponse(a, handshake, response, true)).toBeDefined();
  });

  it('refuses a response naming AES to an initiator without it in hardware', () => {
    const a = party();
    const b = party();
    const { message, handshake } = initiation(a, b);
    const opened = consumeInitiation(b, message, lookupOf(b, a));
    if (!opened.ok) throw new Error('refused');
    const { message: response } = createResponse(b, opened.handshake, 9, CIPHER_AES_256_GCM);
    expect(consumeResponse(a, handshake, response, false)).toBeUndefined();
  });

  it('round-trips a cookie: sealed to the initiation it answers, then proven by mac2', () => {
    const a = party();
    const b = party();
    const cookieSecret = randomBytes(32);
    const { message, handshake } = initiation(a, b);
    const cookie = makeCookie(cookieSecret, '10.0.0.1:8285');
    const reply = createCookieReply(b, senderIndexOf(message), mac1Of(message), cookie);
    expect(reply.length).toBe(SEALED_COOKIE_LEN);
    expect(handshakeType(reply)).toBe(SEALED_TYPE_COOKIE);
    expect(receiverIndexOf(reply)).toBe(senderIndexOf(message));

    const bFromA = noiseRemote(a, b.publicKey);
    const received = openCookieReply(bFromA, reply, handshake.mac1);
    expect(received).toEqual(cookie);
    expect(openCookieReply(bFromA, reply, randomBytes(16))).toBeUndefined();
    // The receiver index only routes the reply (the engine matches it to its initiation); the rest is sealed.
    for (let bit = SEALED_COOKIE_OFFSET_NONCE * 8; bit < SEALED_COOKIE_LEN * 8; bit++) {
      expect(openCookieReply(bFromA, flipped(reply, bit), handshake.mac1)).toBeUndefined();
    }
    // Only b's cookie key opens it: another cluster member's reply does not.
    expect(openCookieReply(noiseRemote(a, party().publicKey), reply, handshake.mac1)).toBeUndefined();

    const { message: retry } = initiation(a, b, received);
    expect(mac1Valid(b.mac1Key, retry)).toBe(true);
    expect(mac2Valid(makeCookie(cookieSecret, '10.0.0.1:8285'), retry)).toBe(true);
    expect(mac2Valid(makeCookie(cookieSecret, '10.0.0.9:8285'), retry)).toBe(false);
    expect(mac2Valid(makeCookie(randomBytes(32), '10.0.0.1:8285'), retry)).toBe(false);
    expect(mac2Valid(cookie, message)).toBe(false);
  });

  it('derives the psk from a secret of any length, differently per secret', () => {
    const short = derivePsk(Buffer.alloc(16, 7));
    const long = derivePsk(Buffer.alloc(1000, 7));
    expect(short.length).toBe(32);
    expect(long.length).toBe(32);
    expect(short).not.toEqual(long);
    expect(derivePsk(Buffer.alloc(16, 7))).toEqual(short);
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['version 1', Buffer.concat([Buffer.of(1, SEALED_TYPE_INIT, 0, 0), Buffer.alloc(SEALED_INIT_LEN - 4)])],
    ['reserved bits set', Buffer.concat([Buffer.of(2, SEALED_TYPE_INIT, 0, 1), Buffer.alloc(SEALED_INIT_LEN - 4)])],
    ['an initiation one byte short', Buffer.concat([Buffer.of(2, SEALED_TYPE_INIT, 0, 0), Buffer.alloc(SEALED_INIT_LEN - 5)])],
    ['a response of an initiation\'s length', Buffer.concat([Buffer.of(2, SEALED_TYPE_RESPONSE, 0, 0), Buffer.alloc(SEALED_INIT_LEN - 4)])],
    ['data', Buffer.concat([Buffer.of(2, 4, 0, 0), Buffer.alloc(60)])],
  ])('does not take %s for a handshake message', (_name, msg) => {
    expect(handshakeType(msg)).toBe(0);
  });

  it('refuses a peer key of small order', () => {
    expect(() => noiseRemote(party(), Buffer.alloc(32))).toThrow(RangeError);
  });
});
