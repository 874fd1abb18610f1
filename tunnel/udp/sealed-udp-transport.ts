/**
 * The UDP tunnel with every datagram sealed (`encryption: sealed`, the default): the messages of
 * tunnel/seal/sealed-format.ts instead of udp-header.ts's. What differs from the unsealed
 * transport it extends:
 *
 * - Sessions: tunnel/seal/peer-sessions.ts runs a Noise_IKpsk2 handshake with each peer whose
 *   lease names a public key, and hands the session keys to the addon, which seals and opens
 *   every data datagram in C (nothing per packet in JS).
 * Inside (router -> peer):
 *   1. send(slot, ...): no session yet -> NoSession (and a handshake is asked for); else one
 *      addon sendPackets, which seals each wire datagram after the TSO split.
 * Outside (peer -> router), once per receive batch (the addon has already opened, authenticated
 * and replay-checked every data datagram, and dropped and counted the rest):
 *   slots[i] >= 0: an opened message from the peer in that slot (the key that sealed it names
 *     the slot, so the router's source check binds each inner packet to that key's subnets):
 *     an IP packet -> the InboundBatch; a control message -> probe / reply; empty -> keepalive.
 *   slots[i] = -1: not data: a handshake message -> the engine; an unsealed (version 1)
 *     datagram -> Unsealed (one end has `encryption: none`); anything else -> BadHeader.
 * Liveness: probes and replies are sealed control messages, so a peer is up only while
 *   authenticated replies come back; forged traffic cannot keep it up or take it down.
 * Roaming: a peer without a configured endpoint (or whose configured host name has not resolved
 *   yet) is addressed by its first valid handshake, then follows its authenticated data (the
 *   addon re-addresses on a datagram that opened). A configured name that resolves elsewhere
 *   re-addresses the peer; its sessions go on, and a stalled handshake is retried there soon.
 */
import type { PacketBatch } from '../../core/packet-batch.js';
import { DropReason, dropCountersToObject } from '../../core/drop-reason.js';
import { CLAIM_BYTES } from '../../core/ownership-claims.js';
import type { PeerSpec, PeerStatus } from '../../core/transport.js';
import type { NativeUdp } from '../../native/addon.js';
import { formatEndpoint } from '../../core/endpoint.js';
import { PeerSessions } from '../seal/peer-sessions.js';
import type { NodeKeyPair } from '../seal/node-key.js';
import {
  CONTROL_PROBE,
  CONTROL_PROBE_REPLY,
  SEALED_VERSION,
} from '../seal/sealed-format.js';
import { addDrops, addPrefixed } from '../transport-stats.js';
import { RECV_MAX_DATAGRAMS, UdpTransport } from './udp-transport.js';
import type { UdpPeer, UdpTransportOptions } from './udp-transport.js';
import { HEADER_VERSION, checkHeader, readSenderId } from './udp-header.js';
import { STAGE_MAX_AGE_MS, StagedPackets } from './session-staging.js';

/** How long an unsealed datagram from a peer names why it is down, and the words. */
const UNSEALED_REASON_MS = 10_000;
const UNSEALED_REASON = 'unsealed: it sends encryption: none traffic';

/**
 * A sealed control message: type (1), sequence (4), sender timestamp (8, double ms), the
 * sender's subnet claim (core/ownership-claims.ts; zeros when it keeps none). A reply echoes the
 * sequence and timestamp and carries the replier's own claim.
 */
const CONTROL_OFFSET_SEQ = 1;
const CONTROL_OFFSET_TIMESTAMP = 5;
const CONTROL_OFFSET_CLAIM = 13;
const CONTROL_LEN = CONTROL_OFFSET_CLAIM + CLAIM_BYTES;

/** Native counters of datagrams the addon refused, as drop reasons. */
const NATIVE_DROPS: readonly (readonly [string, DropReason])[] = [
  ['sealAuthFailed', DropReason.AuthFailed],
  ['sealReplayed', DropReason.Replayed],
  ['sealUnknownIndex', DropReason.UnknownSession],
  ['sealExpired', DropReason.Expired],
];

