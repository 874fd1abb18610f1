/**
 * Leases: which node owns which pod subnets and how it is reached. What every subnet manager
 * (static file, etcd, Kubernetes) yields and the router applies (`router.applyLeaseEvents`).
 */
import type { PeerEndpoints, TransportKind } from './transport.js';

/** A node's claim on pod subnets, and where its podtun can be reached. */
export interface Lease {
  readonly node: string;
  /** Pod subnets owned by the node, CIDR strings (one IPv4 and optionally one IPv6). */
  readonly subnets: readonly string[];
  /** Where the node listens, per transport kind; empty for a node that only dials out. */
  readonly endpoints: PeerEndpoints;
  /** The transports to reach the node by, most preferred first (undefined: the default preference). */
  readonly transports?: readonly TransportKind[];
  /** Optional per-node underlay MTU override (a peer behind a smaller link). */
  readonly mtu?: number;
  /**
   * The node's X25519 public key (core/public-key.ts): sealed tunnels accept only traffic sealed
   * with the key the lease names, and only for the lease's subnets.
   */
  readonly publicKey?: string;
}

export type LeaseEvent = { type: 'added'; lease: Lease } | { type: 'removed'; lease: Lease };

/** Two leases say the same thing (subnets compared as sets of canonical text). */
export function sameLease(a: Lease, b: Lease): boolean {
  if (a.node !== b.node || a.mtu !== b.mtu || a.publicKey !== b.publicKey) return false;
  if (!sameStrings(a.transports ?? [], b.transports ?? [])) return false;
  const aKinds = Object.keys(a.endpoints);
  if (aKinds.length !== Object.keys(b.endpoints).length) return false;
  if (aKinds.some((kind) => a.endpoints[kind] !== b.endpoints[kind])) return false;
  if (a.subnets.length !== b.subnets.length) return false;
  const bs = new Set(b.subnets);
  return a.subnets.every((s) => bs.has(s));
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
