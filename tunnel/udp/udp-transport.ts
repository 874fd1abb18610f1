/**
 * The UDP tunnel: one socket of the native addon (sendmmsg/recvmmsg, UDP GSO/GRO), the 12-byte
 * header of udp-header.ts on every datagram, and probes for liveness and RTT, tagged with the
 * cluster secret (udp-probe-auth.ts).
 *
 * Inside (router -> peer):
 *   1. send(slot, batch, idx, count): one addon sendPackets per call with the peer's prebuilt
 *      data header; the addon strips virtio headers and splits super-packets.
 * Outside (peer -> router), once per receive batch:
 *   1. check version, type, flags and length; refuse -> BadHeader
 *   2. sender node id -> peer; unknown -> UnknownPeer (never forwarded, never answered)
 *   3. data -> appended to the reused InboundBatch, tagged with the peer's slot, if the peer
 *               has shown the cluster secret lately (a fresh tagged probe or a tagged reply
 *               within 2 x deadAfterMs), else Unauthenticated: a node with the wrong secret
 *               cannot inject packets even though data datagrams carry no tag of their own
 *      probe, probe reply without a valid tag -> Unauthenticated (never answered, never
 *               brings a peer up, never re-addresses it)
 *      probe -> answered at its source address (a peer behind NAT is answered at its current
 *               mapping; a peer without a configured endpoint is re-addressed to it: roaming,
 *               only by a probe newer than any seen from it, so a replayed one cannot)
 *      probe reply -> liveness and RTT
 *   4. the sink is called once with everything that arrived.
 * Endpoints that name a host ("node-b.example.net:8285") are kept resolved by an
 * EndpointResolver (looked up again periodically, and often while the peer is down); a new
 * answer re-addresses the peer. Until the first answer such a peer is reached like one without
 * an endpoint (at the address its authenticated probes come from).
 */
import type { InboundBatch, PacketBatch } from '../../core/packet-batch.js';
import type { OwnershipClaims } from '../../core/ownership-claims.js';
import { DropReason, dropCountersToObject, newDropCounters } from '../../core/drop-reason.js';
import type { LogFields } from '../../core/log-fields.js';
import type { Logger } from '../../core/logger.js';
import type { NativeUdp, UdpOpenOptions } from '../../native/addon.js';
import { MIN_SECRET_BYTES } from '../cluster-auth.js';
import { nodeIdOf } from './node-id.js';
import { formatEndpoint, isNamedEndpoint, parseEndpoint, parseEndpointOrName } from '../../core/endpoint.js';
import type { Endpoint, NamedEndpoint } from '../../core/endpoint.js';
import { DEFAULT_RESOLVE_INTERVAL_MS, EndpointResolver, systemLookup } from '../endpoint-resolver.js';
import type { HostLookup, ResolvedAddress } from '../endpoint-resolver.js';
import {
  DEFAULT_DEAD_AFTER_MS,
  DEFAULT_PROBE_INTERVAL_MS,
  PeerLiveness,
} from './peer-liveness.js';
import type { LivenessChange } from './peer-liveness.js';
import {
  FLAG_AUTHENTICATED,
  HEADER_LEN,
  MSG_DATA,
  MSG_PROBE,
  MSG_PROBE_REPLY,
  PROBE_LEN,
  PROBE_OFFSET_TAG,
  PROBE_OFFSET_TIMESTAMP,
  PROBE_TAG_PURPOSE,
  REPLY_TAG_PURPOSE,
  checkHeader,
  readProbeTimestamp,
  readSenderId,
  readSeq,
  writeHeader,
  writeProbeTimestamp,
} from './udp-header.js';
import { probeTagValid, writeProbeTag } from './udp-probe-auth.js';
import { transportNowMs } from '../../core/transport.js';
import type { InboundSink, PeerSpec, PeerStatus, Transport } from '../../core/transport.js';
import { errorReason } from '../../core/error-reason.js';
import { PeerSlots, closedHandlesReleased } from '../peer-slots.js';
import { TransportError, positiveOption } from '../transport-error.js';
import { addDrops, addPrefixed } from '../transport-stats.js';

