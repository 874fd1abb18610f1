import { describe, expect, it } from 'vitest';
import { CniCode, CniError } from '../cni-error.js';
import {
  candidateAddresses,
  checkRangeSets,
  formatBigint,
  formatWithPrefix,
  parseBigint,
  parseRange,
  rangeOf,
  rangeSetCapacity,
} from './pod-address-allocator.js';
import type { AddressRange, IpValue, RangeSpec } from './pod-address-allocator.js';

function text(range: AddressRange, value: bigint): string {
  return formatBigint(range.family, value);
}

function parsed(address: string): IpValue {
  const result = parseBigint(address);
  if (result === undefined) throw new Error(`bad address ${address}`);
  return result;
}

/** The first `count` candidates as text (the generator is lazy: count bounds the work). */
function firstCandidates(set: readonly AddressRange[], last: string | undefined, count = Number.MAX_SAFE_INTEGER): string[] {
  const out: string[] = [];
  for (const { range, address } of candidateAddresses(set, last === undefined ? undefined : parsed(last))) {
    if (out.length >= count) break;
    out.push(text(range, address));
  }
  return out;
}

describe('parseRange', () => {
  it.each<[RangeSpec, string, string, string, string | undefined]>([
    [{ subnet: '10.244.1.0/24' }, '10.244.1.1', '10.244.1.254', '10.244.1.1', '10.244.1.255'],
    [{ subnet: '10.244.1.0/24', gateway: '10.244.1.254' }, '10.244.1.1', '10.244.1.254', '10.244.1.254', '10.244.1.255'],
    [{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.100', rangeEnd: '10.244.1.110' }, '10.244.1.100', '10.244.1.110', '10.244.1.1', '10.244.1.255'],
    [{ subnet: '10.0.0.0/30' }, '10.0.0.1', '10.0.0.2', '10.0.0.1', '10.0.0.3'],
    [{ subnet: 'fd00:10:244:1::/64' }, 'fd00:10:244:1::1', 'fd00:10:244:1:ffff:ffff:ffff:ffff', 'fd00:10:244:1::1', undefined],
  ])('%j: start %s, end %s, gateway %s, broadcast %s', (spec, start, end, gateway, broadcast) => {
    const range = parseRange(spec, 'ipam');
    expect(text(range, range.start)).toBe(start);
    expect(text(range, range.end)).toBe(end);
    expect(text(range, range.gateway)).toBe(gateway);
    expect(range.broadcast === undefined ? undefined : text(range, range.broadcast)).toBe(broadcast);
  });

  it.each<[RangeSpec, RegExp]>([
    [{ subnet: '10.244.1.5/24' }, /invalid ipam\.subnet: .*host bits set/],
    [{ subnet: 'banana' }, /invalid ipam\.subnet/],
    [{ subnet: '10.0.0.0/31' }, /too small to allocate pod addresses from \(at most \/30\)/],
    [{ subnet: 'fd00::/127' }, /too small .* \/126/],
    [{ subnet: '10.244.1.0/24', gateway: '10.244.2.1' }, /invalid ipam\.gateway: 10\.244\.2\.1 is not in 10\.244\.1\.0\/24/],
    [{ subnet: '10.244.1.0/24', gateway: '10.244.1.0' }, /network or broadcast/],
    [{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.0' }, /network address .* TUN/],
    [{ subnet: '10.244.1.0/24', rangeEnd: '10.244.1.255' }, /broadcast address/],
    [{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.9', rangeEnd: '10.244.1.8' }, /rangeStart 10\.244\.1\.9 is after rangeEnd 10\.244\.1\.8/],
    [{ subnet: '10.244.1.0/24', rangeStart: 'fd00::5' }, /not in 10\.244\.1\.0\/24/],
  ])('%j is refused: %s', (spec, reason) => {
    let error: unknown;
    try {
      parseRange(spec, 'ipam');
    } catch (err: unknown) {
      error = err;
    }
    expect(error).toBeInstanceOf(CniError);
    expect((error as CniError).code).toBe(CniCode.InvalidConfig);
    expect((error as CniError).message).toMatch(reason);
  });
});

describe('checkRangeSets', () => {
  it('refuses overlaps within and across sets, and mixed families', () => {
    const a = parseRange({ subnet: '10.244.1.0/24', rangeEnd: '10.244.1.100' }, 'r');
    const b = parseRange({ subnet: '10.244.1.0/24', rangeStart: '10.244.1.100' }, 'r');
    const c = parseRange({ subnet: '10.244.1.0/24', rangeStart: '10.244.1.101' }, 'r');
    const v6 = parseRange({ subnet: 'fd00::/64' }, 'r');
    expect(() => checkRangeSets([[a, c], [v6]], 'ipam.ranges')).not.toThrow();
    expect(() => checkRangeSets([[a, b]], 'ipam.ranges')).toThrow(/ipam\.ranges\[0\]\[1\]: 10\.244\.1\.100-10\.244\.1\.254 overlaps ipam\.ranges\[0\]\[0\]/);
    expect(() => checkRangeSets([[a], [b]], 'ipam.ranges')).toThrow(/ipam\.ranges\[1\]\[0\].*overlaps/);
    expect(() => checkRangeSets([[a, v6]], 'ipam.ranges')).toThrow(/mixes IPv6 into an IPv4 range set/);
    expect(() => checkRangeSets([[]], 'ipam.ranges')).toThrow(/at least one range/);
  });
});

describe('candidateAddresses', () => {
  const slash29 = [parseRange({ subnet: '10.0.0.0/29' }, 'r')];

  it.each<[string | undefined, string[]]>([
    // Never .0 (TUN), .1 (gateway) or .7 (broadcast).
    [undefined, ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']],
    ['10.0.0.4', ['10.0.0.5', '10.0.0.6', '10.0.0.2', '10.0.0.3', '10.0.0.4']],
    ['10.0.0.6', ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']],
    // A hint outside the set (an old subnet) starts from the beginning.
    ['10.9.9.9', ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']],
  ])('/29 after %s: %j', (last, expected) => {
    expect(firstCandidates(slash29, last)).toEqual(expected);
    expect(rangeSetCapacity(slash29)).toBe(BigInt(expected.length));
  });

  it('walks several ranges in order, wrapping from the last to the first, each address once', () => {
    const set = [
      parseRange({ subnet: '10.1.0.0/24', rangeStart: '10.1.0.10', rangeEnd: '10.1.0.12' }, 'r'),
      parseRange({ subnet: '10.2.0.0/24', rangeStart: '10.2.0.1', rangeEnd: '10.2.0.3' }, 'r'),
    ];
    expect(firstCandidates(set, '10.1.0.11')).toEqual(['10.1.0.12', '10.2.0.2', '10.2.0.3', '10.1.0.10', '10.1.0.11']);
    expect(firstCandidates(set, '10.2.0.3')).toEqual(['10.1.0.10', '10.1.0.11', '10.1.0.12', '10.2.0.2', '10.2.0.3']);
    expect(rangeSetCapacity(set)).toBe(5n);
  });

  it('yields nothing when the only address is the gateway', () => {
    const set = [parseRange({ subnet: '10.0.0.0/24', rangeStart: '10.0.0.1', rangeEnd: '10.0.0.1' }, 'r')];
    expect(firstCandidates(set, undefined)).toEqual([]);
    expect(rangeSetCapacity(set)).toBe(0n);
  });

  it('walks a /64 lazily, from ::2, wrapping past the last address', () => {
    const set = [parseRange({ subnet: 'fd00:10:244:1::/64' }, 'r')];
    expect(firstCandidates(set, undefined, 3)).toEqual(['fd00:10:244:1::2', 'fd00:10:244:1::3', 'fd00:10:244:1::4']);
    expect(firstCandidates(set, 'fd00:10:244:1:ffff:ffff:ffff:fffe', 3)).toEqual([
      'fd00:10:244:1:ffff:ffff:ffff:ffff',
      'fd00:10:244:1::2',
      'fd00:10:244:1::3',
    ]);
    expect(rangeSetCapacity(set)).toBe((1n << 64n) - 2n);
  });

  it('keeps families apart: an IPv4 hint or address is no position in an IPv6 range with small numbers', () => {
    const set = [parseRange({ subnet: '::/96' }, 'r')];
    // 0.0.0.9 and ::9 are both the number 9.
    expect(firstCandidates(set, '0.0.0.9', 2)).toEqual(['::2', '::3']);
    expect(firstCandidates(set, '::9', 2)).toEqual(['::a', '::b']);
    expect(rangeOf(set, parsed('0.0.0.9'))).toBeUndefined();
    expect(rangeOf(set, parsed('::9'))).toBe(set[0]);
    expect(rangeOf(set, parsed('::1'))).toBeUndefined();
  });

  it('formats results with the prefix', () => {
    const [range] = slash29;
    if (range === undefined) throw new Error('no range');
    expect(formatWithPrefix(range, parsed('10.0.0.2').value)).toBe('10.0.0.2/29');
  });
});
