/**
 * The sealed handshake's cryptography: Noise_IKpsk2_25519_ChaChaPoly_SHA256, WireGuard's pattern
 * (its paper, section 5.4) with SHA-256 in place of BLAKE2s, producing and consuming exactly the
 * messages of sealed-format.ts. Pure functions: state goes in and comes out; who may handshake,
 * when, and how often is handshake-engine.ts's business.
 *
 * Differences from WireGuard, each for a reason:
 * - HASH is SHA-256, MAC and the KDF are HMAC-SHA256 (HKDF with the chaining key as salt): what
 *   node:crypto offers; BLAKE2s is not in OpenSSL's HMAC set.
 * - The pre-shared key (psk2) is not optional: it is derived from the cluster secret, so only
 *   cluster members can complete a handshake at all, whatever keys they hold.
 * - mac1 is keyed with HASH("mac1----" || responder static || psk), not with the static alone:
 *   a sender without the cluster secret is refused after one HMAC, before any Diffie-Hellman,
 *   so forged handshakes cost the receiver almost nothing.
 * - The initiation payload carries, after the timestamp, one capability byte (CAP_AES_HW); the
 *   response payload is the cipher the responder chose (AES-256-GCM only when both sides run it
 *   in hardware, else ChaCha20-Poly1305). Both are inside the AEAD, so neither can be altered.
 * - Cookie replies are sealed with ChaCha20-Poly1305 under a random 12-byte nonce (XChaCha20 is
 *   not in node:crypto; 96 random bits are ample for a key that sees one message per cookie).
 *
 * AEAD nonces inside the handshake are all zero: each key seals exactly one message.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomFillSync, timingSafeEqual } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { authTag } from '../cluster-auth.js';
import {
  AEAD_TAG_LEN,
  CAP_AES_HW,
  CIPHER_AES_256_GCM,
  CIPHER_CHACHA20_POLY1305,
  COOKIE_LEN,
  KEY_LEN,
  MAC_LEN,
  SEALED_COOKIE_LEN,
  SEALED_COOKIE_NONCE_LEN,
  SEALED_COOKIE_OFFSET_NONCE,
  SEALED_COOKIE_OFFSET_RECEIVER,
  SEALED_COOKIE_OFFSET_SEALED,
  SEALED_INIT_LEN,
  SEALED_INIT_OFFSET_EPHEMERAL,
  SEALED_INIT_OFFSET_PAYLOAD,
  SEALED_INIT_OFFSET_STATIC,
  SEALED_INIT_PAYLOAD_LEN,
  SEALED_OFFSET_SENDER,
  SEALED_OFFSET_TYPE,
  SEALED_OFFSET_VERSION,
  SEALED_RESPONSE_LEN,
  SEALED_RESPONSE_OFFSET_EPHEMERAL,
  SEALED_RESPONSE_OFFSET_PAYLOAD,
  SEALED_RESPONSE_OFFSET_RECEIVER,
  SEALED_RESPONSE_PAYLOAD_LEN,
  SEALED_TYPE_COOKIE,
  SEALED_TYPE_INIT,
  SEALED_TYPE_RESPONSE,
  SEALED_VERSION,
  TIMESTAMP_LEN,
} from './sealed-format.js';
import type { SessionCipher } from './sealed-format.js';
import { generateX25519, publicKeyFromRaw, sharedSecret } from './x25519.js';
import type { X25519KeyPair } from './x25519.js';

export const NOISE_CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_SHA256';
export const NOISE_IDENTIFIER = 'podtun v2 sealed';
const LABEL_MAC1 = 'mac1----';
const LABEL_COOKIE = 'cookie--';
/** The purpose under which the psk is derived from the cluster secret (cluster-auth.ts). */
const PSK_PURPOSE = 'podtun v2 sealed psk';

const EMPTY = Buffer.alloc(0);
const ZERO_NONCE = Buffer.alloc(12);
const CHAINING_KEY_0 = hash(NOISE_CONSTRUCTION);
const HASH_0 = hash(CHAINING_KEY_0, NOISE_IDENTIFIER);

