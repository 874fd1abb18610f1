/**
 * Two static configs that disagree on who owns a subnet: n1's file says n2 owns 10.244.9.0/24,
 * which n2's own file does not claim (it claims 10.244.2.0/24). Both ends are up while pods'
 * pings between them fail: nothing said why before. Now each node's probes carry a digest of
 * what it owns and of what it routes to the receiver, and the disagreement is named on both
 * sides: in status (CLI and JSON), /metrics, the log (warn, with this side's view in full) and
 * doctor. n3's configs agree with everyone's: it shows nothing.
 *
 * ```
 *   n1 (nodes[n2].subnets: 10.244.9.0/24) ---- n2 (claims 10.244.2.0/24)
 *     \---------------------------- n3 ---------------------------/   (all agree)
 * ```
 * Once over sealed UDP (the default), once over WebSocket.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fetchApi } from '../../api/api-client.js';
import type { Cluster } from '../../lab/cluster.js';
import { logEntries, peerView, readStatus, waitPeers } from '../../lab/podtun-status.js';
import { pollUntil } from '../../lab/shell.js';
import type { TransportChoice } from '../../lab/cluster.js';
import { runDoctor, showDoctor } from './doctor-run.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping', 'curl']) ?? podtunSkipReason();
printSkip('podtun-ownership.test.ts', skipReason);

const ELSEWHERE = '10.244.9.0/24';
/** n1's dashboard, inside its namespace. */
const DASHBOARD = '127.0.0.1:9403';

function disagreeingCluster(transport: TransportChoice | undefined): () => Cluster {
  return useCluster({
    nodes: 3,
    podsPerNode: 1,
    ipv6: false,
    mode: 'podtun',
    podtun: {
      ...(transport === undefined ? {} : { transport }),
      peerOverrides: (i, peer) => (i === 1 && peer === 2 ? { subnets: [ELSEWHERE] } : {}),
      nodeOverrides: (i) => (i === 1 ? { dashboard: { listen: DASHBOARD } } : {}),
    },
  });
}

async function mismatchOf(c: Cluster, i: number, peer: string): Promise<string> {
  return pollUntil(`n${i} to name its disagreement with ${peer}`, async () => peerView(await readStatus(c, i), peer)?.ownershipMismatch, 15_000, 250);
}

async function checkBothSides(c: Cluster, transport: string): Promise<void> {
  await waitPeers(c, 1, ['n2', 'n3'], { transport }, 20_000);
  await waitPeers(c, 2, ['n1', 'n3'], { transport }, 20_000);
  // Both up, and the pods do not reach each other: the failure this names.
  const ping = await c.outcome(c.pod(1, 0).ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', c.pod(2, 0).ipv4]);
  expect(parsePing(ping.stdout).received).toBe(0);

  const atN1 = await mismatchOf(c, 1, 'n2');
  const atN2 = await mismatchOf(c, 2, 'n1');
  process.stdout.write(`  n1 of n2: ${atN1}\n  n2 of n1: ${atN2}\n`);
  expect(atN1).toContain(`n2 claims other subnets`);
  expect(atN1).toContain(`than this node routes to it: ${ELSEWHERE} (digest`);
  expect(atN2).toContain('n1 routes other subnets to this node');
  expect(atN2).toMatch(/than it claims: 10\.244\.2\.0\/24 \(digest/);
  // n3 agrees with both, and they with it.
  for (const [i, peer] of [[1, 'n3'], [2, 'n3'], [3, 'n1'], [3, 'n2']] as const) {
    expect(peerView(await readStatus(c, i), peer)?.ownershipMismatch, `n${i} of ${peer}`).toBeUndefined();
  }

  const text = await c.outcome(c.node(1).ns, ['node', join(c.repoRoot, 'bin', 'podtun.js'), 'status', '--socket', c.node(1).statusSocket]);
  expect(text.stdout).toMatch(/^n2 +\S+ +up \(subnets disagree\)/m);
  expect(text.stdout).toMatch(/^ {2}n2: subnets disagree: n2 claims other subnets/m);
  const metrics = String((await fetchApi(c.node(2).statusSocket, '/metrics')).body);
  expect(metrics).toMatch(/^podtun_peer_ownership_mismatch\{peer="n1"\} 1$/m);
  expect(metrics).toMatch(/^podtun_peer_ownership_mismatch\{peer="n3"\} 0$/m);
  for (const i of [1, 2]) expect(logEntries(c, i, 'subnet ownership disagrees').length, `n${i} log`).toBeGreaterThan(0);
  // What n1's dashboard page draws its peer rows from.
  const page = await c.exec(c.node(1).ns, ['curl', '-sf', '--max-time', '5', `http://${DASHBOARD}/status`]);
  const rows = (JSON.parse(page.stdout) as { peers: { node: string; ownershipMismatch: string | null }[] }).peers;
  expect(rows.find((p) => p.node === 'n2')?.ownershipMismatch).toContain('n2 claims other subnets');
  expect(rows.find((p) => p.node === 'n3')?.ownershipMismatch).toBeNull();

  const doctor = await runDoctor(c, true);
  const check = doctor.checks.find((k) => k.layer === 'peer:n2' && k.name === 'subnets');
  expect(check?.ok, showDoctor(doctor)).toBe(false);
  expect(check?.detail).toContain(ELSEWHERE);
  expect(doctor.checks.find((k) => k.layer === 'peer:n3' && k.name === 'subnets')?.ok, showDoctor(doctor)).toBe(true);
}

describe.skipIf(skipReason !== undefined)('podtun: static configs that disagree on a subnet, over sealed UDP (3 nodes)', () => {
  const cluster = disagreeingCluster(undefined);
  it('names the disagreement on both sides: status, /metrics, the log, the dashboard, doctor', { timeout: 60_000 }, async () => {
    await checkBothSides(cluster(), 'udp');
  });
});

describe.skipIf(skipReason !== undefined)('podtun: static configs that disagree on a subnet, over WebSocket (3 nodes)', () => {
  const cluster = disagreeingCluster('ws');
  it('names the disagreement on both sides: status, /metrics, the log, the dashboard, doctor', { timeout: 60_000 }, async () => {
    await checkBothSides(cluster(), 'ws');
  });
});
