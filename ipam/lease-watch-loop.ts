/**
 * The list -> watch -> relist -> diff loop every control-plane subnet manager needs, over a
 * source that can list all leases at a version and watch the changes after one:
 *
 *  1. list; the first batch is the full set (lease-diff.ts fullSet);
 *  2. watch from the list's version; each change updates the set and is handed on as events
 *     (a changed lease: removed, then added);
 *  3. when the watch ends normally (a server timeout) it resumes from the last version seen;
 *     when the version expired (etcd compaction, Kubernetes 410 Gone), when the source fails,
 *     when the watchdog finds the watch silent for too long, or at the periodic resync, it
 *     relists (after a jittered, capped backoff when something failed) and hands on only the
 *     diff against what it delivered;
 *  4. while the source is unreachable nothing is handed on: no removal, so forwarding goes on
 *     with the routes known.
 *
 * How the sources map onto it: etcd lists a prefix at a revision and watches from revision+1
 * (compaction -> expired); Kubernetes lists /api/v1/nodes at its resourceVersion and watches
 * with allowWatchBookmarks (a BOOKMARK only moves the version; 410 Gone -> expired; the server's
 * timeoutSeconds -> ended). Decoding records is the source's job: the loop sees leases only.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { sameLease } from '../core/lease.js';
import type { Lease, LeaseEvent } from '../core/lease.js';
import type { Logger } from '../core/logger.js';
import { diffLeases, fullSet } from './lease-diff.js';

export interface LeaseSnapshot {
  readonly leases: readonly Lease[];
  /** Where a watch resumes after this list (etcd revision, Kubernetes resourceVersion). */
  readonly version: string;
}

/** One change seen by a watch: a lease now, or a node's lease gone; or only a newer version. */
export type LeaseChange =
  | { readonly version: string; readonly lease: Lease }
  | { readonly version: string; readonly removed: string }
  | { readonly version: string };

export type WatchOutcome =
  /** The stream ended without error (a server-side timeout): resume from `version`. */
  | { readonly kind: 'ended'; readonly version: string }
  /** The version is gone (compaction, 410 Gone): relist. */
  | { readonly kind: 'expired'; readonly reason: string }
  | { readonly kind: 'aborted' };

export interface LeaseWatchSource {
  list(): Promise<LeaseSnapshot>;
  /** Changes after `fromVersion`, in order, until the signal aborts; throws when the source fails. */
  watch(fromVersion: string, onChange: (change: LeaseChange) => void, signal: AbortSignal): Promise<WatchOutcome>;
}

export interface LeaseWatchLoopOptions {
  source: LeaseWatchSource;
  /** For logs: "kubernetes nodes", "etcd leases". */
  what: string;
  retryMinMs: number;
  retryMaxMs: number;
  /** A full relist at least this often; 0: never. */
  resyncMs: number;
  /** A watch with no change, bookmark or end for this long is taken as dead and relisted; 0: off. */
  watchdogMs: number;
  signal: AbortSignal;
  log: Logger;
  onEvents: (events: LeaseEvent[]) => void;
}

/** Runs until the signal aborts; never throws for a source failure (it retries). */
export async function runLeaseWatchLoop(options: LeaseWatchLoopOptions): Promise<void> {
  const { source, signal, log } = options;
  /** What the consumer was given, by node. */
  let delivered: Lease[] | undefined;
  let failures = 0;
  while (!signal.aborted) {
    let snapshot: LeaseSnapshot;
    try {
      snapshot = await source.list();
    } catch (err: unknown) {
      if (signal.aborted) return;
      failures++;
      log.warn({ reason: `${options.what}: ${message(err)}`, attempt: failures }, 'cannot list; forwarding goes on with the routes known');
      if (!(await backoff(options, failures))) return;
      continue;
    }
    if (signal.aborted) return;
    const first = delivered === undefined;
    const events = delivered === undefined ? fullSet(snapshot.leases) : diffLeases(delivered, snapshot.leases);
    delivered = [...snapshot.leases];
    if (failures > 0) log.info({ reason: options.what, added: count(events, 'added'), removed: count(events, 'removed') }, 'resynced after an outage');
    failures = 0;
    // The first batch goes out even when empty: it is what says "the full set is known".
    if (events.length > 0 || first) options.onEvents(events);

    const current = new Map(delivered.map((l) => [l.node, l]));
    const outcome = await watchUntilRelist(options, snapshot.version, current);
    delivered = [...current.values()];
    if (outcome === 'aborted') return;
    if (outcome === 'failed') {
      failures++;
      if (!(await backoff(options, failures))) return;
    }
  }
}

