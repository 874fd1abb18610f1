/**
 * podtun end to end: what an operator sees. `podtun status --json` and `podtun routes` on the
 * status socket, `/readyz` and `/metrics` over the TCP api address, and the figures moving with
 * the traffic: an 8 MiB TCP stream n1 -> n2 grows n1's tx bytes for n2; a packet n2 seals whose
 * source is not in n2's subnet (p2a sends from an address of n3's) raises
 * `podtun_drops_total{reason="spoofed"}` on n1.
 *
 * ```
 *          underlay ns (bridge ul0, 192.168.77.0/24)
 *        /                  |                      \
 *   n1 (api 127.0.0.1:9402)  n2 (api ...:9402)       n3
 *   p1a --- 8 MiB tcp ----> p2a
 *       <-- udp-send from 10.244.3.99 (an extra address of p2a), sealed by n2  (spoofed: dropped)
 * ```
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readStatusReport } from '../../api/status-schema.js';
import type { DashboardSnapshot } from '../../node-bootstrap/local-api/dashboard/dashboard-server.js';
import type { Cluster } from '../../lab/cluster.js';
import { probe, startProbe } from '../../lab/probe.js';
import type { UdpSendResult } from '../../lab/probe.js';
import { run } from '../../lab/shell.js';
import { netnsSkipReason, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['curl']) ?? podtunSkipReason();
printSkip('podtun-observe.test.ts', skipReason);

const API = '127.0.0.1:9402';
const DASHBOARD = '127.0.0.1:9403';
const BYTES = 8 * 1024 * 1024;

/** `podtun <args> --socket <node i's socket>`, the built CLI, from the root namespace. */
async function podtun(c: Cluster, i: number, args: readonly string[]): Promise<string> {
  const out = await run(['node', join(c.repoRoot, 'bin', 'podtun.js'), ...args, '--socket', c.node(i).statusSocket]);
  return out.stdout;
}

/** GET on node i's TCP api address, from inside its namespace: [HTTP code, body]. */
async function apiGet(c: Cluster, i: number, path: string): Promise<[number, string]> {
  const out = await c.exec(c.node(i).ns, ['curl', '-s', '-w', '\n%{http_code}', `http://${API}${path}`]);
  const cut = out.stdout.lastIndexOf('\n');
  return [Number(out.stdout.slice(cut + 1)), out.stdout.slice(0, cut)];
}

/** The sum of a metric's samples whose labels contain `labels` (e.g. `peer="n2"`). */
function metric(text: string, name: string, labels: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && line.includes(labels)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe.skipIf(skipReason !== undefined)('podtun: status CLI, readiness and metrics', () => {
  const cluster = useCluster({
    nodes: 3,
    podsPerNode: 1,
    ipv6: false,
    mode: 'podtun',
    podtun: { config: { api: { listen: API }, dashboard: { listen: DASHBOARD } } },
  });

  it('serves the dashboard page and its live status when dashboard.listen is set', async () => {
    const c = cluster();
    const page = await c.exec(c.node(1).ns, ['curl', '-s', '--max-time', '3', `http://${DASHBOARD}/`]);
    expect(page.stdout).toContain('<html');
    expect(page.stdout).toContain('uplot');
    const status = await c.exec(c.node(1).ns, ['curl', '-s', '--max-time', '3', `http://${DASHBOARD}/status`]);
    const peers = (JSON.parse(status.stdout) as DashboardSnapshot).peers.map((p) => p.node).sort();
    expect(peers).toEqual(['n2', 'n3']);
  });

  it('reports ready, lease and routes', async () => {
    const c = cluster();
    expect(await apiGet(c, 1, '/readyz')).toEqual([200, '{"ready":true}']);
    const status = readStatusReport(JSON.parse(await podtun(c, 1, ['status', '--json'])));
    expect(status.node).toBe('n1');
    expect(status.lease).toEqual([c.node(1).subnetV4]);
    expect(status.peers.map((p) => p.node).sort()).toEqual(['n2', 'n3']);
    expect(status.peers.every((p) => p.mtu > 0)).toBe(true);
    const routes = await podtun(c, 1, ['routes']);
    expect(routes).toMatch(/^SUBNET +NODE +TRANSPORT +STATE\n/);
    for (const i of [2, 3]) expect(routes).toMatch(new RegExp(`${c.node(i).subnetV4.replace(/[./]/g, '\\$&')} +n${i} +(udp|ws) +up`));
    expect(await podtun(c, 1, ['status'])).toMatch(/^node +n1\nlease +10\.244\.1\.0\/24\n\nPEER +TRANSPORT/);
  });

  it('counts an 8 MiB transfer to n2 in status and metrics', async () => {
    const c = cluster();
    const txBefore = readStatusReport(JSON.parse(await podtun(c, 1, ['status', '--json']))).peers.find((p) => p.node === 'n2')?.txBytes ?? 0;
    const metricBefore = metric((await apiGet(c, 1, '/metrics'))[1], 'podtun_peer_tx_bytes_total', 'peer="n2"');
    const sink = await startProbe<{ bytes: number }>(c, c.pod(2, 0).ns, 'tcp-sink', { port: 5020, 'timeout-ms': 20_000 });
    await probe(c, c.pod(1, 0).ns, 'tcp-send', { to: c.pod(2, 0).ipv4, port: 5020, bytes: BYTES, seed: 7, 'timeout-ms': 20_000 });
    expect((await sink.result).bytes).toBe(BYTES);
    const txAfter = readStatusReport(JSON.parse(await podtun(c, 1, ['status', '--json']))).peers.find((p) => p.node === 'n2')?.txBytes ?? 0;
    expect(txAfter - txBefore).toBeGreaterThanOrEqual(BYTES);
    const [code, text] = await apiGet(c, 1, '/metrics');
    expect(code).toBe(200);
    expect(metric(text, 'podtun_peer_tx_bytes_total', 'peer="n2"') - metricBefore).toBeGreaterThanOrEqual(BYTES);
    expect(metric(text, 'podtun_peer_up', 'peer="n2"')).toBe(1);
    expect(text).toContain('process_resident_memory_bytes');
  }, 30_000);

  it('raises podtun_drops_total{reason="spoofed"} for a spoofed packet', async () => {
    const c = cluster();
    const spoofed = (): Promise<number> => apiGet(c, 1, '/metrics').then(([, text]) => metric(text, 'podtun_drops_total', 'reason="spoofed"'));
    const before = await spoofed();
    const p2a = c.pod(2, 0);
    await c.exec(p2a.ns, ['ip', 'addr', 'add', '10.244.3.99/32', 'dev', 'eth0']);
    try {
      await probe<UdpSendResult>(c, p2a.ns, 'udp-send', {
        to: c.pod(1, 0).ipv4,
        port: 6000,
        bind: '10.244.3.99',
        hex: Buffer.from('spoofed').toString('hex'),
        count: 3,
      });
    } finally {
      await c.exec(p2a.ns, ['ip', 'addr', 'del', '10.244.3.99/32', 'dev', 'eth0']);
    }
    let after = before;
    for (let i = 0; i < 20 && after - before < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await spoofed();
    }
    expect(after - before).toBeGreaterThanOrEqual(3);
  });
});