export interface SealedUdpTransportOptions extends UdpTransportOptions {
  /** This node's static key pair (tunnel/seal/node-key.ts). */
  nodeKey: NodeKeyPair;
  /** AES-256-GCM runs in hardware here (the addon's `cpuHasAesHw`); default: ask the addon. */
  cpuHasAesHw?: boolean;
  /** Rekey after this many messages on one session (tests set it low). */
  rekeyAfterMessages?: number;
}

export class SealedUdpTransport extends UdpTransport {
  private readonly sessions: PeerSessions;
  /** Per received datagram: the slot whose session opened it, or -1 (allocated once). */
  private readonly recvSlots = new Int32Array(RECV_MAX_DATAGRAMS);
  private controlIn = 0;
  private keepalivesIn = 0;
  private packetsStaged = 0;
  /** When each peer last sent an unsealed datagram (its config says encryption: none). */
  private readonly unsealedAtMs = new Map<number, number>();
  /** Per peer waiting for its session, the packets held for it (none: nobody waits). */
  private readonly staged = new Map<number, StagedPackets>();
  /**
   * Each addressed peer's address ("192.168.77.2:8285") -> its slot, and back: a handshake
   * message from a peer's address is named to the engine, which can then say why that peer
   * stays down (authentication failed, key unknown).
   */
  private readonly slotByAddress = new Map<string, number>();
  private readonly addressBySlot = new Map<number, string>();

  constructor(options: SealedUdpTransportOptions) {
    super(options);
    this.sessions = new PeerSessions({
      nodeKey: options.nodeKey,
      clusterSecret: options.clusterSecret,
      cpuHasAesHw: options.cpuHasAesHw ?? false,
      nowMs: this.nowMs,
      log: this.log,
      ...(options.rekeyAfterMessages === undefined ? {} : { rekeyAfterMessages: options.rekeyAfterMessages }),
      keypairs: () => this.udp,
      sendHandshake: (slot, message) => {
        if (this.udp?.sendTo(slot, message, message.length) !== true) this.controlSendFailures++;
      },
      initiated: (slot) => {
        const udp = this.udp;
        if (udp === undefined) return;
        // Confirm the keypair at once (a keepalive), then send what waited for the session.
        if (!udp.sealTo(slot, this.controlBuf, 0)) this.controlSendFailures++;
        if (this.staged.size > 0) this.flushStaged(udp, this.nowMs());
      },
    });
  }

  protected override get sealed(): boolean {
    return true;
  }

  protected override startReceiving(udp: NativeUdp): void {
    udp.start(this.recvBuf, this.recvOffs, RECV_MAX_DATAGRAMS, this.onRecvBatch, this.recvSlots);
  }

  /**
   * Adds or updates the peer in `slot` (see UdpTransport.setPeer) and its key: a new key (a
   * rotation on the peer) drops the sessions made with the old one and handshakes afresh; the
   * other peers' sessions are untouched.
   */
  override setPeer(slot: number, spec: PeerSpec): void {
    super.setPeer(slot, spec);
    const peer = this.peers.at(slot);
    if (peer === undefined) return;
    if (this.sessions.setPeer(slot, spec.node, spec.publicKey)) this.tick();
  }

  protected override forget(peer: UdpPeer): void {
    this.unmapAddress(peer.slot);
    this.sessions.removePeer(peer.slot);
    this.staged.delete(peer.slot);
    this.unsealedAtMs.delete(peer.slot);
    super.forget(peer);
  }

  protected override address(peer: UdpPeer): void {
    super.address(peer);
    this.udp?.allowRoam(peer.slot, peer.endpoint === undefined);
    const before = this.addressBySlot.get(peer.slot);
    this.unmapAddress(peer.slot);
    const host = peer.endpoint?.host ?? peer.learnedHost;
    if (!peer.addressed || host === undefined) return;
    const text = formatEndpoint(host, peer.endpoint?.port ?? peer.learnedPort);
    this.slotByAddress.set(text, peer.slot);
    this.addressBySlot.set(peer.slot, text);
    // Moved (its name resolved elsewhere, a new endpoint): the session goes on where it is, and
    // a handshake retrying slowly at the old address is retried soon at the new one.
    if (before !== undefined && before !== text) this.sessions.wantSession(peer.slot);
  }

