/**
 * podtun end to end: what arrives on the tunnel port from outside the data path.
 *
 * Sealed (the default): datagrams in the old unsealed format, even well-formed and from a real
 * node's underlay address, are dropped and counted `unsealed`; junk is dropped and counted under
 * its reason; forwarding goes on. What a node seals is bound to its subnets: a packet n2 seals
 * whose inner source is not in n2's subnet is dropped as `spoofed` (cryptokey routing).
 *
 * `encryption: none` (an underlay the operator trusts): the unsealed format is the data plane
 * again, and a node may still only inject packets whose source lies in its own pod subnet.
 *
 * ```
 *          underlay ns (bridge ul0, 192.168.77.0/24)
 *        /                  |                    \
 *   n1 192.168.77.1:8285   n2 192.168.77.2        n3
 *   podtun0                 probe-agent udp-send --bind 192.168.77.2 --> 192.168.77.1:8285
 *   cni0                      [unsealed header: v1, data, sender id FNV-1a("n2")]
 *   p1a 10.244.1.10:6000        + IPv4/UDP 10.244.2.99 -> 10.244.1.10:6000  (sealed: unsealed; none: arrives)
 *   (udp-listen)                + IPv4/UDP 10.244.3.99 -> 10.244.1.10:6000  (sealed: unsealed; none: spoofed)
 *                           p2a 10.244.2.10 (+ 10.244.3.99/32) --udp, through n2's tunnel--> p1a  (spoofed)
 * ```
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  SEALED_DATA_HEADER_LEN,
  SEALED_TAG_LEN,
  SEALED_TYPE_DATA,
  SEALED_VERSION,
  ipv4UdpPacket,
  podtunDataDatagram,
  podtunDataHeader,
  sealedDataMessage,
} from './inject-packet.js';
import { probe, startProbe } from '../../lab/probe.js';
import type { UdpListenResult, UdpSendResult } from '../../lab/probe.js';
import { dropCount, readStatus, transportStat, waitPeers } from '../../lab/podtun-status.js';
import type { StatusReport } from '../../api/status-schema.js';
import { PODTUN_PORT } from '../../lab/cluster.js';
import type { Cluster } from '../../lab/cluster.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping']) ?? podtunSkipReason();
printSkip('podtun-inject.test.ts', skipReason);

const LISTEN_PORT = 6000;
const SPOOFED_SOURCE = '10.244.3.99';

/** A counter of the UDP transport (keys carry its prefix behind transport selection). */
function udp(status: StatusReport, key: string): number {
  return transportStat(status, `udp.${key}`) + transportStat(status, key);
}

/**
 * Where junk is counted: the UDP transport refuses a datagram whose header is bad, an unsealed
 * one where it expects sealed ones (and, unsealed, one from an unknown sender id), a sealed one
 * that does not open or a handshake message that does not verify; the router refuses a
 * malformed inner packet.
 */
const JUNK_REASONS = ['bad_header', 'unknown_peer', 'unauthenticated', 'unsealed', 'auth_failed', 'unknown_session', 'handshake_refused'] as const;

function junkDrops(status: StatusReport): number {
  return JUNK_REASONS.reduce((sum, reason) => sum + udp(status, `drop.${reason}`), 0) + dropCount(status, 'malformed');
}

async function inject(c: Cluster, datagram: Buffer, count = 1): Promise<void> {
  const from = c.node(2);
  await probe<UdpSendResult>(c, from.ns, 'udp-send', {
    to: c.node(1).underlayIp,
    port: PODTUN_PORT,
    bind: from.underlayIp,
    hex: datagram.toString('hex'),
    count,
  });
}

function innerTo(c: Cluster, src: string, marker: string): Buffer {
  return ipv4UdpPacket({ src, dst: c.pod(1, 0).ipv4, srcPort: 40000, dstPort: LISTEN_PORT, payload: Buffer.from(marker) });
}