/**
 * Watches, resuming after normal ends, until a relist is due: 'resync' (timer, expiry, watchdog)
 * or 'failed' (the source broke), or 'aborted'. `current` is kept equal to what was handed on.
 */
async function watchUntilRelist(options: LeaseWatchLoopOptions, fromVersion: string, current: Map<string, Lease>): Promise<'resync' | 'failed' | 'aborted'> {
  const { source, signal, log } = options;
  const relist = new AbortController();
  const watching = AbortSignal.any([signal, relist.signal]);
  let lastChangeMs = Date.now();
  const timers: NodeJS.Timeout[] = [];
  let why: 'resync' | undefined;
  if (options.resyncMs > 0) {
    timers.push(setTimeout(() => {
      why = 'resync';
      relist.abort();
    }, options.resyncMs));
  }
  if (options.watchdogMs > 0) {
    const tick = setInterval(() => {
      if (Date.now() - lastChangeMs < options.watchdogMs) return;
      log.warn({ reason: `${options.what}: no event for ${options.watchdogMs} ms` }, 'watch silent; listing again');
      why = 'resync';
      relist.abort();
    }, Math.max(1000, Math.floor(options.watchdogMs / 4)));
    timers.push(tick);
  }
  try {
    let version = fromVersion;
    for (;;) {
      if (watching.aborted) return signal.aborted ? 'aborted' : (why ?? 'resync');
      let outcome: WatchOutcome;
      try {
        outcome = await source.watch(version, (change) => {
          lastChangeMs = Date.now();
          version = change.version || version;
          const event = apply(current, change);
          if (event.length > 0) options.onEvents(event);
        }, watching);
      } catch (err: unknown) {
        if (signal.aborted) return 'aborted';
        if (why !== undefined) return why;
        log.warn({ reason: `${options.what}: ${message(err)}` }, 'watch failed; listing again after a pause');
        return 'failed';
      }
      if (signal.aborted) return 'aborted';
      if (outcome.kind === 'aborted') return why ?? 'resync';
      if (outcome.kind === 'expired') {
        log.info({ reason: `${options.what}: ${outcome.reason}` }, 'watch version expired; listing again');
        return 'resync';
      }
      version = outcome.version || version;
      lastChangeMs = Date.now();
    }
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}

/** Applies one change to the delivered set; returns the events it makes (none for a no-op). */
function apply(current: Map<string, Lease>, change: LeaseChange): LeaseEvent[] {
  if ('lease' in change) {
    const old = current.get(change.lease.node);
    if (old !== undefined && sameLease(old, change.lease)) return [];
    current.set(change.lease.node, change.lease);
    return old === undefined
      ? [{ type: 'added', lease: change.lease }]
      : [{ type: 'removed', lease: old }, { type: 'added', lease: change.lease }];
  }
  if ('removed' in change) {
    const old = current.get(change.removed);
    if (old === undefined) return [];
    current.delete(change.removed);
    return [{ type: 'removed', lease: old }];
  }
  return [];
}

/** Waits a jittered, capped exponential backoff; false when the signal aborted meanwhile. */
async function backoff(options: LeaseWatchLoopOptions, attempt: number): Promise<boolean> {
  const capMs = Math.min(options.retryMaxMs, options.retryMinMs * 2 ** Math.min(attempt - 1, 16));
  try {
    await delay(capMs / 2 + Math.random() * (capMs / 2), undefined, { signal: options.signal });
    return true;
  } catch {
    return false;
  }
}

function count(events: readonly LeaseEvent[], type: LeaseEvent['type']): number {
  return events.filter((e) => e.type === type).length;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
