/**
 * The sealed handshake of one transport: when to handshake with which peer, what to accept, and
 * what keys to hand to the data plane. Transport-agnostic: the transport passes handshake
 * messages in (`consume`), sends what the engine gives it (HandshakeIo), installs keypairs in
 * the addon and calls `tick` about every 250 ms to 1 s. The cryptography is noise.ts.
 *
 * An initiation arriving (responder):
 *   1. well-formed? (version, type, length) — else refused `malformed`
 *   2. mac1 under this node's key and the cluster psk: one HMAC — else `mac1`
 *   3. a token for the source and overall (handshake-limiter.ts)? If not, under load: a valid
 *      mac2 (a cookie this node gave that source) and a token of the source's — else a cookie
 *      reply (or, when the source already proved its address, nothing): `rate_limited`
 *   4. one DH opens the initiator's static key — else `decrypt`; a key of no peer: `key_unknown`
 *   5. the static-static key opens the timestamp — else `decrypt`; not later than the last one
 *      accepted from that peer: `replayed`
 *   6. response sent to the message's source, keypair installed as the responder's ("next")
 * A response arriving (initiator): mac1; receiver index = our outstanding initiation to the
 * peer of its slot bits (else `unexpected_response`); opens (else `decrypt`); keypair installed
 * as the initiator's (current at once). A cookie reply: matched the same way, opened with the
 * peer's cookie key bound to our initiation's mac1; the next tick retries with mac2.
 *
 * Replays. Within a process an initiation is accepted only with a timestamp later than any
 * accepted from its peer, so a recorded one is refused. That memory is lost on restart, and a
 * recorded initiation then gets a response and installs a keypair again. That keypair is a
 * responder's: the addon holds it as `next` and makes it current only when a data message opens
 * with it. Sealing such a message takes the session's keys, which come from DH(initiator's
 * ephemeral, responder's new ephemeral): the attacker has neither private key (the initiator's
 * ephemeral was discarded after the original handshake), so nothing it sends opens, the `next`
 * is never promoted, and this node never seals with it. The cost is one response and one
 * replaced `next` per replay. (An accepted initiation is for the same reason no proof that the
 * peer is at its source address: `HandshakeOutcome.fresh`.)
 *
 * Who initiates. A peer gets a session once `wantSession` was called for it (the transport does
 * on configuring it and when data finds no keypair), and then keeps one: the side that
 * initiated the current session rekeys after REKEY_AFTER_MS, the other side only
 * RESPONDER_REKEY_DELAY_MS later (when the initiator is gone or lost its state), either side
 * after `rekeyAfterMessages` sealed. An unanswered initiation is sent again, with a new
 * ephemeral and timestamp, every REKEY_TIMEOUT_MS (+ up to 333 ms of jitter, so two sides drift
 * apart) for REKEY_ATTEMPT_MS, then every SLOW_RETRY_MS until answered, removed, or made moot
 * by a session the peer initiated (answered during the run, then confirmed by its data). Both sides
 * initiating at once is fine: each answers the other, and each installs two keypairs; the addon
 * keeps the one it initiated as current and the other as previous, so both directions open.
 *
 * No timers, no sockets, no promises of its own: the transport drives it.
 */
import { randomFillSync, randomInt } from 'node:crypto';
import type { Logger } from '../../core/logger.js';
import { MIN_SECRET_BYTES } from '../cluster-auth.js';
import { PeerSlots } from '../peer-slots.js';
import { TransportError, positiveOption } from '../transport-error.js';
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
} from './noise.js';
import type { InitiatorHandshake, NoiseIdentity, NoiseRemote, TransportKeys } from './noise.js';
import { HandshakeLimiter } from './handshake-limiter.js';
import type { NodeKeyPair } from './node-key.js';
import {
  CAP_AES_HW,
  KEY_LEN,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_MS,
  REKEY_ATTEMPT_MS,
  REKEY_TIMEOUT_MS,
  SEALED_OFFSET_TYPE,
  SEALED_OFFSET_VERSION,
  SEALED_TYPE_COOKIE,
  SEALED_TYPE_INIT,
  SEALED_TYPE_RESPONSE,
  SEALED_VERSION,
  SLOT_INDEX_BITS,
  SLOT_INDEX_MASK,
} from './sealed-format.js';
import type { SessionCipher } from './sealed-format.js';
import { nextTimestamp, timestampAfter } from './tai64n.js';

