/**
 * The difference between two full sets of leases as lease events: what a reload of a static
 * config (or a resync of any registry) hands to `router.applyLeaseEvents`.
 */
import { sameLease } from '../core/lease.js';
import type { Lease, LeaseEvent } from '../core/lease.js';

/**
 * Events that turn `before` into `after`, leases keyed by node name. A node whose subnets,
 * endpoints, transports or MTU changed yields `removed` (old lease) then `added` (new lease). All removals come
 * first, so a subnet that moves from one node to another is never owned twice at once. Subnet
 * order does not matter; subnets are compared as canonical text.
 */
export function diffLeases(before: readonly Lease[], after: readonly Lease[]): LeaseEvent[] {
  const old = byNode(before);
  const next = byNode(after);
  const removed: LeaseEvent[] = [];
  const added: LeaseEvent[] = [];
  for (const [node, lease] of old) {
    const now = next.get(node);
    if (now === undefined) removed.push({ type: 'removed', lease });
    else if (!sameLease(lease, now)) {
      removed.push({ type: 'removed', lease });
      added.push({ type: 'added', lease: now });
    }
  }
  for (const [node, lease] of next) {
    if (!old.has(node)) added.push({ type: 'added', lease });
  }
  return [...removed, ...added];
}

/** The first batch of a watch: every lease added. */
export function fullSet(leases: readonly Lease[]): LeaseEvent[] {
  return leases.map((lease) => ({ type: 'added', lease }));
}

function byNode(leases: readonly Lease[]): Map<string, Lease> {
  const map = new Map<string, Lease>();
  for (const lease of leases) {
    if (map.has(lease.node)) throw new Error(`two leases for node "${lease.node}"`);
    map.set(lease.node, lease);
  }
  return map;
}
