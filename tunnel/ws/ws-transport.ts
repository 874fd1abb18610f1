/**
 * The WebSocket tunnel: pod packets over ws:// or wss://, for networks where UDP is blocked, only
 * HTTP(S) (possibly through a CONNECT proxy) gets out, or a node can only dial out. This is its
 * Transport face: the peers, which connection each is sent on, backpressure, state and counters.
 *
 * Its parts: ws-listener.ts accepts authenticated connections (ws-admission.ts bounds those not
 * authenticated yet), ws-dialer.ts dials peers (proxy, TLS trust, redial), ws-connection.ts is one
 * connection (framing in and out, ping/pong, liveness, close reasons), ws-handshake.ts the
 * authentication, ws-framing.ts the message format, ws-options.ts the options.
 *
 * Connections. Every node dials every peer that has a `ws` endpoint and names `ws` among its
 * transports (while a more preferred transport carries the traffic, the connection stands by), and accepts connections from
 * any peer that authenticates (ws-handshake.ts: hello, then its proof over our fresh nonce; only
 * then may it replace that peer's previous inbound connection). A node that can only dial out thus still has a
 * connection with each peer, through its own dial. A pair that dial each other has two
 * connections: each side sends on the one it dialed while that is open, else on the inbound one,
 * and receives from both, so no packet is delivered twice.
 *
 * Inside (router -> peer):
 *   1. send(slot, batch, idx, count): pick the peer's connection (else PeerDown)
 *   2. plan the batch's messages of <= maxPayloadBytes in one pass (ws-framing.ts)
 *   3. if what the connection holds unsent + this batch > maxBufferedBytes: drop the whole batch
 *      (Congested). A slow or dead peer costs its own packets, never a wait for others.
 *   4. the connection writes the messages from its reused buffers; packets that cannot be
 *      framed at all are dropped (TooBig / Malformed).
 * Outside (peer -> router): each connection decodes its messages and calls the sink.
 * Control, every tick: each connection pings and checks its liveness; a peer never up within
 *   deadAfterMs is unreachable; up while an authenticated connection is open, else down.
 *
 * No MTU overhead (ws-transport-type.ts): the packets ride a TCP byte stream, and TCP cuts it into segments that
 * fit the underlay path MTU on its own, so the framing (4 bytes per packet, 2-14 per message)
 * never makes an underlay packet too big and the TUN MTU need not shrink for it.
 */
import { isIP } from 'node:net';
import type { PacketBatch } from '../../core/packet-batch.js';
import { DropReason, dropCountersToObject } from '../../core/drop-reason.js';
import type { Logger } from '../../core/logger.js';
import { transportNowMs } from '../../core/transport.js';
import type { InboundSink, PeerSpec, PeerStatus, Transport } from '../../core/transport.js';
import { PeerSlots, closedHandlesReleased } from '../peer-slots.js';
import { TransportError } from '../transport-error.js';
import { addDrops } from '../transport-stats.js';
import { MessagePlan, newInboundBatch, planMessages } from './ws-framing.js';
import type { ConnectionOwner, WsConnection } from './ws-connection.js';
import { WsCounters } from './ws-counters.js';
import { WsDialer } from './ws-dialer.js';
import { WsListener } from './ws-listener.js';
import { resolveWsOptions } from './ws-options.js';
import { WsSealing } from './ws-sealing.js';
import { SEALED_DATA_OVERHEAD } from '../seal/sealed-format.js';
import type { WsConfig, WsTransportOptions } from './ws-options.js';
import { newWsPeer, sendingConn } from './ws-peer.js';
import type { WsPeer } from './ws-peer.js';
import { unmapped } from './ws-admission.js';
import { AWAITING_DIAL_IN, wsDownCause } from './ws-down-reason.js';

// The netns tests size an oversized message from it, imported from here.
export { DEFAULT_MAX_PAYLOAD_BYTES } from './ws-options.js';