export const DEFAULT_RECV_BUFFER_BYTES = 4 * 1024 * 1024;
export const DEFAULT_SEND_BUFFER_BYTES = 4 * 1024 * 1024;
/** The receive buffer the addon fills per batch. */
const RECV_AREA_BYTES = 4 * 1024 * 1024;
export const RECV_MAX_DATAGRAMS = 4096;

export type UdpOpener = (opts: UdpOpenOptions) => NativeUdp;

export interface UdpTransportOptions {
  /** Local "host:port" to bind; port 0 takes an ephemeral port (see `port`). */
  listen: string;
  /** This node's name; its id (node-id.ts) goes in every header. */
  localNode: string;
  /**
   * The cluster secret (at least 16 bytes): probes and replies carry a tag made with it, and
   * only tagged ones are answered or count as a reply. Copied at construction.
   */
  clusterSecret: Uint8Array;
  log: Logger;
  probeIntervalMs?: number;
  deadAfterMs?: number;
  /** SO_RCVBUF / SO_SNDBUF wanted, bytes. */
  recvBufferBytes?: number;
  sendBufferBytes?: number;
  /** Opens the socket; default: the native addon. A seam for tests. */
  openUdp?: UdpOpener;
  /** Clock in ms (default: performance clock as epoch ms). A seam for tests. */
  nowMs?: () => number;
  /** Looks up endpoints that name a host; default the system's resolver. A seam for tests. */
  lookupHost?: HostLookup;
  /** How often such names are looked up again while their peer is up; default 60 s. */
  resolveIntervalMs?: number;
  /**
   * The subnet claims probes carry and check (core/ownership-claims.ts). Only the sealed
   * transport's probes carry them: unsealed probes are the older, fixed format.
   */
  ownership?: OwnershipClaims;
}

export interface UdpPeer {
  slot: number;
  node: string;
  nodeId: number;
  /** As given in the PeerSpec (for status and logs). */
  endpointText: string | undefined;
  /**
   * Parsed configured endpoint (for a host name: the address it resolved to last, with its
   * port); undefined when absent, unusable or not resolved yet.
   */
  endpoint: Endpoint | undefined;
  /** The configured endpoint's host name and port, when it names a host. */
  named: NamedEndpoint | undefined;
  /** Address learned from its probes (only used when it has no configured endpoint). */
  learnedHost: string | undefined;
  learnedPort: number;
  /** Timestamp of the newest authenticated probe from it: only a newer one may re-address it. */
  newestProbeMs: number;
  /** Data from it is accepted until then: refreshed by each authenticated probe or reply. */
  authenticUntilMs: number;
  /** When a probe or reply under its id last failed the tag check (a reason it is down). */
  probeRefusedAtMs: number;
  /** The addon's slot holds an address: sends can go out. */
  addressed: boolean;
  /** Data header prebuilt for this peer (room for per-peer authentication later). */
  header: Buffer;
  liveness: PeerLiveness;
}

/** A refused probe from a peer counts towards its reason this long. */
const REFUSAL_REASON_MS = 30_000;

export class UdpTransport implements Transport {
  readonly kind = 'udp';

  private readonly listen: Endpoint;
  private readonly listenText: string;
  private readonly localId: number;
  private readonly secret: Buffer;
  protected readonly log: Logger;
  private readonly probeIntervalMs: number;
  private readonly deadAfterMs: number;
  private readonly recvBufferBytes: number;
  private readonly sendBufferBytes: number;
  private readonly openUdp: UdpOpener | undefined;
  protected readonly nowMs: () => number;
  protected readonly ownership: OwnershipClaims | undefined;
  private readonly resolver: EndpointResolver;

  protected udp: NativeUdp | undefined;
  protected sink: InboundSink | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private boundPort = -1;

  protected readonly peers = new PeerSlots<UdpPeer>('ERR_PODTUN_UDP_SLOT');
  protected readonly bySenderId = new Map<number, UdpPeer>();
  /** The sender of the previous datagram: a receive batch mostly comes from one or two peers. */
  private lastSender: UdpPeer | undefined;

  // Receive side, allocated once.
  protected readonly recvBuf: Buffer;
  protected readonly recvOffs: Int32Array;
  protected readonly inbound: InboundBatch;
  protected readonly onRecvBatch: (count: number) => void;
  /** Probes and replies are built here (control messages; one at a time). */
  protected readonly controlBuf = Buffer.alloc(PROBE_LEN);

