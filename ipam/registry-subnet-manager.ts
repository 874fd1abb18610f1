/**
 * Node subnet leases held in a shared Registry (etcd): the allocation logic, kept apart from the
 * storage (registry.ts) so it can be tested against the in-memory registry. Flow:
 *
 *  1. localLease(): list the registry. Per address family, take this node's own record over if
 *     it is still there (a restart within the TTL keeps its subnet), else choose a free subnet
 *     (subnet-allocator.ts, among the lowest free ones at random). Claim all of them in
 *     one atomic step under one TTL lease. A lost race lists and chooses again; an unreachable
 *     registry is retried with backoff until close().
 *  2. Renewal every TTL/3; failures are retried with backoff (well inside the TTL). When the
 *     registry no longer knows the lease (it expired), or a watch sees one of our records
 *     deleted, the same subnets are claimed again if free and that is logged; if another node
 *     holds one of them now, onLeaseLost is called (fatal for the daemon: its pods use
 *     addresses another node now owns) and renewal stops.
 *  3. watchLeases(): list -> the full set (this node's own lease included), then a watch from
 *     the list's revision -> diffs. When the watch breaks (connection lost, history compacted)
 *     the known set stays (nothing is emitted: forwarding goes on with the known routes); the
 *     registry is listed again with backoff until it answers, the diff against what was
 *     delivered is emitted (lease-diff.ts), and a new watch starts from there.
 *
 * Leases are derived from the stored records: one lease per node, from its newest record, with
 * only the subnets whose keys that node really holds (the atomic claim protects keys, not what a
 * value says). Records that do not decode, name a subnet outside the cluster CIDRs or are keyed
 * by something else than their own subnet are ignored with a warning; their keys still count as
 * taken.
 *
 * close() stops renewing and watching but does not delete the records: a restart within the TTL
 * takes them over and keeps the node's subnets.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { parseCidr } from '../core/cidr.js';
import type { Cidr, IpFamily } from '../core/cidr.js';
import type { LogFields } from '../core/log-fields.js';
import type { Logger } from '../core/logger.js';
import { diffLeases, fullSet } from './lease-diff.js';
import { decodeLeaseRecord, encodeLeaseRecord } from './lease-record.js';
import type { Claim, ClaimRequest, Registry, RegistryEntry, RegistrySnapshot, RenewResult } from './registry.js';
import { chooseSubnet, DEFAULT_SUBNET_SPREAD, SubnetLengthError, SubnetsExhaustedError } from './subnet-allocator.js';
import { bitsOf, indexOfSubnet } from './subnet-index.js';
import type { Lease, LeaseEvent } from '../core/lease.js';
import type { Advertisement, SubnetManager } from '../core/subnet-manager.js';

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

export const DEFAULT_REGISTRY_RETRY_MS = 1000;
/** Longest pause between retries while the registry is unreachable. */
const MAX_RETRY_MS = 10_000;

/** A lease could not be acquired or was given up; the message says in which CIDR and why. */
export class LeaseError extends Error {
  readonly code = 'ERR_PODTUN_LEASE';
}

interface FamilyPlan {
  readonly family: IpFamily;
  readonly clusters: readonly Cidr[];
  readonly length: number;
}

/** A stored entry as the manager reads it. */
interface Decoded {
  readonly entry: RegistryEntry;
  /** The key as a CIDR; undefined when it is not one (then it cannot collide with ours). */
  readonly cidr: Cidr | undefined;
  /** The record; undefined when unusable (it was warned about). */
  readonly lease: Lease | undefined;
}

interface Held {
  readonly lease: Lease;
  readonly claim: Claim;
}

/** Thrown into pending work when the manager closes or a watch stops. */
class Stopped extends Error {}

export class RegistrySubnetManager implements SubnetManager {
  private readonly registry: Registry;
  private readonly ownsRegistry: boolean;
  private readonly node: string;
  private readonly families: readonly FamilyPlan[];
  private readonly clusters: readonly Cidr[];
  private readonly ttlSeconds: number;
  private readonly renewIntervalMs: number;
  private readonly retryMs: number;
  private readonly advertise: RegistrySubnetManagerOptions['advertise'];
  private readonly log: Logger;
  private readonly onLeaseLost: ((reason: string) => void) | undefined;