export class WsTransport implements Transport {
  readonly kind = 'ws';

  private readonly config: WsConfig;
  private readonly log: Logger;
  private readonly nowMs = transportNowMs;
  private readonly counters = new WsCounters();
  private readonly peers = new PeerSlots<WsPeer>('ERR_PODTUN_WS_SLOT');
  private readonly byNode = new Map<string, WsPeer>();
  /** Hosts (IP literals) of peers' endpoints, with how many peers name each. */
  private readonly peerAddresses = new Map<string, number>();
  /** The plan of the batch being sent (one send at a time). */
  private readonly plan = new MessagePlan();
  private readonly owner: ConnectionOwner;
  private readonly listener: WsListener | undefined;
  private readonly dialer: WsDialer;
  private readonly sealing: WsSealing | undefined;
  private readonly maxPlannedBytes: number;

  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private onDrained: (() => void) | undefined;

  constructor(options: WsTransportOptions) {
    const config = resolveWsOptions(options);
    this.config = config;
    this.log = options.log;
    const sealing = options.sealing;
    this.sealing = sealing === undefined ? undefined : new WsSealing({
      ...sealing,
      clusterSecret: options.clusterSecret,
      log: this.log,
      nowMs: this.nowMs,
      drops: this.counters.drops,
      sendOn: (slot, message) => {
        const peer = this.peers.at(slot);
        const conn = peer === undefined ? undefined : sendingConn(peer);
        return conn?.sendControl(message) === true;
      },
    });
    // A sealed message is the framed batch plus its header and tag: plan batches that still fit maxPayload.
    this.maxPlannedBytes = config.maxPayloadBytes - (sealing === undefined ? 0 : SEALED_DATA_OVERHEAD);
    this.owner = {
      config,
      log: this.log,
      counters: this.counters,
      nowMs: this.nowMs,
      inbound: newInboundBatch(),
      sink: undefined,
      sealing: this.sealing,
      connections: new Set<WsConnection>(),
      connectionClosed: (conn, code) => this.onClose(conn, code),
    };
    this.dialer = new WsDialer(this.owner, (peer) => this.refreshState(peer));
    this.listener = config.listen === undefined ? undefined : new WsListener(this.owner, {
      peerOf: (node) => this.byNode.get(node),
      isPeerAddress: (address) => this.peerAddresses.has(address),
      accepted: (conn) => this.accepted(conn),
    }, config.listen);
  }

  /** The bound listening port (after start, with `listen` set; useful when port 0 was asked). */
  get port(): number {
    const port = this.listener?.port ?? -1;
    if (port < 0) throw new TransportError('ERR_PODTUN_WS_CLOSED', 'the WebSocket transport is not listening');
    return port;
  }

  /** Reads TLS files, listens if configured, starts dialing peers and the liveness tick. */
  async start(sink: InboundSink): Promise<void> {
    if (this.closed) throw new TransportError('ERR_PODTUN_WS_CLOSED', 'the WebSocket transport is closed');
    if (this.started) throw new TransportError('ERR_PODTUN_WS_CLOSED', 'the WebSocket transport is already started');
    this.started = true;
    try {
      await this.startServing(sink);
    } catch (err: unknown) {
      this.started = false;
      this.dialer.stop();
      throw err;
    }
  }

  private async startServing(sink: InboundSink): Promise<void> {
    await this.dialer.start();
    if (this.listener !== undefined) {
      await this.listener.start();
    } else {
      if (this.closed) throw new TransportError('ERR_PODTUN_WS_CLOSED', 'the WebSocket transport is closed');
      this.log.info({ listen: undefined }, 'ws transport started, dialing out only');
    }
    this.owner.sink = sink;
    const { pingIntervalMs, deadAfterMs } = this.config;
    const tickMs = Math.max(1, Math.min(pingIntervalMs, Math.floor(deadAfterMs / 4)));
    this.timer = setInterval(() => this.tick(), tickMs);
    for (const peer of this.byNode.values()) this.dialer.dial(peer);
  }