  // Counters.
  protected readonly dropCounters = newDropCounters();
  protected datagramsIn = 0;
  protected packetsIn = 0;
  protected packetsOut = 0;
  protected probesOut = 0;
  protected probesIn = 0;
  protected probeRepliesOut = 0;
  protected probeRepliesIn = 0;
  protected staleReplies = 0;
  private staleProbes = 0;
  protected controlSendFailures = 0;

  constructor(options: UdpTransportOptions) {
    try {
      this.listen = parseEndpoint(options.listen, { allowPortZero: true });
    } catch (err: unknown) {
      throw new TransportError('ERR_PODTUN_UDP_LISTEN',
        `cannot listen on ${String(options.listen)}: ${errorReason(err)}`, { cause: err });
    }
    this.listenText = options.listen;
    this.localId = nodeIdOf(options.localNode);
    if (!(options.clusterSecret instanceof Uint8Array) || options.clusterSecret.length < MIN_SECRET_BYTES) {
      throw new TransportError('ERR_PODTUN_UDP_OPTION',
        `clusterSecret must be at least ${MIN_SECRET_BYTES} bytes`);
    }
    this.secret = Buffer.from(options.clusterSecret);
    this.log = options.log;
    this.probeIntervalMs = positiveOption(options.probeIntervalMs, DEFAULT_PROBE_INTERVAL_MS, 'probeIntervalMs', 'ERR_PODTUN_UDP_OPTION');
    this.deadAfterMs = positiveOption(options.deadAfterMs, DEFAULT_DEAD_AFTER_MS, 'deadAfterMs', 'ERR_PODTUN_UDP_OPTION');
    this.recvBufferBytes = positiveOption(options.recvBufferBytes, DEFAULT_RECV_BUFFER_BYTES, 'recvBufferBytes', 'ERR_PODTUN_UDP_OPTION');
    this.sendBufferBytes = positiveOption(options.sendBufferBytes, DEFAULT_SEND_BUFFER_BYTES, 'sendBufferBytes', 'ERR_PODTUN_UDP_OPTION');
    this.openUdp = options.openUdp;
    this.nowMs = options.nowMs ?? transportNowMs;
    this.ownership = options.ownership;
    this.resolver = new EndpointResolver({
      lookup: options.lookupHost ?? systemLookup,
      // A socket bound to IPv4 reaches IPv4 only; one bound to IPv6 takes either (mapped).
      family: this.listen.family === 4 ? 4 : undefined,
      intervalMs: positiveOption(options.resolveIntervalMs, DEFAULT_RESOLVE_INTERVAL_MS, 'resolveIntervalMs', 'ERR_PODTUN_UDP_OPTION'),
      log: this.log,
      onAddress: (slot, address) => this.resolved(slot, address),
    });

    this.recvBuf = Buffer.allocUnsafe(RECV_AREA_BYTES);
    this.recvOffs = new Int32Array(2 * RECV_MAX_DATAGRAMS);
    this.inbound = {
      buf: this.recvBuf,
      offs: new Int32Array(2 * RECV_MAX_DATAGRAMS),
      count: 0,
      headroom: 0,
      peers: new Int32Array(RECV_MAX_DATAGRAMS),
      vnetHdr: false,
    };
    this.onRecvBatch = (count: number): void => this.receive(count);
  }

  /** The socket seals and opens data datagrams (sealed-udp-transport.ts). */
  protected get sealed(): boolean {
    return false;
  }

  /** Starts the addon's receive loop into the reused buffers. */
  protected startReceiving(udp: NativeUdp): void {
    udp.start(this.recvBuf, this.recvOffs, RECV_MAX_DATAGRAMS, this.onRecvBatch);
  }

  /** The bound UDP port (after start; useful when port 0 was asked). */
  get port(): number {
    if (this.boundPort < 0) throw new TransportError('ERR_PODTUN_UDP_CLOSED', 'the UDP transport is not started');
    return this.boundPort;
  }

