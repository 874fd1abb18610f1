/**
 * podtun end to end: one node's podtun is killed with SIGKILL and started again. Traffic
 * between the other two nodes never stops; traffic to the restarted node resumes within 5 s
 * of its start.
 *
 * ```
 *              underlay ns (bridge ul0)
 *            /            |             \
 *   n1 (kill -9, start)   n2              n3
 *     p1a 10.244.1.10     p2a 10.244.2.10 ==ping -i 0.2 throughout==> p3a 10.244.3.10
 *         ^---- ping from p2a until it answers (< 5 s after start) ----'
 * ```
 */
import { describe, expect, it } from 'vitest';
import { pollUntil, sleep, waitExit } from '../../lab/shell.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping']) ?? podtunSkipReason();
printSkip('podtun-restart.test.ts', skipReason);

const RESUME_LIMIT_MS = 5_000;

describe.skipIf(skipReason !== undefined)('podtun: a node killed and restarted', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 1, ipv6: false, mode: 'podtun' });

  it('keeps the other nodes talking and resumes within 5 s of the restart', { timeout: 90_000 }, async () => {
    const c = cluster();
    const p1 = c.pod(1, 0);
    const p2 = c.pod(2, 0);
    const p3 = c.pod(3, 0);
    // 75 pings at 0.2 s: 15 s, longer than kill + restart + resume below.
    const ping = c.spawnIn(p2.ns, ['ping', '-i', '0.2', '-c', '75', '-W', '1', p3.ipv4]);
    let pingOut = '';
    ping.stdout?.setEncoding('utf8');
    ping.stdout?.on('data', (d: string) => {
      pingOut += d;
    });

    await sleep(1_000);
    await c.killNode(1);
    const down = await c.outcome(p2.ns, ['ping', '-c', '1', '-W', '1', p1.ipv4]);
    expect(parsePing(down.stdout).received).toBe(0);
    await sleep(1_000);

    const startedAt = Date.now();
    await c.startNode(1);
    const readyMs = Date.now() - startedAt;
    await pollUntil(
      'p2a -> p1a answers after the restart',
      async () => {
        const out = await c.outcome(p2.ns, ['ping', '-c', '1', '-W', '1', p1.ipv4]);
        return parsePing(out.stdout).received === 1 ? true : undefined;
      },
      RESUME_LIMIT_MS * 2,
      50,
    );
    const resumedMs = Date.now() - startedAt;
    const back = await c.outcome(p1.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', p3.ipv4]);
    expect(parsePing(back.stdout).received).toBe(2);

    expect(await waitExit(ping, 30_000)).toBe(true);
    const summary = parsePing(pingOut);
    process.stdout.write(
      `  restart: ready after ${readyMs} ms, p2a -> p1a after ${resumedMs} ms; p2a -> p3a ${summary.received}/${summary.transmitted}\n`,
    );
    expect(summary.transmitted).toBe(75);
    expect(summary.transmitted - summary.received).toBe(0);
    expect(resumedMs).toBeLessThan(RESUME_LIMIT_MS);
  });
});