  /**
   * Adds or updates the peer in `slot`. The same node with the same dial target (a lease
   * refresh) keeps its connections; a changed target closes our dialed connection and redials.
   */
  setPeer(slot: number, spec: PeerSpec): void {
    this.peers.check(slot);
    const wsEndpoint = spec.endpoints[this.kind];
    const old = this.peers.at(slot);
    const same = old !== undefined && old.node === spec.node;
    if (old !== undefined && !same) this.forget(old);
    const elsewhere = this.byNode.get(spec.node);
    if (elsewhere !== undefined && elsewhere.slot !== slot) this.forget(elsewhere);

    const url = wsEndpoint !== undefined && spec.transports.includes(this.kind)
      ? this.dialer.target(spec.node, wsEndpoint) : undefined;
    const addresses = endpointAddresses(spec);
    if (same) {
      this.sealing?.setPeer(slot, spec.node, spec.publicKey);
      this.setAddresses(old, addresses);
      if (wsEndpoint === old.wsEndpoint && url?.href === old.url?.href) return;
      old.wsEndpoint = wsEndpoint;
      old.url = url;
      this.dialer.retarget(old);
      return;
    }
    const peer = newWsPeer(slot, spec.node, wsEndpoint, url, this.nowMs());
    this.setAddresses(peer, addresses);
    this.peers.set(slot, peer);
    this.byNode.set(spec.node, peer);
    this.sealing?.setPeer(slot, spec.node, spec.publicKey);
    this.dialer.dial(peer);
  }

  /** Forgets the peer in `slot`: closes its connections and stops redialing it. */
  removePeer(slot: number): void {
    this.peers.check(slot);
    const peer = this.peers.at(slot);
    if (peer !== undefined) this.forget(peer);
  }

  /**
   * Sends packets `idx[0..count)` of `batch` (virtio header first, as read from the TUN) to the
   * peer in `slot`, framed into messages. Borrowed batch: copied into the messages before return.
   * Never waits: with no open connection (PeerDown) or too much unsent already (Congested) the
   * whole batch is dropped. Returns how many packets were dropped.
   */
  send(slot: number, batch: PacketBatch, idx: Int32Array, count: number): number {
    const peer = this.peers.at(slot);
    const conn = peer === undefined ? undefined : sendingConn(peer);
    const drops = this.counters.drops;
    if (conn === undefined) {
      drops[DropReason.PeerDown] = (drops[DropReason.PeerDown] ?? 0) + count;
      return count;
    }
    const plan = this.plan;
    planMessages(batch, idx, count, this.maxPlannedBytes, plan);
    if (conn.bufferedAmount + plan.totalBytes > this.config.maxBufferedBytes) {
      drops[DropReason.Congested] = (drops[DropReason.Congested] ?? 0) + count;
      return count;
    }
    return conn.send(batch, idx, plan);
  }

  peerStatus(): PeerStatus[] {
    const out: PeerStatus[] = [];
    for (const peer of this.peers.values()) {
      const status: PeerStatus = {
        slot: peer.slot,
        node: peer.node,
        transport: 'ws',
        endpoint: peer.wsEndpoint,
        state: peer.state,
        rttMs: peer.rttMs,
        lastSeenMs: peer.lastSeenMs,
      };
      const sealing = this.sealing;
      if (sealing !== undefined) {
        status.sealed = true;
        const ageMs = sealing.lastHandshakeAgeMs(peer.slot);
        if (ageMs !== undefined) status.lastHandshakeAgeMs = ageMs;
      }
      if (peer.state !== 'up') this.explainDown(peer, status);
      out.push(status);
    }
    return out;
  }