  private unmapAddress(slot: number): void {
    const text = this.addressBySlot.get(slot);
    if (text === undefined) return;
    this.addressBySlot.delete(slot);
    if (this.slotByAddress.get(text) === slot) this.slotByAddress.delete(text);
  }

  /**
   * Sends packets `idx[0..count)` of `batch` to the peer in `slot`, each wire datagram sealed by
   * the addon. Borrowed batch. Without a session the packets are dropped (NoSession) and a
   * handshake is asked for: queueing them would buffer without bound while a peer is away.
   */
  override send(slot: number, batch: PacketBatch, idx: Int32Array, count: number): number {
    const peer = this.peers.at(slot);
    const udp = this.udp;
    if (peer === undefined || !peer.addressed || udp === undefined) {
      this.dropCounters[DropReason.PeerDown] = (this.dropCounters[DropReason.PeerDown] ?? 0) + count;
      return count;
    }
    const sent = udp.sendPackets(slot, peer.header, 0, batch.buf, batch.offs, idx, count, batch.headroom);
    this.packetsOut += sent;
    const dropped = count - sent;
    if (dropped === 0) return 0;
    if (sent === 0 && !this.sessions.hasSession(slot)) return this.stage(slot, batch, idx, count);
    this.dropCounters[DropReason.Congested] = (this.dropCounters[DropReason.Congested] ?? 0) + dropped;
    return dropped;
  }

  /** No session yet: the packets wait for it (session-staging.ts), what does not fit is NoSession. */
  private stage(slot: number, batch: PacketBatch, idx: Int32Array, count: number): number {
    let staged = this.staged.get(slot);
    if (staged === undefined) {
      staged = new StagedPackets();
      this.staged.set(slot, staged);
    }
    const refused = staged.add(batch, idx, count, this.nowMs());
    this.packetsStaged += count - refused;
    if (refused > 0) this.dropCounters[DropReason.NoSession] = (this.dropCounters[DropReason.NoSession] ?? 0) + refused;
    this.sessions.wantSession(slot);
    return refused;
  }

  /** Sends what waited for a session that now exists; gives up what waited too long. */
  private flushStaged(udp: NativeUdp, nowMs: number): void {
    for (const [slot, staged] of this.staged) {
      const peer = this.peers.at(slot);
      if (peer !== undefined && peer.addressed && this.sessions.hasSession(slot)) {
        const sent = udp.sendPackets(slot, peer.header, 0, staged.buf, staged.offs, staged.idx, staged.count, 0);
        this.packetsOut += sent;
        this.dropCounters[DropReason.Congested] = (this.dropCounters[DropReason.Congested] ?? 0) + staged.count - sent;
      } else if (nowMs - staged.sinceMs < STAGE_MAX_AGE_MS) {
        continue;
      } else {
        this.dropCounters[DropReason.NoSession] = (this.dropCounters[DropReason.NoSession] ?? 0) + staged.count;
      }
      this.staged.delete(slot);
    }
  }

  override peerStatus(): PeerStatus[] {
    const out = super.peerStatus();
    for (const status of out) {
      status.sealed = true;
      const ageMs = this.sessions.lastHandshakeAgeMs(status.slot);
      if (ageMs !== undefined) status.lastHandshakeAgeMs = ageMs;
      if (status.state === 'up') continue;
      const unsealedAtMs = this.unsealedAtMs.get(status.slot);
      const unsealed = unsealedAtMs !== undefined && this.nowMs() - unsealedAtMs < UNSEALED_REASON_MS ? UNSEALED_REASON : undefined;
      // The session's reason is the nearer cause; the probes' stands when it has none.
      const reason = this.sessions.downReason(status.slot, unsealed);
      if (reason !== undefined) {
        status.downReason = reason;
        delete status.downDetail;
      }
      const address = this.udp?.peerAddressOf(status.slot);
      if (status.endpoint === undefined && address !== undefined) status.endpoint = formatEndpoint(address.host, address.port);
    }
    return out;
  }

  override drops(): Record<string, number> {
    return dropCountersToObject(this.withNativeDrops());
  }

