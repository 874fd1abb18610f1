import { describe, expect, it } from 'vitest';
import { parseCidr } from '../core/cidr.js';
import { chooseSubnet, SubnetLengthError, SubnetsExhaustedError } from './subnet-allocator.js';
import { nthSubnet, overlappingIndices, subnetCount } from './subnet-index.js';

const cidrs = (texts: readonly string[]) => texts.map(parseCidr);

describe('chooseSubnet', () => {
  it.each([
    // [case, cluster, length, taken, preferred, want]
    ['empty v4 cluster: skips subnet 0', '10.244.0.0/16', 24, [], undefined, '10.244.1.0/24'],
    ['lowest free after taken ones', '10.244.0.0/16', 24, ['10.244.1.0/24', '10.244.2.0/24'], undefined, '10.244.3.0/24'],
    ['fills a hole first', '10.244.0.0/16', 24, ['10.244.1.0/24', '10.244.3.0/24'], undefined, '10.244.2.0/24'],
    ['preferred when free', '10.244.0.0/16', 24, ['10.244.1.0/24'], '10.244.7.0/24', '10.244.7.0/24'],
    ['preferred taken: lowest free', '10.244.0.0/16', 24, ['10.244.1.0/24', '10.244.7.0/24'], '10.244.7.0/24', '10.244.2.0/24'],
    ['preferred outside the cluster: ignored', '10.244.0.0/16', 24, [], '10.99.7.0/24', '10.244.1.0/24'],
    ['preferred of another length: ignored', '10.244.0.0/16', 24, [], '10.244.7.0/25', '10.244.1.0/24'],
    ['preferred subnet 0: ignored', '10.244.0.0/16', 24, [], '10.244.0.0/24', '10.244.1.0/24'],
    ['preferred overlapped by a shorter taken prefix', '10.244.0.0/16', 24, ['10.244.4.0/22'], '10.244.5.0/24', '10.244.1.0/24'],
    ['a taken /22 covers four subnets', '10.244.0.0/16', 24, ['10.244.0.0/22'], undefined, '10.244.4.0/24'],
    ['a taken /26 blocks its whole /24', '10.244.0.0/16', 24, ['10.244.1.64/26'], undefined, '10.244.2.0/24'],
    ['taken outside the cluster and other family ignored', '10.244.0.0/16', 24, ['10.245.1.0/24', 'fd00::/64'], undefined, '10.244.1.0/24'],
    ['unsorted, duplicate and overlapping taken', '10.244.0.0/16', 24, ['10.244.3.0/24', '10.244.1.0/24', '10.244.2.0/23', '10.244.1.0/24'], undefined, '10.244.4.0/24'],
    ['v4 /26 subnets', '10.244.0.0/24', 26, ['10.244.0.64/26'], undefined, '10.244.0.128/26'],
    ['v6 /64 in a /48', 'fd00:10:244::/48', 64, [], undefined, 'fd00:10:244:1::/64'],
    ['v6 lowest free', 'fd00:10:244::/48', 64, ['fd00:10:244:1::/64', 'fd00:10:244:2::/64'], undefined, 'fd00:10:244:3::/64'],
    ['v6 preferred', 'fd00:10:244::/48', 64, [], 'fd00:10:244:ff::/64', 'fd00:10:244:ff::/64'],
    ['v6 /80 beyond 32 bits of index', 'fd00::/16', 80, [], 'fd00:ffff:ffff:ffff:ffff::/80', 'fd00:ffff:ffff:ffff:ffff::/80'],
    ['v6 /63 holds one usable /64', 'fd00:10:244::/63', 64, [], undefined, 'fd00:10:244:1::/64'],
  ])('%s', (_name, cluster, length, taken, preferred, want) => {
    const got = chooseSubnet({
      cluster: parseCidr(cluster),
      subnetLength: length,
      taken: cidrs(taken),
      preferred: preferred === undefined ? undefined : parseCidr(preferred),
    });
    expect(got.text).toBe(want);
    expect(got).toEqual(parseCidr(want));
  });

  it.each([
    ['every subnet but 0 taken', '10.244.0.0/30', 32, ['10.244.0.1/32', '10.244.0.2/32', '10.244.0.3/32']],
    ['the cluster itself taken', '10.244.0.0/16', 24, ['10.0.0.0/8']],
    ['only subnet 0 exists', '10.244.1.0/24', 24, []],
    ['v6 /63 with its one usable /64 taken', 'fd00:10:244::/63', 64, ['fd00:10:244:1::/64']],
  ])('exhaustion is a typed error: %s', (_name, cluster, length, taken) => {
    let caught: unknown;
    try {
      chooseSubnet({ cluster: parseCidr(cluster), subnetLength: length, taken: cidrs(taken) });
    } catch (err: unknown) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SubnetsExhaustedError);
    expect((caught as SubnetsExhaustedError).code).toBe('ERR_PODTUN_SUBNETS_EXHAUSTED');
    expect((caught as Error).message).toContain(cluster);
  });

  it.each([
    ['shorter than the cluster', '10.244.0.0/16', 15],
    ['longer than an address', '10.244.0.0/16', 33],
    ['v6 longer than an address', 'fd00::/48', 129],
    ['not an integer', '10.244.0.0/16', 24.5],
  ])('a bad subnet length is a typed error: %s', (_name, cluster, length) => {
    expect(() => chooseSubnet({ cluster: parseCidr(cluster), subnetLength: length, taken: [] })).toThrow(SubnetLengthError);
  });

  it('spread picks among the lowest free subnets, skipping taken ones', () => {
    const cluster = parseCidr('10.244.0.0/16');
    const taken = cidrs(['10.244.1.0/24', '10.244.3.0/24']);
    const picks = [0, 0.2, 0.4, 0.6, 0.8, 0.99].map(
      (r) => chooseSubnet({ cluster, subnetLength: 24, taken, spread: 4, random: () => r }).text,
    );
    expect(picks).toEqual(['10.244.2.0/24', '10.244.2.0/24', '10.244.4.0/24', '10.244.5.0/24', '10.244.6.0/24', '10.244.6.0/24']);
  });

  it('spread larger than what is free picks among what is free', () => {
    const cluster = parseCidr('10.244.0.0/30');
    const got = new Set<string>();
    for (let i = 0; i < 50; i++) {
      got.add(chooseSubnet({ cluster, subnetLength: 32, taken: cidrs(['10.244.0.2/32']), spread: 16 }).text);
    }
    expect([...got].sort()).toEqual(['10.244.0.1/32', '10.244.0.3/32']);
  });

  it('random picks with spread never return a taken subnet', () => {
    const cluster = parseCidr('10.244.0.0/20');
    const taken = cidrs(['10.244.1.0/24', '10.244.2.0/24', '10.244.5.0/24', '10.244.8.0/22']);
    for (let i = 0; i < 200; i++) {
      const got = chooseSubnet({ cluster, subnetLength: 24, taken, spread: 16 });
      const blocked = ['10.244.0.0/24', '10.244.1.0/24', '10.244.2.0/24', '10.244.5.0/24', '10.244.8.0/24', '10.244.9.0/24', '10.244.10.0/24', '10.244.11.0/24'];
      expect(blocked).not.toContain(got.text);
    }
  });
});

