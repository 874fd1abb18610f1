/**
 * podtun end to end, configuration: a tunnel over an IPv6 underlay, and peers added and removed
 * by editing the config file of a running node (no restart).
 *
 * ```
 *   IPv6 underlay:  underlay ns (ul0, fd77::/64)          live reload:  n1 lists n1 n2
 *                  /                \                                    n2 lists n1 n2
 *      n1 [fd77::1]:8285      n2 [fd77::2]:8285                          n3 lists n1 n2 n3
 *      podtun0 mtu 1420       podtun0 mtu 1420               then n1, n2 get n3 added, then removed
 *       p1a                    p2a
 * ```
 */
import { describe, expect, it } from 'vitest';
import { probe, startProbe } from '../../lab/probe.js';
import type { SendResult, SinkResult } from '../../lab/probe.js';
import { readStatus } from '../../lab/podtun-status.js';
import { pollUntil } from '../../lab/shell.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping']) ?? podtunSkipReason();
printSkip('podtun-config.test.ts', skipReason);

/**
 * A 1500-byte IPv6 underlay leaves 1500 - 40 (IPv6) - 8 (UDP) - 32 (sealed: 16 header, 16 tag)
 * for pod packets.
 */
const TUN_MTU_OVER_IPV6 = 1420;

describe.skipIf(skipReason !== undefined)('podtun: tunnel over an IPv6 underlay', () => {
  const cluster = useCluster({
    nodes: 2,
    podsPerNode: 1,
    ipv6: true,
    mode: 'podtun',
    podMtu: TUN_MTU_OVER_IPV6,
    podtun: { underlayIpv6: true },
  });

  it('sizes the TUN for IPv6 encapsulation and carries pod traffic of both families', async () => {
    const c = cluster();
    const link = await c.exec(c.node(1).ns, ['ip', '-o', 'link', 'show', 'podtun0']);
    expect(link.stdout).toContain(`mtu ${TUN_MTU_OVER_IPV6}`);

    const p1 = c.pod(1, 0);
    const p2 = c.pod(2, 0);
    for (const argv of [
      ['ping', '-c', '3', '-i', '0.2', '-W', '2', p2.ipv4],
      ['ping', '-6', '-c', '3', '-i', '0.2', '-W', '2', p2.ipv6 ?? ''],
    ]) {
      const out = await c.outcome(p1.ns, argv);
      expect(parsePing(out.stdout).received, out.stdout).toBe(3);
    }

    const bytes = 32 * 1024 * 1024;
    const sink = await startProbe<SinkResult>(c, p2.ns, 'tcp-sink', { port: 5020, 'timeout-ms': 60_000 });
    const sent = await probe<SendResult>(c, p1.ns, 'tcp-send', { to: p2.ipv4, port: 5020, bytes, seed: 7, 'timeout-ms': 60_000 });
    const got = await sink.result;
    expect(got.bytes).toBe(bytes);
    expect(got.sha256).toBe(sent.sha256);

    const status = await readStatus(c, 1);
    const peer = status.peers?.find((p) => p.node === 'n2');
    expect(peer?.state).toBe('up');
    expect(JSON.stringify(peer)).toContain('[fd77::2]:8285');
  });
});

describe.skipIf(skipReason !== undefined)('podtun: peers follow config edits without a restart', () => {
  const cluster = useCluster({
    nodes: 3,
    podsPerNode: 1,
    ipv6: false,
    mode: 'podtun',
    podtun: { members: (i) => (i === 3 ? [1, 2, 3] : [1, 2]) },
  });

  async function pingOnce(from: number, to: number): Promise<string> {
    const c = cluster();
    const out = await c.outcome(c.pod(from, 0).ns, ['ping', '-c', '1', '-W', '1', c.pod(to, 0).ipv4]);
    return out.stdout;
  }

  it('adds a peer when the file gains it, removes it when the file loses it', { timeout: 60_000 }, async () => {
    const c = cluster();
    expect(await pingOnce(1, 3)).toContain('Destination Net Unreachable');
    const readyLines = (i: number): number => c.readLog(i).split('\n').filter((l) => l.includes('"node ready"')).length;
    expect(readyLines(1)).toBe(1);

    c.setMembers(1, [1, 2, 3]);
    c.setMembers(2, [1, 2, 3]);
    await pollUntil('n1 reaching n3 after the edit', async () => (parsePing(await pingOnce(1, 3)).received === 1 ? true : undefined), 10_000);
    expect(parsePing(await pingOnce(3, 2)).received).toBe(1);

    c.setMembers(1, [1, 2]);
    await pollUntil('n1 dropping n3 after the edit', async () => ((await pingOnce(1, 3)).includes('Destination Net Unreachable') ? true : undefined), 10_000);
    expect(parsePing(await pingOnce(1, 2)).received).toBe(1);
    expect(readyLines(1)).toBe(1);
    expect(c.nodeRunning(1)).toBe(true);
  });

  it('keeps the running config when an edit is invalid', async () => {
    const c = cluster();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(c.node(1).configFile, 'nodeName: n1\nclusterCidrs: [10.244.0.0/16]\nnodes: [{ name: n1, subnets: [10.244.1.5/24] }]\n');
    await pollUntil('the rejection log line', async () => (c.readLog(1).includes('config reload rejected') ? true : undefined), 10_000);
    expect(c.readLog(1)).toContain('host bits set');
    expect(parsePing(await pingOnce(1, 2)).received).toBe(1);
  });
});
