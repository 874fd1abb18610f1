/**
 * The storage seam under the registry-backed SubnetManager (flannel's split: allocation logic in
 * the manager, storage here). A registry holds records keyed by subnet; each record lives as long
 * as the TTL lease it was written under is renewed. Implementations: etcd (etcd-registry.ts) and
 * an in-memory fake for tests (test/memory-registry.ts); test/registry-contract.ts holds both to
 * the same contract.
 *
 * Values are opaque here (lease-record.ts encodes them). Revisions are the store's global,
 * increasing change counter (etcd's revision): an entry carries the revision of its last change,
 * a list carries the store revision it was read at, and a watch started at `list.revision + 1`
 * sees every change after that list exactly once.
 */

/** One stored record. */
export interface RegistryEntry {
  /** The subnet the record is keyed by, CIDR text as stored (the manager validates it). */
  readonly subnet: string;
  /** The stored record, opaque to the registry. */
  readonly value: string;
  /** Revision of the entry's last change (etcd mod revision); a takeover must name it. */
  readonly revision: number;
}

export interface RegistrySnapshot {
  readonly entries: RegistryEntry[];
  /** Store revision the list was read at; watch from `revision + 1` to miss nothing. */
  readonly revision: number;
}

/** One subnet of a claim, with the condition under which it may be written. */
export interface ClaimRequest {
  readonly subnet: string;
  /**
   * 0: the subnet must be free (no record). Otherwise the record must still be at exactly this
   * revision (unchanged since it was read): how a node restarting within the TTL takes its own
   * record over.
   */
  readonly ifRevision: number;
}

/** A successful claim: the TTL lease the records were written under. Opaque to callers. */
export interface Claim {
  /** Identifies the TTL lease (etcd lease ID); renew takes the whole claim. */
  readonly id: string;
  readonly ttlSeconds: number;
  /** Store revision of the write. */
  readonly revision: number;
}

/** 'renewed': the TTL starts over; 'expired': the lease is gone, and with it its records. */
export type RenewResult = 'renewed' | 'expired';

export type RegistryEvent =
  | { readonly type: 'put'; readonly entry: RegistryEntry }
  /** A record was deleted or its lease expired. */
  | { readonly type: 'delete'; readonly subnet: string; readonly revision: number };

/**
 * Why a watch stopped: 'compacted', its start revision is gone from the store's history (the
 * store answers: list again at once); 'failed', anything else (connection lost, canceled,
 * registry closed).
 */
export type RegistryWatchBreak = 'compacted' | 'failed';

export interface RegistryWatchListener {
  /** Changes in revision order; one call per store transaction (or per batch the store sends). */
  events(batch: RegistryEvent[]): void;
  /**
   * The watch has stopped for good and delivers nothing more. Called at most once. The caller
   * resyncs: list (retrying until the registry answers again: that is "resumed"), then watch
   * from the list's revision + 1.
   */
  broken(reason: string, kind: RegistryWatchBreak): void;
}

export interface RegistryWatch {
  /** Stops the watch; `broken` is not called for it. Safe twice. */
  close(): Promise<void>;
}

export interface Registry {
  /** Every record, with the revision they were read at. Throws RegistryError when unreachable. */
  list(): Promise<RegistrySnapshot>;
  /**
   * Writes `value` under every requested subnet, all under one new lease of `ttlSeconds`, in one
   * atomic step, if every condition holds; otherwise writes nothing and resolves undefined (some
   * other node got there first: list again and choose again). Throws RegistryError when the
   * registry is unreachable; the write may then have happened or not (list again to know).
   */
  claim(subnets: readonly ClaimRequest[], value: string, ttlSeconds: number): Promise<Claim | undefined>;
  /** Keeps the claim's lease alive for another TTL. Throws RegistryError when unreachable. */
  renew(claim: Claim): Promise<RenewResult>;
  /** Delivers every change from `fromRevision` on, until closed or broken. Never throws. */
  watch(fromRevision: number, listener: RegistryWatchListener): RegistryWatch;
  /** Ends open watches (without `broken`) and frees the connection. Leases are left to expire. */
  close(): Promise<void>;
}

/** The registry failed or could not be reached; the message says which operation and why. */
export class RegistryError extends Error {
  readonly code = 'ERR_PODTUN_REGISTRY';
}
