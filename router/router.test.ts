/**
 * Two routers joined by the memory transport pair, each with a memory device:
 *
 *   pods 10.244.1.0/24                                      pods 10.244.2.0/24
 *        fd00:10:244:1::/64                                      fd00:10:244:2::/64
 *   devA (MemoryDevice) -- Router node-a == memory pair == Router node-b -- devB (MemoryDevice)
 *                          (inside: devA -> tA)           (outside: tB -> devB)
 *
 * Cluster CIDRs 10.244.0.0/16 and fd00:10:244::/48; tunnel MTU 1460.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Lease, LeaseEvent } from '../core/lease.js';
import { MemoryDevice } from '../test/memory-device.js';
import type { MemoryTransport } from '../test/memory-transport.js';
import { createMemoryTransportPair } from '../test/memory-transport.js';
import {
  icmpv4,
  icmpv6Checksum,
  ipv4,
  ipv6,
  ipv6Icmp,
  PROTO_ICMP,
  PROTO_TCP,
  tcp,
  udp,
  VNET_F_NEEDS_CSUM,
  withVnetHdr,
} from '../test/packet-fixtures.js';
import { internetChecksum } from './checksum.js';
import type { Logger } from '../core/logger.js';
import { VNET_GSO_TCPV4 } from '../core/packet-batch.js';
import { Router, RouterConfigError } from './router.js';
import type { RouterOptions } from './router.js';

interface LogRecord {
  level: string;
  obj: object;
  msg: string | undefined;
}

function recordingLogger(records: LogRecord[]): Logger {
  const fn =
    (level: string) =>
    (a: object | string, b?: string): void => {
      records.push(typeof a === 'string' ? { level, obj: {}, msg: a } : { level, obj: a, msg: b });
    };
  const log: Logger = {
    debug: fn('debug'),
    info: fn('info'),
    warn: fn('warn'),
    error: fn('error'),
    child: () => log,
    isLevelEnabled: () => true,
  };
  return log;
}

const LEASE_A: Lease = { node: 'node-a', subnets: ['10.244.1.0/24', 'fd00:10:244:1::/64'], endpoints: { udp: '192.168.77.1:8285' } };
const LEASE_B: Lease = { node: 'node-b', subnets: ['10.244.2.0/24', 'fd00:10:244:2::/64'], endpoints: { udp: '192.168.77.2:8285' } };
const added = (...leases: Lease[]): LeaseEvent[] => leases.map((lease) => ({ type: 'added', lease }));

interface Node {
  router: Router;
  device: MemoryDevice;
  transport: MemoryTransport;
  logs: LogRecord[];
}

const open: Router[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

function makeNode(lease: Lease, transport: MemoryTransport, extra: Partial<RouterOptions> = {}): Node {
  const device = new MemoryDevice(`podtun-${lease.node}`);
  const logs: LogRecord[] = [];
  const router = new Router({
    device,
    transport,
    localNode: lease.node,
    localSubnets: lease.subnets,
    icmpSourceV4: lease.subnets[0]?.replace('/24', ''),
    icmpSourceV6: lease.subnets[1]?.replace('/64', ''),
    tunnelMtu: 1460,
    overheadBytes: 40,
    defaultTransports: ['udp', 'ws'],
    clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/48'],
    log: recordingLogger(logs),
    ...extra,
  });
  open.push(router);
  return { router, device, transport, logs };
}

async function cluster(leaseB: Lease = LEASE_B): Promise<{ a: Node; b: Node }> {
  const [tA, tB] = createMemoryTransportPair('node-a', 'node-b');
  const a = makeNode(LEASE_A, tA);
  const b = makeNode(LEASE_B, tB);
  a.router.applyLeaseEvents(added(LEASE_A, leaseB));
  b.router.applyLeaseEvents(added(LEASE_A, LEASE_B));
  await a.router.start();
  await b.router.start();
  return { a, b };
}

function peerStats(node: Node, name: string) {
  const peer = node.router.stats().peers.find((p) => p.node === name);
  expect(peer).toBeDefined();
  return peer!;
}

/** The packet with its TTL / hop limit one lower (and the IPv4 header checksum recomputed). */
function forwarded(packet: Buffer): Buffer {
  const out = Buffer.from(packet);
  if (out[0]! >> 4 === 4) {
    out[8] = out[8]! - 1;
    out.writeUInt16BE(0, 10);
    out.writeUInt16BE(internetChecksum(out, 0, (out[0]! & 0xf) * 4), 10);
  } else {
    out[7] = out[7]! - 1;
  }
  return out;
}