/** Defaults of the load limits (handshake-limiter.ts): answering an initiation costs ~0.7 ms of CPU. */
export const DEFAULT_HANDSHAKES_PER_SECOND = 200;
export const DEFAULT_HANDSHAKES_PER_SECOND_PER_SOURCE = 5;
/** The cookie secret is replaced this often, so a cookie proves a recent address (WireGuard's 2 min). */
export const COOKIE_SECRET_MAX_AGE_MS = 120_000;
/** A cookie is used for mac2 until this long before the responder may have replaced its secret. */
const COOKIE_LATENCY_MS = 5_000;
/** Retry interval once initiations have gone unanswered for REKEY_ATTEMPT_MS. */
export const SLOW_RETRY_MS = 30_000;
const RETRY_JITTER_MS = 333;
/** The side that did not initiate the current session rekeys this long after the one that did. */
export const RESPONDER_REKEY_DELAY_MS = 3 * REKEY_TIMEOUT_MS;
/** Local indexes of a peer's keypairs the addon may still hold (current, previous, next, kept) and one spare. */
const RECENT_INDEXES = 5;

/** Why a handshake message was not processed; counted as `refused.<reason>`. */
export type HandshakeRefusal = 'mac1' | 'decrypt' | 'key_unknown' | 'replayed' | 'rate_limited' | 'malformed' | 'unexpected_response';
const REFUSALS: readonly HandshakeRefusal[] = ['mac1', 'decrypt', 'key_unknown', 'replayed', 'rate_limited', 'malformed', 'unexpected_response'];

/**
 * Why a peer has no session, as peerState reports it:
 * - no_handshake_answer: our initiations went unanswered for `noAnswerAfterMs` (it is down, or
 *   unreachable, or refuses them: a peer with another cluster secret or without our key cannot
 *   answer, and cannot tell us why);
 * - authentication_failed: a handshake message from the peer's address (or answering our
 *   initiation to it) failed mac1 or its AEAD: another cluster secret, or it expects another
 *   key of ours / holds another key than the one configured here;
 * - key_unknown: the peer's address sent an initiation with a static key that is no peer's
 *   here: it has a new key, and this node's configuration the old one.
 */
export type PeerSealReason = 'up' | 'no_handshake_answer' | 'authentication_failed' | 'key_unknown';

export interface PeerSealState {
  state: 'up' | 'handshaking' | 'down';
  /** 'up' when up; when not, the known cause, if any. */
  reason?: PeerSealReason;
  /** Since the last completed handshake with the peer (either side initiating). */
  lastHandshakeAgeMs?: number;
  /** Initiation sent -> response read, of the last handshake this node initiated. */
  rttMs?: number;
}

/**
 * A keypair for the addon. The engine wipes the keys once installKeypair returns: the callee
 * copies them (borrowed, valid during the call).
 */
export interface KeypairInstall {
  /** Receiver index of data to this node: (random 20 bits << 12) | slot. */
  readonly localIndex: number;
  /** Receiver index to put on data to the peer. */
  readonly remoteIndex: number;
  readonly sendKey: Buffer;
  readonly recvKey: Buffer;
  readonly cipher: SessionCipher;
  /**
   * true: this node initiated; the keypair seals at once (current). false: it answered; the
   * keypair waits as `next` until a data message opens with it.
   */
  readonly initiator: boolean;
}

/** The addon's view of a slot's keypairs (native/src/seal.h, pt_seal_info). */
export interface KeypairInfo {
  /** A current keypair that may still seal (by age and counter). */
  readonly hasCurrent: boolean;
  /** Since the current keypair was installed; -1 when none was. */
  readonly currentAgeMs: number;
  /** Messages sealed with the current keypair. */
  readonly sendCounter: number;
  readonly hasNext: boolean;
  /** Since a message last opened in the slot; -1 when none did. */
  readonly lastReceiveAgeMs: number;
  /** A message opened with the current keypair: the peer holds it. */
  readonly confirmed: boolean;
}

