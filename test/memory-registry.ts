/**
 * An in-memory Registry (ipam/registry.ts) for unit tests of the registry-backed subnet manager,
 * held to the same contract as the etcd one (test/registry-contract.ts). It models one etcd
 * shared by every manager that uses it:
 *
 *  - revisions: one store counter; a transaction (a claim, a lease expiry) is one revision and
 *    one watch batch; history is kept for watches from an old revision until `compact()`;
 *  - TTL leases against an injectable clock (`now`), swept every `sweepIntervalMs` and before
 *    every operation; `expire(subnet)` ends a lease at once;
 *  - `disconnect()`: the store is unreachable (every call throws RegistryError, open watches
 *    break); `reconnect()`: it is back, and like a restarted etcd it gives every lease a fresh
 *    TTL, so nothing expires because of the outage itself.
 *
 * Watch events and `broken` are delivered asynchronously (a microtask), as from a real store.
 */
import { RegistryError } from '../ipam/registry.js';
import type {
  Claim,
  ClaimRequest,
  Registry,
  RegistryEntry,
  RegistryEvent,
  RegistrySnapshot,
  RegistryWatch,
  RegistryWatchBreak,
  RegistryWatchListener,
  RenewResult,
} from '../ipam/registry.js';

export interface MemoryRegistryOptions {
  /** Clock for lease expiry, ms; default Date.now. */
  now?: () => number;
  /** Period of the expiry sweep; 0: only before operations and on sweep(). Default 20 ms. */
  sweepIntervalMs?: number;
}

interface StoredEntry {
  value: string;
  revision: number;
  /** Lease id; undefined for a record written without a lease (put()). */
  leaseId: string | undefined;
}

interface StoredLease {
  ttlSeconds: number;
  deadlineMs: number;
  subnets: Set<string>;
}

interface Batch {
  revision: number;
  events: RegistryEvent[];
}

class MemoryWatch implements RegistryWatch {
  open = true;
  constructor(
    private readonly owner: MemoryRegistry,
    readonly listener: RegistryWatchListener,
  ) {}

  close(): Promise<void> {
    this.open = false;
    this.owner.forget(this);
    return Promise.resolve();
  }
}

export class MemoryRegistry implements Registry {
  private readonly now: () => number;
  private revision = 1;
  private compactedRevision = 0;
  private nextLeaseId = 1;
  private readonly entries = new Map<string, StoredEntry>();
  private readonly leases = new Map<string, StoredLease>();
  private history: Batch[] = [];
  private readonly watches = new Set<MemoryWatch>();
  private connected = true;
  private closed = false;
  private readonly timer: NodeJS.Timeout | undefined;
  /** Calls made, by operation: lets tests see retries and renewals. */
  readonly calls = { list: 0, claim: 0, renew: 0, watch: 0 };

  constructor(options: MemoryRegistryOptions = {}) {
    this.now = options.now ?? Date.now;
    const period = options.sweepIntervalMs ?? 20;
    if (period > 0) {
      this.timer = setInterval(() => this.sweep(), period);
      this.timer.unref();
    }
  }

  list(): Promise<RegistrySnapshot> {
    this.calls.list++;
    return this.op('list', () => ({
      entries: [...this.entries].map(([subnet, e]) => ({ subnet, value: e.value, revision: e.revision })),
      revision: this.revision,
    }));
  }

  claim(subnets: readonly ClaimRequest[], value: string, ttlSeconds: number): Promise<Claim | undefined> {
    this.calls.claim++;
    return this.op('claim', () => {
      if (subnets.length === 0) throw new RegistryError('claim: no subnets requested');
      for (const request of subnets) {
        const entry = this.entries.get(request.subnet);
        if (request.ifRevision === 0 ? entry !== undefined : entry?.revision !== request.ifRevision) return undefined;
      }
      const id = `memory-lease-${this.nextLeaseId++}`;
      const revision = ++this.revision;
      this.leases.set(id, { ttlSeconds, deadlineMs: this.now() + ttlSeconds * 1000, subnets: new Set() });
      const events: RegistryEvent[] = [];
      for (const { subnet } of subnets) {
        const entry: StoredEntry = { value, revision, leaseId: id };
        this.bind(subnet, entry);
        events.push({ type: 'put', entry: { subnet, value, revision } });
      }
      this.publish({ revision, events });
      return { id, ttlSeconds, revision };
    });
  }

  renew(claim: Claim): Promise<RenewResult> {
    this.calls.renew++;
    return this.op('renew', () => {
      const lease = this.leases.get(claim.id);
      if (lease === undefined) return 'expired';
      lease.deadlineMs = this.now() + lease.ttlSeconds * 1000;
      return 'renewed';
    });
  }