/** This node as a handshake party: its static keys and what is derived from them once. */
export interface NoiseIdentity {
  readonly privateKey: KeyObject;
  readonly publicKey: Buffer;
  /** Derived from the cluster secret (derivePsk). */
  readonly psk: Buffer;
  /** Verifies mac1 of messages sent to this node. */
  readonly mac1Key: Buffer;
  /** Seals the cookie replies this node sends. */
  readonly cookieKey: Buffer;
  /** Initial handshake hash of initiations to this node. */
  readonly hash0: Buffer;
}

/** A peer as a handshake party: its static public key and what this node derives from it once. */
export interface NoiseRemote {
  readonly publicKey: Buffer;
  readonly publicKeyObject: KeyObject;
  /** mac1 key of messages to the peer. */
  readonly mac1Key: Buffer;
  /** Opens the cookie replies the peer sends. */
  readonly cookieKey: Buffer;
  /** Initial handshake hash of initiations to the peer. */
  readonly hash0: Buffer;
  /** DH(this node's static, the peer's static): the same for every handshake, so computed once. */
  readonly staticShared: Buffer;
}

/** The keys of a session, from this node's side. */
export interface TransportKeys {
  readonly sendKey: Buffer;
  readonly recvKey: Buffer;
}

/** What the initiator keeps between sending an initiation and reading its response. */
export interface InitiatorHandshake {
  readonly remote: NoiseRemote;
  readonly localIndex: number;
  readonly ephemeral: X25519KeyPair;
  readonly chainingKey: Buffer;
  readonly hash: Buffer;
  /** The initiation's mac1: the additional data of a cookie reply that answers it. */
  readonly mac1: Buffer;
}

/** A verified initiation, from the responder's side, ready to be answered. */
export interface ResponderHandshake {
  readonly remote: NoiseRemote;
  /** The initiator's index: the receiver index of the response and of data to it. */
  readonly remoteIndex: number;
  readonly remoteEphemeral: KeyObject;
  readonly chainingKey: Buffer;
  readonly hash: Buffer;
  /** TIMESTAMP_LEN bytes (tai64n.ts). */
  readonly timestamp: Buffer;
  /** CAP_* bits the initiator announced. */
  readonly capabilities: number;
}

export type InitiationResult =
  | { readonly ok: true; readonly handshake: ResponderHandshake }
  /** decrypt: the static key or the payload did not open; key_unknown: it opened, to a key `lookup` does not know. */
  | { readonly ok: false; readonly reason: 'decrypt' }
  | { readonly ok: false; readonly reason: 'key_unknown'; readonly initiatorStatic: Buffer };

export interface ResponseResult {
  readonly keys: TransportKeys;
  /** The responder's index: the receiver index of data to it. */
  readonly remoteIndex: number;
  readonly cipher: SessionCipher;
}

/** The psk of the handshake, from the cluster secret (any length; cluster-auth.ts checks it). */
export function derivePsk(clusterSecret: Uint8Array): Buffer {
  return authTag(clusterSecret, PSK_PURPOSE);
}

export function noiseIdentity(keys: X25519KeyPair, psk: Buffer): NoiseIdentity {
  return {
    privateKey: keys.privateKey,
    publicKey: keys.publicKey,
    psk,
    mac1Key: hash(LABEL_MAC1, keys.publicKey, psk),
    cookieKey: hash(LABEL_COOKIE, keys.publicKey, psk),
    hash0: hash(HASH_0, keys.publicKey),
  };
}

/** The peer with static public key `publicKey`; throws RangeError for a key no DH can be made with. */
export function noiseRemote(local: NoiseIdentity, publicKey: Uint8Array): NoiseRemote {
  const publicKeyObject = publicKeyFromRaw(publicKey);
  const staticShared = sharedSecret(local.privateKey, publicKeyObject);
  if (staticShared === undefined) throw new RangeError('the public key is of small order: no shared secret with it');
  const raw = Buffer.from(publicKey);
  return {
    publicKey: raw,
    publicKeyObject,
    mac1Key: hash(LABEL_MAC1, raw, local.psk),
    cookieKey: hash(LABEL_COOKIE, raw, local.psk),
    hash0: hash(HASH_0, raw),
    staticShared,
  };
}