/** What the engine needs of its transport. None of these may throw. */
export interface HandshakeIo {
  /** Sends `message` (the engine's; the callee may keep it) to the peer in `slot` at its address. */
  sendHandshake(slot: number, message: Buffer): void;
  /**
   * Installs a keypair in the addon's slot. After an initiator's keypair, the transport sends
   * data under it soon (a keepalive, an empty data message, when nothing else goes out), so the
   * peer's `next` becomes current.
   */
  installKeypair(slot: number, keypair: KeypairInstall): void;
  /** The addon's view of the slot; undefined when it has nothing for it. */
  keypairInfo(slot: number): KeypairInfo | undefined;
}

/** Where a handshake message came from. */
export interface HandshakeSource {
  /** The peer whose address the message came from, when the transport knows it. */
  readonly slot?: number | undefined;
  /** The source address as text ("10.0.0.2:8285"): the key of the rate limits and cookies. */
  readonly sourceText: string;
  /** Sends a message back to the source (a response or cookie reply; the callee may keep it). */
  reply(message: Buffer): void;
}

export type HandshakeOutcome =
  | {
      readonly accepted: true;
      readonly type: 'init' | 'response' | 'cookie';
      /** The peer the message authenticated as. */
      readonly slot: number;
      /**
       * The message proves the peer is at the source address now: true for a response (it
       * answers an ephemeral key of this node's, which only the peer could read). An accepted
       * initiation may be a replay across this node's restart, a cookie reply could come from
       * any cluster member: learn a roaming peer's address from fresh messages and opened data only.
       */
      readonly fresh: boolean;
    }
  | { readonly accepted: false; readonly reason: HandshakeRefusal | 'closed' };

export interface HandshakeEngineOptions {
  /** This node's static key pair (node-key.ts). */
  localKey: NodeKeyPair;
  /** The cluster secret, at least MIN_SECRET_BYTES: the handshake's psk is derived from it. */
  clusterSecret: Uint8Array;
  /** AES-256-GCM runs in hardware here: offered to peers, chosen when they offer it too. */
  cpuHasAesHw: boolean;
  io: HandshakeIo;
  log: Logger;
  /** Monotonic clock, ms (default: performance.now). A seam for tests. */
  nowMs?: () => number;
  /** Wall clock, epoch ms, for initiation timestamps (default: Date.now). */
  wallClockMs?: () => number;
  /** Rekey once the current keypair sealed this many messages (default REKEY_AFTER_MESSAGES). */
  rekeyAfterMessages?: number;
  /** Unanswered initiations for this long make the peer `no_handshake_answer` (default 2 x REKEY_TIMEOUT_MS). */
  noAnswerAfterMs?: number;
  /** Initiations processed per second, all sources (default DEFAULT_HANDSHAKES_PER_SECOND). */
  handshakesPerSecond?: number;
  /** Initiations processed per second from one source address (default DEFAULT_HANDSHAKES_PER_SECOND_PER_SOURCE). */
  handshakesPerSecondPerSource?: number;
}

interface Attempt {
  readonly handshake: InitiatorHandshake;
  readonly sentAtMs: number;
  /** Sent with a mac2: a cookie reply to it means the cookie went stale, not a first cookie. */
  readonly withCookie: boolean;
}

interface SealPeer {
  readonly slot: number;
  node: string;
  readonly remote: NoiseRemote;
  readonly keyHex: string;
  /** wantSession was called: keep a session with it. */
  wanted: boolean;
  /** The outstanding initiation (the newest of an unanswered run), if any. */
  attempt: Attempt | undefined;
  /** When the current run of unanswered initiations began. */
  runStartMs: number;
  /** When to send the next initiation while one is outstanding. */
  nextInitAtMs: number;
  cookie: { readonly value: Buffer; readonly atMs: number } | undefined;
  /** Greatest initiation timestamp accepted from it (this process only). */
  greatestTimestamp: Buffer | undefined;
  lastInstall: 'initiator' | 'responder' | undefined;
  lastHandshakeAtMs: number | undefined;
  rttMs: number | undefined;
  failure: 'authentication_failed' | 'key_unknown' | undefined;
  /** Local indexes of its newest keypairs, newest last: a new one must differ. */
  readonly recentIndexes: number[];
}