  /** Opens and binds the socket, starts receiving and probing. */
  async start(sink: InboundSink): Promise<void> {
    if (this.closed) throw new TransportError('ERR_PODTUN_UDP_CLOSED', 'the UDP transport is closed');
    if (this.udp !== undefined) throw new TransportError('ERR_PODTUN_UDP_CLOSED', 'the UDP transport is already started');
    const open = this.openUdp ?? (await loadAddonOpener());
    if (this.closed) throw new TransportError('ERR_PODTUN_UDP_CLOSED', 'the UDP transport is closed');
    let udp: NativeUdp;
    try {
      udp = open({
        host: this.listen.host,
        port: this.listen.port,
        recvBufferBytes: this.recvBufferBytes,
        sendBufferBytes: this.sendBufferBytes,
        sealed: this.sealed,
      });
    } catch (err: unknown) {
      throw new TransportError('ERR_PODTUN_UDP_LISTEN',
        `cannot listen on ${this.listenText}: ${errorReason(err)}`, { cause: err });
    }
    try {
      this.startReceiving(udp);
    } catch (err: unknown) {
      udp.close();
      throw new TransportError('ERR_PODTUN_UDP_LISTEN',
        `cannot receive on ${this.listenText}: ${errorReason(err)}`, { cause: err });
    }
    this.udp = udp;
    this.boundPort = udp.port;
    this.sink = sink;
    for (const peer of this.bySenderId.values()) this.address(peer);
    const tickMs = Math.max(1, Math.min(this.probeIntervalMs, Math.floor(this.deadAfterMs / 4)));
    this.timer = setInterval(() => {
      this.resolver.tick(this.nowMs());
      this.tick();
    }, tickMs);
    this.log.info({ listen: formatEndpoint(this.listen.host, udp.port), gso: udp.gso, gro: udp.gro },
      'udp transport listening');
    this.tick();
  }

  /**
   * Adds or updates the peer in `slot`. Setting the same node again (a lease refresh) keeps its
   * liveness and learned address; a changed endpoint re-addresses it.
   */
  setPeer(slot: number, spec: PeerSpec): void {
    this.peers.check(slot);
    const nodeId = nodeIdOf(spec.node);
    const endpointText = spec.endpoints[this.kind];
    const old = this.peers.at(slot);
    const same = old !== undefined && old.nodeId === nodeId && old.node === spec.node;
    if (old !== undefined && !same) this.forget(old);
    const elsewhere = this.bySenderId.get(nodeId);
    if (elsewhere !== undefined && elsewhere.slot !== slot) this.forget(elsewhere);

    const configured = this.usableEndpoint(spec, endpointText);
    if (same && endpointText === old.endpointText) return;
    let endpoint: Endpoint | undefined;
    let named: NamedEndpoint | undefined;
    if (configured === undefined || !isNamedEndpoint(configured)) {
      endpoint = configured;
      this.resolver.forget(slot);
    } else {
      named = configured;
      const known = this.resolver.watch(slot, { name: named.name, peer: spec.node, endpoint: endpointText ?? named.name }, this.nowMs());
      if (known !== undefined) endpoint = { ...known, port: named.port };
    }
    if (same) {
      old.endpointText = endpointText;
      old.endpoint = endpoint;
      old.named = named;
      this.address(old);
      return;
    }
    const header = Buffer.alloc(HEADER_LEN);
    writeHeader(header, 0, MSG_DATA, this.localId, 0);
    const liveness: PeerLiveness = new PeerLiveness(
      { probeIntervalMs: this.probeIntervalMs, deadAfterMs: this.deadAfterMs },
      this.nowMs(),
      (change) => {
        const current = this.peers.at(slot);
        if (current !== undefined && current.liveness === liveness) this.onLivenessChange(current, change);
      },
    );
    const peer: UdpPeer = {
      slot,
      node: spec.node,
      nodeId,
      endpointText,
      endpoint,
      named,
      learnedHost: undefined,
      learnedPort: 0,
      newestProbeMs: Number.NEGATIVE_INFINITY,
      authenticUntilMs: Number.NEGATIVE_INFINITY,
      probeRefusedAtMs: Number.NEGATIVE_INFINITY,
      addressed: false,
      header,
      liveness,
    };
    this.peers.set(slot, peer);
    this.bySenderId.set(nodeId, peer);
    this.address(peer);
    // Probe a new peer at once: its data is accepted only after it has shown the secret, so the
    // first exchange should not wait for the next tick.
    this.tick();
  }

