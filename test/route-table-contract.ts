/**
 * The RouteTable contract, run against every implementation (trie, linear). Call inside a test
 * file: `routeTableContract('trie', () => new TrieRouteTable<string>())`.
 */
import { describe, expect, it } from 'vitest';
import { ipv4ToNumber, parseAddress, parseCidr } from '../core/cidr.js';
import type { RouteTable } from '../router/route-table.js';

function v4(text: string): number {
  return ipv4ToNumber(parseAddress(text).bytes);
}

function v6(text: string): Uint8Array {
  return parseAddress(text).bytes;
}

export function routeTableContract(name: string, create: () => RouteTable<string>): void {
  describe(`RouteTable contract: ${name}`, () => {
    const routes: [string, string][] = [
      ['10.244.0.0/16', 'cluster'],
      ['10.244.1.0/24', 'node-a'],
      ['10.244.2.0/24', 'node-b'],
      ['10.244.2.128/25', 'node-b-half'],
      ['10.244.2.7/32', 'host'],
      ['0.0.0.0/0', 'default4'],
      ['fd00:10:244::/48', 'cluster6'],
      ['fd00:10:244:1::/64', 'node-a6'],
      ['fd00:10:244:2::/64', 'node-b6'],
      ['fd00:10:244:2::7/128', 'host6'],
      ['fd00:10:244:2:8000::/65', 'node-b6-half'],
    ];

    function filled(): RouteTable<string> {
      const table = create();
      for (const [cidr, value] of routes) table.insert(parseCidr(cidr), value);
      return table;
    }

    it.each([
      ['10.244.1.9', 'node-a'],
      ['10.244.2.9', 'node-b'],
      ['10.244.2.200', 'node-b-half'],
      ['10.244.2.7', 'host'],
      ['10.244.3.1', 'cluster'],
      ['192.168.1.1', 'default4'],
      ['0.0.0.0', 'default4'],
      ['255.255.255.255', 'default4'],
    ])('IPv4 %s -> %s (longest prefix)', (addr, want) => {
      expect(filled().lookup4(v4(addr))).toBe(want);
    });

    it.each([
      ['fd00:10:244:1::9', 'node-a6'],
      ['fd00:10:244:2::9', 'node-b6'],
      ['fd00:10:244:2::7', 'host6'],
      ['fd00:10:244:2:8000::1', 'node-b6-half'],
      ['fd00:10:244:3::1', 'cluster6'],
      ['fd00:10:245::1', undefined],
      ['::', undefined],
    ])('IPv6 %s -> %s (longest prefix)', (addr, want) => {
      expect(filled().lookup6(v6(addr), 0)).toBe(want);
    });

    it('reads IPv6 addresses at an offset inside a larger buffer', () => {
      const buf = new Uint8Array(64);
      buf.set(v6('fd00:10:244:2::9'), 24);
      expect(filled().lookup6(buf, 24)).toBe('node-b6');
    });

    it('an empty table finds nothing', () => {
      const table = create();
      expect(table.lookup4(v4('10.0.0.1'))).toBeUndefined();
      expect(table.lookup6(v6('fd00::1'), 0)).toBeUndefined();
      expect(table.size).toBe(0);
      expect(table.entries()).toEqual([]);
    });

    it('insert of the same CIDR replaces the value', () => {
      const table = filled();
      table.insert(parseCidr('10.244.1.0/24'), 'node-a2');
      expect(table.lookup4(v4('10.244.1.1'))).toBe('node-a2');
      expect(table.size).toBe(routes.length);
    });

    it('remove takes exactly that CIDR; lookups fall back to the next shorter prefix', () => {
      const table = filled();
      expect(table.remove(parseCidr('10.244.2.0/24'))).toBe(true);
      expect(table.lookup4(v4('10.244.2.9'))).toBe('cluster');
      expect(table.lookup4(v4('10.244.2.200'))).toBe('node-b-half');
      expect(table.lookup4(v4('10.244.2.7'))).toBe('host');
      expect(table.remove(parseCidr('10.244.2.0/24'))).toBe(false);
      expect(table.remove(parseCidr('10.244.9.0/24'))).toBe(false);
      expect(table.remove(parseCidr('fd00:10:244:2::/64'))).toBe(true);
      expect(table.lookup6(v6('fd00:10:244:2::9'), 0)).toBe('cluster6');
      expect(table.size).toBe(routes.length - 2);
    });

    it('removing everything leaves an empty table', () => {
      const table = filled();
      for (const [cidr] of routes) expect(table.remove(parseCidr(cidr))).toBe(true);
      expect(table.size).toBe(0);
      expect(table.entries()).toEqual([]);
      expect(table.lookup4(v4('10.244.1.1'))).toBeUndefined();
    });

    it('entries lists every route once', () => {
      const got = filled()
        .entries()
        .map((e) => [e.cidr.text, e.value])
        .sort();
      expect(got).toEqual([...routes].sort());
    });

    it('IPv4 and IPv6 do not see each other', () => {
      const table = create();
      table.insert(parseCidr('0.0.0.0/0'), 'v4');
      expect(table.lookup6(v6('::'), 0)).toBeUndefined();
      table.insert(parseCidr('::/0'), 'v6');
      expect(table.lookup4(0)).toBe('v4');
      expect(table.lookup6(v6('::1'), 0)).toBe('v6');
    });
  });
}