describe('subnet-index', () => {
  it.each([
    ['10.244.0.0/16', 24, 0n, '10.244.0.0/24'],
    ['10.244.0.0/16', 24, 255n, '10.244.255.0/24'],
    ['10.0.0.0/8', 32, 0xffffffn, '10.255.255.255/32'],
    ['fd00:10:244::/48', 64, 0xabcdn, 'fd00:10:244:abcd::/64'],
    ['::/0', 128, (1n << 128n) - 1n, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128'],
  ])('nthSubnet(%s, /%i, %i) = %s', (cluster, length, n, want) => {
    expect(nthSubnet(parseCidr(cluster), length, n)).toEqual(parseCidr(want));
  });

  it.each([
    ['10.244.0.0/16', 24, '10.244.3.0/24', [3n, 3n]],
    ['10.244.0.0/16', 24, '10.244.3.128/25', [3n, 3n]],
    ['10.244.0.0/16', 24, '10.244.4.0/22', [4n, 7n]],
    ['10.244.0.0/16', 24, '0.0.0.0/0', [0n, 255n]],
    ['10.244.0.0/16', 24, '10.245.0.0/24', undefined],
    ['10.244.0.0/16', 24, 'fd00::/64', undefined],
    ['fd00::/48', 64, 'fd00:0:0:10::/60', [16n, 31n]],
  ])('overlappingIndices(%s, /%i, %s)', (cluster, length, other, want) => {
    const got = overlappingIndices(parseCidr(cluster), length, parseCidr(other));
    expect(got === undefined ? undefined : [got.first, got.last]).toEqual(want);
  });

  it('subnetCount', () => {
    expect(subnetCount(parseCidr('10.244.0.0/16'), 24)).toBe(256n);
    expect(subnetCount(parseCidr('fd00::/16'), 112)).toBe(1n << 96n);
  });
});
