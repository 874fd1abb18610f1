/**
 * Holding this node's lease once acquired (subnet-claim.ts). Flow:
 *
 *  1. Renewal every TTL/3; a failed renewal is retried with backoff, well inside the TTL.
 *  2. The registry no longer knows the lease (it expired), or a watch's view shows one of our
 *     records gone (ownership-check.ts): the same subnets are claimed again if they are free, and
 *     that is logged. One re-acquisition at a time; renewal waits meanwhile.
 *  3. Another node holds one of them now: onLeaseLost is called once (fatal for the daemon: its
 *     pods use addresses another node now owns) and renewal stops for good.
 */
import { errorMessage } from '../core/config-check.js';
import type { Lease } from '../core/lease.js';
import type { Logger } from '../core/logger.js';
import { abortable, sleep } from './abortable.js';
import { encodeLeaseRecord } from './lease-record.js';
import { checkOwnership } from './ownership-check.js';
import type { Decoded, RecordReader } from './registry-records.js';
import type { ClaimRequest, Registry, RenewResult } from './registry.js';
import { backoffMs, logRetry } from './retry.js';
import { conflictPauseMs } from './subnet-claim.js';
import type { Held } from './subnet-claim.js';
import type { TaskSet } from './task-set.js';

export interface LeaseHolderOptions {
  readonly registry: Registry;
  readonly node: string;
  readonly ttlSeconds: number;
  /** First pause after a failure (and the bound of a lost race's pause). */
  readonly retryMinMs: number;
  readonly records: RecordReader;
  readonly log: Logger;
  /** Our subnet is now held by another node. */
  readonly onLeaseLost: ((reason: string) => void) | undefined;
  /** Aborts when the manager closes: nothing is renewed or claimed after it. */
  readonly signal: AbortSignal;
  /** Where renewals and re-acquisitions run, for close() to wait for. */
  readonly tasks: TaskSet;
}

export class LeaseHolder {
  private held: Held | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private renewFailures = 0;
  private reacquiring = false;
  private lost = false;
  private readonly renewIntervalMs: number;

  constructor(private readonly options: LeaseHolderOptions) {
    this.renewIntervalMs = (options.ttlSeconds * 1000) / 3;
  }

  /** The lease held; undefined before the first acquisition. Stays after a loss (the pods still use it). */
  get lease(): Lease | undefined {
    return this.held?.lease;
  }

  /** Starts holding a freshly acquired lease: renewals begin. */
  hold(held: Held): void {
    this.held = held;
    this.scheduleRenew(this.renewIntervalMs);
  }

  /**
   * What a watch saw of our own records, as of `seenRevision`: one held by someone else means the
   * lease is lost; one missing is claimed again at once rather than at the next renewal, which
   * might not notice (a deleted key leaves its lease alive).
   */
  observe(view: ReadonlyMap<string, Decoded>, seenRevision: number): void {
    const held = this.held;
    if (held === undefined || this.lost || this.options.signal.aborted) return;
    const verdict = checkOwnership(
      { node: this.options.node, subnets: held.lease.subnets, claimRevision: held.claim.revision },
      view,
      seenRevision,
    );
    if (verdict.kind === 'taken') this.leaseLost(`subnet ${verdict.subnet} is now held by ${verdict.owner ?? 'an unreadable record'}`, verdict.owner);
    else if (verdict.kind === 'missing') void this.options.tasks.track(this.reacquire(held, 'a record was deleted from the registry'));
  }

  /** No more renewals (the manager is closing; its signal has aborted). Safe twice. */
  stop(): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
  }

  private scheduleRenew(delayMs: number): void {
    if (this.options.signal.aborted || this.lost) return;
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => {
      this.renewTimer = undefined;
      void this.options.tasks.track(this.renew());
    }, delayMs);
  }

  private async renew(): Promise<void> {
    const { registry, signal, log, node } = this.options;
    const held = this.held;
    if (held === undefined || this.lost || signal.aborted) return;
    let result: RenewResult;
    try {
      result = await abortable(registry.renew(held.claim), signal);
    } catch (err: unknown) {
      if (signal.aborted) return;
      this.renewFailures++;
      logRetry(log, this.renewFailures, errorMessage(err), 'subnet lease renewal failed; retrying', { node });
      this.scheduleRenew(backoffMs(this.renewFailures, this.options.retryMinMs, this.renewIntervalMs / 2));
      return;
    }
    const failures = this.renewFailures;
    this.renewFailures = 0;
    if (result === 'expired') {
      await this.reacquire(held, 'the lease expired in the registry');
      return;
    }
    if (failures > 0) log.info({ node, count: failures }, 'subnet lease renewed again after failures');
    this.scheduleRenew(this.renewIntervalMs);
  }

  /** Our records are gone: claim the same subnets again, unless another node holds one of them now. */
  private async reacquire(held: Held, why: string): Promise<void> {
    if (this.reacquiring || this.lost || this.options.signal.aborted) return;
    this.reacquiring = true;
    this.stop();
    try {
      await this.reacquireLoop(held, why);
    } finally {
      this.reacquiring = false;
    }
  }

  private async reacquireLoop(held: Held, why: string): Promise<void> {
    const { registry, signal, log, node, records, ttlSeconds, retryMinMs } = this.options;
    const subnets = held.lease.subnets;
    log.warn({ node, subnets, reason: why }, 'subnet lease gone from the registry; claiming the same subnets again');
    let failures = 0;
    let conflicts = 0;
    while (!signal.aborted && !this.lost) {
      try {
        const snapshot = await abortable(registry.list(), signal);
        const requests: ClaimRequest[] = [];
        for (const subnet of subnets) {
          const entry = snapshot.entries.find((e) => e.subnet === subnet);
          const owner = entry === undefined ? node : records.decode(entry).lease?.node;
          if (owner !== node) {
            this.leaseLost(`subnet ${subnet} is now held by ${owner ?? 'an unreadable record'}`, owner);
            return;
          }
          requests.push({ subnet, ifRevision: entry?.revision ?? 0 });
        }
        const claim = await abortable(registry.claim(requests, encodeLeaseRecord(held.lease), ttlSeconds), signal);
        if (claim !== undefined) {
          this.held = { lease: held.lease, claim };
          log.warn({ node, subnets, reason: why }, 'subnet lease re-acquired (same subnets)');
          this.scheduleRenew(this.renewIntervalMs);
          return;
        }
        conflicts++;
        await sleep(conflictPauseMs(conflicts, retryMinMs), signal);
      } catch (err: unknown) {
        if (signal.aborted) return;
        failures++;
        logRetry(log, failures, errorMessage(err), 'registry unreachable; retrying to re-acquire the subnet lease', { node });
        await sleep(backoffMs(failures, retryMinMs, this.renewIntervalMs / 2), signal);
      }
    }
  }

  private leaseLost(reason: string, owner: string | undefined): void {
    if (this.lost) return;
    this.lost = true;
    this.stop();
    const { log, node, onLeaseLost } = this.options;
    log.error({ node, subnets: this.held?.lease.subnets, owner, reason }, 'subnet lease lost to another node');
    try {
      onLeaseLost?.(reason);
    } catch (err: unknown) {
      log.error({ err }, 'lease-lost handler failed');
    }
  }
}