async function injectAndListen(c: Cluster, src: string, marker: string, listenMs: number): Promise<UdpListenResult> {
  const listener = await startProbe<UdpListenResult>(c, c.pod(1, 0).ns, 'udp-listen', {
    port: LISTEN_PORT,
    'duration-ms': listenMs,
    max: 1,
  });
  await inject(c, podtunDataDatagram('n2', innerTo(c, src, marker)), 3);
  return listener.result;
}

async function expectForwarding(c: Cluster): Promise<void> {
  for (const [from, to] of [
    [c.pod(2, 0), c.pod(1, 0)],
    [c.pod(1, 0), c.pod(3, 0)],
  ] as const) {
    const out = await c.outcome(from.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', to.ipv4]);
    expect(parsePing(out.stdout).received, `${from.name} -> ${to.name}`).toBe(2);
  }
}

/** Junk every node must survive: short, truncated, wrong versions and types, random bytes. */
function junk(c: Cluster): Buffer[] {
  const valid = podtunDataDatagram('n2', ipv4UdpPacket({ src: '10.244.2.99', dst: c.pod(1, 0).ipv4, srcPort: 1, dstPort: LISTEN_PORT, payload: Buffer.alloc(64) }));
  const badVersion = Buffer.from(valid);
  badVersion[0] = 9;
  const badType = Buffer.from(valid);
  badType[1] = 77;
  const sealedHeader = sealedDataMessage(randomBytes(4).readUInt32BE(0), 1n, Buffer.alloc(0), Buffer.alloc(SEALED_TAG_LEN));
  return [
    randomBytes(1),
    randomBytes(5),
    podtunDataHeader('n2'), // header, no packet
    valid.subarray(0, 12 + 10), // header + half an IPv4 header
    valid.subarray(0, valid.length - 30), // IPv4 total length beyond the datagram
    badVersion,
    badType,
    Buffer.from([SEALED_VERSION, SEALED_TYPE_DATA, 0, 0, 1, 2]), // a sealed data header, cut short
    sealedHeader.subarray(0, SEALED_DATA_HEADER_LEN), // header, no tag
    sealedHeader, // header and tag, random index
    Buffer.from([SEALED_VERSION, 99, 0, 0, ...randomBytes(40)]), // sealed, no such type
    ...Array.from({ length: 20 }, (_, i) => randomBytes(16 + i * 67)),
  ];
}

describe.skipIf(skipReason !== undefined)('podtun: injection on the tunnel port (sealed, the default)', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 1, ipv6: false, mode: 'podtun' });

  it('drops unsealed data from n2’s address as unsealed, however well-formed; nothing delivered', async () => {
    const c = cluster();
    await waitPeers(c, 1, ['n2', 'n3'], { transport: 'udp' }, 15_000);
    const before = await readStatus(c, 1);
    const fromSubnet = await injectAndListen(c, '10.244.2.99', 'from n2 subnet', 1_500);
    const spoofed = await injectAndListen(c, SPOOFED_SOURCE, 'spoofed', 1_500);
    const after = await readStatus(c, 1);
    expect([fromSubnet.datagrams, spoofed.datagrams]).toEqual([0, 0]);
    expect(udp(after, 'drop.unsealed') - udp(before, 'drop.unsealed')).toBe(6);
    expect(dropCount(after, 'spoofed') - dropCount(before, 'spoofed')).toBe(0);
    await expectForwarding(c);
  });

  it('drops as spoofed a packet n2 seals whose inner source is not in n2’s subnet', async () => {
    const c = cluster();
    const p2a = c.pod(2, 0);
    // p2a sends from an address of n3's subnet; n2 forwards and seals it like any other.
    await c.exec(p2a.ns, ['ip', 'addr', 'add', `${SPOOFED_SOURCE}/32`, 'dev', 'eth0']);
    try {
      const before = await readStatus(c, 1);
      const listener = await startProbe<UdpListenResult>(c, c.pod(1, 0).ns, 'udp-listen', { port: LISTEN_PORT, 'duration-ms': 1_500, max: 1 });
      await probe<UdpSendResult>(c, p2a.ns, 'udp-send', { to: c.pod(1, 0).ipv4, port: LISTEN_PORT, bind: SPOOFED_SOURCE, hex: Buffer.from('spoofed').toString('hex'), count: 3 });
      const got = await listener.result;
      const after = await readStatus(c, 1);
      expect(got.datagrams).toBe(0);
      expect(dropCount(after, 'spoofed') - dropCount(before, 'spoofed')).toBe(3);
      const peer = after.peers.find((p) => p.node === 'n2');
      if (peer?.spoofed !== undefined) expect(peer.spoofed).toBeGreaterThanOrEqual(3);
    } finally {
      await c.exec(p2a.ns, ['ip', 'addr', 'del', `${SPOOFED_SOURCE}/32`, 'dev', 'eth0']);
    }
    // From its own address the same pod gets through (control).
    const listener = await startProbe<UdpListenResult>(c, c.pod(1, 0).ns, 'udp-listen', { port: LISTEN_PORT, 'duration-ms': 3_000, max: 1 });
    await probe<UdpSendResult>(c, p2a.ns, 'udp-send', { to: c.pod(1, 0).ipv4, port: LISTEN_PORT, hex: Buffer.from('control').toString('hex'), count: 3 });
    const got = await listener.result;
    expect(got.sources).toEqual([p2a.ipv4]);
    expect(Buffer.from(got.firstHex, 'hex').toString()).toBe('control');
  });

  it('drops random bytes, truncated and unsealed datagrams, counts each, and keeps forwarding', async () => {
    const c = cluster();
    const before = await readStatus(c, 1);
    const bad = junk(c);
    for (const datagram of bad) await inject(c, datagram);
    expect(c.nodeRunning(1)).toBe(true);
    await expectForwarding(c);
    const after = await readStatus(c, 1);
    expect(junkDrops(after) - junkDrops(before)).toBe(bad.length);
  });
});

