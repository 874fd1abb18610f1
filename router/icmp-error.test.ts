import ipPacket from 'ip-packet';
import { describe, expect, it } from 'vitest';
import {
  icmpv4,
  icmpv6Checksum,
  ipv4,
  ipv6,
  ipv6FragmentHeader,
  ipv6Icmp,
  PROTO_ICMP,
  PROTO_TCP,
  tcp,
  udp,
} from '../test/packet-fixtures.js';
import { ipv4ToNumber, parseAddress } from '../core/cidr.js';
import { internetChecksum } from './checksum.js';
import { IcmpErrorKind, IcmpErrorWriter } from './icmp-error.js';
import { parseIpPacket } from './ip-parse.js';
import type { PacketBatch } from '../core/packet-batch.js';
import type { PacketDevice } from '../core/packet-device.js';
import { PARSE_OK, PacketView } from './packet-view.js';

const TUN4 = '10.244.1.0';
const TUN6 = 'fd00:10:244:1::';

function writer(nowMs: () => number = () => 0, burst = 100): IcmpErrorWriter {
  return new IcmpErrorWriter({
    sourceV4: ipv4ToNumber(parseAddress(TUN4).bytes),
    sourceV6: parseAddress(TUN6).bytes,
    ratePerSec: 100,
    burst,
    maxPerBatch: 8,
    nowMs,
  });
}

/** Parses `packet` and asks the writer for an error; returns the built error or undefined. */
function errorFor(w: IcmpErrorWriter, packet: Buffer, kind: IcmpErrorKind, mtu = 0): Buffer | undefined {
  const view = new PacketView();
  expect(parseIpPacket(packet, 0, packet.length, view)).toBe(PARSE_OK);
  const before = w.batch.count;
  if (!w.add(packet, view, kind, mtu)) return undefined;
  const slot = w.batch.count - 1;
  expect(slot).toBe(before);
  const off = w.batch.offs[2 * slot] ?? 0;
  return Buffer.from(w.batch.buf.subarray(off, off + (w.batch.offs[2 * slot + 1] ?? 0)));
}