const COUNTERS = ['initsSent', 'initsReceived', 'responsesSent', 'responsesReceived', 'cookiesSent', 'cookiesReceived', 'keypairsInstalled'] as const;
type Counter = (typeof COUNTERS)[number];

/** Refusal outcomes, made once: a flood of forged messages allocates none. */
const REFUSED: Readonly<Record<HandshakeRefusal | 'closed', HandshakeOutcome>> = {
  mac1: { accepted: false, reason: 'mac1' },
  decrypt: { accepted: false, reason: 'decrypt' },
  key_unknown: { accepted: false, reason: 'key_unknown' },
  replayed: { accepted: false, reason: 'replayed' },
  rate_limited: { accepted: false, reason: 'rate_limited' },
  malformed: { accepted: false, reason: 'malformed' },
  unexpected_response: { accepted: false, reason: 'unexpected_response' },
  closed: { accepted: false, reason: 'closed' },
};

const OPTION_ERROR = 'ERR_PODTUN_SEAL_OPTIONS';
const PEER_ERROR = 'ERR_PODTUN_SEAL_PEER';

export class HandshakeEngine {
  private readonly identity: NoiseIdentity;
  private readonly cpuHasAesHw: boolean;
  private readonly io: HandshakeIo;
  private readonly log: Logger;
  private readonly nowMs: () => number;
  private readonly wallClockMs: () => number;
  private readonly rekeyAfterMessages: number;
  private readonly noAnswerAfterMs: number;
  private readonly limiter: HandshakeLimiter;
  private readonly peers = new PeerSlots<SealPeer>('ERR_PODTUN_SEAL_SLOT');
  private readonly byKey = new Map<string, SealPeer>();
  private readonly counts: Record<Counter, number>;
  private readonly refused: Record<HandshakeRefusal, number>;
  private readonly cookieSecret = Buffer.alloc(32);
  private cookieSecretAtMs: number;
  private closed = false;

  constructor(options: HandshakeEngineOptions) {
    if (options.clusterSecret.length < MIN_SECRET_BYTES) {
      throw new TransportError(OPTION_ERROR, `the cluster secret must be at least ${MIN_SECRET_BYTES} bytes, got ${options.clusterSecret.length}`);
    }
    if (options.localKey.publicKey.length !== KEY_LEN) {
      throw new TransportError(OPTION_ERROR, `the node's public key must be ${KEY_LEN} bytes, got ${options.localKey.publicKey.length}`);
    }
    this.identity = noiseIdentity(options.localKey, derivePsk(options.clusterSecret));
    this.cpuHasAesHw = options.cpuHasAesHw;
    this.io = options.io;
    this.log = options.log;
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.wallClockMs = options.wallClockMs ?? Date.now;
    this.rekeyAfterMessages = positiveOption(options.rekeyAfterMessages, REKEY_AFTER_MESSAGES, 'rekeyAfterMessages', OPTION_ERROR);
    this.noAnswerAfterMs = positiveOption(options.noAnswerAfterMs, 2 * REKEY_TIMEOUT_MS, 'noAnswerAfterMs', OPTION_ERROR);
    this.limiter = new HandshakeLimiter({
      perSecond: positiveOption(options.handshakesPerSecond, DEFAULT_HANDSHAKES_PER_SECOND, 'handshakesPerSecond', OPTION_ERROR),
      perSourcePerSecond: positiveOption(
        options.handshakesPerSecondPerSource,
        DEFAULT_HANDSHAKES_PER_SECOND_PER_SOURCE,
        'handshakesPerSecondPerSource',
        OPTION_ERROR,
      ),
      nowMs: this.nowMs,
    });
    this.counts = Object.fromEntries(COUNTERS.map((name) => [name, 0])) as Record<Counter, number>;
    this.refused = Object.fromEntries(REFUSALS.map((reason) => [reason, 0])) as Record<HandshakeRefusal, number>;
    randomFillSync(this.cookieSecret);
    this.cookieSecretAtMs = this.nowMs();
  }

