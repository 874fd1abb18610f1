/**
 * podtun end to end: a 256 MiB TCP stream between pods on different nodes arrives with the
 * same SHA-256. Offloads are on inside podtun (TSO super-packets split to MTU, UDP GSO/GRO,
 * re-merged before the TUN write): a split, merge or checksum bug corrupts data silently, and
 * only a verified payload catches it.
 *
 * ```
 *   p1a 10.244.1.10 -- cni0 -- n1 podtun0 ==UDP 8285== n2 podtun0 -- cni0 -- p2a 10.244.2.10
 *                               (underlay ns, bridge ul0, 192.168.77.0/24)
 * ```
 */
import { describe, expect, it } from 'vitest';
import { probe, startProbe } from '../../lab/probe.js';
import type { SendResult, SinkResult } from '../../lab/probe.js';
import { netnsSkipReason, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason() ?? podtunSkipReason();
printSkip('podtun-transfer.test.ts', skipReason);

const BYTES = 256 * 1024 * 1024;

describe.skipIf(skipReason !== undefined)('podtun: 256 MiB TCP transfers arrive intact', () => {
  const cluster = useCluster({ nodes: 2, podsPerNode: 1, ipv6: true, mode: 'podtun' });

  const cases = [
    { name: 'n1 -> n2 over IPv4', from: 1, to: 2, v6: false, seed: 1 },
    { name: 'n2 -> n1 over IPv4', from: 2, to: 1, v6: false, seed: 2 },
    { name: 'n1 -> n2 over IPv6', from: 1, to: 2, v6: true, seed: 3 },
  ];
  for (const tc of cases) {
    it(tc.name, { timeout: 180_000 }, async () => {
      const c = cluster();
      const from = c.pod(tc.from, 0);
      const to = c.pod(tc.to, 0);
      const sink = await startProbe<SinkResult>(c, to.ns, 'tcp-sink', { port: 5010, 'timeout-ms': 150_000 });
      const sent = await probe<SendResult>(c, from.ns, 'tcp-send', {
        to: tc.v6 ? to.ipv6 ?? '' : to.ipv4,
        port: 5010,
        bytes: BYTES,
        seed: tc.seed,
        'timeout-ms': 150_000,
      });
      const got = await sink.result;
      expect(sent.bytes).toBe(BYTES);
      expect(got.bytes).toBe(BYTES);
      expect(got.sha256).toBe(sent.sha256);
      process.stdout.write(`  ${tc.name}: ${((BYTES * 8) / sent.seconds / 1e9).toFixed(2)} Gbit/s\n`);
    });
  }
});