function formatV6(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

describe('ICMPv4 errors', () => {
  const original = ipv4({ src: '10.244.1.5', dst: '10.244.9.9', protocol: PROTO_TCP, ttl: 1, payload: tcp(40000, 80, Buffer.alloc(1400, 0x61)) });

  it.each([
    ['no route', IcmpErrorKind.NoRoute, 0, 3, 0, 0],
    ['time exceeded', IcmpErrorKind.TimeExceeded, 0, 11, 0, 0],
    ['frag needed with next-hop MTU', IcmpErrorKind.TooBig, 1400, 3, 4, 1400],
  ])('%s: type, code, MTU, checksums, quote up to 576 bytes', (_name, kind, mtu, type, code, mtuField) => {
    const err = errorFor(writer(), original, kind, mtu);
    expect(err).toBeDefined();
    const e = err as Buffer;
    const decoded = ipPacket.decode({ start: 0, end: e.length, buffer: e });
    expect(decoded.sourceIp).toBe(TUN4);
    expect(decoded.destinationIp).toBe('10.244.1.5');
    expect(decoded.protocol).toBe(PROTO_ICMP);
    expect(decoded.length).toBe(576);
    expect(internetChecksum(e, 0, 20)).toBe(0);
    const icmp = decoded.data;
    expect(internetChecksum(icmp, 0, icmp.length)).toBe(0);
    expect(icmp[0]).toBe(type);
    expect(icmp[1]).toBe(code);
    expect(icmp.readUInt16BE(6)).toBe(mtuField);
    // The original header and the start of its payload, as received.
    expect(icmp.subarray(8)).toEqual(original.subarray(0, 576 - 28));
  });

  it('a small packet is quoted whole', () => {
    const small = ipv4({ src: '10.244.1.5', dst: '10.244.9.9', payload: udp(1, 2, Buffer.from('hi')) });
    const e = errorFor(writer(), small, IcmpErrorKind.NoRoute) as Buffer;
    expect(e.length).toBe(28 + small.length);
    expect(e.subarray(28)).toEqual(small);
  });

  it.each([
    ['an ICMP dest unreachable', ipv4({ src: '10.244.1.5', dst: '10.244.9.9', protocol: PROTO_ICMP, payload: icmpv4(3, 1) })],
    ['an ICMP time exceeded', ipv4({ src: '10.244.1.5', dst: '10.244.9.9', protocol: PROTO_ICMP, payload: icmpv4(11) })],
    ['an ICMP redirect', ipv4({ src: '10.244.1.5', dst: '10.244.9.9', protocol: PROTO_ICMP, payload: icmpv4(5) })],
    ['an ICMP source quench', ipv4({ src: '10.244.1.5', dst: '10.244.9.9', protocol: PROTO_ICMP, payload: icmpv4(4) })],
    ['an ICMP parameter problem', ipv4({ src: '10.244.1.5', dst: '10.244.9.9', protocol: PROTO_ICMP, payload: icmpv4(12) })],
    ['a non-first fragment', ipv4({ src: '10.244.1.5', dst: '10.244.9.9', fragmentOffset: 4, flags: 0 })],
    ['an unspecified source', ipv4({ src: '0.0.0.0', dst: '10.244.9.9' })],
    ['a multicast source', ipv4({ src: '224.0.0.5', dst: '10.244.9.9' })],
    ['a broadcast source', ipv4({ src: '255.255.255.255', dst: '10.244.9.9' })],
    ['a multicast destination', ipv4({ src: '10.244.1.5', dst: '239.1.1.1' })],
  ])('none about %s', (_name, packet) => {
    expect(errorFor(writer(), packet, IcmpErrorKind.NoRoute)).toBeUndefined();
  });

  it('an ICMP echo request does get one', () => {
    const echo = ipv4({ src: '10.244.1.5', dst: '10.244.9.9', protocol: PROTO_ICMP, payload: icmpv4(8) });
    expect(errorFor(writer(), echo, IcmpErrorKind.NoRoute)).toBeDefined();
  });
});

describe('ICMPv6 errors', () => {
  const src = 'fd00:10:244:1::5';
  const original = ipv6({ src, dst: 'fd00:10:244:9::9', nextHeader: PROTO_TCP, payload: tcp(40000, 80, Buffer.alloc(1400, 0x62)) });

  it.each([
    ['no route', IcmpErrorKind.NoRoute, 0, 1, 0, 0],
    ['hop limit exceeded', IcmpErrorKind.TimeExceeded, 0, 3, 0, 0],
    ['packet too big with MTU', IcmpErrorKind.TooBig, 1380, 2, 0, 1380],
  ])('%s: type, code, MTU, pseudo-header checksum, quote up to 1280 bytes', (_name, kind, mtu, type, code, mtuField) => {
    const e = errorFor(writer(), original, kind, mtu) as Buffer;
    expect(e.length).toBe(1280);
    expect(e[0]! >> 4).toBe(6);
    expect(e.readUInt16BE(4)).toBe(1280 - 40);
    expect(e[6]).toBe(58);
    expect(formatV6(e.subarray(8, 24))).toBe(formatV6(parseAddress(TUN6).bytes));
    expect(formatV6(e.subarray(24, 40))).toBe(formatV6(parseAddress(src).bytes));
    expect(icmpv6Checksum(e, 40, e.length - 40)).toBe(0);
    expect(e[40]).toBe(type);
    expect(e[41]).toBe(code);
    expect(e.readUInt32BE(44)).toBe(mtuField);
    expect(e.subarray(48)).toEqual(original.subarray(0, 1280 - 48));
  });

  it.each([
    ['an ICMPv6 error (type < 128)', ipv6Icmp(src, 'fd00:10:244:9::9', 1)],
    ['an ICMPv6 packet too big', ipv6Icmp(src, 'fd00:10:244:9::9', 2)],
    ['a non-first fragment', ipv6({ src, dst: 'fd00:10:244:9::9', nextHeader: 44, payload: Buffer.concat([ipv6FragmentHeader(17, 8, false), Buffer.alloc(8)]) })],
    ['an unspecified source', ipv6({ src: '::', dst: 'fd00:10:244:9::9' })],
    ['a multicast source', ipv6({ src: 'ff02::1', dst: 'fd00:10:244:9::9' })],
    ['a multicast destination', ipv6({ src, dst: 'ff05::2' })],
  ])('none about %s', (_name, packet) => {
    expect(errorFor(writer(), packet, IcmpErrorKind.NoRoute)).toBeUndefined();
  });

  it('an echo request does get one', () => {
    expect(errorFor(writer(), ipv6Icmp(src, 'fd00:10:244:9::9', 128), IcmpErrorKind.TimeExceeded)).toBeDefined();
  });
});

describe('IcmpErrorWriter', () => {
  const packet = ipv4({ src: '10.244.1.5', dst: '10.244.9.9' });

  it('rate-limits with a token bucket and refills with time', () => {
    let now = 0;
    const w = writer(() => now, 3);
    const sent = (): number => {
      let n = 0;
      for (let i = 0; i < 5; i++) if (errorFor(w, packet, IcmpErrorKind.NoRoute) !== undefined) n++;
      w.batch.count = 0;
      return n;
    };
    expect(sent()).toBe(3);
    expect(w.suppressed).toBe(2);
    expect(sent()).toBe(0);
    now += 20; // 100/s: two tokens
    expect(sent()).toBe(2);
    now += 10_000; // capped at the burst
    expect(sent()).toBe(3);
  });

  it('sends nothing for a family without a source address', () => {
    const w = new IcmpErrorWriter({ sourceV4: undefined, sourceV6: undefined, ratePerSec: 100, burst: 10, maxPerBatch: 4, nowMs: () => 0 });
    expect(errorFor(w, packet, IcmpErrorKind.NoRoute)).toBeUndefined();
    expect(w.suppressed).toBe(0);
  });

  it('flush writes all queued errors in one device write, bare IP, and empties the batch', () => {
    const w = writer();
    errorFor(w, packet, IcmpErrorKind.NoRoute);
    errorFor(w, packet, IcmpErrorKind.TimeExceeded);
    const calls: { count: number; vnetHdr: boolean }[] = [];
    const device: PacketDevice = {
      name: 'x',
      start: () => undefined,
      write: (_b: PacketBatch, _i: Int32Array, count: number, vnetHdr: boolean) => {
        calls.push({ count, vnetHdr });
        return count;
      },
      close: () => undefined,
    };
    w.flush(device);
    w.flush(device);
    expect(calls).toEqual([{ count: 2, vnetHdr: false }]);
    expect(w.batch.count).toBe(0);
  });
});
