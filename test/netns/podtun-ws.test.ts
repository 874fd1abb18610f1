/**
 * podtun end to end over WebSocket only: every node's underlay drops UDP (nftables), peers are
 * left at the default transport (auto) and end up on WebSocket by themselves. Pods reach each
 * other by ping (IPv4, IPv6) and TCP; a 256 MiB stream keeps its SHA-256.
 *
 * ```
 *                  underlay ns (bridge ul0, 192.168.77.0/24)      UDP :8285 dropped on every node
 *               /               |                \
 *    n1 podtun0            n2 podtun0            n3 podtun0
 *    ws :8443 <==TCP==>    ws :8443 <==TCP==>    ws :8443         (transport auto -> 'ws')
 *     p1a 10.244.1.10       p2a 10.244.2.10       p3a 10.244.3.10  (+ fd00:10:244:N::a)
 * ```
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { probe, startProbe } from '../../lab/probe.js';
import type { ProbeServer, RttResult, SendResult, SinkResult } from '../../lab/probe.js';
import { peersOf, readStatus, transportStatSum, waitPeers } from '../../lab/podtun-status.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping', 'nft']) ?? podtunSkipReason();
printSkip('podtun-ws.test.ts', skipReason);

const ECHO_PORT = 7000;
const SINK_PORT = 5020;
const BYTES = 256 * 1024 * 1024;

describe.skipIf(skipReason !== undefined)('podtun over WebSocket when UDP is blocked everywhere (3 nodes)', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 1, ipv6: true, mode: 'podtun', startNodes: false });

  beforeAll(async () => {
    const c = cluster();
    for (const node of c.nodes()) await c.blockUdp(node.index);
    await Promise.all(c.nodes().map((node) => c.startNode(node.index)));
  });

  it('brings every peer up on transport ws', async () => {
    const c = cluster();
    for (const node of c.nodes()) {
      const ms = await waitPeers(c, node.index, peersOf(c, node.index), { transport: 'ws' }, 20_000);
      process.stdout.write(`  ${node.name}: peers up over ws after ${ms} ms more\n`);
    }
  });

  it('answers ping between pods on different nodes, IPv4 and IPv6', async () => {
    const c = cluster();
    const pods = c.pods();
    const results = await Promise.all(
      pods.flatMap((from) =>
        pods
          .filter((to) => to.node !== from.node)
          .flatMap((to) => [
            ['ping', '-c', '2', '-i', '0.2', '-W', '2', to.ipv4],
            ['ping', '-6', '-c', '2', '-i', '0.2', '-W', '2', to.ipv6 ?? ''],
          ])
          .map(async (argv) => {
            const out = await c.outcome(from.ns, argv);
            return { pair: `${from.name} -> ${argv[argv.length - 1] ?? ''}`, received: parsePing(out.stdout).received };
          }),
      ),
    );
    expect(results.filter((r) => r.received !== 2)).toEqual([]);
  });

  it('carries TCP round trips between pods on different nodes, IPv4 and IPv6', async () => {
    const c = cluster();
    const pods = c.pods();
    const servers: ProbeServer<unknown>[] = [];
    try {
      for (const pod of pods) servers.push(await startProbe(c, pod.ns, 'echo-server', { port: ECHO_PORT, 'timeout-ms': 60_000 }));
      const failures: string[] = [];
      for (const from of pods) {
        const targets = pods.filter((to) => to.node !== from.node).flatMap((to) => [to.ipv4, to.ipv6 ?? '']);
        const results = await Promise.allSettled(
          targets.map((to) => probe<RttResult>(c, from.ns, 'tcp-rtt', { to, port: ECHO_PORT, count: 5, 'timeout-ms': 10_000 })),
        );
        results.forEach((r, idx) => {
          if (r.status === 'rejected' || r.value.count !== 5) failures.push(`${from.name} -> ${targets[idx] ?? ''}`);
        });
      }
      expect(failures).toEqual([]);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  });

  it('carries 256 MiB n1 -> n3 with the same SHA-256', { timeout: 180_000 }, async () => {
    const c = cluster();
    const from = c.pod(1, 0);
    const to = c.pod(3, 0);
    const sink = await startProbe<SinkResult>(c, to.ns, 'tcp-sink', { port: SINK_PORT, 'timeout-ms': 150_000 });
    const sent = await probe<SendResult>(c, from.ns, 'tcp-send', {
      to: to.ipv4,
      port: SINK_PORT,
      bytes: BYTES,
      seed: 21,
      'timeout-ms': 150_000,
    });
    const got = await sink.result;
    expect(got.bytes).toBe(BYTES);
    expect(got.sha256).toBe(sent.sha256);
    expect(got.peerAddress).toBe(from.ipv4);
    process.stdout.write(`  256 MiB over ws: ${((BYTES * 8) / sent.seconds / 1e9).toFixed(2)} Gbit/s\n`);
  });

  it('still shows every peer on ws, with WebSocket counters moving', async () => {
    const c = cluster();
    for (const node of c.nodes()) {
      const status = await readStatus(c, node.index);
      for (const peer of peersOf(c, node.index)) {
        expect(status.peers?.find((p) => p.node === peer)?.transport, `${node.name} -> ${peer}`).toBe('ws');
      }
      expect(transportStatSum(status, /^ws\./), `${node.name} ws.* counters`).toBeGreaterThan(0);
    }
  });
});