/**
 * The message type of `msg` when it is a well-formed handshake message (version, reserved bytes
 * zero, the type's exact length), else 0. Data messages (SEALED_TYPE_DATA) also give 0: they are
 * the addon's.
 */
export function handshakeType(msg: Uint8Array): number {
  if (msg.length < 4 || msg[SEALED_OFFSET_VERSION] !== SEALED_VERSION || msg[2] !== 0 || msg[3] !== 0) return 0;
  const type = msg[SEALED_OFFSET_TYPE];
  if (type === SEALED_TYPE_INIT && msg.length === SEALED_INIT_LEN) return type;
  if (type === SEALED_TYPE_RESPONSE && msg.length === SEALED_RESPONSE_LEN) return type;
  if (type === SEALED_TYPE_COOKIE && msg.length === SEALED_COOKIE_LEN) return type;
  return 0;
}

/** The sender index of an initiation or response. */
export function senderIndexOf(msg: Buffer): number {
  return msg.readUInt32BE(SEALED_OFFSET_SENDER);
}

/** The receiver index of a response or cookie reply (the index this node chose). */
export function receiverIndexOf(msg: Buffer): number {
  return msg.readUInt32BE(msg.length === SEALED_COOKIE_LEN ? SEALED_COOKIE_OFFSET_RECEIVER : SEALED_RESPONSE_OFFSET_RECEIVER);
}

/**
 * A new initiation to `remote`. `cookie`: the last cookie the peer sent, when still fresh (mac2
 * is zero without one). The returned handshake is what consumeResponse needs.
 */
export function createInitiation(
  local: NoiseIdentity,
  remote: NoiseRemote,
  localIndex: number,
  timestamp: Uint8Array,
  capabilities: number,
  cookie: Uint8Array | undefined,
): { message: Buffer; handshake: InitiatorHandshake } {
  const msg = header(SEALED_INIT_LEN, SEALED_TYPE_INIT);
  msg.writeUInt32BE(localIndex >>> 0, SEALED_OFFSET_SENDER);
  const ephemeral = generateX25519();
  let ck = kdf1(CHAINING_KEY_0, ephemeral.publicKey);
  let h = hash(remote.hash0, ephemeral.publicKey);
  ephemeral.publicKey.copy(msg, SEALED_INIT_OFFSET_EPHEMERAL);

  let k: Buffer;
  [ck, k] = kdf2(ck, dh(ephemeral.privateKey, remote.publicKeyObject));
  const sealedStatic = aeadSeal(k, ZERO_NONCE, local.publicKey, h);
  sealedStatic.copy(msg, SEALED_INIT_OFFSET_STATIC);
  h = hash(h, sealedStatic);

  [ck, k] = kdf2(ck, remote.staticShared);
  const payload = Buffer.alloc(SEALED_INIT_PAYLOAD_LEN);
  payload.set(timestamp.subarray(0, TIMESTAMP_LEN), 0);
  payload[TIMESTAMP_LEN] = capabilities & 0xff;
  const sealedPayload = aeadSeal(k, ZERO_NONCE, payload, h);
  sealedPayload.copy(msg, SEALED_INIT_OFFSET_PAYLOAD);
  h = hash(h, sealedPayload);

  writeMacs(msg, remote.mac1Key, cookie);
  const handshake: InitiatorHandshake = { remote, localIndex, ephemeral, chainingKey: ck, hash: h, mac1: mac1Of(msg) };
  return { message: msg, handshake };
}

/**
 * Opens an initiation to this node (mac1 already checked). `lookup` gives the peer of the
 * initiator's static public key, undefined when it is none of ours: decided after one DH, before
 * the second (static-static) one.
 */
