import type { InboundBatch, PacketBatch } from './packet-batch.js';

export type TransportKind = 'udp' | 'ws' | 'memory';

/** Peer slots a transport addresses: 0..MAX_PEER_SLOTS-1 (the native UDP socket's table size). */
export const MAX_PEER_SLOTS = 4096;

/** Per peer: UDP only, WebSocket only, or UDP while its probes are answered, else WebSocket. */
export type TransportMode = 'udp' | 'ws' | 'auto';

/** What a transport needs to know about a peer node. */
export interface PeerSpec {
  /** Node name as in the config / lease. */
  node: string;
  /** Stable 32-bit node identity carried in tunnel headers (see tunnel/node-id.ts). */
  nodeId: number;
  /** Where the peer listens for UDP, "host:port" (IPv6 as "[addr]:port"); absent when it only dials out. */
  endpoint: string | undefined;
  /** Where the peer accepts WebSocket connections ("ws://host:port", "wss://host:port"), if it does. */
  wsEndpoint: string | undefined;
  mode: TransportMode;
}

export type PeerState = 'unknown' | 'up' | 'down';

export interface PeerStatus {
  slot: number;
  node: string;
  transport: TransportKind;
  endpoint: string | undefined;
  state: PeerState;
  /** Smoothed round-trip time of probes, ms; undefined until the first reply. */
  rttMs: number | undefined;
  lastSeenMs: number | undefined;
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
 * One way of carrying packets between podtun nodes (UDP, WebSocket, memory in tests).
 * The router addresses peers by a small integer slot that it assigns.
 */
export interface Transport {
  readonly kind: TransportKind;
  /** Bytes this transport adds around each inner packet on the underlay (for the MTU). */
  readonly overheadBytes: number;
  start(sink: InboundSink): Promise<void>;
  setPeer(slot: number, peer: PeerSpec): void;
  removePeer(slot: number): void;
  /**
   * Sends packets `idx[0..count)` of `batch` (each starts with a virtio header, as read from
   * the TUN) to the peer in `slot`. Borrowed batch. Never blocks and never queues without
   * bound: packets it cannot send now are dropped. Returns how many were dropped.
   */
  send(slot: number, batch: PacketBatch, idx: Int32Array, count: number): number;
  /** Current view of each peer (state, RTT). */
  peerStatus(): PeerStatus[];
  /** Transport-level counters (drops by reason, datagrams in/out). */
  stats(): Record<string, number>;
  /** Safe to call twice; leaves no handle or timer behind. */
  close(): Promise<void>;
}