  override stats(): Record<string, number> {
    const out = super.stats();
    out['controlIn'] = this.controlIn;
    out['keepalivesIn'] = this.keepalivesIn;
    out['packetsStaged'] = this.packetsStaged;
    addDrops(out, this.withNativeDrops());
    addPrefixed(out, 'handshake', this.sessions.stats());
    return out;
  }

  override async close(): Promise<void> {
    this.sessions.close();
    await super.close();
  }

  // --- outside: one receive batch (called by the addon; buffers valid during the call) ---

  protected override receive(count: number): void {
    const buf = this.recvBuf;
    const offs = this.recvOffs;
    const slots = this.recvSlots;
    const inbound = this.inbound;
    const inOffs = inbound.offs;
    const inPeers = inbound.peers;
    const drops = this.dropCounters;
    const nowMs = this.nowMs();
    let n = 0;
    this.datagramsIn += count;
    for (let i = 0; i < count; i++) {
      const off = offs[2 * i] ?? 0;
      const len = offs[2 * i + 1] ?? 0;
      const slot = slots[i] ?? -1;
      if (slot >= 0) {
        const peer = this.peers.at(slot);
        if (peer === undefined) continue;
        peer.liveness.onInbound(nowMs);
        if (len === 0) {
          this.keepalivesIn++;
          continue;
        }
        const version = (buf[off] ?? 0) >> 4;
        if (version === 4 || version === 6) {
          inOffs[2 * n] = off;
          inOffs[2 * n + 1] = len;
          inPeers[n] = slot;
          n++;
        } else {
          this.control(peer, off, len, nowMs);
        }
        continue;
      }
      const first = len > 0 ? (buf[off] ?? 0) : 0;
      if (first === SEALED_VERSION) this.handshake(i, off, len);
      else if (first === HEADER_VERSION) this.unsealed(off, len, nowMs);
      else drops[DropReason.BadHeader] = (drops[DropReason.BadHeader] ?? 0) + 1;
    }
    // A responder's session starts with the peer's first message: what waited for it goes now.
    if (this.staged.size > 0 && this.udp !== undefined) this.flushStaged(this.udp, nowMs);
    if (n === 0 || this.sink === undefined) return;
    this.packetsIn += n;
    inbound.count = n;
    this.sink(inbound);
  }

  /**
   * An unsealed (version 1) datagram: dropped. When it names a peer's node id, that peer most
   * likely runs `encryption: none`, which status says while the peer is down (a forger can make
   * it say so too, but cannot bring the peer up or down).
   */
  private unsealed(off: number, len: number, nowMs: number): void {
    this.dropCounters[DropReason.Unsealed] = (this.dropCounters[DropReason.Unsealed] ?? 0) + 1;
    if (checkHeader(this.recvBuf, off, len) < 0) return;
    const peer = this.bySenderId.get(readSenderId(this.recvBuf, off));
    if (peer !== undefined) this.unsealedAtMs.set(peer.slot, nowMs);
  }

  /** A handshake message: the engine checks it (cheap MAC first) and answers at its source. */
  private handshake(i: number, off: number, len: number): void {
    const udp = this.udp;
    if (udp === undefined) return;
    const source = udp.sourceOf(i);
    const message = Buffer.from(this.recvBuf.subarray(off, off + len));
    const sourceText = formatEndpoint(source.host, source.port);
    const result = this.sessions.consume(message, {
      slot: this.slotByAddress.get(sourceText),
      sourceText,
      reply: (answer: Buffer) => {
        if (!udp.sendToAddress(source.host, source.port, answer, answer.length)) this.controlSendFailures++;
      },
    });
    if (!result.accepted) {
      this.dropCounters[DropReason.HandshakeRefused] = (this.dropCounters[DropReason.HandshakeRefused] ?? 0) + 1;
      return;
    }
    // A peer without a configured endpoint moves only on proof that it is at the source now: a
    // response to our fresh initiation here, opened data in the addon (followRoaming). An
    // initiation may be a replay, so it is answered at its source but teaches nothing.
    const peer = this.peers.at(result.slot);
    if (result.fresh && peer !== undefined && peer.endpoint === undefined) this.learn(peer, source.host, source.port);
  }

