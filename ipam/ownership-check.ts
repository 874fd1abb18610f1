/**
 * Whether this node still holds its subnets, as one view of the registry shows them (a list, or
 * the records as a watch has them after a change). Pure: the holder (lease-holder.ts) acts on
 * the verdict.
 */
import type { Lease } from '../core/lease.js';

/** What a view says about the subnets held. */
export type Ownership =
  | { readonly kind: 'held' }
  /** A record of ours is gone (expired, or deleted after our claim): claim it again. */
  | { readonly kind: 'missing' }
  /** Another node's record (or an unreadable one) now sits on one of our subnets: the lease is lost. */
  | { readonly kind: 'taken'; readonly subnet: string; readonly owner: string | undefined };

export interface HeldSubnets {
  readonly node: string;
  readonly subnets: readonly string[];
  /** Store revision of our claim: a view older than it has not seen the claim yet. */
  readonly claimRevision: number;
}

/**
 * `view`: the records by subnet (`lease` undefined for an unusable record), as of
 * `seenRevision`. A subnet taken by someone else outweighs one missing.
 */
export function checkOwnership(
  held: HeldSubnets,
  view: ReadonlyMap<string, { readonly lease: Lease | undefined }>,
  seenRevision: number,
): Ownership {
  let missing = false;
  for (const subnet of held.subnets) {
    const record = view.get(subnet);
    if (record === undefined) {
      if (seenRevision >= held.claimRevision) missing = true;
    } else if (record.lease?.node !== held.node) {
      return { kind: 'taken', subnet, owner: record.lease?.node };
    }
  }
  return missing ? { kind: 'missing' } : { kind: 'held' };
}