  private held: Held | undefined;
  private acquiring: Promise<Lease> | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private renewFailures = 0;
  private reacquiring = false;
  private lost = false;
  private readonly stop = new AbortController();
  private closing: Promise<void> | undefined;
  /** Work to wait for in close(): acquisition, renewal, watch sessions. */
  private readonly running = new Set<Promise<unknown>>();
  /** "subnet@revision" of unusable records already warned about. */
  private warned = new Set<string>();

  constructor(options: RegistrySubnetManagerOptions) {
    this.registry = options.registry;
    this.node = options.node;
    this.log = options.log;
    this.ownsRegistry = options.ownsRegistry === true;
    this.advertise = options.advertise;
    this.onLeaseLost = options.onLeaseLost;
    this.retryMs = options.retryMs ?? DEFAULT_REGISTRY_RETRY_MS;
    this.ttlSeconds = options.ttlSeconds;
    if (typeof this.node !== 'string' || this.node === '') throw new LeaseError('node name is empty');
    if (!(this.ttlSeconds > 0) || !Number.isFinite(this.ttlSeconds)) {
      throw new LeaseError(`ttlSeconds must be a positive number, got ${String(this.ttlSeconds)}`);
    }
    if (!(this.retryMs > 0)) throw new LeaseError(`retryMs must be positive, got ${String(this.retryMs)}`);
    this.renewIntervalMs = (this.ttlSeconds * 1000) / 3;
    this.clusters = options.clusterCidrs.map((text) => {
      try {
        return parseCidr(text);
      } catch (err: unknown) {
        throw new LeaseError(`cluster CIDR "${text}": ${messageOf(err)}`, { cause: err });
      }
    });
    const families: FamilyPlan[] = [];
    for (const family of [4, 6] as const) {
      const clusters = this.clusters.filter((c) => c.family === family);
      if (clusters.length === 0) continue;
      const length = family === 4 ? options.subnetLengthV4 : options.subnetLengthV6;
      for (const cluster of clusters) {
        if (!Number.isInteger(length) || length < cluster.prefixLen || length > bitsOf(cluster)) {
          throw new LeaseError(
            `subnet length /${length} does not fit cluster CIDR ${cluster.text} (expected ${cluster.prefixLen}-${bitsOf(cluster)})`,
          );
        }
      }
      families.push({ family, clusters, length });
    }
    if (families.length === 0) throw new LeaseError('no cluster CIDR to lease subnets from');
    this.families = families;
  }

  /**
   * Acquires this node's subnets (retrying while the registry is unreachable) and resolves to
   * its lease; later calls resolve to the lease held. Rejects with LeaseError when the cluster
   * CIDRs are exhausted or the manager is closed first.
   */
  localLease(): Promise<Lease> {
    if (this.held !== undefined) return Promise.resolve(copyLease(this.held.lease));
    if (this.closing !== undefined) return Promise.reject(this.closedError());
    if (this.acquiring === undefined) {
      this.acquiring = this.track(this.acquire()).catch((err: unknown) => {
        this.acquiring = undefined;
        throw err;
      });
    }
    return this.acquiring;
  }

  /**
   * Emits every lease (this node's own included), then the changes, until `signal` aborts or
   * the manager closes. See the file comment for what happens when the registry goes away.
   */
  async watchLeases(signal: AbortSignal, onEvents: (events: LeaseEvent[]) => void): Promise<void> {
    if (signal.aborted || this.closing !== undefined) return;
    const stop = AbortSignal.any([signal, this.stop.signal]);
    await this.track(this.runWatch(stop, onEvents));
  }