  removePeer(slot: number): void {
    this.peers.check(slot);
    const peer = this.peers.at(slot);
    if (peer !== undefined) this.forget(peer);
  }

  /**
   * Sends packets `idx[0..count)` of `batch` (virtio header first, as read from the TUN) to the
   * peer in `slot`: one addon call. Borrowed batch: the addon has finished with it on return.
   * Returns how many were dropped (unknown peer or no address: PeerDown; refused: Congested).
   */
  send(slot: number, batch: PacketBatch, idx: Int32Array, count: number): number {
    const peer = this.peers.at(slot);
    const udp = this.udp;
    if (peer === undefined || !peer.addressed || udp === undefined) {
      this.dropCounters[DropReason.PeerDown] = (this.dropCounters[DropReason.PeerDown] ?? 0) + count;
      return count;
    }
    const sent = udp.sendPackets(slot, peer.header, HEADER_LEN, batch.buf, batch.offs, idx, count, batch.headroom);
    this.packetsOut += sent;
    const dropped = count - sent;
    if (dropped > 0) this.dropCounters[DropReason.Congested] = (this.dropCounters[DropReason.Congested] ?? 0) + dropped;
    return dropped;
  }

  peerStatus(): PeerStatus[] {
    const out: PeerStatus[] = [];
    const nowMs = this.nowMs();
    for (const peer of this.peers.values()) {
      const status: PeerStatus = {
        slot: peer.slot,
        node: peer.node,
        transport: 'udp',
        endpoint: this.endpointOf(peer),
        state: peer.liveness.state,
        rttMs: peer.liveness.rttMs,
        lastSeenMs: peer.liveness.lastSeenMs,
      };
      if (status.state !== 'up') {
        const cause = this.downCause(peer, nowMs);
        status.downReason = cause.reason;
        status.downDetail = cause.detail;
      }
      out.push(status);
    }
    return out;
  }

  /** Why a peer that is not up is not, from what this transport saw of it. */
  private downCause(peer: UdpPeer, nowMs: number): { reason: string; detail: string } {
    if (nowMs - peer.probeRefusedAtMs < REFUSAL_REASON_MS) {
      return { reason: 'authentication failed', detail: 'its probes fail the cluster secret check (another cluster secret?)' };
    }
    if (!peer.addressed && peer.named !== undefined) {
      return { reason: 'host name not resolved', detail: `${peer.named.name} has not resolved yet, and it has not probed us` };
    }
    if (!peer.addressed) return { reason: 'no endpoint', detail: 'its lease names no usable udp endpoint, and it has not probed us' };
    const lastSeenMs = peer.liveness.lastSeenMs;
    const heard = lastSeenMs === undefined ? 'never answered' : `nothing heard for ${Math.round((nowMs - lastSeenMs) / 1000)} s`;
    return { reason: 'no answer on udp', detail: `probes to ${this.endpointOf(peer) ?? '?'}: ${heard} (UDP blocked, or the node down?)` };
  }

  drops(): Record<string, number> {
    return dropCountersToObject(this.dropCounters);
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = {
      datagramsIn: this.datagramsIn,
      packetsIn: this.packetsIn,
      packetsOut: this.packetsOut,
      probesOut: this.probesOut,
      probesIn: this.probesIn,
      probeRepliesOut: this.probeRepliesOut,
      probeRepliesIn: this.probeRepliesIn,
      staleReplies: this.staleReplies,
      staleProbes: this.staleProbes,
      controlSendFailures: this.controlSendFailures,
    };
    addDrops(out, this.dropCounters);
    if (this.udp !== undefined) addPrefixed(out, 'native', this.udp.stats());
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.resolver.close();
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    const udp = this.udp;
    this.udp = undefined;
    this.sink = undefined;
    if (udp === undefined) return;
    udp.close();
    // The addon closes the fd in libuv's close callback, at the end of this loop iteration; the
    // second check phase comes after it, so once this resolves the port can be bound again.
    await closedHandlesReleased();
  }