  /** Addresses a roaming peer at `host:port` (the addon's slot too), logged once per move. */
  private learn(peer: UdpPeer, host: string, port: number): void {
    if (peer.addressed && peer.learnedHost === host && peer.learnedPort === port) return;
    peer.learnedHost = host;
    peer.learnedPort = port;
    this.address(peer);
    this.log.info({ peer: peer.node, endpoint: formatEndpoint(host, port) }, 'peer address learned');
  }

  /** Takes up the addresses the addon moved roaming peers to on their authenticated data. */
  private followRoaming(udp: NativeUdp): void {
    for (const peer of this.peers.values()) {
      if (peer.endpoint !== undefined) continue;
      const at = udp.peerAddressOf(peer.slot);
      if (at !== undefined) this.learn(peer, at.host, at.port);
    }
  }

  /** A sealed control message from `peer` (authenticated by the addon). */
  private control(peer: UdpPeer, off: number, len: number, nowMs: number): void {
    const buf = this.recvBuf;
    if (len < CONTROL_LEN) {
      this.dropCounters[DropReason.Malformed] = (this.dropCounters[DropReason.Malformed] ?? 0) + 1;
      return;
    }
    this.controlIn++;
    const type = buf[off] ?? 0;
    const seq = buf.readUInt32BE(off + CONTROL_OFFSET_SEQ);
    const sentAtMs = buf.readDoubleBE(off + CONTROL_OFFSET_TIMESTAMP);
    if (type === CONTROL_PROBE) {
      this.probesIn++;
      this.ownership?.heard(peer.slot, buf, off + CONTROL_OFFSET_CLAIM);
      const reply = this.controlBuf;
      reply[0] = CONTROL_PROBE_REPLY;
      buf.copy(reply, CONTROL_OFFSET_SEQ, off + CONTROL_OFFSET_SEQ, off + CONTROL_OFFSET_CLAIM);
      this.writeClaim(peer.slot, reply);
      if (this.udp?.sealTo(peer.slot, reply, CONTROL_LEN) === true) this.probeRepliesOut++;
      else this.controlSendFailures++;
    } else if (type === CONTROL_PROBE_REPLY) {
      if (peer.liveness.onProbeReply(seq, sentAtMs, nowMs)) {
        this.probeRepliesIn++;
        this.ownership?.heard(peer.slot, buf, off + CONTROL_OFFSET_CLAIM);
      } else {
        this.staleReplies++;
      }
    } else {
      this.dropCounters[DropReason.Malformed] = (this.dropCounters[DropReason.Malformed] ?? 0) + 1;
    }
  }

  private writeClaim(slot: number, message: Buffer): void {
    if (this.ownership === undefined) message.fill(0, CONTROL_OFFSET_CLAIM, CONTROL_LEN);
    else this.ownership.write(slot, message, CONTROL_OFFSET_CLAIM);
  }

  // --- control ---

  protected override tick(): void {
    const udp = this.udp;
    if (udp === undefined) return;
    this.followRoaming(udp);
    this.sessions.tick();
    const nowMs = this.nowMs();
    if (this.staged.size > 0) this.flushStaged(udp, nowMs);
    const probe = this.controlBuf;
    for (const peer of this.peers.values()) {
      const seq = peer.liveness.tick(nowMs);
      if (seq < 0 || !peer.addressed || !this.sessions.hasSession(peer.slot)) continue;
      probe[0] = CONTROL_PROBE;
      probe.writeUInt32BE(seq, CONTROL_OFFSET_SEQ);
      probe.writeDoubleBE(nowMs, CONTROL_OFFSET_TIMESTAMP);
      this.writeClaim(peer.slot, probe);
      if (udp.sealTo(peer.slot, probe, CONTROL_LEN)) this.probesOut++;
      else this.controlSendFailures++;
    }
  }

  /** The transport's drop counters plus the addon's refusals of sealed datagrams. */
  private withNativeDrops(): Float64Array {
    const out = Float64Array.from(this.dropCounters);
    const native = this.udp?.stats();
    if (native === undefined) return out;
    for (const [name, reason] of NATIVE_DROPS) out[reason] = (out[reason] ?? 0) + (native[name] ?? 0);
    return out;
  }
}
