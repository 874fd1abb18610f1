import { describe, expect, it } from 'vitest';
import { internetChecksum, updateChecksum16 } from './checksum.js';
import { decrementIpv4Ttl } from './ipv4-header.js';

describe('internetChecksum', () => {
  it('matches the RFC 1071 example and verifies to zero', () => {
    const data = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    expect(internetChecksum(data, 0, data.length)).toBe(~0xddf2 & 0xffff);
  });

  it('pads an odd trailing byte with zero', () => {
    expect(internetChecksum(Uint8Array.from([0x12, 0x34, 0x56]), 0, 3)).toBe(~(0x1234 + 0x5600) & 0xffff);
  });

  it('a known IPv4 header (ip-packet test fixture) verifies', () => {
    const header = Buffer.from('4500004000004000400626510a16001e0a16001e', 'hex');
    expect(internetChecksum(header, 0, 20)).toBe(0);
  });
});

describe('RFC 1624 incremental update (TTL decrement)', () => {
  it('agrees with a full recompute on random headers and every TTL', () => {
    let seed = 7;
    const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) & 0xff;
    for (let n = 0; n < 5000; n++) {
      const header = new Uint8Array(20);
      for (let i = 0; i < 20; i++) header[i] = rand();
      header[0] = 0x45;
      header[8] = 2 + (n % 254);
      header[10] = 0;
      header[11] = 0;
      const full = internetChecksum(header, 0, 20);
      header[10] = full >> 8;
      header[11] = full & 0xff;
      decrementIpv4Ttl(header, 0);
      expect(internetChecksum(header, 0, 20)).toBe(0);
      const patched = (header[10]! << 8) | header[11]!;
      header[10] = 0;
      header[11] = 0;
      expect(patched).toBe(internetChecksum(header, 0, 20));
    }
  });

  it('updates one word', () => {
    const data = Uint8Array.from([0x45, 0x00, 0x40, 0x06]);
    const before = internetChecksum(data, 0, 4);
    data[2] = 0x3f;
    expect(updateChecksum16(before, 0x4006, 0x3f06)).toBe(internetChecksum(data, 0, 4));
  });
});
