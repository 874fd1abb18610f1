/**
 * The list -> watch -> relist -> diff loop of every control-plane subnet manager (etcd, the
 * Kubernetes API), over a source that can list every lease at a version and watch the changes
 * after a version. Flow:
 *
 *  1. list -> the full set, handed on as the first batch (every lease `added`).
 *  2. watch from the list's version -> each change applied to the set; at the end of the turn
 *     in which changes arrived, the diff against what was handed on (lease-diff.ts: removals
 *     first, so a changed lease is removed, then added) is handed on when not empty.
 *  3. The watch ends:
 *     - the signal aborted: the loop returns;
 *     - `ended` (the server closed it cleanly, at its timeout): a new watch from the last
 *       version seen, no relist;
 *     - `expired` (the version is too old), the watchdog (nothing at all, not even a bookmark,
 *       for watchdogMs: a watch can die silently), the periodic resync: relist at once;
 *     - failed (the watch rejected: connection lost, an error event): pause, then relist.
 *  4. A relist that fails is retried after a pause, until the source answers. Meanwhile nothing
 *     is handed on: forwarding goes on with the routes known. When it answers, only the diff
 *     against what was handed on goes out.
 *
 * Pauses are exponential from retryMinMs to retryMaxMs, jittered (retry.ts). A watch that ends,
 * however, sooner than retryMinMs after it started counts as failed, so that a source ending
 * every watch at once cannot spin the loop; one that stayed up retryMaxMs resets the pauses.
 *
 * How the sources map onto it:
 *
 *  - etcd (registry-lease-source.ts over the Registry seam): the version is the store revision
 *    (a number). list = one range read, leases derived from its records, at its header revision;
 *    watch(v) = a Registry watch from v + 1; each transaction arrives as one call of the
 *    registry's listener and becomes, in that turn, one change per node it touched, at the
 *    transaction's revision (so it is handed on whole); a watch broken because v + 1 was
 *    compacted away is `expired`, any other break rejects. etcd watches have no server timeout and no bookmarks, so they never
 *    end cleanly and a silent one is normal: no watchdog (gRPC keepalives find a dead
 *    connection).
 *  - Kubernetes (GET /api/v1/nodes, then ?watch=1&allowWatchBookmarks=true): the version is the
 *    opaque resourceVersion text. list = the NodeList's leases at its metadata.resourceVersion;
 *    watch(v) = a watch from resourceVersion v: ADDED and MODIFIED put the Node's lease (or
 *    remove it when the Node is no longer a usable peer), DELETED removes it, each with the
 *    object's resourceVersion; a BOOKMARK is a change with a version and nothing else (it feeds
 *    the watchdog); the server closing the stream at timeoutSeconds is `ended`; 410 Gone
 *    (or an ERROR event with code 410, reason Expired/Gone) is `expired`; anything else rejects.
 *    The watchdog is timeoutSeconds plus a margin: past it the stream is dead.
 *
 * Decoding and validating what the source stores stays with the manager (its source hands over
 * leases); this loop only keeps, diffs and hands on leases.
 */
import { errorMessage } from '../core/config-check.js';
import type { Lease, LeaseEvent } from '../core/lease.js';
import type { Logger } from '../core/logger.js';
import { abortable, sleep } from './abortable.js';
import { diffLeases, fullSet } from './lease-diff.js';
import { backoffMs, logRetry } from './retry.js';

/** Every lease of the source at one version. */
export interface LeaseSnapshot<V = string> {
  /** One per node. */
  readonly leases: readonly Lease[];
  /** Where a watch picks up: it sees the changes after this version. */
  readonly version: V;
}

/**
 * One change seen by a watch, with the source's version after it: a node's lease now (added or
 * changed), a node's lease gone, or neither (a bookmark: the version moved on, the watch is
 * alive). The changes a source delivers in one turn of the event loop (an etcd transaction, a
 * burst of Kubernetes events) are handed on together: the consumer never sees half of one.
 */
export type LeaseChange<V = string> =
  | { readonly version: V; readonly lease: Lease }
  | { readonly version: V; readonly removed: string }
  | { readonly version: V };

/** How a watch ended when it did not fail (a failure rejects). */
export type WatchOutcome<V = string> =
  /** Closed cleanly (a server-side timeout): the loop watches again from `version`, no relist. */
  | { readonly kind: 'ended'; readonly version: V }
  /** The version is too old (etcd compacted it; Kubernetes: 410 Gone): the loop relists at once. */
  | { readonly kind: 'expired'; readonly reason: string }
  /** The signal aborted (whatever a watch settles with after that is ignored). */
  | { readonly kind: 'aborted' };

export interface LeaseWatchSource<V = string> {
  /** Every lease now, with the version it was read at; rejects when the source cannot answer. */
  list(signal: AbortSignal): Promise<LeaseSnapshot<V>>;
  /**
   * Calls `onChange` with every change after `fromVersion`, in order, until the watch ends,
   * fails (rejects) or `signal` aborts, upon which it must settle soon. Once the signal has
   * aborted, what it still delivers is ignored.
   */
  watch(fromVersion: V, onChange: (change: LeaseChange<V>) => void, signal: AbortSignal): Promise<WatchOutcome<V>>;
}

