/**
 * Packets dropped per reason, the router's and every transport's together: the one sum that
 * `podtun status`'s drops line and `/metrics` both show, so neither leaves a reason out.
 */
import type { DropCounts, TransportCounters } from './status-schema.js';

/** A transport's drop counter as the selector names it: `udp.drop.unauthenticated`, `ws.drop.congested`. */
const TRANSPORT_DROP_RE = /^(?:[a-z]+\.)?drop\.([a-z_]+)$/;

/** Drops by reason name, router and transports summed; reasons with no count are absent. */
export function dropTotals(drops: DropCounts, transport: TransportCounters): Map<string, number> {
  const out = new Map<string, number>(Object.entries(drops));
  for (const [key, n] of Object.entries(transport)) {
    const reason = TRANSPORT_DROP_RE.exec(key)?.[1];
    if (reason !== undefined) out.set(reason, (out.get(reason) ?? 0) + n);
  }
  return out;
}
