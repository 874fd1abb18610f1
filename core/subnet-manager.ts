import type { TransportMode } from './transport.js';

/** A node's claim on pod subnets, and where its podtun can be reached. */
export interface Lease {
  node: string;
  /** Pod subnets owned by the node, CIDR strings (one IPv4 and optionally one IPv6). */
  subnets: string[];
  /** The node's UDP endpoint "host:port"; undefined for a node that only dials out. */
  endpoint: string | undefined;
  /** The node's WebSocket URL ("ws://host:port", "wss://host:port"); undefined: it only dials out. */
  wsEndpoint?: string | undefined;
  /** How to reach the node: over UDP, over WebSocket, or UDP with WebSocket fallback (default). */
  transport?: TransportMode;
  /** Optional per-node underlay MTU override (a peer behind a smaller link). */
  mtu?: number;
}

export type LeaseEvent = { type: 'added'; lease: Lease } | { type: 'removed'; lease: Lease };

/**
 * Source of node subnet leases (static file, etcd, Kubernetes API). It yields events; the router
 * applies them through `router.applyLeaseEvents`.
 */
export interface SubnetManager {
  /** This node's own lease (acquired or read from config). */
  localLease(): Promise<Lease>;
  /** Watches the other nodes' leases until the signal aborts; the first batch is the full set. */
  watchLeases(signal: AbortSignal, onEvents: (events: LeaseEvent[]) => void): Promise<void>;
}