  /** Stops renewing and watching; the records stay until their TTL. Safe twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      clearTimeout(this.renewTimer);
      this.renewTimer = undefined;
      while (this.running.size > 0) await Promise.allSettled([...this.running]);
      if (this.ownsRegistry) await this.registry.close();
    })();
    return this.closing;
  }

  // ---- acquisition ----

  private async acquire(): Promise<Lease> {
    const startedMs = Date.now();
    let failures = 0;
    let conflicts = 0;
    for (;;) {
      if (this.stop.signal.aborted) throw this.closedError();
      let outcome: { held: Held; restored: boolean } | undefined;
      try {
        outcome = await this.claimOnce();
      } catch (err: unknown) {
        if (this.stop.signal.aborted) throw this.closedError();
        if (err instanceof SubnetsExhaustedError || err instanceof SubnetLengthError) {
          throw new LeaseError(`failed to acquire a subnet in ${this.describeClusters()}: ${err.message}`, { cause: err });
        }
        failures++;
        this.logRetry(failures, err, 'registry unreachable; retrying subnet acquisition');
        await sleep(this.backoffMs(failures, MAX_RETRY_MS), this.stop.signal);
        continue;
      }
      if (outcome === undefined) {
        // Another node claimed one of the chosen subnets between our list and our claim.
        conflicts++;
        this.log.debug({ node: this.node, count: conflicts }, 'subnet claimed by another node first; choosing again');
        await sleep(Math.random() * Math.min(this.retryMs, 20 * conflicts), this.stop.signal);
        continue;
      }
      this.held = outcome.held;
      const lease = outcome.held.lease;
      this.log.info(
        {
          node: this.node,
          subnets: lease.subnets,
          reason: outcome.restored ? 'kept from the previous run' : 'newly allocated',
          durationMs: Date.now() - startedMs,
        },
        'subnet lease acquired',
      );
      this.scheduleRenew(this.renewIntervalMs);
      return copyLease(lease);
    }
  }

  /** One list-choose-claim round; undefined when another node won a race for a subnet. */
  private async claimOnce(): Promise<{ held: Held; restored: boolean } | undefined> {
    const snapshot = await this.abortable(this.registry.list(), this.stop.signal);
    const decoded = snapshot.entries.map((entry) => this.decode(entry));
    const taken = decoded.flatMap((d) => (d.cidr === undefined ? [] : [d.cidr]));
    const requests: ClaimRequest[] = [];
    const subnets: string[] = [];
    let restored = false;
    for (const plan of this.families) {
      const own = this.ownRecord(decoded, plan);
      if (own !== undefined) {
        requests.push({ subnet: own.entry.subnet, ifRevision: own.entry.revision });
        subnets.push(own.entry.subnet);
        restored = true;
        continue;
      }
      const cidr = this.choose(plan, taken);
      requests.push({ subnet: cidr.text, ifRevision: 0 });
      subnets.push(cidr.text);
    }
    const lease = this.leaseWith(subnets);
    const claim = await this.abortable(this.registry.claim(requests, encodeLeaseRecord(lease), this.ttlSeconds), this.stop.signal);
    return claim === undefined ? undefined : { held: { lease, claim }, restored };
  }

  /** This node's newest usable record for the family, if it fits the current config. */
  private ownRecord(decoded: readonly Decoded[], plan: FamilyPlan): Decoded | undefined {
    let best: Decoded | undefined;
    for (const d of decoded) {
      if (d.lease?.node !== this.node || d.cidr === undefined || d.cidr.family !== plan.family) continue;
      const cidr = d.cidr;
      const fits = plan.clusters.some((cluster) => (indexOfSubnet(cluster, plan.length, cidr) ?? 0n) >= 1n);
      if (fits && (best === undefined || d.entry.revision > best.entry.revision)) best = d;
    }
    return best;
  }

  /** A free subnet from the family's cluster CIDRs, tried in order. */
  private choose(plan: FamilyPlan, taken: readonly Cidr[]): Cidr {
    let exhausted: SubnetsExhaustedError | undefined;
    for (const cluster of plan.clusters) {
      try {
        return chooseSubnet({ cluster, subnetLength: plan.length, taken, spread: DEFAULT_SUBNET_SPREAD });
      } catch (err: unknown) {
        if (!(err instanceof SubnetsExhaustedError)) throw err;
        exhausted = err;
      }
    }
    throw exhausted ?? new SubnetsExhaustedError(`no IPv${plan.family} cluster CIDR`);
  }