  watch(fromRevision: number, listener: RegistryWatchListener): RegistryWatch {
    this.calls.watch++;
    const watch = new MemoryWatch(this, listener);
    this.watches.add(watch);
    if (this.closed) {
      this.breakWatch(watch, 'registry closed', 'failed');
    } else if (!this.connected) {
      this.breakWatch(watch, 'registry unreachable', 'failed');
    } else if (fromRevision <= this.compactedRevision) {
      this.breakWatch(watch, `revision ${fromRevision} has been compacted (oldest kept: ${this.compactedRevision + 1})`, 'compacted');
    } else {
      const backlog = this.history.filter((b) => b.revision >= fromRevision);
      for (const batch of backlog) this.deliver(watch, batch.events);
    }
    return watch;
  }

  close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    for (const watch of this.watches) watch.open = false;
    this.watches.clear();
    return Promise.resolve();
  }

  // ---- test controls ----

  /** The store becomes unreachable: calls throw, open watches break. */
  disconnect(): void {
    this.connected = false;
    for (const watch of [...this.watches]) this.breakWatch(watch, 'registry unreachable', 'failed');
  }

  /** The store is back; every lease gets a fresh TTL (as etcd does when it restarts). */
  reconnect(): void {
    this.connected = true;
    const now = this.now();
    for (const lease of this.leases.values()) lease.deadlineMs = now + lease.ttlSeconds * 1000;
  }

  /** Ends the lease holding `subnet` now; its records vanish. Returns false if none held it. */
  expire(subnet: string): boolean {
    const id = this.entries.get(subnet)?.leaseId;
    if (id === undefined) return false;
    this.endLease(id);
    return true;
  }

  /** Expires every lease past its deadline (runs periodically and before every operation). */
  sweep(): void {
    if (!this.connected || this.closed) return;
    const now = this.now();
    for (const [id, lease] of [...this.leases]) if (lease.deadlineMs <= now) this.endLease(id);
  }

  /** Writes a record without a lease, as an operator with etcdctl would. Returns its revision. */
  put(subnet: string, value: string): number {
    const revision = ++this.revision;
    this.bind(subnet, { value, revision, leaseId: undefined });
    this.publish({ revision, events: [{ type: 'put', entry: { subnet, value, revision } }] });
    return revision;
  }

  /** Deletes a record, as an operator would. */
  delete(subnet: string): void {
    const entry = this.entries.get(subnet);
    if (entry === undefined) return;
    this.unbind(subnet, entry);
    const revision = ++this.revision;
    this.publish({ revision, events: [{ type: 'delete', subnet, revision }] });
  }

  /** Drops the change history: watches from a revision up to now break as "compacted". */
  compact(): void {
    this.compactedRevision = this.revision;
    this.history = [];
  }

  get currentRevision(): number {
    return this.revision;
  }

  /** Records currently stored, by subnet. */
  snapshot(): Map<string, RegistryEntry> {
    return new Map([...this.entries].map(([subnet, e]) => [subnet, { subnet, value: e.value, revision: e.revision }]));
  }

  get openWatches(): number {
    return this.watches.size;
  }

  /** Leases alive (granted, not expired), including those that no longer hold a record. */
  get liveLeases(): number {
    return this.leases.size;
  }

  /** @internal MemoryWatch.close */
  forget(watch: MemoryWatch): void {
    this.watches.delete(watch);
  }

  private op<T>(name: string, fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new RegistryError(`${name}: registry closed`));
    if (!this.connected) return Promise.reject(new RegistryError(`${name}: registry unreachable`));
    this.sweep();
    try {
      return Promise.resolve(fn());
    } catch (err: unknown) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private bind(subnet: string, entry: StoredEntry): void {
    const old = this.entries.get(subnet);
    if (old !== undefined) this.unbind(subnet, old);
    this.entries.set(subnet, entry);
    if (entry.leaseId !== undefined) this.leases.get(entry.leaseId)?.subnets.add(subnet);
  }

  private unbind(subnet: string, entry: StoredEntry): void {
    this.entries.delete(subnet);
    if (entry.leaseId !== undefined) this.leases.get(entry.leaseId)?.subnets.delete(subnet);
  }

  private endLease(id: string): void {
    const lease = this.leases.get(id);
    if (lease === undefined) return;
    this.leases.delete(id);
    if (lease.subnets.size === 0) return;
    const revision = ++this.revision;
    const events: RegistryEvent[] = [];
    for (const subnet of lease.subnets) {
      this.entries.delete(subnet);
      events.push({ type: 'delete', subnet, revision });
    }
    this.publish({ revision, events });
  }

  private publish(batch: Batch): void {
    this.history.push(batch);
    for (const watch of this.watches) this.deliver(watch, batch.events);
  }

  private deliver(watch: MemoryWatch, events: RegistryEvent[]): void {
    queueMicrotask(() => {
      if (watch.open) watch.listener.events(events);
    });
  }

  private breakWatch(watch: MemoryWatch, reason: string, kind: RegistryWatchBreak): void {
    this.watches.delete(watch);
    queueMicrotask(() => {
      if (!watch.open) return;
      watch.open = false;
      watch.listener.broken(reason, kind);
    });
  }
}