export function consumeInitiation(
  local: NoiseIdentity,
  msg: Buffer,
  lookup: (initiatorStatic: Buffer) => NoiseRemote | undefined,
): InitiationResult {
  const ephemeralRaw = msg.subarray(SEALED_INIT_OFFSET_EPHEMERAL, SEALED_INIT_OFFSET_EPHEMERAL + KEY_LEN);
  let ck = kdf1(CHAINING_KEY_0, ephemeralRaw);
  let h = hash(local.hash0, ephemeralRaw);
  const remoteEphemeral = publicKeyFromRaw(ephemeralRaw);
  const es = sharedSecret(local.privateKey, remoteEphemeral);
  if (es === undefined) return DECRYPT_FAILED;

  let k: Buffer;
  [ck, k] = kdf2(ck, es);
  const sealedStatic = msg.subarray(SEALED_INIT_OFFSET_STATIC, SEALED_INIT_OFFSET_PAYLOAD);
  const initiatorStatic = aeadOpen(k, ZERO_NONCE, sealedStatic, h);
  if (initiatorStatic === undefined) return DECRYPT_FAILED;
  h = hash(h, sealedStatic);
  const remote = lookup(initiatorStatic);
  if (remote === undefined) return { ok: false, reason: 'key_unknown', initiatorStatic };

  [ck, k] = kdf2(ck, remote.staticShared);
  const sealedPayload = msg.subarray(SEALED_INIT_OFFSET_PAYLOAD, SEALED_INIT_OFFSET_PAYLOAD + SEALED_INIT_PAYLOAD_LEN + AEAD_TAG_LEN);
  const payload = aeadOpen(k, ZERO_NONCE, sealedPayload, h);
  if (payload === undefined) return DECRYPT_FAILED;
  h = hash(h, sealedPayload);
  return {
    ok: true,
    handshake: {
      remote,
      remoteIndex: senderIndexOf(msg),
      remoteEphemeral,
      chainingKey: ck,
      hash: h,
      timestamp: payload.subarray(0, TIMESTAMP_LEN),
      capabilities: payload[TIMESTAMP_LEN] ?? 0,
    },
  };
}

/** The cipher a responder running AES in hardware or not picks for an initiator's capabilities. */
export function chooseCipher(initiatorCapabilities: number, responderHasAesHw: boolean): SessionCipher {
  return responderHasAesHw && (initiatorCapabilities & CAP_AES_HW) !== 0 ? CIPHER_AES_256_GCM : CIPHER_CHACHA20_POLY1305;
}

/** The response to a verified initiation, and the session's keys from the responder's side. */
export function createResponse(
  local: NoiseIdentity,
  hs: ResponderHandshake,
  localIndex: number,
  cipher: SessionCipher,
): { message: Buffer; keys: TransportKeys } {
  const msg = header(SEALED_RESPONSE_LEN, SEALED_TYPE_RESPONSE);
  msg.writeUInt32BE(localIndex >>> 0, SEALED_OFFSET_SENDER);
  msg.writeUInt32BE(hs.remoteIndex >>> 0, SEALED_RESPONSE_OFFSET_RECEIVER);
  const ephemeral = generateX25519();
  let ck = kdf1(hs.chainingKey, ephemeral.publicKey);
  let h = hash(hs.hash, ephemeral.publicKey);
  ephemeral.publicKey.copy(msg, SEALED_RESPONSE_OFFSET_EPHEMERAL);
  ck = kdf1(ck, dh(ephemeral.privateKey, hs.remoteEphemeral));
  ck = kdf1(ck, dh(ephemeral.privateKey, hs.remote.publicKeyObject));
  const [ck2, t, k] = kdf3(ck, local.psk);
  h = hash(h, t);
  const sealedPayload = aeadSeal(k, ZERO_NONCE, Buffer.of(cipher), h);
  sealedPayload.copy(msg, SEALED_RESPONSE_OFFSET_PAYLOAD);
  writeMacs(msg, hs.remote.mac1Key, undefined);
  const [recvKey, sendKey] = kdf2(ck2, EMPTY);
  return { message: msg, keys: { sendKey, recvKey } };
}

