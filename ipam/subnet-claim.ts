/**
 * Acquiring this node's subnets in the registry. Flow:
 *
 *  1. List the registry. Per address family, take this node's own record over if it is still
 *     there and fits the config (a restart within the TTL keeps its subnet), else choose a free
 *     subnet (subnet-allocator.ts: among the lowest free ones, at random).
 *  2. Claim all of them in one atomic step under one TTL lease.
 *  3. A lost race (another node claimed one first) lists and chooses again after a short random
 *     pause; an unreachable registry is retried with backoff until the signal aborts; exhausted
 *     cluster CIDRs are a LeaseError.
 */
import type { Cidr } from '../core/cidr.js';
import { errorMessage } from '../core/config-check.js';
import type { Lease } from '../core/lease.js';
import type { Logger } from '../core/logger.js';
import type { Advertisement } from '../core/subnet-manager.js';
import { abortable, sleep } from './abortable.js';
import { LeaseError } from './lease-error.js';
import { encodeLeaseRecord } from './lease-record.js';
import type { RecordReader, Decoded } from './registry-records.js';
import type { Claim, ClaimRequest, Registry } from './registry.js';
import { backoffMs, logRetry } from './retry.js';
import { chooseSubnet, DEFAULT_SUBNET_SPREAD, SubnetLengthError, SubnetsExhaustedError } from './subnet-allocator.js';
import { indexOfSubnet } from './subnet-index.js';
import type { FamilyPlan, SubnetPlan } from './subnet-plan.js';

/** A lease this node holds: what it wrote, and the claim that wrote it. */
export interface Held {
  readonly lease: Lease;
  readonly claim: Claim;
}

export interface SubnetClaimContext {
  readonly registry: Registry;
  readonly node: string;
  readonly plan: SubnetPlan;
  readonly ttlSeconds: number;
  /** How this node is reached, written into its record. */
  readonly advertise: Advertisement;
  readonly records: RecordReader;
  /** First and longest pause while the registry is unreachable. */
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly log: Logger;
  /** Aborts when the manager closes: acquisition gives up with a LeaseError. */
  readonly signal: AbortSignal;
}

/** Claims this node's subnets, retrying until it holds them; rejects with LeaseError. */
export async function acquireSubnets(ctx: SubnetClaimContext): Promise<Held> {
  const startedMs = Date.now();
  let failures = 0;
  let conflicts = 0;
  for (;;) {
    if (ctx.signal.aborted) throw acquisitionClosed(ctx.plan);
    let outcome: { held: Held; restored: boolean } | undefined;
    try {
      outcome = await claimOnce(ctx);
    } catch (err: unknown) {
      if (ctx.signal.aborted) throw acquisitionClosed(ctx.plan);
      if (err instanceof SubnetsExhaustedError || err instanceof SubnetLengthError) {
        throw new LeaseError(`failed to acquire a subnet in ${ctx.plan.text}: ${err.message}`, { cause: err });
      }
      failures++;
      logRetry(ctx.log, failures, errorMessage(err), 'registry unreachable; retrying subnet acquisition', { node: ctx.node });
      await sleep(backoffMs(failures, ctx.retryMinMs, ctx.retryMaxMs), ctx.signal);
      continue;
    }
    if (outcome === undefined) {
      // Another node claimed one of the chosen subnets between our list and our claim.
      conflicts++;
      ctx.log.debug({ node: ctx.node, count: conflicts }, 'subnet claimed by another node first; choosing again');
      await sleep(conflictPauseMs(conflicts, ctx.retryMinMs), ctx.signal);
      continue;
    }
    const lease = outcome.held.lease;
    ctx.log.info(
      {
        node: ctx.node,
        subnets: lease.subnets,
        reason: outcome.restored ? 'kept from the previous run' : 'newly allocated',
        durationMs: Date.now() - startedMs,
      },
      'subnet lease acquired',
    );
    return outcome.held;
  }
}

/** The LeaseError of an acquisition cut short by close(). */
export function acquisitionClosed(plan: SubnetPlan): LeaseError {
  return new LeaseError(`failed to acquire a subnet in ${plan.text}: the subnet manager was closed`);
}

/**
 * The pause after a lost race: short and random, so racing nodes spread out (a lost race means
 * the registry answers; only the choice collided).
 */
export function conflictPauseMs(conflicts: number, retryMinMs: number): number {
  return Math.random() * Math.min(retryMinMs, 20 * conflicts);
}

/** The lease this node writes for `subnets`. */
function leaseFor(node: string, subnets: readonly string[], advertise: Advertisement): Lease {
  const { endpoints, transports, mtu, publicKey } = advertise;
  return {
    node,
    subnets: [...subnets],
    endpoints: { ...endpoints },
    ...(transports === undefined ? {} : { transports: [...transports] }),
    ...(mtu === undefined ? {} : { mtu }),
    ...(publicKey === undefined ? {} : { publicKey }),
  };
}

/** One list-choose-claim round; undefined when another node won a race for a subnet. */
async function claimOnce(ctx: SubnetClaimContext): Promise<{ held: Held; restored: boolean } | undefined> {
  const snapshot = await abortable(ctx.registry.list(), ctx.signal);
  const decoded = snapshot.entries.map((entry) => ctx.records.decode(entry));
  const taken = decoded.flatMap((d) => (d.cidr === undefined ? [] : [d.cidr]));
  const requests: ClaimRequest[] = [];
  let restored = false;
  for (const plan of ctx.plan.families) {
    const own = ownRecord(ctx.node, decoded, plan);
    if (own !== undefined) {
      requests.push({ subnet: own.entry.subnet, ifRevision: own.entry.revision });
      restored = true;
    } else {
      requests.push({ subnet: chooseFree(plan, taken).text, ifRevision: 0 });
    }
  }
  const lease = leaseFor(
    ctx.node,
    requests.map((r) => r.subnet),
    ctx.advertise,
  );
  const claim = await abortable(ctx.registry.claim(requests, encodeLeaseRecord(lease), ctx.ttlSeconds), ctx.signal);
  return claim === undefined ? undefined : { held: { lease, claim }, restored };
}

/** This node's newest usable record for the family, if it is a subnet the current config would hand out. */
function ownRecord(node: string, decoded: readonly Decoded[], plan: FamilyPlan): Decoded | undefined {
  let best: Decoded | undefined;
  for (const d of decoded) {
    if (d.lease?.node !== node || d.cidr === undefined || d.cidr.family !== plan.family) continue;
    const cidr = d.cidr;
    const fits = plan.clusters.some((cluster) => (indexOfSubnet(cluster, plan.length, cidr) ?? 0n) >= 1n);
    if (fits && (best === undefined || d.entry.revision > best.entry.revision)) best = d;
  }
  return best;
}

/** A free subnet from the family's cluster CIDRs, tried in order. */
function chooseFree(plan: FamilyPlan, taken: readonly Cidr[]): Cidr {
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