  /**
   * Configures the peer in `slot` with its static public key (TransportError for a key of the
   * wrong length, this node's own, another slot's, or of small order). The same key again only
   * renames; a new key starts the peer afresh, and the transport clears the slot's keypairs,
   * which belong to the old key.
   */
  setPeer(slot: number, node: string, publicKey: Uint8Array): void {
    if (this.closed) throw new TransportError('ERR_PODTUN_SEAL_CLOSED', 'the handshake engine is closed');
    this.peers.check(slot);
    if (publicKey.length !== KEY_LEN) throw new TransportError(PEER_ERROR, `peer ${node}: a public key is ${KEY_LEN} bytes, got ${publicKey.length}`);
    const keyHex = Buffer.from(publicKey).toString('hex');
    if (this.identity.publicKey.equals(publicKey)) throw new TransportError(PEER_ERROR, `peer ${node}: its public key is this node's own`);
    const holder = this.byKey.get(keyHex);
    if (holder !== undefined && holder.slot !== slot) {
      throw new TransportError(PEER_ERROR, `peer ${node}: its public key is already peer ${holder.node}'s (slot ${holder.slot})`);
    }
    const existing = this.peers.at(slot);
    if (existing !== undefined && existing.keyHex === keyHex) {
      existing.node = node;
      return;
    }
    let remote: NoiseRemote;
    try {
      remote = noiseRemote(this.identity, publicKey);
    } catch (err: unknown) {
      throw new TransportError(PEER_ERROR, `peer ${node}: unusable public key: ${(err as Error).message}`, { cause: err });
    }
    if (existing !== undefined) this.forget(existing);
    const peer: SealPeer = {
      slot,
      node,
      remote,
      keyHex,
      wanted: false,
      attempt: undefined,
      runStartMs: 0,
      nextInitAtMs: 0,
      cookie: undefined,
      greatestTimestamp: undefined,
      lastInstall: undefined,
      lastHandshakeAtMs: undefined,
      rttMs: undefined,
      failure: undefined,
      recentIndexes: [],
    };
    this.peers.set(slot, peer);
    this.byKey.set(keyHex, peer);
  }

  removePeer(slot: number): void {
    const peer = this.peers.at(slot);
    if (peer !== undefined) this.forget(peer);
  }

  /**
   * A session with the peer is wanted (it was configured, or data for it found no keypair):
   * the next tick initiates unless one is under way, and an unanswered run retrying slowly
   * retries REKEY_TIMEOUT_MS after its last initiation. Cheap enough for the send path.
   */
  wantSession(slot: number): void {
    const peer = this.peers.at(slot);
    if (peer === undefined) return;
    peer.wanted = true;
    if (peer.attempt !== undefined) peer.nextInitAtMs = Math.min(peer.nextInitAtMs, peer.attempt.sentAtMs + REKEY_TIMEOUT_MS);
  }

  /** Initiates and retries what is due (see the file's comment). Call every 250 ms to 1 s. */
  tick(): void {
    if (this.closed) return;
    const now = this.nowMs();
    this.limiter.sweep();
    for (const peer of this.peers.values()) {
      const info = this.io.keypairInfo(peer.slot);
      if (peer.attempt !== undefined) {
        if (this.peerCompletedDuringRun(peer, info)) this.endRun(peer);
        else if (now >= peer.nextInitAtMs) this.initiate(peer, now);
        continue;
      }
      if (this.needsHandshake(peer, info, now)) this.initiate(peer, now);
    }
  }

  /**
   * Handles a handshake message (an initiation, response or cookie reply: the transport routes
   * by the type byte; data messages are the addon's). `message` is borrowed: valid during the
   * call. Refusals are counted, never thrown.
   */
  consume(message: Buffer, source: HandshakeSource): HandshakeOutcome {
    if (this.closed) return REFUSED.closed;
    const type = message.length >= 2 && message[SEALED_OFFSET_VERSION] === SEALED_VERSION ? message[SEALED_OFFSET_TYPE] : 0;
    if (type === SEALED_TYPE_INIT) this.counts.initsReceived++;
    else if (type === SEALED_TYPE_RESPONSE) this.counts.responsesReceived++;
    else if (type === SEALED_TYPE_COOKIE) this.counts.cookiesReceived++;
    if (handshakeType(message) === 0) return this.refuse('malformed');
    if (type === SEALED_TYPE_INIT) return this.consumeInitiation(message, source);
    if (type === SEALED_TYPE_RESPONSE) return this.consumeResponse(message, source);
    return this.consumeCookie(message);
  }