/**
 * Opens the response to `hs` (mac1 already checked, receiver index matched); undefined when it
 * does not open or names a cipher this node did not allow.
 */
export function consumeResponse(local: NoiseIdentity, hs: InitiatorHandshake, msg: Buffer, localHasAesHw: boolean): ResponseResult | undefined {
  const ephemeralRaw = msg.subarray(SEALED_RESPONSE_OFFSET_EPHEMERAL, SEALED_RESPONSE_OFFSET_EPHEMERAL + KEY_LEN);
  let ck = kdf1(hs.chainingKey, ephemeralRaw);
  let h = hash(hs.hash, ephemeralRaw);
  const remoteEphemeral = publicKeyFromRaw(ephemeralRaw);
  const ee = sharedSecret(hs.ephemeral.privateKey, remoteEphemeral);
  const se = sharedSecret(local.privateKey, remoteEphemeral);
  if (ee === undefined || se === undefined) return undefined;
  ck = kdf1(ck, ee);
  ck = kdf1(ck, se);
  const [ck2, t, k] = kdf3(ck, local.psk);
  h = hash(h, t);
  const sealedPayload = msg.subarray(SEALED_RESPONSE_OFFSET_PAYLOAD, SEALED_RESPONSE_OFFSET_PAYLOAD + SEALED_RESPONSE_PAYLOAD_LEN + AEAD_TAG_LEN);
  const payload = aeadOpen(k, ZERO_NONCE, sealedPayload, h);
  if (payload === undefined) return undefined;
  const cipher = payload[0];
  if (cipher !== CIPHER_CHACHA20_POLY1305 && !(cipher === CIPHER_AES_256_GCM && localHasAesHw)) return undefined;
  const [sendKey, recvKey] = kdf2(ck2, EMPTY);
  return { keys: { sendKey, recvKey }, remoteIndex: senderIndexOf(msg), cipher };
}

/** Whether the mac1 of `msg` (an initiation or response) verifies under `mac1Key`. */
export function mac1Valid(mac1Key: Buffer, msg: Buffer): boolean {
  const at = msg.length - 2 * MAC_LEN;
  return timingSafeEqual(mac(mac1Key, msg.subarray(0, at)), msg.subarray(at, at + MAC_LEN));
}

/** Whether the mac2 of `msg` verifies under `cookie`. */
export function mac2Valid(cookie: Buffer, msg: Buffer): boolean {
  const at = msg.length - MAC_LEN;
  return timingSafeEqual(mac(cookie, msg.subarray(0, at)), msg.subarray(at));
}

/** A copy of the mac1 of `msg`. */
export function mac1Of(msg: Buffer): Buffer {
  const at = msg.length - 2 * MAC_LEN;
  return Buffer.from(msg.subarray(at, at + MAC_LEN));
}

/** Writes mac1 (keyed by the receiver's mac1 key) and mac2 (by `cookie`, or zeros) into `msg`. */
export function writeMacs(msg: Buffer, mac1Key: Buffer, cookie: Uint8Array | undefined): void {
  const mac1At = msg.length - 2 * MAC_LEN;
  const mac2At = msg.length - MAC_LEN;
  mac(mac1Key, msg.subarray(0, mac1At)).copy(msg, mac1At);
  if (cookie === undefined) msg.fill(0, mac2At);
  else mac(cookie, msg.subarray(0, mac2At)).copy(msg, mac2At);
}

/**
 * The cookie of a source address: what a sender proves it can receive at that address. `secret`
 * is the responder's, changed every two minutes, so a cookie lasts at most that long.
 */
export function makeCookie(secret: Buffer, sourceText: string): Buffer {
  return createHmac('sha256', secret).update(sourceText, 'utf8').digest().subarray(0, COOKIE_LEN);
}

/**
 * The cookie reply to a message whose sender index is `receiverIndex` and mac1 `answeredMac1`:
 * the cookie sealed under this node's cookie key, bound to that mac1 so it cannot be pinned to
 * another message.
 */