export interface LeaseWatchLoopOptions<V = string> {
  readonly source: LeaseWatchSource<V>;
  /** The source, in the reasons of failures logged: "lease registry", "kubernetes nodes". */
  readonly what: string;
  /** The loop returns (and leaves no timer) once this aborts. */
  readonly signal: AbortSignal;
  /** The first batch is the full set; then diffs, never empty. A throw is logged and ignored. */
  readonly onEvents: (events: LeaseEvent[]) => void;
  readonly log: Logger;
  /** First and longest pause before a relist while the source fails. */
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  /** Relist when a watch has delivered nothing, not even a bookmark, for this long; absent or 0: never. */
  readonly watchdogMs?: number;
  /** Relist this long after the last list, even while the watch is healthy; absent or 0: never. */
  readonly resyncMs?: number;
  /** Uniform in [0, 1), for the pauses' jitter; default Math.random. */
  readonly random?: () => number;
}

/** Options that make no loop (a programming error, not a runtime condition). */
export class LeaseWatchOptionsError extends Error {
  readonly code = 'ERR_PODTUN_LEASE_WATCH_OPTIONS';
}

/** Runs until `options.signal` aborts; never rejects once started (bad options reject at once). */
export async function runLeaseWatchLoop<V>(options: LeaseWatchLoopOptions<V>): Promise<void> {
  checkOptions(options);
  await new LeaseWatchLoop(options).run();
}

/** Why a watch ended, as the loop acts on it. */
type Ending<V> =
  | { readonly kind: 'aborted' }
  | { readonly kind: 'ended'; readonly version: V }
  | { readonly kind: 'expired'; readonly reason: string }
  | { readonly kind: 'silent'; readonly silentMs: number }
  | { readonly kind: 'resync' }
  | { readonly kind: 'failed'; readonly reason: string };

class LeaseWatchLoop<V> {
  private readonly current = new Map<string, Lease>();
  /** What was handed on; undefined until the first list answered. */
  private delivered: Lease[] | undefined;
  /** A hand-on is queued for the changes of this turn. */
  private handOnQueued = false;
  /** Consecutive failures: the exponent of the next pause. */
  private attempt = 0;
  /** Since when the source has been failing, and how often; undefined while it answers. */
  private outage: { sinceMs: number; failures: number } | undefined;

  constructor(private readonly options: LeaseWatchLoopOptions<V>) {}

  async run(): Promise<void> {
    const { signal, retryMinMs, retryMaxMs, resyncMs, log, what } = this.options;
    let listed: { version: V; resyncAtMs: number | undefined } | undefined;
    while (!signal.aborted) {
      if (listed === undefined) {
        const snapshot = await this.list();
        if (snapshot === undefined) continue;
        listed = { version: snapshot.version, resyncAtMs: resyncMs !== undefined && resyncMs > 0 ? Date.now() + resyncMs : undefined };
      }
      const startedMs = Date.now();
      const ending = await this.watchOnce(listed.version, listed.resyncAtMs);
      if (ending.kind === 'aborted' || signal.aborted) return;
      const upMs = Date.now() - startedMs;
      if (upMs >= retryMaxMs) this.attempt = 0;
      // Only the source's own ends: the watchdog and the resync are paced by their periods.
      if ((ending.kind === 'ended' || ending.kind === 'expired') && upMs < retryMinMs) {
        await this.failed(`${what}: the watch ended ${upMs} ms after it started (${ending.kind})`, 'lease watch ended at once; relisting after a pause');
        listed = undefined;
        continue;
      }
      switch (ending.kind) {
        case 'ended':
          listed = { ...listed, version: ending.version };
          break;
        case 'expired':
          log.info({ reason: `${what}: ${ending.reason}` }, 'lease watch expired; relisting');
          listed = undefined;
          break;
        case 'silent':
          log.warn({ silentMs: ending.silentMs }, 'lease watch silent; relisting');
          listed = undefined;
          break;
        case 'resync':
          log.debug('periodic lease resync');
          listed = undefined;
          break;
        case 'failed':
          await this.failed(ending.reason, 'lease watch broken; keeping the known leases until the source answers');
          listed = undefined;
          break;
      }
    }
  }

  /** Lists and hands on the full set or the diff; undefined when it failed (after the pause) or the signal aborted. */
  private async list(): Promise<LeaseSnapshot<V> | undefined> {
    const { source, signal, log, what } = this.options;
    let snapshot: LeaseSnapshot<V>;
    try {
      snapshot = await abortable(Promise.resolve().then(() => source.list(signal)), signal);
    } catch (err: unknown) {
      if (!signal.aborted) await this.failed(`${what}: ${errorMessage(err)}`, 'lease list failed; keeping the known leases');
      return undefined;
    }
    if (this.outage !== undefined) {
      log.info({ durationMs: Date.now() - this.outage.sinceMs, count: this.outage.failures }, 'lease watch resynced');
      this.outage = undefined;
    }
    this.current.clear();
    for (const lease of snapshot.leases) this.current.set(lease.node, lease);
    this.handOn();
    return snapshot;
  }

