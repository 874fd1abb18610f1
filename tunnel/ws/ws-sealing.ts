/**
 * Sealing on the WebSocket tunnel (`encryption: sealed`): the same messages as sealed UDP
 * (tunnel/seal/sealed-format.ts), so a proxy that terminates TLS, or a network that reads ws://,
 * sees only ciphertext. Each framed batch (ws-framing.ts) is sealed whole as one transport-data
 * message by the addon's sealer; handshake messages (Noise_IKpsk2, tunnel/seal/peer-sessions.ts)
 * ride the peer's connection as binary messages of their own. Sessions are this transport's: a
 * peer carried over WebSocket has a session here whether or not UDP has one.
 *
 * In, per binary message on a connection authenticated as the peer in `slot`:
 *   version 2, data      -> opened in place; a message the peer's key did not seal, a replay or
 *                           a forgery is dropped (counted by reason); empty: a keepalive
 *   version 2, handshake -> the engine, answered on the same connection
 *   anything else        -> Unsealed (the peer runs `encryption: none`)
 */
import type { Logger } from '../../core/logger.js';
import { DropReason } from '../../core/drop-reason.js';
import type { NativeSealer } from '../../native/addon.js';
import type { NodeKeyPair } from '../seal/node-key.js';
import { PeerSessions } from '../seal/peer-sessions.js';
import {
  SEALED_DATA_HEADER_LEN,
  SEALED_DATA_OVERHEAD,
  SEALED_OFFSET_TYPE,
  SEALED_TYPE_DATA,
  SEALED_VERSION,
} from '../seal/sealed-format.js';
import { addPrefixed } from '../transport-stats.js';

/** The addon's open() failures, as drop reasons (native/addon.ts SEAL_OPEN_*). */
const OPEN_FAILURES: Readonly<Record<number, DropReason>> = {
  [-1]: DropReason.UnknownSession,
  [-2]: DropReason.AuthFailed,
  [-3]: DropReason.Replayed,
  [-4]: DropReason.Expired,
  [-5]: DropReason.Malformed,
};

const EMPTY = Buffer.alloc(SEALED_DATA_OVERHEAD);

export interface WsSealingOptions {
  nodeKey: NodeKeyPair;
  clusterSecret: Uint8Array;
  cpuHasAesHw: boolean;
  sealer: NativeSealer;
  log: Logger;
  nowMs: () => number;
  drops: Float64Array;
  /** Sends a message (a handshake message, a keepalive) on the peer's connection; false when it has none. */
  sendOn: (slot: number, message: Buffer) => boolean;
  rekeyAfterMessages?: number;
}

export class WsSealing {
  private readonly sessions: PeerSessions;
  private readonly sealer: NativeSealer;
  private readonly drops: Float64Array;
  private readonly sendOn: (slot: number, message: Buffer) => boolean;

  constructor(options: WsSealingOptions) {
    this.sealer = options.sealer;
    this.drops = options.drops;
    this.sendOn = options.sendOn;
    this.sessions = new PeerSessions({
      nodeKey: options.nodeKey,
      clusterSecret: options.clusterSecret,
      cpuHasAesHw: options.cpuHasAesHw,
      nowMs: options.nowMs,
      log: options.log,
      ...(options.rekeyAfterMessages === undefined ? {} : { rekeyAfterMessages: options.rekeyAfterMessages }),
      keypairs: () => this.sealer,
      sendHandshake: (slot, message) => {
        this.sendOn(slot, message);
      },
      initiated: (slot) => this.sendKeepalive(slot),
    });
  }

  /** The peer in `slot` and its key (from its lease); a new key drops the sessions of the old one. */
  setPeer(slot: number, node: string, publicKey: string | undefined): void {
    this.sessions.setPeer(slot, node, publicKey);
  }

  removePeer(slot: number): void {
    this.sessions.removePeer(slot);
  }

  /** A connection with the peer opened: handshake now rather than at the next retry. */
  connected(slot: number): void {
    this.sessions.wantSession(slot);
  }

  /**
   * The peer has no connection left: its sessions end with them. A peer that restarted has
   * forgotten them, and messages sealed under them would die at its end until a new handshake;
   * the next connection handshakes first and the peer is up only then.
   */
  disconnected(slot: number): void {
    this.sessions.clearSessions(slot);
  }

  hasSession(slot: number): boolean {
    return this.sessions.hasSession(slot);
  }

  /**
   * Seals the framed batch at message[SEALED_DATA_HEADER_LEN .. + len) in place for `slot`
   * (message is len + SEALED_DATA_OVERHEAD bytes). False without a session (one is asked for).
   */
  seal(slot: number, message: Buffer, len: number): boolean {
    if (this.sealer.seal(slot, message, SEALED_DATA_HEADER_LEN, len, message, 0) >= 0) return true;
    this.sessions.wantSession(slot);
    return false;
  }

  /**
   * A binary message from the peer in `slot`: the framed batch inside it (a view into `data`,
   * opened in place), or undefined when there is none to deliver (a handshake message, a
   * keepalive, or a refusal, counted).
   */
  open(slot: number, data: Buffer, source: { remote: string; reply: (message: Buffer) => void }): Buffer | undefined {
    const drops = this.drops;
    if (data.length < 2 || data[0] !== SEALED_VERSION) {
      drops[DropReason.Unsealed] = (drops[DropReason.Unsealed] ?? 0) + 1;
      return undefined;
    }
    if (data[SEALED_OFFSET_TYPE] !== SEALED_TYPE_DATA) {
      const outcome = this.sessions.consume(Buffer.from(data), { slot, sourceText: source.remote, reply: source.reply });
      if (!outcome.accepted) drops[DropReason.HandshakeRefused] = (drops[DropReason.HandshakeRefused] ?? 0) + 1;
      return undefined;
    }
    const opened = this.sealer.open(data, 0, data.length);
    if (opened < 0) {
      const reason = OPEN_FAILURES[opened] ?? DropReason.Malformed;
      drops[reason] = (drops[reason] ?? 0) + 1;
      return undefined;
    }
    if (opened !== slot) {
      // Sealed by another peer's key on this peer's connection: its packets are not this peer's to send.
      drops[DropReason.AuthFailed] = (drops[DropReason.AuthFailed] ?? 0) + 1;
      return undefined;
    }
    if (data.length === SEALED_DATA_OVERHEAD) return undefined;
    return data.subarray(SEALED_DATA_HEADER_LEN, data.length - (SEALED_DATA_OVERHEAD - SEALED_DATA_HEADER_LEN));
  }

  tick(): void {
    this.sessions.tick();
  }

  /** Why the peer has no session, in status words; undefined when it has one or no cause is known. */
  downReason(slot: number): string | undefined {
    return this.sessions.downReason(slot);
  }

  lastHandshakeAgeMs(slot: number): number | undefined {
    return this.sessions.lastHandshakeAgeMs(slot);
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    addPrefixed(out, 'handshake', this.sessions.stats());
    addPrefixed(out, 'sealer', this.sealer.stats());
    return out;
  }

  close(): void {
    this.sessions.close();
    this.sealer.close();
  }

  private sendKeepalive(slot: number): void {
    const message = Buffer.allocUnsafe(SEALED_DATA_OVERHEAD);
    if (this.sealer.seal(slot, EMPTY, 0, 0, message, 0) >= 0) this.sendOn(slot, message);
  }
}
