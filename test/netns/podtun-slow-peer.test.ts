/**
 * podtun with a peer that stops reading: n2's podtun is frozen (SIGSTOP) while n1's pod floods
 * n2's pod with UDP over WebSocket (UDP blocked on every underlay). n1 must neither queue
 * without bound (its RSS, sampled throughout, stays within a bound) nor stall: it drops and
 * counts (`congested`), and n1 <-> n3 traffic goes on meanwhile. n2 gets SIGCONT at the end.
 *
 * ```
 *   p1a 10.244.1.10 --udp-flood 10 s--> n1 ==ws==> n2 (SIGSTOP: reads nothing) -> p2a
 *                                         \
 *   p1a <== ping -i 0.2 throughout ==>  n1 ==ws==> n3 -> p3a 10.244.3.10
 *   (UDP :8285 dropped on every node; n1's VmRSS sampled every 200 ms)
 * ```
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { probe } from '../../lab/probe.js';
import { readStatus, transportStat, waitPeers } from '../../lab/podtun-status.js';
import { pollUntil, sleep, waitExit } from '../../lab/shell.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping', 'nft']) ?? podtunSkipReason();
printSkip('podtun-slow-peer.test.ts', skipReason);

const FLOOD_MS = 10_000;
const RSS_GROWTH_LIMIT_KIB = 64 * 1024;

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kib);
}

describe.skipIf(skipReason !== undefined)('podtun: a WebSocket peer that stops reading (3 nodes)', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 1, ipv6: false, mode: 'podtun', startNodes: false });

  beforeAll(async () => {
    const c = cluster();
    for (const node of c.nodes()) await c.blockUdp(node.index);
    await Promise.all(c.nodes().map((node) => c.startNode(node.index)));
    await waitPeers(c, 1, ['n2', 'n3'], { transport: 'ws' }, 20_000);
  });

  it('keeps n1’s memory bounded, counts congestion drops, and keeps n1 <-> n3 going', { timeout: 60_000 }, async () => {
    const c = cluster();
    const pid = c.nodePid(1);
    if (pid === undefined) throw new Error('n1 not running');
    const p1 = c.pod(1, 0);
    const before = await readStatus(c, 1);
    const congested = (s: typeof before): number => transportStat(s, 'ws.drop.congested');
    const baseline = rssKiB(pid);

    const ping = c.spawnIn(p1.ns, ['ping', '-i', '0.2', '-c', String(Math.round((FLOOD_MS + 3_000) / 200)), '-W', '1', c.pod(3, 0).ipv4]);
    let pingOut = '';
    ping.stdout?.setEncoding('utf8');
    ping.stdout?.on('data', (d: string) => {
      pingOut += d;
    });
    let peak = baseline;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssKiB(pid));
      } catch {
        // n1 gone: the assertions below say so
      }
    }, 200);
    try {
      expect(c.signalNode(2, 'SIGSTOP')).toBe(true);
      await sleep(500);
      const flood = await probe<{ datagrams: number; bytes: number }>(c, p1.ns, 'udp-flood', {
        to: c.pod(2, 0).ipv4,
        port: 9,
        size: 1200,
        'duration-ms': FLOOD_MS,
        'timeout-ms': FLOOD_MS + 10_000,
      });
      expect(await waitExit(ping, 10_000)).toBe(true);
      await sleep(500);
      clearInterval(sampler);
      const after = await readStatus(c, 1);
      const summary = parsePing(pingOut);
      process.stdout.write(
        `  flood ${flood.datagrams} datagrams; n1 RSS ${Math.round(baseline / 1024)} -> peak ${Math.round(peak / 1024)} MiB; ` +
          `congested drops ${congested(after) - congested(before)}; p1a -> p3a ${summary.received}/${summary.transmitted}\n`,
      );
      expect(c.nodeRunning(1)).toBe(true);
      expect(peak - baseline).toBeLessThan(RSS_GROWTH_LIMIT_KIB);
      expect(congested(after) - congested(before), JSON.stringify(after['transport'])).toBeGreaterThan(0);
      expect(summary.transmitted).toBeGreaterThan(0);
      expect(summary.received / summary.transmitted).toBeGreaterThanOrEqual(0.9);
    } finally {
      clearInterval(sampler);
      c.signalNode(2, 'SIGCONT');
    }
    await pollUntil(
      'p1a -> p2a after SIGCONT',
      async () => {
        const out = await c.outcome(p1.ns, ['ping', '-c', '1', '-W', '1', c.pod(2, 0).ipv4]);
        return parsePing(out.stdout).received === 1 ? true : undefined;
      },
      20_000,
      200,
    );
  });
});