  /** Whether the peer has a keypair to seal with (the addon's current). */
  hasSession(slot: number): boolean {
    return this.peers.at(slot) !== undefined && this.io.keypairInfo(slot)?.hasCurrent === true;
  }

  /** The peer's session state and, when it has none, why; undefined for an empty slot. */
  peerState(slot: number): PeerSealState | undefined {
    const peer = this.peers.at(slot);
    if (peer === undefined) return undefined;
    const now = this.nowMs();
    const info = this.io.keypairInfo(slot);
    const out: PeerSealState = { state: 'down' };
    if (peer.lastHandshakeAtMs !== undefined) out.lastHandshakeAgeMs = now - peer.lastHandshakeAtMs;
    if (peer.rttMs !== undefined) out.rttMs = peer.rttMs;
    if (info?.hasCurrent === true) {
      out.state = 'up';
      out.reason = 'up';
      return out;
    }
    const unanswered = peer.attempt !== undefined && now - peer.runStartMs >= this.noAnswerAfterMs;
    const reason = peer.failure ?? (unanswered ? 'no_handshake_answer' : undefined);
    if (reason !== undefined) out.reason = reason;
    else if (peer.attempt !== undefined || (info?.hasNext === true && this.justAnswered(peer, now))) out.state = 'handshaking';
    return out;
  }

  /** Message counters and refusals by reason (`refused.<reason>`). A received message is counted once by type, refused or not. */
  stats(): Record<string, number> {
    const out: Record<string, number> = { ...this.counts };
    for (const reason of REFUSALS) out[`refused.${reason}`] = this.refused[reason];
    return out;
  }

  /** Forgets every peer and wipes the secrets it holds. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const peer of [...this.peers.values()]) this.forget(peer);
    this.limiter.clear();
    this.cookieSecret.fill(0);
    this.identity.psk.fill(0);
    this.identity.mac1Key.fill(0);
    this.identity.cookieKey.fill(0);
  }

  private needsHandshake(peer: SealPeer, info: KeypairInfo | undefined, now: number): boolean {
    if (info === undefined || !info.hasCurrent) {
      if (!peer.wanted) return false;
      // We just answered the peer: its first data makes our `next` current; give it the time.
      return !(info?.hasNext === true && this.justAnswered(peer, now));
    }
    if (info.sendCounter >= this.rekeyAfterMessages) return true;
    const rekeyAfterMs = peer.lastInstall === 'initiator' ? REKEY_AFTER_MS : REKEY_AFTER_MS + RESPONDER_REKEY_DELAY_MS;
    return info.currentAgeMs >= rekeyAfterMs;
  }

  /**
   * While our initiations went unanswered, the peer's got through: we answered it during this
   * run and its data has since made that keypair current (no `next` left). Ours are moot.
   * Judged by the engine's own clock, not by comparing keypair ages across clocks.
   */
  private peerCompletedDuringRun(peer: SealPeer, info: KeypairInfo | undefined): boolean {
    return (
      info?.hasCurrent === true &&
      !info.hasNext &&
      peer.lastInstall === 'responder' &&
      peer.lastHandshakeAtMs !== undefined &&
      peer.lastHandshakeAtMs >= peer.runStartMs
    );
  }

  /**
   * This node answered the peer within REKEY_TIMEOUT_MS: its `next` may still be confirmed by
   * the initiator's first data. Past that, a `next` no data opened is likely a replay's.
   */
  private justAnswered(peer: SealPeer, now: number): boolean {
    return peer.lastInstall === 'responder' && peer.lastHandshakeAtMs !== undefined && now - peer.lastHandshakeAtMs < REKEY_TIMEOUT_MS;
  }