  // --- outside: one receive batch (called by the addon; buffers valid during the call) ---

  protected receive(count: number): void {
    const buf = this.recvBuf;
    const offs = this.recvOffs;
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
      const type = checkHeader(buf, off, len);
      if (type < 0) {
        drops[DropReason.BadHeader] = (drops[DropReason.BadHeader] ?? 0) + 1;
        continue;
      }
      const senderId = readSenderId(buf, off);
      let peer = this.lastSender;
      if (peer === undefined || peer.nodeId !== senderId) {
        peer = this.bySenderId.get(senderId);
        if (peer === undefined) {
          drops[DropReason.UnknownPeer] = (drops[DropReason.UnknownPeer] ?? 0) + 1;
          continue;
        }
        this.lastSender = peer;
      }
      if (type === MSG_DATA) {
        if (nowMs >= peer.authenticUntilMs) {
          drops[DropReason.Unauthenticated] = (drops[DropReason.Unauthenticated] ?? 0) + 1;
          continue;
        }
        inOffs[2 * n] = off + HEADER_LEN;
        inOffs[2 * n + 1] = len - HEADER_LEN;
        inPeers[n] = peer.slot;
        n++;
        peer.liveness.onInbound(nowMs);
      } else if (!probeTagValid(this.secret, type === MSG_PROBE ? PROBE_TAG_PURPOSE : REPLY_TAG_PURPOSE, buf, off, len)) {
        drops[DropReason.Unauthenticated] = (drops[DropReason.Unauthenticated] ?? 0) + 1;
        peer.probeRefusedAtMs = nowMs;
      } else if (type === MSG_PROBE) {
        this.answerProbe(peer, i, off, nowMs);
      } else if (peer.liveness.onProbeReply(readSeq(buf, off), readProbeTimestamp(buf, off), nowMs)) {
        this.probeRepliesIn++;
        peer.authenticUntilMs = nowMs + 2 * this.deadAfterMs;
      } else {
        this.staleReplies++;
      }
    }
    if (n === 0 || this.sink === undefined) return;
    this.packetsIn += n;
    inbound.count = n;
    this.sink(inbound);
  }

  /** An authenticated probe: answered at its source; a newer one keeps the peer alive and may re-address it. */
  private answerProbe(peer: UdpPeer, i: number, off: number, nowMs: number): void {
    const udp = this.udp;
    if (udp === undefined) return;
    this.probesIn++;
    const source = udp.sourceOf(i);
    const sentAtMs = readProbeTimestamp(this.recvBuf, off);
    if (sentAtMs > peer.newestProbeMs) {
      peer.newestProbeMs = sentAtMs;
      peer.authenticUntilMs = nowMs + 2 * this.deadAfterMs;
      peer.liveness.onInbound(nowMs);
      if (peer.endpoint === undefined && (source.host !== peer.learnedHost || source.port !== peer.learnedPort)) {
        peer.learnedHost = source.host;
        peer.learnedPort = source.port;
        this.address(peer);
        this.log.info({ peer: peer.node, endpoint: formatEndpoint(source.host, source.port) }, 'peer address learned');
      }
    } else {
      // A replay, or the peer's clock stepped back: still answered (harmless), nothing learned.
      this.staleProbes++;
    }
    const reply = this.controlBuf;
    writeHeader(reply, 0, MSG_PROBE_REPLY, this.localId, readSeq(this.recvBuf, off), FLAG_AUTHENTICATED);
    this.recvBuf.copy(reply, PROBE_OFFSET_TIMESTAMP, off + PROBE_OFFSET_TIMESTAMP, off + PROBE_OFFSET_TAG);
    writeProbeTag(this.secret, REPLY_TAG_PURPOSE, reply, 0);
    if (udp.sendToAddress(source.host, source.port, reply, PROBE_LEN)) this.probeRepliesOut++;
    else this.controlSendFailures++;
  }

  // --- control ---

  protected tick(): void {
    const udp = this.udp;
    if (udp === undefined) return;
    const nowMs = this.nowMs();
    const probe = this.controlBuf;
    for (const peer of this.bySenderId.values()) {
      const seq = peer.liveness.tick(nowMs);
      if (seq < 0 || !peer.addressed) continue;
      writeHeader(probe, 0, MSG_PROBE, this.localId, seq, FLAG_AUTHENTICATED);
      writeProbeTimestamp(probe, 0, nowMs);
      writeProbeTag(this.secret, PROBE_TAG_PURPOSE, probe, 0);
      if (udp.sendTo(peer.slot, probe, PROBE_LEN)) this.probesOut++;
      else this.controlSendFailures++;
    }
  }

  /** Points the addon's slot at the configured endpoint, else at the learned address. */
  protected address(peer: UdpPeer): void {
    const udp = this.udp;
    if (udp === undefined) return;
    const host = peer.endpoint?.host ?? peer.learnedHost;
    const port = peer.endpoint?.port ?? peer.learnedPort;
    if (host === undefined) return;
    try {
      udp.setPeer(peer.slot, host, port);
      peer.addressed = true;
    } catch (err: unknown) {
      peer.addressed = false;
      this.log.warn({ peer: peer.node, endpoint: formatEndpoint(host, port), err }, 'cannot address peer');
    }
  }

  /** The spec's endpoint (an address or a host name) if this socket can reach it; else undefined (logged). */
  private usableEndpoint(spec: PeerSpec, text: string | undefined): Endpoint | NamedEndpoint | undefined {
    if (text === undefined) return undefined;
    try {
      const endpoint = parseEndpointOrName(text);
      if (!isNamedEndpoint(endpoint) && endpoint.family === 6 && this.listen.family === 4) {
        throw new Error(`an IPv6 endpoint cannot be reached from ${this.listenText}`);
      }
      return endpoint;
    } catch (err: unknown) {
      this.log.warn({ peer: spec.node, endpoint: text, err }, 'peer endpoint unusable; waiting for its probes');
      return undefined;
    }
  }

  /** A named endpoint's address is new or changed: the peer is sent to there from now on. */
  private resolved(slot: number, address: ResolvedAddress): void {
    const peer = this.peers.at(slot);
    if (peer?.named === undefined) return;
    peer.endpoint = { ...address, port: peer.named.port };
    this.address(peer);
  }

  protected forget(peer: UdpPeer): void {
    this.resolver.forget(peer.slot);
    this.peers.clear(peer.slot);
    if (this.lastSender === peer) this.lastSender = undefined;
    if (this.bySenderId.get(peer.nodeId) === peer) this.bySenderId.delete(peer.nodeId);
    if (peer.addressed) this.udp?.clearPeer(peer.slot);
    peer.addressed = false;
  }

  /** The endpoint in use: as configured, the address a configured name resolved to, else the learned one. */
  private endpointOf(peer: UdpPeer): string | undefined {
    if (peer.named !== undefined && peer.endpoint !== undefined) return formatEndpoint(peer.endpoint.host, peer.endpoint.port);
    if (peer.named === undefined && peer.endpointText !== undefined) return peer.endpointText;
    return peer.learnedHost === undefined ? undefined : formatEndpoint(peer.learnedHost, peer.learnedPort);
  }

  private onLivenessChange(peer: UdpPeer, change: LivenessChange): void {
    if (this.peers.at(peer.slot) !== peer) return;
    // A silent peer may have moved: its name (if it has one) is looked up again now and often.
    this.resolver.setDown(peer.slot, change.state !== 'up', this.nowMs());
    const fields: LogFields = {
      peer: peer.node,
      endpoint: this.endpointOf(peer),
      rttMs: change.rttMs === undefined ? undefined : Math.round(change.rttMs * 1000) / 1000,
    };
    if (change.state === 'up') this.log.info(fields, 'peer up');
    else if (change.previous === 'up') this.log.warn(fields, 'peer down');
    else this.log.warn(fields, 'peer unreachable');
  }
}

/** The addon is loaded on first start, so this module imports without it (tests, tooling). */
async function loadAddonOpener(): Promise<UdpOpener> {
  try {
    const { addon } = await import('../../native/addon.js');
    return (opts) => addon.openUdp(opts);
  } catch (err: unknown) {
    throw new TransportError('ERR_PODTUN_UDP_ADDON', `cannot load the native addon: ${errorReason(err)}`, { cause: err });
  }
}