describe.skipIf(skipReason !== undefined)('podtun: injection on the tunnel port (encryption: none)', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 1, ipv6: false, mode: 'podtun', podtun: { config: { encryption: 'none' } } });

  it('delivers a well-formed datagram from n2 whose source lies in n2’s subnet (control)', async () => {
    const c = cluster();
    await waitPeers(c, 1, ['n2', 'n3'], { transport: 'udp' }, 15_000);
    const got = await injectAndListen(c, '10.244.2.99', 'control', 3_000);
    expect(got.datagrams).toBe(1);
    expect(got.sources).toEqual(['10.244.2.99']);
    expect(Buffer.from(got.firstHex, 'hex').toString()).toBe('control');
  });

  it('drops and counts as spoofed a packet from n2 whose source is not in n2’s subnet', async () => {
    const c = cluster();
    const before = await readStatus(c, 1);
    const got = await injectAndListen(c, SPOOFED_SOURCE, 'spoofed', 1_500);
    expect(got.datagrams).toBe(0);
    const after = await readStatus(c, 1);
    expect(dropCount(after, 'spoofed') - dropCount(before, 'spoofed')).toBeGreaterThanOrEqual(3);
    const peer = after.peers.find((p) => p.node === 'n2');
    if (peer?.spoofed !== undefined) expect(peer.spoofed).toBeGreaterThanOrEqual(3);
  });

  it('drops random bytes and truncated datagrams, counts them, and keeps forwarding', async () => {
    const c = cluster();
    const before = await readStatus(c, 1);
    const bad = junk(c);
    for (const datagram of bad) await inject(c, datagram);
    expect(c.nodeRunning(1)).toBe(true);
    await expectForwarding(c);
    const after = await readStatus(c, 1);
    expect(junkDrops(after) - junkDrops(before)).toBe(bad.length);
  });
});
