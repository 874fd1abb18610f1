/**
 * The contract between the router and the ways of carrying packets between nodes (UDP,
 * WebSocket, a memory pair in tests). Transports register by kind (tunnel/transports.ts); the
 * router addresses peers by a small integer slot that it assigns and knows nothing of a
 * transport's wire format, its endpoints or how it identifies nodes.
 */
import type { InboundBatch, PacketBatch } from './packet-batch.js';

/** A registered transport's name: 'udp', 'ws', 'memory' (tests). */
export type TransportKind = string;

/**
 * Where a node can be reached, per transport kind: `{ udp: '192.168.77.2:8285', ws:
 * 'wss://node-b:8443' }`. Opaque text to the router and the lease stores: each transport parses
 * its own (as flannel's BackendType/BackendData). A node with none only dials out.
 */
export type PeerEndpoints = Readonly<Record<TransportKind, string>>;

/** Peer slots a transport addresses: 0..MAX_PEER_SLOTS-1 (the native UDP socket's table size). */
export const MAX_PEER_SLOTS = 4096;

/** What a transport needs to know about a peer node. */
export interface PeerSpec {
  /** Node name as in the lease. */
  readonly node: string;
  readonly endpoints: PeerEndpoints;
  /**
   * The transports to reach it by, most preferred first: `['udp', 'ws']` carries it over UDP
   * while UDP answers, else over WebSocket; `['ws']` over WebSocket only.
   */
  readonly transports: readonly TransportKind[];
  /** The node's public key from its lease (core/public-key.ts); undefined when it publishes none. */
  readonly publicKey?: string;
}

export type PeerState = 'unknown' | 'up' | 'down';

/**
 * The clock of PeerStatus times (`lastSeenMs`) and of the transports' own timing: monotonic,
 * in epoch milliseconds. Readers of those times (the selector, the router's status) use it too.
 */
export const transportNowMs = (): number => performance.timeOrigin + performance.now();

export interface PeerStatus {
  slot: number;
  node: string;
  transport: TransportKind;
  /** The endpoint in use (configured or learned), as text; undefined while it has none. */
  endpoint: string | undefined;
  state: PeerState;
  /** Smoothed round-trip time of probes, ms; undefined until the first reply. */
  rttMs: number | undefined;
  lastSeenMs: number | undefined;
  /** Why it is not up, in words an operator acts on ("authentication failed", "no handshake answer", "key unknown"). */
  downReason?: string;
  /** What the reason came from (a dial's error, a refusal), for status and doctor. */
  downDetail?: string;
  /** Sealed transports: ms since the last completed handshake with it. */
  lastHandshakeAgeMs?: number;
  /** Its traffic is sealed (authenticated and encrypted) on this transport. */
  sealed?: boolean;
  /** The last change of transport for this peer (transport selection only). */
  lastSwitch?: TransportSwitch;
}

export interface TransportSwitch {
  atMs: number;
  from: TransportKind;
  to: TransportKind;
  reason: string;
}

/** Receives packets that arrived from peers (borrowed batch, valid during the call). */
export type InboundSink = (batch: InboundBatch) => void;

/**
 * One way of carrying packets between podtun nodes. Every transport is told about every peer
 * (`setPeer`), so it accepts a peer's packets whichever transport that peer chose to send on;
 * it actively reaches (probes, dials) a peer only when the peer's `transports` name it.
 */
export interface Transport {
  readonly kind: TransportKind;
  start(sink: InboundSink): Promise<void>;
  setPeer(slot: number, peer: PeerSpec): void;
  removePeer(slot: number): void;
  /**
   * Sends packets `idx[0..count)` of `batch` (each starts with a virtio header, as read from
   * the TUN) to the peer in `slot`. Borrowed batch. Never
   * blocks and never queues without bound: packets it cannot send now are dropped and counted
   * under the transport's own reason (peer down, too big, congested). Returns how many were dropped.
   */
  send(slot: number, batch: PacketBatch, idx: Int32Array, count: number): number;
  /** Current view of each peer (state, RTT). */
  peerStatus(): PeerStatus[];
  /** Transport-level counters (drops by reason as `drop.<reason>`, datagrams in/out). */
  stats(): Record<string, number>;
  /** Just the drop counters, by reason (non-zero only): read every second by the drop log. */
  drops(): Record<string, number>;
  /** Safe to call twice; leaves no handle or timer behind. */
  close(): Promise<void>;
}
