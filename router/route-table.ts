/**
 * Longest-prefix-match routes from CIDRs to values (the router stores peer slots). One interface,
 * two implementations: `TrieRouteTable` (the hot path) and `LinearRouteTable` (the obvious
 * reference the trie is tested against). IPv4 and IPv6 live side by side.
 */
import type { Cidr } from '../core/cidr.js';

export interface RouteEntry<T> {
  cidr: Cidr;
  value: T;
}

export interface RouteTable<T> {
  /** Adds the route, or replaces the value of the same CIDR. */
  insert(cidr: Cidr, value: T): void;
  /** Removes exactly this CIDR; returns whether it was there. */
  remove(cidr: Cidr): boolean;
  /** Value of the longest prefix containing the IPv4 address (unsigned 32-bit number). */
  lookup4(addr: number): T | undefined;
  /** Value of the longest prefix containing the IPv6 address at `buf[off..off+16)` (borrowed). */
  lookup6(buf: Uint8Array, off: number): T | undefined;
  /** Every route, IPv4 first, in no promised order within a family. */
  entries(): RouteEntry<T>[];
  readonly size: number;
}
