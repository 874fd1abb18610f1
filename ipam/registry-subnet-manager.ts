/**
 * Node subnet leases held in a shared Registry (etcd): the allocation logic, kept apart from the
 * storage (registry.ts) so it can be tested against the in-memory registry. This file wires the
 * parts, each in a module of its own:
 *
 *  1. localLease(): subnet-claim.ts acquires this node's subnets (its own records taken over
 *     after a restart within the TTL, else free ones chosen), retrying while the registry is
 *     unreachable, until close().
 *  2. lease-holder.ts holds them: renewal every TTL/3, re-acquisition of the same subnets when
 *     the records are gone, onLeaseLost when another node holds one of them now.
 *  3. watchLeases(): lease-watch-loop.ts over registry-lease-source.ts: the full set (this
 *     node's own lease included), then diffs; while the registry is away nothing is emitted
 *     (forwarding goes on with the known routes) and when it answers again only the diff against
 *     what was delivered. Every view the watch has of the records also goes to the holder's
 *     ownership check (ownership-check.ts).
 *
 * Records are read by registry-records.ts: unusable ones are ignored with a warning, and their
 * keys still count as taken.
 *
 * close() stops renewing and watching but does not delete the records: a restart within the TTL
 * takes them over and keeps the node's subnets.
 */
import type { Lease, LeaseEvent } from '../core/lease.js';
import type { Logger } from '../core/logger.js';
import type { Advertisement, SubnetManager } from '../core/subnet-manager.js';
import { LeaseError } from './lease-error.js';
import { LeaseHolder } from './lease-holder.js';
import { runLeaseWatchLoop } from './lease-watch-loop.js';
import { registryLeaseSource } from './registry-lease-source.js';
import { copyLease, RecordReader } from './registry-records.js';
import type { Registry } from './registry.js';
import { acquireSubnets, acquisitionClosed } from './subnet-claim.js';
import { planSubnets } from './subnet-plan.js';
import type { SubnetPlan } from './subnet-plan.js';
import { TaskSet } from './task-set.js';

export interface RegistrySubnetManagerOptions {
  registry: Registry;
  /** close() closes the registry too (it was opened for this manager alone). */
  ownsRegistry?: boolean;
  /** This node's name, as in leases. */
  node: string;
  /** Canonical cluster CIDRs, IPv4 first; one subnet is leased per family present. */
  clusterCidrs: readonly string[];
  subnetLengthV4: number;
  /** Used only with an IPv6 cluster CIDR. */
  subnetLengthV6: number;
  ttlSeconds: number;
  /** How this node is reached, written into its lease. */
  advertise: Advertisement;
  log: Logger;
  /** Our subnet is now held by another node: fatal for the daemon. */
  onLeaseLost?: (reason: string) => void;
  /** Base delay of retries while the registry is unreachable; default 1000 ms. */
  retryMs?: number;
}

const DEFAULT_REGISTRY_RETRY_MS = 1000;
/** Longest pause between retries while the registry is unreachable. */
const MAX_RETRY_MS = 10_000;

export class RegistrySubnetManager implements SubnetManager {
  private readonly options: RegistrySubnetManagerOptions;
  private readonly plan: SubnetPlan;
  private readonly retryMs: number;
  private readonly records: RecordReader;
  private readonly holder: LeaseHolder;
  private readonly stop = new AbortController();
  private readonly tasks = new TaskSet();
  private acquiring: Promise<Lease> | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: RegistrySubnetManagerOptions) {
    this.options = options;
    this.retryMs = options.retryMs ?? DEFAULT_REGISTRY_RETRY_MS;
    if (typeof options.node !== 'string' || options.node === '') throw new LeaseError('node name is empty');
    if (!(options.ttlSeconds > 0) || !Number.isFinite(options.ttlSeconds)) {
      throw new LeaseError(`ttlSeconds must be a positive number, got ${String(options.ttlSeconds)}`);
    }
    if (!(this.retryMs > 0)) throw new LeaseError(`retryMs must be positive, got ${String(this.retryMs)}`);
    this.plan = planSubnets(options.clusterCidrs, options.subnetLengthV4, options.subnetLengthV6);
    this.records = new RecordReader(this.plan, options.log);
    this.holder = new LeaseHolder({
      registry: options.registry,
      node: options.node,
      ttlSeconds: options.ttlSeconds,
      retryMinMs: this.retryMs,
      records: this.records,
      log: options.log,
      onLeaseLost: options.onLeaseLost,
      signal: this.stop.signal,
      tasks: this.tasks,
    });
  }

  /**
   * Acquires this node's subnets (retrying while the registry is unreachable) and resolves to
   * its lease; later calls resolve to the lease held. Rejects with LeaseError when the cluster
   * CIDRs are exhausted or the manager is closed first.
   */
  localLease(): Promise<Lease> {
    const held = this.holder.lease;
    if (held !== undefined) return Promise.resolve(copyLease(held));
    if (this.closing !== undefined) return Promise.reject(acquisitionClosed(this.plan));
    this.acquiring ??= this.tasks.track(this.acquire()).catch((err: unknown) => {
      this.acquiring = undefined;
      throw err;
    });
    return this.acquiring;
  }

  /** Emits every lease (this node's own included), then the changes, until `signal` aborts or the manager closes. */
  async watchLeases(signal: AbortSignal, onEvents: (events: LeaseEvent[]) => void): Promise<void> {
    if (signal.aborted || this.closing !== undefined) return;
    const source = registryLeaseSource({
      registry: this.options.registry,
      records: this.records,
      onView: (view, revision) => this.holder.observe(view, revision),
    });
    await this.tasks.track(
      runLeaseWatchLoop({
        source,
        what: 'lease registry',
        signal: AbortSignal.any([signal, this.stop.signal]),
        onEvents,
        log: this.options.log,
        retryMinMs: this.retryMs,
        retryMaxMs: Math.max(this.retryMs, MAX_RETRY_MS),
      }),
    );
  }

  /** Stops renewing and watching; the records stay until their TTL. Safe twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      this.holder.stop();
      await this.tasks.drain();
      if (this.options.ownsRegistry === true) await this.options.registry.close();
    })();
    return this.closing;
  }

  private async acquire(): Promise<Lease> {
    const { registry, node, ttlSeconds, advertise, log } = this.options;
    const held = await acquireSubnets({
      registry,
      node,
      plan: this.plan,
      ttlSeconds,
      advertise,
      records: this.records,
      retryMinMs: this.retryMs,
      retryMaxMs: MAX_RETRY_MS,
      log,
      signal: this.stop.signal,
    });
    this.holder.hold(held);
    return copyLease(held.lease);
  }
}
