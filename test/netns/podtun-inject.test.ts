/**
 * podtun end to end: what arrives on the tunnel port from outside the data path. A node may
 * only inject packets whose source lies in its own pod subnet; junk is dropped and counted;
 * forwarding goes on.
 *
 * ```
 *          underlay ns (bridge ul0, 192.168.77.0/24)
 *        /                  |                    \
 *   n1 192.168.77.1:8285   n2 192.168.77.2        n3
 *   podtun0                 probe-agent udp-send --bind 192.168.77.2 --> 192.168.77.1:8285
 *   cni0                      [podtun header: v1, data, sender id FNV-1a("n2")]
 *   p1a 10.244.1.10:6000        + IPv4/UDP 10.244.2.99 -> 10.244.1.10:6000  (control: arrives)
 *   (udp-listen)                + IPv4/UDP 10.244.3.99 -> 10.244.1.10:6000  (spoofed: dropped)
 * ```
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ipv4UdpPacket, podtunDataDatagram, podtunDataHeader } from './inject-packet.js';
import { probe, startProbe } from '../../lab/probe.js';
import type { UdpListenResult, UdpSendResult } from '../../lab/probe.js';
import { dropCount, readStatus, transportStat } from '../../lab/podtun-status.js';
import type { StatusReport } from '../../api/status-schema.js';
import { PODTUN_PORT } from '../../lab/cluster.js';
import type { Cluster } from '../../lab/cluster.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping']) ?? podtunSkipReason();
printSkip('podtun-inject.test.ts', skipReason);

const LISTEN_PORT = 6000;

/**
 * Where junk is counted: the UDP transport refuses datagrams whose header is bad (or whose sender
 * id is unknown, should random bytes happen to form a header); the router refuses a malformed
 * inner packet.
 */
function junkDrops(status: StatusReport): number {
  // Keys carry the transport's prefix ('udp.') behind transport selection.
  const udp = (key: string): number => transportStat(status, `udp.${key}`) + transportStat(status, key);
  return udp('drop.bad_header') + udp('drop.unknown_peer') + udp('drop.unauthenticated') + dropCount(status, 'malformed');
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

async function injectAndListen(c: Cluster, src: string, marker: string, listenMs: number): Promise<UdpListenResult> {
  const target = c.pod(1, 0);
  const listener = await startProbe<UdpListenResult>(c, target.ns, 'udp-listen', {
    port: LISTEN_PORT,
    'duration-ms': listenMs,
    max: 1,
  });
  const inner = ipv4UdpPacket({
    src,
    dst: target.ipv4,
    srcPort: 40000,
    dstPort: LISTEN_PORT,
    payload: Buffer.from(marker),
  });
  await inject(c, podtunDataDatagram('n2', inner), 3);
  return listener.result;
}

describe.skipIf(skipReason !== undefined)('podtun: injection on the tunnel port', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 1, ipv6: false, mode: 'podtun' });

  it('delivers a well-formed datagram from n2 whose source lies in n2’s subnet (control)', async () => {
    const c = cluster();
    const got = await injectAndListen(c, '10.244.2.99', 'control', 3_000);
    expect(got.datagrams).toBe(1);
    expect(got.sources).toEqual(['10.244.2.99']);
    expect(Buffer.from(got.firstHex, 'hex').toString()).toBe('control');
  });

  it('drops and counts as spoofed a packet from n2 whose source is not in n2’s subnet', async () => {
    const c = cluster();
    const before = await readStatus(c, 1);
    const got = await injectAndListen(c, '10.244.3.99', 'spoofed', 1_500);
    expect(got.datagrams).toBe(0);
    const after = await readStatus(c, 1);
    expect(dropCount(after, 'spoofed') - dropCount(before, 'spoofed')).toBeGreaterThanOrEqual(3);
    const peer = after.peers?.find((p) => p.node === 'n2');
    if (peer?.spoofed !== undefined) expect(peer.spoofed).toBeGreaterThanOrEqual(3);
  });

  it('drops random bytes and truncated datagrams, counts them, and keeps forwarding', async () => {
    const c = cluster();
    const before = await readStatus(c, 1);
    const valid = podtunDataDatagram(
      'n2',
      ipv4UdpPacket({ src: '10.244.2.99', dst: c.pod(1, 0).ipv4, srcPort: 1, dstPort: LISTEN_PORT, payload: Buffer.alloc(64) }),
    );
    const badVersion = Buffer.from(valid);
    badVersion[0] = 9;
    const badType = Buffer.from(valid);
    badType[1] = 77;
    const bad: Buffer[] = [
      randomBytes(1),
      randomBytes(5),
      podtunDataHeader('n2'), // header, no packet
      valid.subarray(0, 12 + 10), // header + half an IPv4 header
      valid.subarray(0, valid.length - 30), // IPv4 total length beyond the datagram
      badVersion,
      badType,
      ...Array.from({ length: 20 }, (_, i) => randomBytes(16 + i * 67)),
    ];
    for (const datagram of bad) await inject(c, datagram);
    expect(c.nodeRunning(1)).toBe(true);
    for (const [from, to] of [
      [c.pod(2, 0), c.pod(1, 0)],
      [c.pod(1, 0), c.pod(3, 0)],
    ] as const) {
      const out = await c.outcome(from.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', to.ipv4]);
      expect(parsePing(out.stdout).received, `${from.name} -> ${to.name}`).toBe(2);
    }
    const after = await readStatus(c, 1);
    expect(junkDrops(after) - junkDrops(before)).toBe(bad.length);
  });
});
