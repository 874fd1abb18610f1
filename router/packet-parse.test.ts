import { describe, expect, it } from 'vitest';
import {
  icmpv4,
  ipv4,
  ipv4WithOptions,
  ipv6,
  ipv6ExtHeader,
  ipv6FragmentHeader,
  ipv6Icmp,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  tcp,
  udp,
} from '../test/packet-fixtures.js';
import { ipv4ToNumber, parseAddress } from '../core/cidr.js';
import { DropReason } from '../core/drop-reason.js';
import { parseIpPacket } from './ip-parse.js';
import { IPV6_MAX_EXT_HEADERS } from './ipv6-header.js';
import { PARSE_OK, PacketView } from './packet-view.js';

const view = new PacketView();

function parse(packet: Buffer, lead = 3, captured = packet.length): number {
  const buf = Buffer.alloc(lead + packet.length + 4, 0xee);
  packet.copy(buf, lead);
  return parseIpPacket(buf, lead, captured, view);
}

describe('IPv4 parse: good packets', () => {
  it('UDP: addresses as numbers, lengths, TTL, L4', () => {
    const p = ipv4({ src: '10.244.1.5', dst: '10.244.2.9', ttl: 17, payload: udp(1, 2, Buffer.alloc(30)) });
    expect(parse(p)).toBe(PARSE_OK);
    expect(view).toMatchObject({
      version: 4,
      ipOff: 3,
      headerLen: 20,
      totalLen: 58,
      protocol: PROTO_UDP,
      l4Off: 23,
      l4HeaderLen: 8,
      ttl: 17,
      src4: ipv4ToNumber(parseAddress('10.244.1.5').bytes),
      dst4: ipv4ToNumber(parseAddress('10.244.2.9').bytes),
      srcOff: 15,
      dstOff: 19,
      isFragment: false,
      dontFragment: true,
      icmpType: -1,
    });
  });

  it('addresses above 2^31 stay unsigned', () => {
    expect(parse(ipv4({ src: '250.1.2.3', dst: '255.255.255.255' }))).toBe(PARSE_OK);
    expect(view.src4).toBe(0xfa010203);
    expect(view.dst4).toBe(0xffffffff);
  });

  it('TCP with options: header length from the data offset', () => {
    expect(parse(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: PROTO_TCP, payload: tcp(1, 2, Buffer.alloc(100), 12) }))).toBe(PARSE_OK);
    expect(view.l4HeaderLen).toBe(32);
  });

  it('IHL > 5 (options): upper layer after the options', () => {
    const p = ipv4WithOptions({ src: '10.0.0.1', dst: '10.0.0.2', protocol: PROTO_ICMP, payload: icmpv4(8) }, 8);
    expect(parse(p)).toBe(PARSE_OK);
    expect(view.headerLen).toBe(28);
    expect(view.icmpType).toBe(8);
  });

  it('ICMP type read; trailing padding beyond total length allowed', () => {
    const p = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: PROTO_ICMP, payload: icmpv4(11) });
    expect(parse(Buffer.concat([p, Buffer.alloc(6)]))).toBe(PARSE_OK);
    expect(view.icmpType).toBe(11);
    expect(view.totalLen).toBe(p.length);
    expect(view.capturedLen).toBe(p.length + 6);
  });

  it.each([
    ['first fragment', 0b001, 0, true, 0, 8],
    ['middle fragment', 0b001, 10, true, 80, -1],
    ['last fragment', 0b000, 10, true, 80, -1],
  ])('%s: fragment info, ICMP type only in the first', (_name, flags, fragmentOffset, isFragment, offsetBytes, icmpType) => {
    const p = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: PROTO_ICMP, payload: icmpv4(8), flags, fragmentOffset });
    expect(parse(p)).toBe(PARSE_OK);
    expect(view.isFragment).toBe(isFragment);
    expect(view.fragOffsetBytes).toBe(offsetBytes);
    expect(view.icmpType).toBe(icmpType);
  });
});

describe('IPv4 parse: malformed', () => {
  const good = ipv4({ src: '10.0.0.1', dst: '10.0.0.2' });
  const mutate = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good);
    f(b);
    return b;
  };
  it.each([
    ['empty', Buffer.alloc(0), 0],
    ['shorter than 20 bytes', good.subarray(0, 19), 19],
    ['bad version', mutate((b) => (b[0] = 0x55)), good.length],
    ['IHL < 5', mutate((b) => (b[0] = 0x44)), good.length],
    ['IHL beyond captured', mutate((b) => (b[0] = 0x4f)), 40],
    ['total length < header', mutate((b) => b.writeUInt16BE(19, 2)), good.length],
    ['total length > captured', mutate((b) => b.writeUInt16BE(good.length + 1, 2)), good.length],
    ['captured shorter than total length', good, good.length - 1],
  ])('%s', (_name, packet, captured) => {
    expect(parse(packet, 3, captured)).toBe(DropReason.Malformed);
  });
});