  private leaseWith(subnets: string[]): Lease {
    const { endpoints, transports, mtu } = this.advertise;
    return {
      node: this.node,
      subnets,
      endpoints: { ...endpoints },
      ...(transports === undefined ? {} : { transports: [...transports] }),
      ...(mtu === undefined ? {} : { mtu }),
    };
  }

  // ---- renewal ----

  private scheduleRenew(delayMs: number): void {
    if (this.stop.signal.aborted || this.lost) return;
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => {
      this.renewTimer = undefined;
      void this.track(this.renew());
    }, delayMs);
  }

  private async renew(): Promise<void> {
    const held = this.held;
    if (held === undefined || this.lost || this.stop.signal.aborted) return;
    let result: RenewResult;
    try {
      result = await this.abortable(this.registry.renew(held.claim), this.stop.signal);
    } catch (err: unknown) {
      if (this.stop.signal.aborted) return;
      this.renewFailures++;
      this.logRetry(this.renewFailures, err, 'subnet lease renewal failed; retrying');
      this.scheduleRenew(this.backoffMs(this.renewFailures, this.renewIntervalMs / 2));
      return;
    }
    const failures = this.renewFailures;
    this.renewFailures = 0;
    if (result === 'expired') {
      await this.reacquire(held, 'the lease expired in the registry');
      return;
    }
    if (failures > 0) this.log.info({ node: this.node, count: failures }, 'subnet lease renewed again after failures');
    this.scheduleRenew(this.renewIntervalMs);
  }

  /**
   * Our records are gone (the lease expired, or a record was deleted): claim the same subnets
   * again, unless another node holds one of them now. One at a time; renewal waits meanwhile.
   */
  private async reacquire(held: Held, why: string): Promise<void> {
    if (this.reacquiring || this.lost || this.stop.signal.aborted) return;
    this.reacquiring = true;
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    try {
      await this.reacquireLoop(held, why);
    } finally {
      this.reacquiring = false;
    }
  }

  private async reacquireLoop(held: Held, why: string): Promise<void> {
    const subnets = held.lease.subnets;
    this.log.warn({ node: this.node, subnets, reason: why }, 'subnet lease gone from the registry; claiming the same subnets again');
    let failures = 0;
    let conflicts = 0;
    while (!this.stop.signal.aborted && !this.lost) {
      try {
        const snapshot = await this.abortable(this.registry.list(), this.stop.signal);
        const requests: ClaimRequest[] = [];
        for (const subnet of subnets) {
          const entry = snapshot.entries.find((e) => e.subnet === subnet);
          const owner = entry === undefined ? this.node : this.decode(entry).lease?.node;
          if (owner !== this.node) {
            this.leaseLost(`subnet ${subnet} is now held by ${owner ?? 'an unreadable record'}`, owner);
            return;
          }
          requests.push({ subnet, ifRevision: entry?.revision ?? 0 });
        }
        const claim = await this.abortable(
          this.registry.claim(requests, encodeLeaseRecord(held.lease), this.ttlSeconds),
          this.stop.signal,
        );
        if (claim !== undefined) {
          this.held = { lease: held.lease, claim };
          this.log.warn({ node: this.node, subnets, reason: why }, 'subnet lease re-acquired (same subnets)');
          this.scheduleRenew(this.renewIntervalMs);
          return;
        }
        conflicts++;
        await sleep(Math.random() * Math.min(this.retryMs, 20 * conflicts), this.stop.signal);
      } catch (err: unknown) {
        if (this.stop.signal.aborted) return;
        failures++;
        this.logRetry(failures, err, 'registry unreachable; retrying to re-acquire the subnet lease');
        await sleep(this.backoffMs(failures, this.renewIntervalMs / 2), this.stop.signal);
      }
    }
  }

  private leaseLost(reason: string, owner: string | undefined): void {
    if (this.lost) return;
    this.lost = true;
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    this.log.error({ node: this.node, subnets: this.held?.lease.subnets, owner, reason }, 'subnet lease lost to another node');
    try {
      this.onLeaseLost?.(reason);
    } catch (err: unknown) {
      this.log.error({ err }, 'lease-lost handler failed');
    }
  }

  /**
   * What a watch saw about our own records, as of `seenRevision`: one held by someone else means
   * the lease is lost; one missing (expired or deleted after our claim) is claimed again at once
   * rather than at the next renewal, which might not notice (a deleted key leaves its lease alive).
   */
  private checkOwnership(known: ReadonlyMap<string, Decoded>, seenRevision: number): void {
    const held = this.held;
    if (held === undefined || this.lost) return;
    let missing = false;
    for (const subnet of held.lease.subnets) {
      const d = known.get(subnet);
      if (d === undefined) {
        // A view older than our claim simply has not seen it yet.
        if (seenRevision >= held.claim.revision) missing = true;
      } else if (d.lease?.node !== this.node) {
        this.leaseLost(`subnet ${subnet} is now held by ${d.lease?.node ?? 'an unreadable record'}`, d.lease?.node);
        return;
      }
    }
    if (missing) void this.track(this.reacquire(held, 'a record was deleted from the registry'));
  }

  // ---- watching ----

  private async runWatch(stop: AbortSignal, onEvents: (events: LeaseEvent[]) => void): Promise<void> {
    const known = new Map<string, Decoded>();
    let delivered: Lease[] | undefined;
    let failures = 0;
    let brokenAtMs: number | undefined;
    let seenRevision = 0;

    const publish = (): void => {
      this.checkOwnership(known, seenRevision);
      const leases = deriveLeases(known.values());
      const events = delivered === undefined ? fullSet(leases) : diffLeases(delivered, leases);
      const first = delivered === undefined;
      delivered = leases;
      if (!first && events.length === 0) return;
      const added = events.filter((e) => e.type === 'added').length;
      this.log.debug({ added, removed: events.length - added }, first ? 'leases listed' : 'leases changed');
      try {
        onEvents(events);
      } catch (err: unknown) {
        this.log.error({ err }, 'lease event handler failed');
      }
    };

    while (!stop.aborted) {
      let snapshot: RegistrySnapshot;
      try {
        snapshot = await this.abortable(this.registry.list(), stop);
      } catch (err: unknown) {
        if (stop.aborted) break;
        failures++;
        this.logRetry(failures, err, 'registry unreachable; keeping the known leases');
        await sleep(this.backoffMs(failures, MAX_RETRY_MS), stop);
        continue;
      }
      if (brokenAtMs !== undefined) {
        this.log.info({ durationMs: Date.now() - brokenAtMs, count: failures }, 'lease watch resynced');
      }
      failures = 0;
      brokenAtMs = undefined;
      known.clear();
      for (const entry of snapshot.entries) known.set(entry.subnet, this.decode(entry));
      seenRevision = snapshot.revision;
      publish();

      const reason = await new Promise<string | undefined>((resolve) => {
        const onAbort = (): void => {
          handle.close().then(
            () => resolve(undefined),
            () => resolve(undefined),
          );
        };
        const handle = this.registry.watch(snapshot.revision + 1, {
          events: (batch) => {
            if (stop.aborted) return;
            for (const event of batch) {
              if (event.type === 'put') {
                known.set(event.entry.subnet, this.decode(event.entry));
                seenRevision = Math.max(seenRevision, event.entry.revision);
              } else {
                known.delete(event.subnet);
                seenRevision = Math.max(seenRevision, event.revision);
              }
            }
            publish();
          },
          broken: (why) => {
            stop.removeEventListener('abort', onAbort);
            resolve(why);
          },
        });
        if (stop.aborted) onAbort();
        else stop.addEventListener('abort', onAbort, { once: true });
      });
      if (reason === undefined) break;
      brokenAtMs = Date.now();
      this.log.warn({ reason }, 'lease watch broken; keeping the known leases until the registry answers');
    }
  }

  // ---- records ----

  private decode(entry: RegistryEntry): Decoded {
    let cidr: Cidr | undefined;
    try {
      cidr = parseCidr(entry.subnet);
    } catch {
      cidr = undefined;
    }
    if (cidr === undefined || cidr.text !== entry.subnet) {
      this.warnOnce(entry, 'the key is not a canonical subnet');
      return { entry, cidr, lease: undefined };
    }
    let lease: Lease;
    try {
      lease = decodeLeaseRecord(entry.value);
    } catch (err: unknown) {
      this.warnOnce(entry, messageOf(err));
      return { entry, cidr, lease: undefined };
    }
    if (!lease.subnets.includes(entry.subnet)) {
      this.warnOnce(entry, `the record (${lease.subnets.join(', ')}) does not name its own key`);
      return { entry, cidr, lease: undefined };
    }
    const outside = lease.subnets.find((s) => !this.clusters.some((c) => cidrInside(c, s)));
    if (outside !== undefined) {
      this.warnOnce(entry, `${outside} is outside the cluster CIDRs (${this.describeClusters()})`);
      return { entry, cidr, lease: undefined };
    }
    return { entry, cidr, lease };
  }

  private warnOnce(entry: RegistryEntry, reason: string): void {
    const key = `${entry.subnet}@${entry.revision}`;
    if (this.warned.has(key)) return;
    if (this.warned.size >= 1000) this.warned = new Set();
    this.warned.add(key);
    this.log.warn({ subnet: entry.subnet, reason }, 'unusable lease record in the registry ignored');
  }

  // ---- helpers ----

  private describeClusters(): string {
    return this.clusters.map((c) => c.text).join(', ');
  }

  private closedError(): LeaseError {
    return new LeaseError(`failed to acquire a subnet in ${this.describeClusters()}: the subnet manager was closed`);
  }

  /** Exponential from retryMs, capped, with jitter (half to full) so nodes do not retry in step. */
  private backoffMs(attempt: number, capMs: number): number {
    const raw = Math.min(Math.max(capMs, 1), this.retryMs * 2 ** Math.min(attempt - 1, 20));
    return raw / 2 + (Math.random() * raw) / 2;
  }

  /** The first failure of a run at warn, the rest at debug (a long outage is one warning). */
  private logRetry(attempt: number, err: unknown, msg: string): void {
    const fields: LogFields = { node: this.node, attempt, reason: messageOf(err) };
    if (attempt === 1) this.log.warn(fields, msg);
    else this.log.debug(fields, msg);
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work);
    const forget = (): void => {
      this.running.delete(work);
    };
    work.then(forget, forget);
    return work;
  }

  /** Resolves or rejects with `work`, or rejects with Stopped as soon as `signal` aborts. */
  private abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
    if (signal.aborted) {
      work.catch(() => undefined);
      return Promise.reject(new Stopped());
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(new Stopped());
      signal.addEventListener('abort', onAbort, { once: true });
      work.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }
}

