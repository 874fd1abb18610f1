import { describe, expect, it } from 'vitest';
import { routeTableContract } from '../test/route-table-contract.js';
import { formatAddress } from '../core/cidr.js';
import type { Cidr, IpFamily } from '../core/cidr.js';
import { LinearRouteTable } from './linear-route-table.js';
import type { RouteTable } from './route-table.js';
import { TrieRouteTable } from './trie-route-table.js';

routeTableContract('trie', () => new TrieRouteTable<string>());
routeTableContract('linear', () => new LinearRouteTable<string>());

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(rand: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

function makeCidr(family: IpFamily, bytes: Uint8Array, prefixLen: number): Cidr {
  const masked = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLen - i * 8));
    masked[i] = (bytes[i] ?? 0) & ((0xff00 >> keep) & 0xff);
  }
  return { family, bytes: masked, prefixLen, text: `${formatAddress({ family, bytes: masked })}/${prefixLen}` };
}

/** An address inside `cidr`, host bits random. */
function addressIn(rand: () => number, cidr: Cidr): Uint8Array {
  const out = randomBytes(rand, cidr.bytes.length);
  for (let bit = 0; bit < cidr.prefixLen; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    out[byte] = ((out[byte] ?? 0) & ~mask) | ((cidr.bytes[byte] ?? 0) & mask);
  }
  return out;
}

function toNumber(bytes: Uint8Array): number {
  return (((bytes[0] ?? 0) << 24) | ((bytes[1] ?? 0) << 16) | ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0)) >>> 0;
}

function sortedEntries(table: RouteTable<number>): string[] {
  return table
    .entries()
    .map((e) => `${e.cidr.text}=${e.value}`)
    .sort();
}

describe('trie vs linear, random (differential)', () => {
  it.each([
    [4 as IpFamily, 1, 3000],
    [4 as IpFamily, 2, 500],
    [6 as IpFamily, 3, 3000],
    [6 as IpFamily, 4, 500],
  ])('IPv%i seed %i: %i prefixes, inserts, removals and lookups agree', (family, seed, prefixCount) => {
    const rand = prng(seed);
    const size = family === 4 ? 4 : 16;
    const maxBits = size * 8;
    const trie = new TrieRouteTable<number>();
    const linear = new LinearRouteTable<number>();
    const inserted: Cidr[] = [];
    // A few shared "bases" so prefixes nest and collide, as real pod subnets do.
    const bases = [randomBytes(rand, size), randomBytes(rand, size), randomBytes(rand, size)];

    for (let i = 0; i < prefixCount; i++) {
      const prefixLen = Math.floor(rand() * (maxBits + 1));
      const base = rand() < 0.7 ? addressIn(rand, makeCidr(family, bases[i % 3]!, Math.floor(rand() * maxBits))) : randomBytes(rand, size);
      const cidr = makeCidr(family, base, prefixLen);
      trie.insert(cidr, i);
      linear.insert(cidr, i);
      inserted.push(cidr);
      if (rand() < 0.2) {
        const victim = inserted[Math.floor(rand() * inserted.length)]!;
        expect(trie.remove(victim)).toBe(linear.remove(victim));
      }
    }
    expect(trie.size).toBe(linear.size);
    expect(sortedEntries(trie)).toEqual(sortedEntries(linear));

    const buf = new Uint8Array(size + 5);
    for (let i = 0; i < 20000; i++) {
      const addr = rand() < 0.8 ? addressIn(rand, inserted[Math.floor(rand() * inserted.length)]!) : randomBytes(rand, size);
      if (family === 4) {
        expect(trie.lookup4(toNumber(addr))).toBe(linear.lookup4(toNumber(addr)));
      } else {
        buf.set(addr, 5);
        expect(trie.lookup6(buf, 5)).toBe(linear.lookup6(buf, 5));
      }
    }

    // Remove everything in random order, checking as it shrinks.
    const order = [...inserted].sort(() => rand() - 0.5);
    order.forEach((cidr, i) => {
      expect(trie.remove(cidr)).toBe(linear.remove(cidr));
      if (i % 97 === 0) {
        const addr = addressIn(rand, cidr);
        if (family === 4) expect(trie.lookup4(toNumber(addr))).toBe(linear.lookup4(toNumber(addr)));
        else expect(trie.lookup6(addr, 0)).toBe(linear.lookup6(addr, 0));
      }
    });
    expect(trie.size).toBe(0);
    expect(trie.entries()).toEqual([]);
  });
});
