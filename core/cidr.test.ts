import { describe, expect, it } from 'vitest';
import { addressInCidr, cidrContains, cidrsOverlap, formatAddress, parseAddress, parseCidr } from './cidr.js';

describe('parseCidr', () => {
  it.each([
    ['10.244.1.0/24', '10.244.1.0/24', 4, 24],
    ['0.0.0.0/0', '0.0.0.0/0', 4, 0],
    ['fd00:10:244:1::/64', 'fd00:10:244:1::/64', 6, 64],
    ['FD00:0010:0244:0001:0000::/64', 'fd00:10:244:1::/64', 6, 64],
  ])('accepts %s', (text, canonical, family, len) => {
    const c = parseCidr(text);
    expect(c.text).toBe(canonical);
    expect(c.family).toBe(family);
    expect(c.prefixLen).toBe(len);
  });

  it.each([
    ['10.244.1.5/24', /host bits set/],
    ['10.244.1.0', /no prefix length/],
    ['10.244.1.0/33', /bad prefix length/],
    ['10.244.1.0/x', /bad prefix length/],
    ['fd00::/129', /bad prefix length/],
    ['300.1.1.0/24', /not an IPv4 or IPv6 address/],
    ['fe80::1%eth0/64', /not an IPv4 or IPv6 address/],
  ])('refuses %s with the reason', (text, reason) => {
    expect(() => parseCidr(text)).toThrow(reason);
  });
});

describe('CIDR relations', () => {
  it('containment and overlap', () => {
    const cluster = parseCidr('10.244.0.0/16');
    expect(cidrContains(cluster, parseCidr('10.244.7.0/24'))).toBe(true);
    expect(cidrContains(cluster, parseCidr('10.245.0.0/24'))).toBe(false);
    expect(cidrContains(parseCidr('10.244.7.0/24'), cluster)).toBe(false);
    expect(cidrsOverlap(parseCidr('10.244.7.0/24'), cluster)).toBe(true);
    expect(cidrsOverlap(parseCidr('10.244.7.0/24'), parseCidr('10.244.8.0/24'))).toBe(false);
    expect(cidrsOverlap(parseCidr('10.244.7.0/24'), parseCidr('fd00::/8'))).toBe(false);
  });

  it('addresses inside a CIDR, with carry', () => {
    expect(formatAddress(addressInCidr(parseCidr('10.244.1.0/24'), 1))).toBe('10.244.1.1');
    expect(formatAddress(addressInCidr(parseCidr('10.244.0.0/16'), 257))).toBe('10.244.1.1');
    expect(formatAddress(addressInCidr(parseCidr('fd00:10:244:1::/64'), 0x10001))).toBe('fd00:10:244:1::1:1');
  });

  it('round-trips addresses', () => {
    for (const a of ['192.168.77.3', '::1', 'fd77::2', '2001:db8::ff00:42:8329']) {
      expect(formatAddress(parseAddress(a))).toBe(a);
    }
  });
});