/**
 * One lease per node, from its newest usable record, with the subnets of that record whose keys
 * the node holds; IPv4 first.
 */
function deriveLeases(records: Iterable<Decoded>): Lease[] {
  const byNode = new Map<string, Decoded[]>();
  for (const d of records) {
    if (d.lease === undefined) continue;
    const list = byNode.get(d.lease.node);
    if (list === undefined) byNode.set(d.lease.node, [d]);
    else list.push(d);
  }
  const leases: Lease[] = [];
  for (const records of byNode.values()) {
    let newest = records[0];
    for (const d of records) if (newest === undefined || d.entry.revision > newest.entry.revision) newest = d;
    if (newest?.lease === undefined) continue;
    const keys = new Set(records.map((d) => d.entry.subnet));
    const subnets = newest.lease.subnets.filter((s) => keys.has(s)).sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
    leases.push({ ...copyLease(newest.lease), subnets });
  }
  return leases;
}

function cidrInside(cluster: Cidr, subnetText: string): boolean {
  const subnet = parseCidr(subnetText);
  if (subnet.family !== cluster.family || subnet.prefixLen < cluster.prefixLen) return false;
  return indexOfSubnet(cluster, subnet.prefixLen, subnet) !== undefined;
}

function copyLease(lease: Lease): Lease {
  return { ...lease, subnets: [...lease.subnets] };
}

/** Waits `ms`, or less when `signal` aborts; never rejects. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => undefined);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