export function createCookieReply(local: NoiseIdentity, receiverIndex: number, answeredMac1: Buffer, cookie: Buffer): Buffer {
  const msg = header(SEALED_COOKIE_LEN, SEALED_TYPE_COOKIE);
  msg.writeUInt32BE(receiverIndex >>> 0, SEALED_COOKIE_OFFSET_RECEIVER);
  const nonce = msg.subarray(SEALED_COOKIE_OFFSET_NONCE, SEALED_COOKIE_OFFSET_NONCE + SEALED_COOKIE_NONCE_LEN);
  randomFillSync(nonce);
  aeadSeal(local.cookieKey, nonce, cookie, answeredMac1).copy(msg, SEALED_COOKIE_OFFSET_SEALED);
  return msg;
}

/** The cookie in a reply from `remote` to this node's message with mac1 `ourMac1`; undefined when it does not open. */
export function openCookieReply(remote: NoiseRemote, msg: Buffer, ourMac1: Buffer): Buffer | undefined {
  const nonce = msg.subarray(SEALED_COOKIE_OFFSET_NONCE, SEALED_COOKIE_OFFSET_NONCE + SEALED_COOKIE_NONCE_LEN);
  return aeadOpen(remote.cookieKey, nonce, msg.subarray(SEALED_COOKIE_OFFSET_SEALED), ourMac1);
}

const DECRYPT_FAILED: InitiationResult = { ok: false, reason: 'decrypt' };

function header(len: number, type: number): Buffer {
  const msg = Buffer.alloc(len);
  msg[SEALED_OFFSET_VERSION] = SEALED_VERSION;
  msg[SEALED_OFFSET_TYPE] = type;
  return msg;
}

function hash(...parts: Array<string | Uint8Array>): Buffer {
  const h = createHash('sha256');
  for (const part of parts) h.update(part);
  return h.digest();
}

function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const m = createHmac('sha256', key);
  for (const part of parts) m.update(part);
  return m.digest();
}

/** MAC of the message macs: HMAC-SHA256 truncated to MAC_LEN. */
function mac(key: Uint8Array, data: Uint8Array): Buffer {
  return hmac(key, data).subarray(0, MAC_LEN);
}

/** HKDF-SHA256 with the chaining key as salt and no info: Noise's HKDF(ck, input). */
function kdf1(ck: Buffer, input: Uint8Array): Buffer {
  return hmac(hmac(ck, input), ONE);
}

function kdf2(ck: Buffer, input: Uint8Array): [Buffer, Buffer] {
  const prk = hmac(ck, input);
  const t1 = hmac(prk, ONE);
  return [t1, hmac(prk, t1, TWO)];
}

function kdf3(ck: Buffer, input: Uint8Array): [Buffer, Buffer, Buffer] {
  const prk = hmac(ck, input);
  const t1 = hmac(prk, ONE);
  const t2 = hmac(prk, t1, TWO);
  return [t1, t2, hmac(prk, t2, THREE)];
}

const ONE = Buffer.of(1);
const TWO = Buffer.of(2);
const THREE = Buffer.of(3);

/** DH with a key this node generated or already checked; a zero result here is a bug. */
function dh(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  const secret = sharedSecret(privateKey, publicKey);
  if (secret === undefined) throw new RangeError('X25519 gave no shared secret with a checked key');
  return secret;
}

function aeadSeal(key: Buffer, nonce: Buffer, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LEN });
  cipher.setAAD(ad, { plaintextLength: plaintext.length });
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function aeadOpen(key: Buffer, nonce: Buffer, sealed: Uint8Array, ad: Uint8Array): Buffer | undefined {
  const len = sealed.length - AEAD_TAG_LEN;
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LEN });
  decipher.setAAD(ad, { plaintextLength: len });
  decipher.setAuthTag(sealed.subarray(len));
  const plaintext = decipher.update(sealed.subarray(0, len));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return plaintext;
}