  private initiate(peer: SealPeer, now: number): void {
    if (peer.attempt === undefined) peer.runStartMs = now;
    else wipeHandshake(peer.attempt.handshake);
    let cookie: Buffer | undefined;
    if (peer.cookie !== undefined) {
      if (now - peer.cookie.atMs < COOKIE_SECRET_MAX_AGE_MS - COOKIE_LATENCY_MS) cookie = peer.cookie.value;
      else peer.cookie = undefined;
    }
    const localIndex = this.newLocalIndex(peer);
    const capabilities = this.cpuHasAesHw ? CAP_AES_HW : 0;
    const { message, handshake } = createInitiation(this.identity, peer.remote, localIndex, nextTimestamp(this.wallClockMs()), capabilities, cookie);
    peer.attempt = { handshake, sentAtMs: now, withCookie: cookie !== undefined };
    const slow = now - peer.runStartMs >= REKEY_ATTEMPT_MS;
    peer.nextInitAtMs = now + (slow ? SLOW_RETRY_MS : REKEY_TIMEOUT_MS) + Math.random() * RETRY_JITTER_MS;
    this.counts.initsSent++;
    this.io.sendHandshake(peer.slot, message);
  }

  private consumeInitiation(msg: Buffer, source: HandshakeSource): HandshakeOutcome {
    const sourcePeer = source.slot === undefined ? undefined : this.peers.at(source.slot);
    if (!mac1Valid(this.identity.mac1Key, msg)) return this.refuse('mac1', sourcePeer, 'authentication_failed', source);
    if (!this.limiter.admit(source.sourceText)) {
      const cookie = makeCookie(this.currentCookieSecret(), source.sourceText);
      if (!mac2Valid(cookie, msg)) {
        this.counts.cookiesSent++;
        source.reply(createCookieReply(this.identity, senderIndexOf(msg), mac1Of(msg), cookie));
        return this.refuse('rate_limited');
      }
      if (!this.limiter.admitProven(source.sourceText)) return this.refuse('rate_limited');
    }

    let peer: SealPeer | undefined;
    const result = consumeInitiation(this.identity, msg, (initiatorStatic) => {
      peer = this.byKey.get(initiatorStatic.toString('hex'));
      return peer?.remote;
    });
    if (!result.ok) {
      if (result.reason === 'key_unknown') return this.refuse('key_unknown', sourcePeer, 'key_unknown', source);
      return this.refuse('decrypt', sourcePeer, 'authentication_failed', source);
    }
    if (peer === undefined) return this.refuse('key_unknown');
    const hs = result.handshake;
    if (peer.greatestTimestamp !== undefined && !timestampAfter(hs.timestamp, peer.greatestTimestamp)) return this.refuse('replayed');
    peer.greatestTimestamp = Buffer.from(hs.timestamp);

    const localIndex = this.newLocalIndex(peer);
    const cipher = chooseCipher(hs.capabilities, this.cpuHasAesHw);
    const { message, keys } = createResponse(this.identity, hs, localIndex, cipher);
    wipeHandshake(hs);
    // Installed before the response leaves, so the initiator's first data finds it.
    this.install(peer, localIndex, hs.remoteIndex, keys, cipher, false);
    this.counts.responsesSent++;
    source.reply(message);
    return { accepted: true, type: 'init', slot: peer.slot, fresh: false };
  }

  private consumeResponse(msg: Buffer, source: HandshakeSource): HandshakeOutcome {
    const sourcePeer = source.slot === undefined ? undefined : this.peers.at(source.slot);
    if (!mac1Valid(this.identity.mac1Key, msg)) return this.refuse('mac1', sourcePeer, 'authentication_failed', source);
    const receiverIndex = receiverIndexOf(msg);
    const peer = this.peers.at(receiverIndex & SLOT_INDEX_MASK);
    const attempt = peer?.attempt;
    if (peer === undefined || attempt === undefined || attempt.handshake.localIndex !== receiverIndex) return this.refuse('unexpected_response');
    const result = consumeResponse(this.identity, attempt.handshake, msg, this.cpuHasAesHw);
    if (result === undefined) return this.refuse('decrypt', peer, 'authentication_failed', source);
    const now = this.nowMs();
    peer.rttMs = now - attempt.sentAtMs;
    this.endRun(peer);
    this.install(peer, receiverIndex, result.remoteIndex, result.keys, result.cipher, true);
    return { accepted: true, type: 'response', slot: peer.slot, fresh: true };
  }

