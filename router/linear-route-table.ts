/**
 * The slow, obvious RouteTable: a list scanned in full on every lookup. The reference the trie
 * is checked against; not for the hot path.
 */
import type { Cidr } from '../core/cidr.js';
import type { RouteEntry, RouteTable } from './route-table.js';

export class LinearRouteTable<T> implements RouteTable<T> {
  private readonly routes: RouteEntry<T>[] = [];

  get size(): number {
    return this.routes.length;
  }

  insert(cidr: Cidr, value: T): void {
    const existing = this.routes.find((r) => sameCidr(r.cidr, cidr));
    if (existing !== undefined) existing.value = value;
    else this.routes.push({ cidr, value });
  }

  remove(cidr: Cidr): boolean {
    const i = this.routes.findIndex((r) => sameCidr(r.cidr, cidr));
    if (i < 0) return false;
    this.routes.splice(i, 1);
    return true;
  }

  lookup4(addr: number): T | undefined {
    const bytes = new Uint8Array([addr >>> 24, (addr >>> 16) & 0xff, (addr >>> 8) & 0xff, addr & 0xff]);
    return this.lookup(4, bytes, 0);
  }

  lookup6(buf: Uint8Array, off: number): T | undefined {
    return this.lookup(6, buf, off);
  }

  entries(): RouteEntry<T>[] {
    return this.routes
      .filter((r) => r.cidr.family === 4)
      .concat(this.routes.filter((r) => r.cidr.family === 6))
      .map((r) => ({ cidr: r.cidr, value: r.value }));
  }

  private lookup(family: 4 | 6, buf: Uint8Array, off: number): T | undefined {
    let best: RouteEntry<T> | undefined;
    for (const route of this.routes) {
      if (route.cidr.family !== family) continue;
      if (best !== undefined && best.cidr.prefixLen >= route.cidr.prefixLen) continue;
      if (prefixMatches(route.cidr, buf, off)) best = route;
    }
    return best?.value;
  }
}

function bitAt(bytes: Uint8Array, off: number, bit: number): number {
  return ((bytes[off + (bit >> 3)] ?? 0) >> (7 - (bit & 7))) & 1;
}

function prefixMatches(cidr: Cidr, buf: Uint8Array, off: number): boolean {
  for (let bit = 0; bit < cidr.prefixLen; bit++) {
    if (bitAt(cidr.bytes, 0, bit) !== bitAt(buf, off, bit)) return false;
  }
  return true;
}

function sameCidr(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family || a.prefixLen !== b.prefixLen) return false;
  for (let i = 0; i < a.bytes.length; i++) if (a.bytes[i] !== b.bytes[i]) return false;
  return true;
}
