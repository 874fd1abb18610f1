/**
 * Why a peer is not up, as an operator reads it: `podtun status` (the table, the detail line
 * under it, the drops line), `/metrics` and `podtun doctor` on n1 name the cause, say when the
 * peer was last heard from, and show no RTT for a peer that is down.
 *
 * ```
 *   n1 (read here) --- n2      fine, then stopped: "no answer on udp" / "connection refused on ws"
 *        \------------ n3      another cluster secret: "authentication failed"
 * ```
 * Once over UDP with `encryption: none` (the tagged probes fail), once over WebSocket (sealed,
 * the default: n3's server answers 401 to n1's dial, n1 refuses n3's).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fetchApi } from '../../api/api-client.js';
import { TUN_NAME } from '../../lab/cluster.js';
import type { Cluster } from '../../lab/cluster.js';
import { peerView, readStatus, waitPeers } from '../../lab/podtun-status.js';
import { pollUntil } from '../../lab/shell.js';
import { failingChecks, runDoctor, showDoctor } from './doctor-run.js';
import { netnsSkipReason, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping']) ?? podtunSkipReason();
printSkip('podtun-down-reasons.test.ts', skipReason);

const WRONG_SECRET = 'not-the-cluster-secret-0123456789';

/** n1's `podtun status`, through the real CLI. */
async function statusText(c: Cluster): Promise<string> {
  const r = await c.outcome(c.node(1).ns, ['node', join(c.repoRoot, 'bin', 'podtun.js'), 'status', '--socket', c.node(1).statusSocket]);
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout;
}

async function metricsText(c: Cluster): Promise<string> {
  const reply = await fetchApi(c.node(1).statusSocket, '/metrics');
  expect(reply.status).toBe(200);
  return String(reply.body);
}

/** n1 names `peer` down for `reason` in status; waits for it (a reason needs a failed dial or probe). */
async function waitReason(c: Cluster, peer: string, reason: string): Promise<void> {
  await pollUntil(`n1 to call ${peer} "${reason}"`, async () => {
    const p = peerView(await readStatus(c, 1), peer);
    if (p?.state !== 'up' && p?.downReason === reason) return true;
    throw new Error(`${peer} is ${p?.state ?? 'absent'} (${p?.downReason ?? 'no reason'})`);
  }, 15_000, 250);
}

/** What every view of n1 says of n3 (wrong secret) and then of n2 (stopped). */
async function checkViews(c: Cluster, stopped: string): Promise<void> {
  await waitReason(c, 'n3', 'authentication failed');
  const text = await statusText(c);
  process.stdout.write(`  n1 status:\n${text.replace(/^/gm, '    ')}`);
  expect(text).toMatch(/^n3 +\S+ +down \(authentication failed\)/m);
  expect(text).toMatch(/^ {2}n3: authentication failed: \S/m);
  expect(await metricsText(c)).toMatch(/^podtun_peer_down_reason\{peer="n3",reason="authentication failed"\} 1$/m);
  const doctor = await runDoctor(c, true);
  const n3 = doctor.checks.find((k) => k.layer === 'peer:n3' && k.name === 'state');
  expect(n3?.ok, showDoctor(doctor)).toBe(false);
  expect(n3?.detail).toContain('authentication failed');
  expect(n3?.hint).toContain('cluster secret');
  expect(failingChecks(doctor).filter((f) => f.startsWith('peer:n2')), showDoctor(doctor)).toEqual([]);

  // n2 answered until now: its RTT is shown. Stopped, it is down for its reason, heard from
  // a while ago, and its last RTT is no longer shown as current.
  const before = peerView(await readStatus(c, 1), 'n2');
  expect(before?.rttMs).toBeGreaterThan(0);
  await c.stopNode(2);
  await waitReason(c, 'n2', stopped);
  // Long enough that "last heard" must have stopped being refreshed.
  await new Promise((r) => setTimeout(r, 1500));
  const after = peerView(await readStatus(c, 1), 'n2');
  process.stdout.write(`  n2 stopped: ${after?.state} (${after?.downReason}: ${after?.downDetail}), last heard ${after?.lastHeardAgeMs} ms ago\n`);
  expect(after?.rttMs).toBeUndefined();
  expect(after?.lastHeardAgeMs).toBeGreaterThan(1000);
  const metrics = await metricsText(c);
  expect(metrics).toMatch(new RegExp(`^podtun_peer_down_reason\\{peer="n2",reason="${stopped}"\\} 1$`, 'm'));
  expect(metrics).not.toMatch(/^podtun_peer_rtt_seconds\{peer="n2"/m);
  expect(metrics).toMatch(/^podtun_peer_last_heard_seconds\{peer="n2",transport="\w+"\} \d/m);
  const stoppedDoctor = await runDoctor(c, true);
  const n2 = stoppedDoctor.checks.find((k) => k.layer === 'peer:n2' && k.name === 'state');
  expect(n2?.detail, showDoctor(stoppedDoctor)).toMatch(new RegExp(`^down: ${stopped}.*last heard`));
  expect(await statusText(c)).toMatch(new RegExp(`^n2 +\\S+ +down \\(${stopped}\\) +\\S+ +- +\\d+s ago`, 'm'));
}

describe.skipIf(skipReason !== undefined)('podtun down reasons over UDP, encryption none (3 nodes, n3 with another secret)', () => {
  const cluster = useCluster({
    nodes: 3,
    podsPerNode: 1,
    ipv6: false,
    mode: 'podtun',
    podtun: { transport: 'udp', config: { encryption: 'none' }, secretFor: (i) => (i === 3 ? WRONG_SECRET : undefined) },
  });

  it('an idle node of an IPv4-only cluster has no link chatter of its own to drop: IPv6 is off on its TUN', async () => {
    const c = cluster();
    await waitPeers(c, 1, ['n2'], { transport: 'udp' }, 15_000);
    // The kernel's chatter would come within a second or two of the link going up.
    await new Promise((r) => setTimeout(r, 3000));
    for (const i of [1, 2]) {
      const drops = (await readStatus(c, i)).drops;
      expect({ node: i, noRoute: drops['no_route'] ?? 0, linkLocal: drops['link_local'] ?? 0 }).toEqual({ node: i, noRoute: 0, linkLocal: 0 });
    }
    const tunAddresses = await c.exec(c.node(1).ns, ['ip', '-6', 'addr', 'show', 'dev', TUN_NAME]);
    expect(tunAddresses.stdout).toBe('');
  });

  it('names n3 "authentication failed" and a stopped n2 "no answer on udp"; unauthenticated drops on the drops line', { timeout: 90_000 }, async () => {
    const c = cluster();
    await waitPeers(c, 1, ['n2'], { transport: 'udp' }, 15_000);
    await checkViews(c, 'no answer on udp');
    expect(await statusText(c)).toMatch(/^drops: .*\bunauthenticated \d+/m);
  });
});

describe.skipIf(skipReason !== undefined)('podtun down reasons over WebSocket, sealed (3 nodes, n3 with another secret)', () => {
  const cluster = useCluster({
    nodes: 3,
    podsPerNode: 1,
    ipv6: false,
    mode: 'podtun',
    podtun: { transport: 'ws', secretFor: (i) => (i === 3 ? WRONG_SECRET : undefined) },
  });

  it('names n3 "authentication failed" and a stopped n2 "connection refused on ws"', { timeout: 90_000 }, async () => {
    const c = cluster();
    await waitPeers(c, 1, ['n2'], { transport: 'ws' }, 15_000);
    await checkViews(c, 'connection refused on ws');
  });
});
