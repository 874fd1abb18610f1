/**
 * The harness itself, without podtun: the topology is right, the kernel baselines (plain routing,
 * flannel-style VXLAN) carry pod traffic, and teardown leaves nothing behind.
 *
 * ```
 *                  underlay ns (bridge ul0, 192.168.77.0/24, fd77::/64)
 *               /               |                \
 *    node ns n1            node ns n2           node ns n3
 *    routes 10.244.2.0/24 via 192.168.77.2, ... (kernel-routing) | vxlan0 VNI 1 (kernel-vxlan)
 *    bridge cni0 10.244.N.1/24, fd00:10:244:N::1/64
 *      |   \
 *    pod ns p1a  p1b     (10.244.N.(10+k), fd00:10:244:N::(10+k))
 * ```
 */
import { describe, expect, it } from 'vitest';
import { createCluster, findRepoRoot, namespacesOfRun } from '../../lab/cluster.js';
import { ensureProbeAgent, probe, startProbe } from '../../lab/probe.js';
import type { SendResult, SinkResult } from '../../lab/probe.js';
import { runIn } from '../../lab/shell.js';
import { netnsSkipReason, parsePing, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping', 'bridge']);
printSkip('harness.test.ts', skipReason);

describe.skipIf(skipReason !== undefined)('netns harness, kernel routing (3 nodes x 2 pods, dual stack)', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 2, ipv6: true, mode: 'kernel-routing' });

  it('gives the root namespace nothing in the test ranges', async () => {
    const { stdout } = await runIn(null, ['ip', '-o', 'addr', 'show']);
    expect(stdout).not.toMatch(/192\.168\.77\.|10\.244\.|fd77:|fd00:10:244:/);
    const routes = await runIn(null, ['ip', 'route', 'show']);
    expect(routes.stdout).not.toMatch(/192\.168\.77\.|10\.244\./);
    const routes6 = await runIn(null, ['ip', '-6', 'route', 'show']);
    expect(routes6.stdout).not.toMatch(/fd77:|fd00:10:244:/);
  });

  it('lets every pod ping every other pod over IPv4 and IPv6', async () => {
    const c = cluster();
    const pods = c.pods();
    const checks = pods.flatMap((from) =>
      pods
        .filter((to) => to !== from)
        .flatMap((to) => [
          { from, to: to.ipv4, argv: ['ping', '-c', '1', '-W', '2', to.ipv4] },
          { from, to: to.ipv6 ?? '', argv: ['ping', '-6', '-c', '1', '-W', '2', to.ipv6 ?? ''] },
        ]),
    );
    const results = await Promise.all(
      checks.map(async (check) => {
        const out = await c.outcome(check.from.ns, check.argv);
        return { pair: `${check.from.name} -> ${check.to}`, received: parsePing(out.stdout).received };
      }),
    );
    expect(results.filter((r) => r.received !== 1)).toEqual([]);
  });

  it('carries a TCP stream across nodes intact, without NAT', async () => {
    const c = cluster();
    const from = c.pod(1, 0);
    const to = c.pod(3, 1);
    for (const [src, dst] of [
      [from.ipv4, to.ipv4],
      [from.ipv6 ?? '', to.ipv6 ?? ''],
    ] as const) {
      const sink = await startProbe<SinkResult>(c, to.ns, 'tcp-sink', { port: 5001 });
      const sent = await probe<SendResult>(c, from.ns, 'tcp-send', {
        to: dst,
        port: 5001,
        bytes: 8 * 1024 * 1024,
        seed: 7,
      });
      const got = await sink.result;
      expect(got.bytes).toBe(sent.bytes);
      expect(got.sha256).toBe(sent.sha256);
      expect(got.peerAddress).toBe(src);
    }
  });
});

describe.skipIf(skipReason !== undefined)('netns harness, kernel VXLAN (2 nodes x 1 pod)', () => {
  const cluster = useCluster({ nodes: 2, podsPerNode: 1, ipv6: true, mode: 'kernel-vxlan' });

  it('reaches the other node’s pod over IPv4 and IPv6 through vxlan0', async () => {
    const c = cluster();
    const a = c.pod(1, 0);
    const b = c.pod(2, 0);
    expect(parsePing((await c.outcome(a.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', b.ipv4])).stdout).received).toBe(2);
    expect(
      parsePing((await c.outcome(a.ns, ['ping', '-6', '-c', '2', '-i', '0.2', '-W', '2', b.ipv6 ?? ''])).stdout).received,
    ).toBe(2);
    const route = await c.exec(c.node(1).ns, ['ip', 'route', 'get', b.ipv4]);
    expect(route.stdout).toContain('dev vxlan0');
    const sink = await startProbe<SinkResult>(c, b.ns, 'tcp-sink', { port: 5002 });
    const sent = await probe<SendResult>(c, a.ns, 'tcp-send', { to: b.ipv4, port: 5002, bytes: 4 << 20, seed: 3 });
    expect((await sink.result).sha256).toBe(sent.sha256);
  });
});

describe.skipIf(skipReason !== undefined)('netns harness, mode none and teardown', () => {
  it('connects pods of one node only, and destroy() leaves no namespace', async () => {
    await ensureProbeAgent(findRepoRoot());
    const c = await createCluster({ nodes: 2, podsPerNode: 2, ipv6: false, mode: 'none' });
    try {
      expect(namespacesOfRun(c.id).sort()).toEqual(
        [c.underlayNs, ...c.nodes().map((n) => n.ns), ...c.pods().map((p) => p.ns)].sort(),
      );
      const same = await c.outcome(c.pod(1, 0).ns, ['ping', '-c', '1', '-W', '2', c.pod(1, 1).ipv4]);
      expect(parsePing(same.stdout).received).toBe(1);
      const across = await c.outcome(c.pod(1, 0).ns, ['ping', '-c', '1', '-W', '1', c.pod(2, 0).ipv4]);
      expect(parsePing(across.stdout).received).toBe(0);
      // A process left running inside a namespace must not keep it alive.
      c.spawnIn(c.pod(2, 0).ns, ['sleep', '60']);
    } finally {
      await c.destroy();
      await c.destroy();
    }
    expect(namespacesOfRun(c.id)).toEqual([]);
  });
});