  /** One watch, until it ends, fails, goes silent, is due for a resync or the signal aborts. */
  private async watchOnce(fromVersion: V, resyncAtMs: number | undefined): Promise<Ending<V>> {
    const { source, signal, watchdogMs, what } = this.options;
    const stop = new AbortController();
    let cause: Ending<V> | undefined;
    const stopFor = (why: Ending<V>): void => {
      cause ??= why;
      stop.abort();
    };
    const onAbort = (): void => stopFor({ kind: 'aborted' });
    signal.addEventListener('abort', onAbort, { once: true });

    let lastHeardMs = Date.now();
    let watchdog: NodeJS.Timeout | undefined;
    // One timer, re-armed for the rest of the window rather than reset on every change.
    const sniff = (): void => {
      if (watchdogMs === undefined || watchdogMs === 0) return;
      const silentMs = Date.now() - lastHeardMs;
      if (silentMs >= watchdogMs) stopFor({ kind: 'silent', silentMs });
      else watchdog = setTimeout(sniff, watchdogMs - silentMs);
    };
    sniff();
    const resync = resyncAtMs === undefined ? undefined : setTimeout(() => stopFor({ kind: 'resync' }), Math.max(0, resyncAtMs - Date.now()));

    const onChange = (change: LeaseChange<V>): void => {
      if (stop.signal.aborted) return;
      lastHeardMs = Date.now();
      this.apply(change);
    };
    try {
      const outcome = await abortable(Promise.resolve().then(() => source.watch(fromVersion, onChange, stop.signal)), stop.signal);
      if (cause !== undefined) return cause;
      // The source says aborted, but nothing aborted it: it stopped on its own.
      if (outcome.kind === 'aborted') return { kind: 'failed', reason: `${what}: the watch stopped by itself` };
      return outcome.kind === 'ended' ? { kind: 'ended', version: outcome.version } : outcome;
    } catch (err: unknown) {
      return cause ?? { kind: 'failed', reason: `${what}: ${errorMessage(err)}` };
    } finally {
      clearTimeout(watchdog);
      clearTimeout(resync);
      signal.removeEventListener('abort', onAbort);
      // The watch is over for the loop: a source still running is told so.
      stop.abort();
    }
  }

  /** Applies one change now; the hand-on waits for the end of the turn (see LeaseChange). */
  private apply(change: LeaseChange<V>): void {
    if ('lease' in change) this.current.set(change.lease.node, change.lease);
    else if ('removed' in change) this.current.delete(change.removed);
    else return;
    if (this.handOnQueued) return;
    this.handOnQueued = true;
    queueMicrotask(() => {
      this.handOnQueued = false;
      if (!this.options.signal.aborted) this.handOn();
    });
  }

  /** The first time the full set, then the diff against what was handed on, if any. */
  private handOn(): void {
    const { log, onEvents } = this.options;
    const leases = [...this.current.values()];
    const first = this.delivered === undefined;
    const events = this.delivered === undefined ? fullSet(leases) : diffLeases(this.delivered, leases);
    this.delivered = leases;
    if (!first && events.length === 0) return;
    const added = events.filter((e) => e.type === 'added').length;
    log.debug({ added, removed: events.length - added }, first ? 'leases listed' : 'leases changed');
    try {
      onEvents(events);
    } catch (err: unknown) {
      log.error({ err }, 'lease event handler failed');
    }
  }

  /** A failure: the first of an outage at warn, the rest at debug; then the pause before the next list. */
  private async failed(reason: string, msg: string): Promise<void> {
    const { signal, log, retryMinMs, retryMaxMs, random } = this.options;
    this.attempt++;
    this.outage ??= { sinceMs: Date.now(), failures: 0 };
    this.outage.failures++;
    const delayMs = Math.round(backoffMs(this.attempt, retryMinMs, retryMaxMs, random));
    logRetry(log, this.outage.failures, reason, msg, { delayMs });
    await sleep(delayMs, signal);
  }
}

function checkOptions<V>(options: LeaseWatchLoopOptions<V>): void {
  const { retryMinMs, retryMaxMs, watchdogMs, resyncMs } = options;
  const check = (name: string, value: number | undefined, min: number): void => {
    if (value !== undefined && !(Number.isFinite(value) && value >= min)) {
      throw new LeaseWatchOptionsError(`${name} must be a number of ms ${min === 0 ? '>= 0' : '> 0'}, got ${String(value)}`);
    }
  };
  check('retryMinMs', retryMinMs, Number.MIN_VALUE);
  check('retryMaxMs', retryMaxMs, Number.MIN_VALUE);
  check('watchdogMs', watchdogMs, 0);
  check('resyncMs', resyncMs, 0);
  if (retryMaxMs < retryMinMs) throw new LeaseWatchOptionsError(`retryMaxMs (${retryMaxMs}) is below retryMinMs (${retryMinMs})`);
}
