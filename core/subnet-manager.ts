/**
 * Sources of node subnet leases (the node config's list, etcd, the Kubernetes API) and how each
 * registers: a type name, a validator for its `subnetManager` block, and an opener. The daemon
 * picks one from ipam/subnet-managers.ts by the block's `type`.
 */
import type { Cidr } from './cidr.js';
import type { BlockContext } from './config-check.js';
import type { Lease, LeaseEvent } from './lease.js';
import type { Logger } from './logger.js';
import type { PeerEndpoints, TransportKind } from './transport.js';

/** Yields lease events; the router applies them through `router.applyLeaseEvents`. */
export interface SubnetManager {
  /** This node's own lease (acquired, or read from config); may wait until one is held. */
  localLease(): Promise<Lease>;
  /** Watches the other nodes' leases until the signal aborts; the first batch is the full set. */
  watchLeases(signal: AbortSignal, onEvents: (events: LeaseEvent[]) => void): Promise<void>;
  /** Reads its source again now (SIGHUP; the static list); true when a new list was taken. */
  reload?(): Promise<boolean>;
  /** While localLease() waits: for what, in a few words for /readyz ("podCIDR not assigned"). */
  waitingFor?(): string | undefined;
  /** The node forwards now (routes in, TUN up): a control plane may be told (Kubernetes: NetworkUnavailable=False). */
  forwarding?(): Promise<void>;
  /** Stops renewing and watching; a held lease is kept until it expires (a quick restart keeps it). Safe twice. */
  close(): Promise<void>;
}

/** How peers reach this node, as a control-plane manager publishes it (etcd record, Node annotations). */
export interface Advertisement {
  readonly endpoints: PeerEndpoints;
  readonly transports: readonly TransportKind[] | undefined;
  readonly mtu: number | undefined;
  /** This node's public key (sealed tunnels); undefined with `encryption: none`. */
  readonly publicKey?: string;
}

/** The leases the node config itself lists (its `nodes`), and how to read them again. */
export interface ConfigLeases {
  readonly initial: readonly Lease[];
  /** Re-reads and validates the config; rejects on a bad edit (the running list stays). */
  reload(): Promise<readonly Lease[]>;
  /** The config file, watched for edits; undefined: reloads only on request. */
  readonly watchPath: string | undefined;
}

/** What an opener gets from the daemon. */
export interface SubnetManagerContext {
  readonly node: string;
  /** Canonical CIDR text, the IPv4 one first. */
  readonly clusterCidrs: readonly string[];
  readonly advertise: Advertisement;
  /** The config's own node list (managers that read it: static). */
  readonly configLeases: ConfigLeases;
  /** This node's listeners as endpoints at the node address `host` (what to publish when the config names none). */
  endpointsAt(host: string): PeerEndpoints;
  /** The process environment, read by the daemon (in-cluster API discovery). */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly log: Logger;
  /** This node's subnet is now held by another node: the daemon must stop. */
  onLeaseLost(reason: string): void;
}

export interface SubnetManagerBlockContext extends BlockContext {
  /** The validated cluster CIDRs (may be empty when they had issues). */
  readonly clusterCidrs: readonly Cidr[];
}

/** One kind of subnet manager, as it registers. */
export interface SubnetManagerType<S> {
  readonly type: string;
  /** Leases come from the config's `nodes` list (then `advertise` is not used), not a control plane. */
  readonly readsNodeList: boolean;
  /** The other keys of its `subnetManager` block, for the unknown-key check. */
  readonly keys: readonly string[];
  /** Validates the block (its `type` already matched); reports issues under `subnetManager.<key>`. */
  validate(block: Readonly<Record<string, unknown>>, ctx: SubnetManagerBlockContext): S | undefined;
  open(settings: S, ctx: SubnetManagerContext): Promise<SubnetManager>;
}

/** A validated `subnetManager` block bound to its type, as the config holds it. */
export interface SubnetManagerChoice {
  readonly type: string;
  readonly readsNodeList: boolean;
  /** The validated settings (shown by tools; opaque to the daemon). */
  readonly settings: unknown;
  open(ctx: SubnetManagerContext): Promise<SubnetManager>;
}

/** A registry entry: the type with its settings type erased behind validate -> choice. */
export interface SubnetManagerEntry {
  readonly type: string;
  readonly readsNodeList: boolean;
  readonly keys: readonly string[];
  validate(block: Readonly<Record<string, unknown>>, ctx: SubnetManagerBlockContext): SubnetManagerChoice | undefined;
}

export function subnetManagerEntry<S>(t: SubnetManagerType<S>): SubnetManagerEntry {
  return {
    type: t.type,
    readsNodeList: t.readsNodeList,
    keys: t.keys,
    validate(block, ctx) {
      const settings = t.validate(block, ctx);
      if (settings === undefined) return undefined;
      return { type: t.type, readsNodeList: t.readsNodeList, settings, open: (openCtx) => t.open(settings, openCtx) };
    },
  };
}