describe('IPv6 parse: good packets', () => {
  const src = 'fd00:10:244:1::5';
  const dst = 'fd00:10:244:2::9';

  it('UDP: address offsets, lengths, hop limit', () => {
    const p = ipv6({ src, dst, hopLimit: 9, payload: udp(1, 2, Buffer.alloc(10)) });
    expect(parse(p)).toBe(PARSE_OK);
    expect(view).toMatchObject({ version: 6, ipOff: 3, headerLen: 40, totalLen: 58, protocol: PROTO_UDP, l4Off: 43, l4HeaderLen: 8, ttl: 9, srcOff: 11, dstOff: 27, isFragment: false });
  });

  it('walks hop-by-hop, routing, dest options to the upper layer', () => {
    const payload = Buffer.concat([ipv6ExtHeader(43, 1), ipv6ExtHeader(60, 2), ipv6ExtHeader(PROTO_TCP, 1), tcp(1, 2, Buffer.alloc(4))]);
    expect(parse(ipv6({ src, dst, nextHeader: 0, payload }))).toBe(PARSE_OK);
    expect(view.protocol).toBe(PROTO_TCP);
    expect(view.l4Off).toBe(3 + 40 + 8 + 16 + 8);
    expect(view.l4HeaderLen).toBe(20);
  });

  it('first fragment: upper layer read, fragment info set', () => {
    const payload = Buffer.concat([ipv6FragmentHeader(58, 0, true), Buffer.from([128, 0, 0, 0, 0, 0, 0, 0])]);
    expect(parse(ipv6({ src, dst, nextHeader: 44, payload }))).toBe(PARSE_OK);
    expect(view).toMatchObject({ protocol: 58, isFragment: true, moreFragments: true, fragOffsetBytes: 0, icmpType: 128 });
  });

  it('later fragment: stops at the fragment header, no ICMP type', () => {
    const payload = Buffer.concat([ipv6FragmentHeader(58, 1232, false), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0])]);
    expect(parse(ipv6({ src, dst, nextHeader: 44, payload }))).toBe(PARSE_OK);
    expect(view).toMatchObject({ protocol: 58, isFragment: true, moreFragments: false, fragOffsetBytes: 1232, icmpType: -1 });
  });

  it('ICMPv6 type read', () => {
    expect(parse(ipv6Icmp(src, dst, 1))).toBe(PARSE_OK);
    expect(view.icmpType).toBe(1);
  });

  it('no next header (59), empty payload', () => {
    expect(parse(ipv6({ src, dst, nextHeader: 59, payload: Buffer.alloc(0) }))).toBe(PARSE_OK);
    expect(view.totalLen).toBe(40);
  });
});

describe('IPv6 parse: malformed', () => {
  const src = 'fd00::1';
  const dst = 'fd00::2';
  const good = ipv6({ src, dst });
  const tooMany = Buffer.concat([
    ...Array.from({ length: IPV6_MAX_EXT_HEADERS + 1 }, () => ipv6ExtHeader(60, 1)),
    udp(1, 2, Buffer.alloc(0)),
  ]);
  it.each([
    ['shorter than 40 bytes', good.subarray(0, 39), 39],
    ['bad version', Buffer.concat([Buffer.from([0x40]), good.subarray(1)]), good.length],
    ['payload length > captured', good, good.length - 1],
    ['extension header past the payload', ipv6({ src, dst, nextHeader: 0, payload: ipv6ExtHeader(17, 3).subarray(0, 16) }), 56],
    ['extension header shorter than 8 bytes', ipv6({ src, dst, nextHeader: 60, payload: Buffer.alloc(4) }), 44],
    ['fragment header truncated', ipv6({ src, dst, nextHeader: 44, payload: Buffer.alloc(6) }), 46],
    ['too many extension headers', ipv6({ src, dst, nextHeader: 60, payload: tooMany }), 40 + tooMany.length],
  ])('%s', (_name, packet, captured) => {
    expect(parse(packet, 3, captured)).toBe(DropReason.Malformed);
  });

  it('version 5 or 0 is refused by the dispatcher', () => {
    expect(parse(Buffer.from([0x50, 0, 0, 0]))).toBe(DropReason.Malformed);
    expect(parse(Buffer.alloc(60))).toBe(DropReason.Malformed);
  });
});
