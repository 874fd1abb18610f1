/**
 * podtun end to end: pods on three nodes reach each other both ways, over IPv4 and IPv6, by
 * ping and by TCP, and see each other's own addresses (no NAT).
 *
 * ```
 *                  underlay ns (bridge ul0, 192.168.77.0/24)
 *               /               |                \
 *    n1: podtun run        n2: podtun run        n3: podtun run      (UDP :8285)
 *    podtun0 + cni0        podtun0 + cni0        podtun0 + cni0
 *     p1a   p1b             p2a   p2b             p3a   p3b
 *    10.244.1.10/.11       10.244.2.10/.11       10.244.3.10/.11     (+ fd00:10:244:N::a/b)
 * ```
 */
import { describe, expect, it } from 'vitest';
import { TUN_NAME } from '../../lab/cluster.js';
import { readStatus } from '../../lab/podtun-status.js';
import { probe, startProbe } from '../../lab/probe.js';
import type { ProbeServer, RttResult, SendResult, SinkResult } from '../../lab/probe.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping']) ?? podtunSkipReason();
printSkip('podtun-reach.test.ts', skipReason);

const ECHO_PORT = 7000;

describe.skipIf(skipReason !== undefined)('podtun: reachability across 3 nodes (dual stack)', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 2, ipv6: true, mode: 'podtun' });

  it("counts none of the kernel's own IPv6 chatter on the TUN as no_route (no link-local address: no DAD, no RS)", async () => {
    const c = cluster();
    // The chatter would come within a second or two of the TUN going up.
    await new Promise((r) => setTimeout(r, 2000));
    for (const i of [1, 2, 3]) {
      const status = await readStatus(c, i);
      expect({ node: i, noRoute: status.drops['no_route'] ?? 0 }).toEqual({ node: i, noRoute: 0 });
    }
    const tun = await c.exec(c.node(1).ns, ['ip', '-6', 'addr', 'show', 'dev', TUN_NAME]);
    expect(tun.stdout).toContain('fd00:10:244:1::');
    expect(tun.stdout).not.toMatch(/fe80:/);
  });

  it('answers ping between every pair of pods on different nodes, IPv4 and IPv6', async () => {
    const c = cluster();
    const pods = c.pods();
    const pairs = pods.flatMap((from) => pods.filter((to) => to.node !== from.node).map((to) => ({ from, to })));
    const results = await Promise.all(
      pairs.flatMap(({ from, to }) =>
        [
          ['ping', '-c', '2', '-i', '0.2', '-W', '2', to.ipv4],
          ['ping', '-6', '-c', '2', '-i', '0.2', '-W', '2', to.ipv6 ?? ''],
        ].map(async (argv) => {
          const out = await c.outcome(from.ns, argv);
          return { pair: `${from.name} -> ${argv[argv.length - 1] ?? ''}`, received: parsePing(out.stdout).received };
        }),
      ),
    );
    expect(results.filter((r) => r.received !== 2)).toEqual([]);
  });

  it('carries TCP round trips between every pair of pods on different nodes, IPv4 and IPv6', async () => {
    const c = cluster();
    const pods = c.pods();
    const servers: ProbeServer<unknown>[] = [];
    try {
      for (const pod of pods) {
        servers.push(await startProbe(c, pod.ns, 'echo-server', { port: ECHO_PORT, 'timeout-ms': 60_000 }));
      }
      const failures: string[] = [];
      for (const from of pods) {
        const targets = pods.filter((to) => to.node !== from.node).flatMap((to) => [to.ipv4, to.ipv6 ?? '']);
        const results = await Promise.allSettled(
          targets.map((addr) =>
            probe<RttResult>(c, from.ns, 'tcp-rtt', { to: addr, port: ECHO_PORT, count: 5, 'timeout-ms': 10_000 }),
          ),
        );
        results.forEach((r, idx) => {
          if (r.status === 'rejected' || r.value.count !== 5) {
            failures.push(`${from.name} -> ${targets[idx] ?? ''}: ${r.status === 'rejected' ? String(r.reason) : 'short'}`);
          }
        });
      }
      expect(failures).toEqual([]);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  });

  it('delivers with the sender pod’s own address as source (no NAT), IPv4 and IPv6', async () => {
    const c = cluster();
    const cases = [
      { from: c.pod(1, 0), to: c.pod(2, 1), v6: false },
      { from: c.pod(3, 1), to: c.pod(1, 1), v6: false },
      { from: c.pod(2, 0), to: c.pod(3, 0), v6: true },
      { from: c.pod(1, 1), to: c.pod(3, 1), v6: true },
    ];
    for (const { from, to, v6 } of cases) {
      const dst = v6 ? to.ipv6 ?? '' : to.ipv4;
      const src = v6 ? from.ipv6 ?? '' : from.ipv4;
      const sink = await startProbe<SinkResult>(c, to.ns, 'tcp-sink', { port: 5003 });
      const sent = await probe<SendResult>(c, from.ns, 'tcp-send', { to: dst, port: 5003, bytes: 1 << 20, seed: 11 });
      const got = await sink.result;
      expect(sent.localAddress).toBe(src);
      expect(got.peerAddress).toBe(src);
      expect(got.sha256).toBe(sent.sha256);
    }
  });
});