describe('inside -> outside: forwarding between two routers', () => {
  it('IPv4 from a pod of A reaches B unchanged but for TTL-1 (no NAT)', async () => {
    const { a, b } = await cluster();
    const packet = ipv4({ src: '10.244.1.5', dst: '10.244.2.9', ttl: 64, payload: udp(40000, 53, Buffer.from('payload')) });
    a.device.inject([withVnetHdr(packet)]);
    const got = b.device.take();
    expect(got).toHaveLength(1);
    expect(got[0]!.ip).toEqual(forwarded(packet));
    expect(got[0]!.ip[8]).toBe(63);
    expect(internetChecksum(got[0]!.ip, 0, 20)).toBe(0);
    expect(got[0]!.vnetHdr).toBeUndefined();
    expect(a.device.take()).toEqual([]);
    expect(peerStats(a, 'node-b')).toMatchObject({ txPackets: 1, txBytes: packet.length, rxPackets: 0 });
    expect(peerStats(b, 'node-a')).toMatchObject({ rxPackets: 1, rxBytes: packet.length, spoofed: 0 });
    expect(a.router.stats().drops).toEqual({});
    expect(b.router.stats().drops).toEqual({});
  });

  it('IPv6 (with a NEEDS_CSUM virtio header) reaches B with hop limit - 1', async () => {
    const { a, b } = await cluster();
    const packet = ipv6({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::9', hopLimit: 2, nextHeader: PROTO_TCP, payload: tcp(1, 2, Buffer.alloc(100, 7)) });
    a.device.inject([withVnetHdr(packet, { flags: VNET_F_NEEDS_CSUM, csumStart: 40, csumOffset: 16 })]);
    const got = b.device.take();
    expect(got.map((w) => w.ip)).toEqual([forwarded(packet)]);
    expect(got[0]!.ip[7]).toBe(1);
  });

  it('a batch to one peer is one transport send; both directions work', async () => {
    const { a, b } = await cluster();
    const frames = [1, 2, 3, 4, 5].map((i) => withVnetHdr(ipv4({ src: `10.244.1.${i}`, dst: `10.244.2.${i}` })));
    frames.push(withVnetHdr(ipv6({ src: 'fd00:10:244:1::1', dst: 'fd00:10:244:2::1' })));
    a.device.inject(frames);
    expect(a.transport.sendCalls).toEqual([{ slot: 0, count: 6 }]);
    expect(b.device.writeCalls).toBe(1);
    expect(b.device.take()).toHaveLength(6);
    b.device.inject([withVnetHdr(ipv4({ src: '10.244.2.1', dst: '10.244.1.1' }))]);
    expect(a.device.take()).toHaveLength(1);
  });

  it('a GSO super-packet within the MTU per segment is forwarded whole', async () => {
    const { a, b } = await cluster();
    const segment = 1460 - 40;
    const packet = ipv4({ src: '10.244.1.5', dst: '10.244.2.9', protocol: PROTO_TCP, payload: tcp(1, 2, Buffer.alloc(segment * 10)) });
    a.device.inject([withVnetHdr(packet, { gsoType: VNET_GSO_TCPV4, gsoSize: segment, hdrLen: 40, flags: VNET_F_NEEDS_CSUM })]);
    expect(b.device.take().map((w) => w.ip.length)).toEqual([packet.length]);
  });

  it('a down peer is still sent to; packets the transport refuses are counted, not sent', async () => {
    const { a, b } = await cluster();
    a.transport.peerState = 'down';
    a.device.inject([withVnetHdr(ipv4({ src: '10.244.1.5', dst: '10.244.2.9' }))]);
    expect(b.device.take()).toHaveLength(1);
    expect(peerStats(a, 'node-b').state).toBe('down');
    a.transport.refuse = true;
    a.device.inject([withVnetHdr(ipv4({ src: '10.244.1.5', dst: '10.244.2.9' }))]);
    expect(b.device.take()).toHaveLength(0);
    // Counted once, by the transport under its reason; not again by the router.
    expect(a.router.stats().drops).toEqual({});
    expect(a.router.stats().transport).toEqual({ packetsOut: 1, 'drop.congested': 1 });
    expect(a.router.dropCounts()).toEqual({ congested: 1 });
    expect(peerStats(a, 'node-b').txPackets).toBe(1);
  });
});

describe('inside: ICMP errors written back into the device', () => {
  it('no route (in the cluster, no node): net unreachable from the TUN address', async () => {
    const { a, b } = await cluster();
    const packet = ipv4({ src: '10.244.1.5', dst: '10.244.7.9' });
    a.device.inject([withVnetHdr(packet), withVnetHdr(ipv4({ src: '10.244.1.5', dst: '10.244.2.9' }))]);
    const [err, ...rest] = a.device.take();
    expect(rest).toEqual([]);
    const e = err!.ip;
    expect(e.subarray(12, 16)).toEqual(Buffer.from([10, 244, 1, 0]));
    expect(e.subarray(16, 20)).toEqual(Buffer.from([10, 244, 1, 5]));
    expect([e[9], e[20], e[21]]).toEqual([PROTO_ICMP, 3, 0]);
    expect(internetChecksum(e, 20, e.length - 20)).toBe(0);
    expect(e.subarray(28)).toEqual(packet);
    expect(a.router.stats().drops).toEqual({ no_route: 1 });
    expect(a.router.lastDropped('no_route')).toEqual({ src: '10.244.1.5', dst: '10.244.7.9' });
    expect(b.device.take()).toHaveLength(1);
  });

  it('IPv6 no route: ICMPv6 destination unreachable, checksum over the pseudo-header', async () => {
    const { a } = await cluster();
    a.device.inject([withVnetHdr(ipv6({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:7::9' }))]);
    const e = a.device.take()[0]!.ip;
    expect([e[6], e[40], e[41]]).toEqual([58, 1, 0]);
    expect(icmpv6Checksum(e, 40, e.length - 40)).toBe(0);
  });

  it("the host's link-local and multicast chatter is dropped as link_local: no ICMP error, not no_route", async () => {
    const { a, b } = await cluster();
    a.device.inject([
      withVnetHdr(ipv6({ src: 'fe80::1', dst: 'ff02::2' })),
      withVnetHdr(ipv6({ src: '::', dst: 'ff02::16' })),
      withVnetHdr(ipv6({ src: 'fd00:10:244:1::5', dst: 'fe80::9' })),
      withVnetHdr(ipv4({ src: '10.244.1.5', dst: '224.0.0.22' })),
      withVnetHdr(ipv4({ src: '10.244.1.5', dst: '169.254.1.1' })),
      withVnetHdr(ipv4({ src: '10.244.1.5', dst: '255.255.255.255' })),
    ]);
    expect(a.device.take()).toEqual([]);
    expect(b.device.take()).toEqual([]);
    expect(a.router.stats().drops).toEqual({ link_local: 6 });
    // The drop log's sample: the last one of the reason.
    expect(a.router.lastDropped('link_local')).toEqual({ src: '10.244.1.5', dst: '255.255.255.255' });
    expect(a.router.lastDropped('no_route')).toBeUndefined();
  });

  it('TTL 1: time exceeded, nothing sent', async () => {
    const { a, b } = await cluster();
    a.device.inject([withVnetHdr(ipv4({ src: '10.244.1.5', dst: '10.244.2.9', ttl: 1 })), withVnetHdr(ipv6({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::9', hopLimit: 1 }))]);
    const errors = a.device.take().map((w) => w.ip);
    expect(errors.map((e) => (e[0]! >> 4 === 4 ? [4, e[20], e[21]] : [6, e[40], e[41]]))).toEqual([
      [4, 11, 0],
      [6, 3, 0],
    ]);
    expect(b.device.take()).toEqual([]);
    expect(a.router.stats().drops).toEqual({ ttl_exceeded: 2 });
  });

  it('too big for the tunnel: frag needed (IPv4) / packet too big (IPv6) with the MTU', async () => {
    const { a, b } = await cluster();
    const big4 = ipv4({ src: '10.244.1.5', dst: '10.244.2.9', payload: udp(1, 2, Buffer.alloc(1500)) });
    const big6 = ipv6({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::9', payload: udp(1, 2, Buffer.alloc(1500)) });
    const fits = ipv4({ src: '10.244.1.5', dst: '10.244.2.9', payload: udp(1, 2, Buffer.alloc(1460 - 28)) });
    a.device.inject([withVnetHdr(big4), withVnetHdr(big6), withVnetHdr(fits)]);
    const [e4, e6] = a.device.take().map((w) => w.ip);
    expect([e4![20], e4![21], e4!.readUInt16BE(26)]).toEqual([3, 4, 1460]);
    expect([e6![40], e6![41], e6!.readUInt32BE(44)]).toEqual([2, 0, 1460]);
    expect(b.device.take().map((w) => w.ip.length)).toEqual([1460]);
    expect(a.router.stats().drops).toEqual({ too_big: 2 });
  });

  it('a GSO super-packet whose segments exceed the MTU is too big', async () => {
    const { a, b } = await cluster();
    const packet = ipv4({ src: '10.244.1.5', dst: '10.244.2.9', protocol: PROTO_TCP, payload: tcp(1, 2, Buffer.alloc(14480)) });
    a.device.inject([withVnetHdr(packet, { gsoType: VNET_GSO_TCPV4, gsoSize: 1448, hdrLen: 40 })]);
    expect(a.device.take()[0]!.ip.readUInt16BE(26)).toBe(1460);
    expect(b.device.take()).toEqual([]);
  });

  it("a lease's smaller underlay MTU lowers that peer's tunnel MTU (minus transport overhead)", async () => {
    const { a, b } = await cluster({ ...LEASE_B, mtu: 1400 });
    expect(peerStats(a, 'node-b').tunnelMtu).toBe(1360);
    a.device.inject([withVnetHdr(ipv4({ src: '10.244.1.5', dst: '10.244.2.9', payload: udp(1, 2, Buffer.alloc(1400)) }))]);
    expect(a.device.take()[0]!.ip.readUInt16BE(26)).toBe(1360);
    expect(b.device.take()).toEqual([]);
  });

  it('no ICMP error about an ICMP error', async () => {
    const { a } = await cluster();
    a.device.inject([
      withVnetHdr(ipv4({ src: '10.244.1.5', dst: '10.244.7.9', protocol: PROTO_ICMP, payload: icmpv4(3, 1) })),
      withVnetHdr(ipv6Icmp('fd00:10:244:1::5', 'fd00:10:244:7::9', 1)),
    ]);
    expect(a.device.take()).toEqual([]);
    expect(a.router.stats().drops).toEqual({ no_route: 2 });
  });
});

describe('inside: drops', () => {
  it('malformed packets are counted and the batch keeps forwarding', async () => {
    const { a, b } = await cluster();
    const good = ipv4({ src: '10.244.1.5', dst: '10.244.2.9' });
    const truncated = good.subarray(0, good.length - 3);
    a.device.inject([Buffer.alloc(4), withVnetHdr(Buffer.from([0x45, 0, 0])), withVnetHdr(truncated), withVnetHdr(Buffer.alloc(40, 0x70)), withVnetHdr(good)]);
    expect(b.device.take()).toHaveLength(1);
    expect(a.router.stats().drops).toEqual({ malformed: 4 });
    a.device.inject([withVnetHdr(good)]);
    expect(b.device.take()).toHaveLength(1);
  });

  it("a packet for this node's own subnet is dropped NotLocal", async () => {
    const { a, b } = await cluster();
    a.device.inject([withVnetHdr(ipv4({ src: '10.244.1.5', dst: '10.244.1.6' }))]);
    expect(a.device.take()).toEqual([]);
    expect(b.device.take()).toEqual([]);
    expect(a.router.stats().drops).toEqual({ not_local: 1 });
  });
});

describe('outside: anti-spoofing and delivery', () => {
  it.each([
    ['a source outside any subnet', '192.168.1.1', '10.244.2.9', 'spoofed'],
    ["a source in another node's subnet", '10.244.3.5', '10.244.2.9', 'spoofed'],
    ["a source in the receiver's own subnet", '10.244.2.5', '10.244.2.9', 'spoofed'],
    ['a destination not on this node', '10.244.1.5', '10.244.3.9', 'not_local'],
  ])('%s is dropped (%s, %s -> %s)', async (_name, src, dst, reason) => {
    const { b } = await cluster();
    const good = ipv4({ src: '10.244.1.5', dst: '10.244.2.9' });
    b.transport.receiveFrom('node-a', [ipv4({ src, dst }), good]);
    expect(b.device.take().map((w) => w.ip)).toEqual([good]);
    expect(b.router.stats().drops).toEqual({ [reason]: 1 });
    expect(peerStats(b, 'node-a')).toMatchObject({ spoofed: reason === 'spoofed' ? 1 : 0, rxPackets: 1 });
  });

  it('IPv6 spoofed source from the peer is dropped and counted', async () => {
    const { b } = await cluster();
    b.transport.receiveFrom('node-a', [ipv6({ src: 'fd00:10:244:9::5', dst: 'fd00:10:244:2::9' })]);
    expect(b.device.take()).toEqual([]);
    expect(peerStats(b, 'node-a').spoofed).toBe(1);
  });

  it('packets from a node that is not a peer, and malformed ones, are dropped', async () => {
    const { b } = await cluster();
    b.transport.receiveFrom('node-z', [ipv4({ src: '10.244.1.5', dst: '10.244.2.9' })]);
    b.transport.receiveFrom('node-a', [Buffer.alloc(30)]);
    expect(b.device.take()).toEqual([]);
    expect(b.router.stats().drops).toEqual({ unknown_peer: 1, malformed: 1 });
  });

  it('a transport that keeps the virtio header: written with it', async () => {
    const { b } = await cluster();
    const packet = ipv4({ src: '10.244.1.5', dst: '10.244.2.9' });
    b.transport.receiveFrom('node-a', [withVnetHdr(packet, { flags: VNET_F_NEEDS_CSUM })], true);
    const [w] = b.device.take();
    expect(w!.ip).toEqual(packet);
    expect(w!.vnetHdr?.[0]).toBe(VNET_F_NEEDS_CSUM);
  });
});

describe('applyLeaseEvents', () => {
  it('adds peers to the transport with their endpoints and the default preference, and logs them', async () => {
    const { a } = await cluster();
    expect([...a.transport.peers.values()]).toEqual([{ node: 'node-b', endpoints: { udp: '192.168.77.2:8285' }, transports: ['udp', 'ws'] }]);
    const log = a.logs.find((r) => r.msg === 'peer added');
    expect(log?.obj).toEqual({ peer: 'node-b', subnets: ['10.244.2.0/24', 'fd00:10:244:2::/64'], endpoints: { udp: '192.168.77.2:8285' } });
  });

  it('a changed subnet replaces the old routes', async () => {
    const { a } = await cluster();
    a.router.applyLeaseEvents(added({ ...LEASE_B, subnets: ['10.244.5.0/24'] }));
    a.device.inject([withVnetHdr(ipv4({ src: '10.244.1.5', dst: '10.244.2.9' })), withVnetHdr(ipv4({ src: '10.244.1.5', dst: '10.244.5.9' }))]);
    expect(a.transport.sendCalls.at(-1)).toEqual({ slot: 0, count: 1 });
    expect(a.router.stats().drops).toEqual({ no_route: 1 });
    expect(peerStats(a, 'node-b').subnets).toEqual(['10.244.5.0/24']);
  });

  it('removal drops the peer and its routes; unknown removals are ignored; slots are reused', async () => {
    const { a } = await cluster();
    a.router.applyLeaseEvents([{ type: 'removed', lease: { node: 'node-q', subnets: [], endpoints: {} } }]);
    a.router.applyLeaseEvents([{ type: 'removed', lease: LEASE_B }]);
    expect(a.transport.peers.size).toBe(0);
    expect(a.router.stats().peers).toEqual([]);
    expect(a.logs.filter((r) => r.msg === 'peer removed').map((r) => r.obj)).toEqual([
      { peer: 'node-b', subnets: ['10.244.2.0/24', 'fd00:10:244:2::/64'], endpoints: { udp: '192.168.77.2:8285' } },
    ]);
    a.device.inject([withVnetHdr(ipv4({ src: '10.244.1.5', dst: '10.244.2.9' }))]);
    expect(a.router.stats().drops).toEqual({ no_route: 1 });
    a.router.applyLeaseEvents(added({ node: 'node-c', subnets: ['10.244.3.0/24'], endpoints: {} }));
    expect([...a.transport.peers.keys()]).toEqual([0]);
    expect(peerStats(a, 'node-c')).toMatchObject({ txPackets: 0, endpoints: {} });
  });

  it("a lease with a bad subnet is refused with a warning; another node's subnet is not taken over", async () => {
    const { a } = await cluster();
    a.router.applyLeaseEvents(added({ node: 'node-x', subnets: ['10.244.9.5/24'], endpoints: {} }));
    a.router.applyLeaseEvents(added({ node: 'node-y', subnets: ['10.244.2.0/24'], endpoints: {} }));
    expect(a.logs.filter((r) => r.level === 'warn').map((r) => r.msg)).toEqual([
      'lease refused: bad subnet',
      'subnet already owned: route not installed',
    ]);
    a.device.inject([withVnetHdr(ipv4({ src: '10.244.1.5', dst: '10.244.2.9' }))]);
    expect(peerStats(a, 'node-b').txPackets).toBe(1);
  });
});

describe('growth', () => {
  it('more peers than the initial slots and batches larger than the initial send lists', async () => {
    const { a, b } = await cluster();
    const extra = Array.from({ length: 30 }, (_, i) => ({ node: `node-${i + 10}`, subnets: [`10.244.${i + 10}.0/24`], endpoints: {} }));
    a.router.applyLeaseEvents(added(...extra));
    expect(a.router.stats().peers).toHaveLength(31);
    const frames = Array.from({ length: 600 }, (_, i) => withVnetHdr(ipv4({ src: '10.244.1.5', dst: i % 2 === 0 ? '10.244.2.9' : '10.244.39.9' })));
    a.device.inject(frames);
    expect(b.device.take()).toHaveLength(300);
    expect(a.transport.sendCalls.map((c) => c.count)).toEqual([300, 300]);
    expect(peerStats(a, 'node-39').txPackets).toBe(0);
    expect(a.router.stats().drops).toEqual({});
    expect(a.router.dropCounts()).toEqual({ peer_down: 300 });
  });
});

describe('lifecycle', () => {
  it('stats are JSON-able and merge the transport view', async () => {
    const { a } = await cluster();
    const stats = a.router.stats();
    expect(JSON.parse(JSON.stringify(stats))).toMatchObject({
      node: 'node-a',
      localSubnets: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
      peers: [{ node: 'node-b', state: 'up', rttMs: 0.05, endpoint: '192.168.77.2:8285' }],
      transport: { packetsOut: 0 },
    });
  });

  it('close() twice is safe, closes transport and device, leaves no timer', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const { a } = await cluster();
    a.device.inject([withVnetHdr(ipv4({ src: '10.244.1.5', dst: '10.244.7.9' }))]);
    await Promise.all([a.router.close(), a.router.close()]);
    await a.router.close();
    expect(a.transport.closed).toBe(true);
    expect(a.device.closeCalls).toBe(1);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before);
  });

  it('bad options fail with the field named', () => {
    const [t] = createMemoryTransportPair('node-a', 'node-b');
    expect(() => makeNode(LEASE_A, t, { clusterCidrs: ['10.244.0.0/33'] })).toThrow(RouterConfigError);
    expect(() => makeNode(LEASE_A, t, { icmpSourceV4: 'fd00::1' })).toThrow(/icmpSourceV4/);
    expect(() => makeNode(LEASE_A, t, { tunnelMtu: 10 })).toThrow(/tunnelMtu/);
  });

  it('without explicit ICMP sources, the local subnet network addresses are used', async () => {
    const [tA] = createMemoryTransportPair('node-a', 'node-b');
    const a = makeNode(LEASE_A, tA, { icmpSourceV4: undefined, icmpSourceV6: undefined });
    await a.router.start();
    a.device.inject([withVnetHdr(ipv4({ src: '10.244.1.5', dst: '10.244.7.9' }))]);
    expect(a.device.take()[0]!.ip.subarray(12, 16)).toEqual(Buffer.from([10, 244, 1, 0]));
  });
});
