/**
 * The difference between two full sets of leases as lease events: what a reload of a static
 * config (or a resync of any registry) hands to `router.applyLeaseEvents`.
 */
import type { Lease, LeaseEvent } from '../core/subnet-manager.js';

/**
 * Events that turn `before` into `after`, leases keyed by node name. A node whose subnets,
 * endpoint, WebSocket endpoint, transport mode or MTU changed yields `removed` (old lease) then `added` (new lease). All removals come
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

export function sameLease(a: Lease, b: Lease): boolean {
  if (a.node !== b.node || a.endpoint !== b.endpoint || a.mtu !== b.mtu) return false;
  if (a.wsEndpoint !== b.wsEndpoint || (a.transport ?? 'auto') !== (b.transport ?? 'auto')) return false;
  if (a.subnets.length !== b.subnets.length) return false;
  const bs = new Set(b.subnets);
  return a.subnets.every((s) => bs.has(s));
}

function byNode(leases: readonly Lease[]): Map<string, Lease> {
  const map = new Map<string, Lease>();
  for (const lease of leases) {
    if (map.has(lease.node)) throw new Error(`two leases for node "${lease.node}"`);
    map.set(lease.node, lease);
  }
  return map;
}