  /**
   * With a connection open, what keeps the sealed session from starting; without one, why the
   * connection fails (nothing seals before it opens), else the session's reason, else (a peer
   * that only dials us) that it has not dialed.
   */
  private explainDown(peer: WsPeer, status: PeerStatus): void {
    const sealed = this.sealing?.downReason(peer.slot);
    const url = peer.url;
    const failed = sealed !== undefined && sendingConn(peer) !== undefined ? undefined : wsDownCause({
      lastFailure: peer.lastFailure,
      target: peer.wsEndpoint,
      proxied: url !== undefined && (this.config.proxyFor(url.href) ?? '') !== '',
      inboundRefusal: peer.inboundRefusal,
      nowMs: this.nowMs(),
    });
    if (failed !== undefined || (sealed === undefined && url === undefined)) {
      const cause = failed ?? AWAITING_DIAL_IN;
      status.downReason = cause.reason;
      status.downDetail = cause.detail;
    } else if (sealed !== undefined) {
      status.downReason = sealed;
    }
  }

  drops(): Record<string, number> {
    return dropCountersToObject(this.counters.drops);
  }

  stats(): Record<string, number> {
    let open = 0;
    let buffered = 0;
    for (const conn of this.owner.connections) {
      if (!conn.open) continue;
      open++;
      buffered += conn.bufferedAmount;
    }
    const c = this.counters;
    const out: Record<string, number> = {
      messagesIn: c.messagesIn,
      messagesOut: c.messagesOut,
      packetsIn: c.packetsIn,
      packetsOut: c.packetsOut,
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
      connectionsOpen: open,
      /** Unsent bytes held by open connections (each at most maxBufferedBytes + frame headers). */
      bufferedBytes: buffered,
      connectsOk: c.connectsOk,
      connectsFailed: c.connectsFailed,
      inboundAccepted: c.inboundAccepted,
      authRejected: c.authRejected,
      /** Connections accepted and not authenticated yet, and the cap on them (ws-admission.ts). */
      unauthenticated: this.listener?.unauthenticated.count ?? 0,
      maxUnauthenticated: this.listener?.unauthenticated.max ?? 0,
      'refused.perSourceCap': c.refusedPerSourceCap,
      'refused.globalCap': c.refusedGlobalCap,
      handshakeTimeouts: c.handshakeTimeouts,
      proofFailures: c.proofFailures,
      preProofMessages: c.preProofMessages,
      serverAuthFailed: c.serverAuthFailed,
      reconnects: c.reconnects,
      deadConnections: c.deadConnections,
      oversized: c.oversized,
      badMessages: c.badMessages,
      pingsOut: c.pingsOut,
      pongsIn: c.pongsIn,
      sendBuffersReused: c.sendBuffersReused,
      sendBuffersPooled: c.sendBuffersPooled,
      sendPoolEmpty: c.sendPoolEmpty,
    };
    addDrops(out, c.drops);
    if (this.sealing !== undefined) Object.assign(out, this.sealing.stats());
    return out;
  }

  /** Stops timers and dials, terminates every connection, closes the listener. Safe twice. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.owner.sink = undefined;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.dialer.close(this.byNode.values());
    const connections = this.owner.connections;
    const drained = connections.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => {
      this.onDrained = resolve;
    });
    for (const conn of [...connections]) conn.end('transport closed');
    await this.listener?.close();
    await drained;
    this.sealing?.close();
    // 'close' events come before libuv has released the handles; they are gone a loop turn later.
    await closedHandlesReleased();
  }

  // --- connections ---

  /** An authenticated connection from `conn.peer`, its proof verified (ws-listener.ts): the newest one replaces the previous. */
  private accepted(conn: WsConnection): void {
    const peer = conn.peer;
    if (this.closed || peer.removed) {
      conn.end(this.closed ? 'transport closed' : 'peer removed');
      return;
    }
    conn.markOpen(this.nowMs());
    this.counters.inboundAccepted++;
    const previous = peer.inbound;
    peer.inbound = conn;
    if (previous !== undefined) previous.end('replaced by a newer connection from the peer');
    this.log.info({ peer: peer.node, remote: conn.remote }, 'connection accepted');
    this.refreshState(peer);
  }

