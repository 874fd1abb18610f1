import { describe, expect, it } from 'vitest';
import { ipv4ToNumber, parseAddress, parseCidr } from '../core/cidr.js';
import { LocalSubnets } from './local-subnets.js';

describe('LocalSubnets', () => {
  const local = new LocalSubnets();
  local.set(['10.244.1.0/24', 'fd00:10:244:1::/64', 'fd00:abcd:8000::/33'].map(parseCidr));

  it.each<[string, boolean]>([
    ['10.244.1.0', true],
    ['10.244.1.255', true],
    ['10.244.2.1', false],
    ['10.245.1.1', false],
    ['fd00:10:244:1::5', true],
    ['fd00:10:244:1:ffff:ffff:ffff:ffff', true],
    ['fd00:10:244:2::5', false],
    ['fd00:abcd:8000::1', true],
    ['fd00:abcd:ffff::1', true],
    ['fd00:abcd:7fff::1', false],
  ])('%s -> %s', (text, want) => {
    const address = parseAddress(text);
    if (address.family === 4) expect(local.contains4(ipv4ToNumber(address.bytes))).toBe(want);
    else {
      // At an offset inside a larger buffer, as the pipeline reads it.
      const buf = new Uint8Array(40);
      buf.set(address.bytes, 24);
      expect(local.contains6(buf, 24)).toBe(want);
    }
  });

  it('holds nothing until set, and follows a new set', () => {
    const fresh = new LocalSubnets();
    const addr = ipv4ToNumber(parseAddress('10.244.1.9').bytes);
    expect(fresh.contains4(addr)).toBe(false);
    fresh.set([parseCidr('10.244.1.0/24')]);
    expect(fresh.contains4(addr)).toBe(true);
    fresh.set([parseCidr('0.0.0.0/0')]);
    expect(fresh.contains4(0xffffffff)).toBe(true);
  });
});
