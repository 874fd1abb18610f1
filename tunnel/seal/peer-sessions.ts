/**
 * The sealed sessions of one transport's peers: the handshake engine, and which public key each
 * peer's sessions belong to. Both sealed transports (tunnel/udp/sealed-udp-transport.ts,
 * tunnel/ws/ws-sealing.ts) hold their keypairs in an addon table of their own (the UDP socket,
 * a sealer) and keep them here in step with the peers' leases:
 *
 * - a peer whose lease names a usable key is handed to the engine, which is asked for a session;
 * - a new key (a rotation on the peer) drops the keypairs made under the old one first;
 * - a peer without a usable key is never reachable, and status says so (`key unknown`).
 */
import type { Logger } from '../../core/logger.js';
import { HandshakeEngine } from './handshake-engine.js';
import type { HandshakeOutcome, HandshakeSource, KeypairInfo, KeypairInstall, PeerSealReason } from './handshake-engine.js';
import type { NodeKeyPair } from './node-key.js';
import { parsePublicKey } from './node-key.js';

/** The engine's reasons in the words status, the dashboard and doctor show. */
const DOWN_REASON_WORDS: Readonly<Record<Exclude<PeerSealReason, 'up'>, string>> = {
  authentication_failed: 'authentication failed',
  no_handshake_answer: 'no handshake answer',
  key_unknown: 'key unknown',
};

const KEYLESS_REASON = 'key unknown: its lease names no public key';

/** The addon table holding a transport's keypairs (NativeUdp, NativeSealer). */
export interface KeypairTable {
  installKeypair(slot: number, localIndex: number, remoteIndex: number, sendKey: Buffer, recvKey: Buffer,
    cipher: KeypairInstall['cipher'], initiator: boolean): void;
  clearKeypairs(slot: number): void;
  keypairInfo(slot: number): KeypairInfo;
}

export interface PeerSessionsOptions {
  nodeKey: NodeKeyPair;
  clusterSecret: Uint8Array;
  cpuHasAesHw: boolean;
  nowMs: () => number;
  log: Logger;
  rekeyAfterMessages?: number;
  /** The transport's table; undefined while it has none (a UDP socket before start). */
  keypairs: () => KeypairTable | undefined;
  /** Sends a handshake message to the peer in `slot` (never throws). */
  sendHandshake(slot: number, message: Buffer): void;
  /**
   * Called after this node installed a keypair it initiated: the peer holds it as `next` until a
   * message opens with it, so the transport sends one (a keepalive), and what waited for it.
   */
  initiated(slot: number): void;
}

export class PeerSessions {
  private readonly engine: HandshakeEngine;
  private readonly keypairs: () => KeypairTable | undefined;
  private readonly log: Logger;
  /** The key each peer's sessions belong to (its lease's text). */
  private readonly keys = new Map<number, string>();
  /** Peers whose lease names no usable key. */
  private readonly keyless = new Set<number>();

  constructor(options: PeerSessionsOptions) {
    this.keypairs = options.keypairs;
    this.log = options.log;
    this.engine = new HandshakeEngine({
      localKey: options.nodeKey,
      clusterSecret: options.clusterSecret,
      cpuHasAesHw: options.cpuHasAesHw,
      nowMs: options.nowMs,
      log: options.log,
      ...(options.rekeyAfterMessages === undefined ? {} : { rekeyAfterMessages: options.rekeyAfterMessages }),
      io: {
        sendHandshake: (slot, message) => options.sendHandshake(slot, message),
        installKeypair: (slot, k) => {
          const table = this.keypairs();
          if (table === undefined) return;
          table.installKeypair(slot, k.localIndex, k.remoteIndex, k.sendKey, k.recvKey, k.cipher, k.initiator);
          if (k.initiator) options.initiated(slot);
        },
        keypairInfo: (slot) => this.keypairs()?.keypairInfo(slot),
      },
    });
  }

  /**
   * The peer in `slot` and its key (its lease's text); a new key drops the sessions of the old
   * one. Returns true when a session is now wanted under a new key (the transport may start the
   * handshake at once), false when nothing changed or the key is unusable.
   */
  setPeer(slot: number, node: string, publicKey: string | undefined): boolean {
    if (publicKey === this.keys.get(slot) && (publicKey !== undefined || this.keyless.has(slot))) return false;
    if (this.keys.delete(slot)) this.keypairs()?.clearKeypairs(slot);
    try {
      if (publicKey === undefined) throw new Error('its lease names no public key');
      this.engine.setPeer(slot, node, parsePublicKey(publicKey));
    } catch (err: unknown) {
      this.log.warn({ peer: node, err }, 'peer cannot be sealed to');
      this.engine.removePeer(slot);
      this.keyless.add(slot);
      return false;
    }
    this.keyless.delete(slot);
    this.keys.set(slot, publicKey);
    this.engine.wantSession(slot);
    return true;
  }

  removePeer(slot: number): void {
    this.engine.removePeer(slot);
    this.keyless.delete(slot);
    if (this.keys.delete(slot)) this.keypairs()?.clearKeypairs(slot);
  }

  /** Drops the peer's keypairs (its sessions ended); the engine makes new ones when asked. */
  clearSessions(slot: number): void {
    if (this.keys.has(slot)) this.keypairs()?.clearKeypairs(slot);
  }

  /** A keypair that may seal now (the addon's view). */
  hasSession(slot: number): boolean {
    return this.keys.has(slot) && this.keypairs()?.keypairInfo(slot).hasCurrent === true;
  }

  wantSession(slot: number): void {
    this.engine.wantSession(slot);
  }

  consume(message: Buffer, source: HandshakeSource): HandshakeOutcome {
    return this.engine.consume(message, source);
  }

  tick(): void {
    this.engine.tick();
  }

  /**
   * Why the peer has no session, in status words: no usable key, else the transport's own cause
   * (`otherwise`, when it knows one), else the engine's; undefined when none is known.
   */
  downReason(slot: number, otherwise?: string): string | undefined {
    if (this.keyless.has(slot)) return KEYLESS_REASON;
    if (otherwise !== undefined) return otherwise;
    const reason = this.engine.peerState(slot)?.reason;
    return reason === undefined || reason === 'up' ? undefined : DOWN_REASON_WORDS[reason];
  }

  lastHandshakeAgeMs(slot: number): number | undefined {
    return this.engine.peerState(slot)?.lastHandshakeAgeMs;
  }

  stats(): Record<string, number> {
    return this.engine.stats();
  }

  close(): void {
    this.engine.close();
  }
}