  private onClose(conn: WsConnection, code: number): void {
    const peer = conn.peer;
    if (peer.dialed === conn) peer.dialed = undefined;
    if (peer.inbound === conn) peer.inbound = undefined;
    if (this.closed) {
      if (this.owner.connections.size === 0) this.onDrained?.();
      return;
    }
    const reason = conn.explainClose(code);
    if (conn.dialed) this.dialer.closedConnection(conn, reason);
    this.refreshState(peer);
  }

  // --- control ---

  private tick(): void {
    const nowMs = this.nowMs();
    for (const conn of this.owner.connections) conn.tick(nowMs);
    this.sealing?.tick();
    for (const peer of this.byNode.values()) {
      // Sealed: a peer is up once its session is, which comes after the connection.
      if (this.sealing !== undefined) this.refreshState(peer);
      if (peer.state === 'unknown' && nowMs - peer.sinceMs >= this.config.deadAfterMs) {
        peer.state = 'down';
        this.log.warn({ peer: peer.node, endpoint: peer.wsEndpoint }, 'peer unreachable');
      }
    }
  }

  /** up while an authenticated connection is open (and, sealed, a session), else down (logged on change). */
  private refreshState(peer: WsPeer): void {
    if (peer.removed || this.closed) return;
    const connected = sendingConn(peer) !== undefined;
    const sealing = this.sealing;
    if (connected && sealing !== undefined && peer.state !== 'up') sealing.connected(peer.slot);
    if (!connected && peer.dialed === undefined && peer.inbound === undefined) sealing?.disconnected(peer.slot);
    const up = connected && (sealing === undefined || sealing.hasSession(peer.slot));
    if (up && peer.state !== 'up') {
      peer.state = 'up';
      this.log.info({ peer: peer.node, endpoint: peer.wsEndpoint }, 'peer up');
    } else if (!up && peer.state === 'up') {
      peer.state = 'down';
      this.log.warn({ peer: peer.node, endpoint: peer.wsEndpoint }, 'peer down');
    }
  }

  private forget(peer: WsPeer): void {
    peer.removed = true;
    this.setAddresses(peer, []);
    this.peers.clear(peer.slot);
    if (this.byNode.get(peer.node) === peer) this.byNode.delete(peer.node);
    this.dialer.cancelRedial(peer);
    if (peer.dialed !== undefined) peer.dialed.end('peer removed');
    if (peer.inbound !== undefined) peer.inbound.end('peer removed');
    this.sealing?.removePeer(peer.slot);
  }

  /** `peer`'s endpoint hosts are now `addresses` (admission keeps room for connections from them). */
  private setAddresses(peer: WsPeer, addresses: readonly string[]): void {
    for (const address of peer.addresses) {
      const n = (this.peerAddresses.get(address) ?? 1) - 1;
      if (n > 0) this.peerAddresses.set(address, n);
      else this.peerAddresses.delete(address);
    }
    peer.addresses = addresses;
    for (const address of addresses) this.peerAddresses.set(address, (this.peerAddresses.get(address) ?? 0) + 1);
  }
}

/** The IP literals among the hosts of a peer's endpoints (any transport's), each once; names are not resolved. */
function endpointAddresses(spec: PeerSpec): string[] {
  const out = new Set<string>();
  for (const text of Object.values(spec.endpoints)) {
    const host = endpointHost(text);
    if (host !== undefined && isIP(host) !== 0) out.add(unmapped(host));
  }
  return [...out];
}

/** "ws://h:p/x" -> h, "h:p" / "[v6]:p" -> the host; undefined when unreadable. */
function endpointHost(text: string): string | undefined {
  try {
    const url = new URL(text.includes('://') ? text : `x://${text}`);
    return url.hostname.replace(/^\[(.*)\]$/, '$1');
  } catch {
    return undefined;
  }
}
