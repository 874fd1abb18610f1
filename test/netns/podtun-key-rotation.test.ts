/**
 * podtun end to end: rotating one node's key (the README's "Rotating a node key", static mode)
 * does not drop the other peers' traffic, and the rotated node is reached again once it runs
 * with its new key.
 *
 * ```
 *              underlay ns (bridge ul0)
 *            /            |             \
 *   n1 p1a ==ping -i 0.1 throughout==> n3 p3a
 *            \
 *             n2 (stopped, new key, every node's list edited, started): p1a -> p2a resumes
 * ```
 */
import { describe, expect, it } from 'vitest';
import { fetchStatusReport } from '../../api/api-client.js';
import { pollUntil, sleep, waitExit } from '../../lab/shell.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping']) ?? podtunSkipReason();
printSkip('podtun-key-rotation.test.ts', skipReason);

const RESUME_LIMIT_MS = 10_000;

describe.skipIf(skipReason !== undefined)('podtun: a node key rotated', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 1, ipv6: false, mode: 'podtun' });

  it('keeps the other peers talking, and reaches the node again under its new key', { timeout: 90_000 }, async () => {
    const c = cluster();
    const p1 = c.pod(1, 0);
    const p2 = c.pod(2, 0);
    const p3 = c.pod(3, 0);
    const before = await c.outcome(p1.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', p2.ipv4]);
    expect(parsePing(before.stdout).received).toBe(2);
    const oldKey = c.node(2).publicKey;

    // 150 pings at 0.1 s: 15 s, longer than stop + rotation + reload + start below.
    const ping = c.spawnIn(p1.ns, ['ping', '-i', '0.1', '-c', '150', '-W', '1', p3.ipv4]);
    let pingOut = '';
    ping.stdout?.setEncoding('utf8');
    ping.stdout?.on('data', (d: string) => {
      pingOut += d;
    });
    await sleep(1_000);
    await c.stopNode(2);
    c.rotateNodeKey(2);
    expect(c.node(2).publicKey).not.toBe(oldKey);
    await sleep(1_000); // n1 and n3 reload their edited lists
    const startedAt = Date.now();
    await c.startNode(2);
    await pollUntil('p1a -> p2a answers under n2\'s new key', async () => {
      const out = await c.outcome(p1.ns, ['ping', '-c', '1', '-W', '1', p2.ipv4]);
      return parsePing(out.stdout).received === 1 ? true : undefined;
    }, RESUME_LIMIT_MS, 50);
    const resumedMs = Date.now() - startedAt;

    expect(await waitExit(ping, 30_000)).toBe(true);
    const summary = parsePing(pingOut);
    process.stdout.write(`  key rotation: p1a -> p2a back ${resumedMs} ms after n2 started; p1a -> p3a ${summary.received}/${summary.transmitted}\n`);
    expect(summary.transmitted).toBe(150);
    expect(summary.transmitted - summary.received).toBe(0);

    // n1 holds a fresh session with n2 (under the new key) and an older one with n3.
    const status = await fetchStatusReport(c.node(1).statusSocket);
    const n2 = status.peers.find((p) => p.node === 'n2');
    const n3 = status.peers.find((p) => p.node === 'n3');
    expect(n2).toMatchObject({ state: 'up', sealed: true });
    expect(n2?.lastHandshakeAgeMs).toBeLessThan(Date.now() - startedAt + 1_000);
    expect(n3).toMatchObject({ state: 'up', sealed: true });
  });
});