  private consumeCookie(msg: Buffer): HandshakeOutcome {
    const receiverIndex = receiverIndexOf(msg);
    const peer = this.peers.at(receiverIndex & SLOT_INDEX_MASK);
    const attempt = peer?.attempt;
    if (peer === undefined || attempt === undefined || attempt.handshake.localIndex !== receiverIndex) return this.refuse('unexpected_response');
    const cookie = openCookieReply(peer.remote, msg, attempt.handshake.mac1);
    if (cookie === undefined) return this.refuse('decrypt', peer, 'authentication_failed');
    const now = this.nowMs();
    peer.cookie?.value.fill(0);
    peer.cookie = { value: cookie, atMs: now };
    // The first cookie for this run: retry with mac2 at the next tick rather than in 5 s. A
    // cookie answering a mac2 means the secret turned over: the normal retry will carry it.
    if (!attempt.withCookie) peer.nextInitAtMs = now;
    return { accepted: true, type: 'cookie', slot: peer.slot, fresh: false };
  }

  private install(peer: SealPeer, localIndex: number, remoteIndex: number, keys: TransportKeys, cipher: SessionCipher, initiator: boolean): void {
    this.io.installKeypair(peer.slot, { localIndex, remoteIndex, sendKey: keys.sendKey, recvKey: keys.recvKey, cipher, initiator });
    keys.sendKey.fill(0);
    keys.recvKey.fill(0);
    peer.recentIndexes.push(localIndex);
    if (peer.recentIndexes.length > RECENT_INDEXES) peer.recentIndexes.shift();
    peer.lastInstall = initiator ? 'initiator' : 'responder';
    peer.lastHandshakeAtMs = this.nowMs();
    peer.failure = undefined;
    this.counts.keypairsInstalled++;
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug(initiator ? { peer: peer.node, rttMs: peer.rttMs } : { peer: peer.node }, initiator ? 'sealed session initiated' : 'sealed session answered');
    }
  }

  private refuse(
    reason: HandshakeRefusal,
    peer?: SealPeer,
    peerReason?: 'authentication_failed' | 'key_unknown',
    source?: HandshakeSource,
  ): HandshakeOutcome {
    this.refused[reason]++;
    if (peer !== undefined && peerReason !== undefined && peer.failure !== peerReason) {
      peer.failure = peerReason;
      this.log.warn(source === undefined ? { peer: peer.node, reason: peerReason } : { peer: peer.node, reason: peerReason, remote: source.sourceText }, 'sealed handshake refused');
    }
    return REFUSED[reason];
  }

  private endRun(peer: SealPeer): void {
    if (peer.attempt !== undefined) wipeHandshake(peer.attempt.handshake);
    peer.attempt = undefined;
    peer.nextInitAtMs = 0;
  }

  /** (random 20 bits << SLOT_INDEX_BITS) | slot, unlike any of the peer's keypairs the addon may hold. */
  private newLocalIndex(peer: SealPeer): number {
    for (;;) {
      const index = ((randomInt(1 << (32 - SLOT_INDEX_BITS)) << SLOT_INDEX_BITS) | peer.slot) >>> 0;
      if (!peer.recentIndexes.includes(index) && peer.attempt?.handshake.localIndex !== index) return index;
    }
  }

  private currentCookieSecret(): Buffer {
    const now = this.nowMs();
    if (now - this.cookieSecretAtMs >= COOKIE_SECRET_MAX_AGE_MS) {
      randomFillSync(this.cookieSecret);
      this.cookieSecretAtMs = now;
    }
    return this.cookieSecret;
  }

  private forget(peer: SealPeer): void {
    this.endRun(peer);
    peer.cookie?.value.fill(0);
    peer.cookie = undefined;
    peer.remote.staticShared.fill(0);
    this.byKey.delete(peer.keyHex);
    this.peers.clear(peer.slot);
  }
}

/** Wipes a handshake's secrets (best effort: the ephemeral private key is node:crypto's). */
function wipeHandshake(hs: { readonly chainingKey: Buffer; readonly hash: Buffer }): void {
  hs.chainingKey.fill(0);
  hs.hash.fill(0);
}
