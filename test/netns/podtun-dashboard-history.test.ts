/**
 * The dashboard as the daemon runs it, every node with `dashboard: { listen: <underlay IP>:9403,
 * peerPort: 9403, sampleIntervalMs: 1000 }`, watched from headless Debian chromium
 * (playwright-core) started inside n1's namespace:
 *
 *   chromium (ns n1) --HTTP--> n1's dashboard 192.168.77.1:9403
 *                                  | GET /api/links (the cluster view)
 *                                  v
 *                 n2's dashboard .2:9403      n3's dashboard .3:9403
 *
 *   p1a --iperf3--> p2a           n1 ---- n2
 *                                   \    /
 *                                    n3
 *
 * 1. iperf3 p1a -> p2a (100 Mbit/s, 6 s), then the page is reloaded: its chart, drawn from the
 *    daemon's history only, has n2 near zero before the transfer and above 50 Mbit/s during it.
 * 2. The cluster view shows n2's and n3's own links, asked of their dashboards by n1's.
 * 3. UDP blocked on n2: n1 carries it over WebSocket; its row shows the WebSocket endpoint and
 *    the switch time, and the events list the switch.
 * 4. n3 stopped: its row says down with the reason n1's status gives and when it was last
 *    heard; the cluster view names n3's dashboard as not answering.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { UNDERLAY_V4_PREFIX, findRepoRoot } from '../../lab/cluster.js';
import { peerView, readStatus, waitPeers } from '../../lab/podtun-status.js';
import { pollUntil } from '../../lab/shell.js';
import { netnsSkipReason, podtunSkipReason, printSkip, useCluster } from './support.js';
import { missingCommand } from '../../lab/requirements.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const DASHBOARD_PORT = 9403;
const SAMPLE_MS = 1000;
const IPERF_PORT = 5201;
const IPERF_SECONDS = 6;
const IPERF_MBPS = 100;

const skipReason = netnsSkipReason() ?? podtunSkipReason() ?? missingCommand(['iperf3']) ??
  (existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (Debian package chromium)`);
printSkip('podtun-dashboard-history.test.ts', skipReason);

/** What the test reads of the page's throughput chart: n2's points as [ms, Mbit/s]. */
interface ChartPoints {
  points: [number, number | null][];
}

describe.skipIf(skipReason !== undefined)('dashboard history and cluster view, served by the daemons', () => {
  const cluster = useCluster({
    nodes: 3, podsPerNode: 1, ipv6: false, mode: 'podtun',
    podtun: {
      nodeOverrides: (i) => ({
        dashboard: { listen: `${UNDERLAY_V4_PREFIX}${i}:${DASHBOARD_PORT}`, peerPort: DASHBOARD_PORT, sampleIntervalMs: SAMPLE_MS },
      }),
    },
  });
  let browser: Browser | undefined;
  let page: Page | undefined;
  const url = `http://${UNDERLAY_V4_PREFIX}1:${DASHBOARD_PORT}/`;

  const thePage = (): Page => {
    if (page === undefined) throw new Error('browser not started');
    return page;
  };

  beforeAll(async () => {
    const c = cluster();
    await waitPeers(c, 1, ['n2', 'n3'], {}, 30_000);
    // The browser lives in n1's namespace, as an operator's would on the node (port-forward):
    // the root namespace gets no address in the test ranges.
    const wrapper = join(c.dir, 'chromium-in-n1.sh');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${c.node(1).ns} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: wrapper, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('a page reloaded after an iperf3 transfer charts it from the daemon history', { timeout: 90_000 }, async () => {
    const c = cluster();
    const p = thePage();
    await p.goto(url);
    await p.waitForFunction('Number(document.body.dataset.historyLoads || 0) >= 1', undefined, { timeout: 10_000 });
    // A few idle samples first, so the chart has a before.
    await new Promise((r) => setTimeout(r, 4 * SAMPLE_MS));

    const to = c.pod(2, 0);
    const server = c.spawnIn(to.ns, ['iperf3', '-s', '-1', '-p', String(IPERF_PORT)], { stdio: 'ignore' });
    try {
      await pollUntil('iperf3 server listening', async () => {
        const ss = await c.exec(to.ns, ['ss', '-Hltn', 'sport', '=', `:${IPERF_PORT}`]);
        return ss.stdout.trim() === '' ? undefined : true;
      }, 5_000);
      const startMs = Date.now();
      const run = await c.exec(c.pod(1, 0).ns, [
        'iperf3', '-c', to.ipv4, '-p', String(IPERF_PORT), '-t', String(IPERF_SECONDS), '-b', `${IPERF_MBPS}M`, '-J',
      ], { timeoutMs: (IPERF_SECONDS + 20) * 1000 });
      const endMs = Date.now();
      const sent = (JSON.parse(run.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
      expect(sent / 1e6).toBeGreaterThan(IPERF_MBPS * 0.8);
      await new Promise((r) => setTimeout(r, 2.5 * SAMPLE_MS));

      // A reload forgets everything the page had: what it shows now comes from /api/history.
      await p.reload();
      await p.waitForFunction('Number(document.body.dataset.historyLoads || 0) >= 1 && window.podtunCharts.throughput !== null',
        undefined, { timeout: 10_000 });
      const { points } = (await p.evaluate(() => {
        const chart = (globalThis as unknown as { podtunCharts: { throughput: { data: (number | null)[][]; series: { label?: string }[] } } }).podtunCharts.throughput;
        const k = chart.series.findIndex((s) => s.label === 'n2');
        const t = chart.data[0] ?? [];
        return { points: t.map((x, i) => [(x ?? 0) * 1000, chart.data[k]?.[i] ?? null]) };
      })) as ChartPoints;
      const dir = join(findRepoRoot(), 'test-artifacts');
      mkdirSync(dir, { recursive: true });
      await p.screenshot({ path: join(dir, 'dashboard-history.png'), fullPage: true });

      // A sample at t holds the rate over the interval before it.
      const before = points.filter(([t]) => t < startMs - SAMPLE_MS);
      const during = points.filter(([t]) => t > startMs + 1.5 * SAMPLE_MS && t < endMs - 0.5 * SAMPLE_MS);
      const show = (ps: [number, number | null][]): string => ps.map(([t, v]) => `${((t - startMs) / 1000).toFixed(1)}s:${v?.toFixed(1) ?? '-'}`).join(' ');
      process.stdout.write(`  n2 on the reloaded chart (s from transfer start: Mbit/s): ${show(points.slice(-20))}\n`);
      expect(before.length).toBeGreaterThanOrEqual(3);
      expect(before.every(([, v]) => v === null || v < 5)).toBe(true);
      expect(during.length).toBeGreaterThanOrEqual(IPERF_SECONDS - 3);
      expect(during.every(([, v]) => v !== null && v > IPERF_MBPS / 2)).toBe(true);
      expect(Math.max(...during.map(([, v]) => v ?? 0))).toBeLessThan(IPERF_MBPS * 3);
    } finally {
      server.kill();
    }
  });

  it("the cluster view shows the other nodes' links", { timeout: 30_000 }, async () => {
    const p = thePage();
    for (const [from, to] of [['n1', 'n2'], ['n2', 'n1'], ['n2', 'n3'], ['n3', 'n1'], ['n3', 'n2']] as const) {
      const link = p.locator(`#cluster-links tr[data-from="${from}"][data-to="${to}"]`);
      await expect.poll(() => link.getAttribute('data-state'), { timeout: 15_000 }).toBe('up');
    }
    expect(await p.locator('#cluster-map line.clink').count()).toBe(6);
    expect(await p.locator('#cluster-nodes li').count()).toBe(0);
  });

  it('a peer over WebSocket shows its WebSocket endpoint and when it switched', { timeout: 60_000 }, async () => {
    const c = cluster();
    const p = thePage();
    await c.blockUdp(2);
    await waitPeers(c, 1, ['n2'], { transport: 'ws' }, 30_000);
    const n2 = peerView(await readStatus(c, 1), 'n2');
    const wsEndpoint = n2?.endpoints['ws'];
    const switchedAt = n2?.lastSwitch?.atMs;
    expect(wsEndpoint).toMatch(/^ws:\/\/192\.168\.77\.2:/);
    const row = p.locator('#peers tr[data-peer="n2"]');
    await expect.poll(() => row.locator('.endpoint').textContent(), { timeout: 10_000 }).toBe(wsEndpoint);
    expect(await row.locator('.last-switch').getAttribute('data-at')).toBe(String(switchedAt));
    expect(await row.locator('.last-switch').textContent()).toContain('udp → ws');
    await expect.poll(() => p.locator('#events tr[data-peer="n2"][data-kind="switch"]').count(), { timeout: 10_000 }).toBeGreaterThan(0);
  });

  it("a stopped peer shows why it is down, when it was last heard, and its dashboard's silence", { timeout: 60_000 }, async () => {
    const c = cluster();
    const p = thePage();
    await c.stopNode(3);
    await waitPeers(c, 1, ['n3'], { state: 'down' }, 30_000);
    const n3 = await pollUntil('n1 names why n3 is down', async () => {
      const view = peerView(await readStatus(c, 1), 'n3');
      return view?.downReason === undefined ? undefined : view;
    }, 15_000);
    const row = p.locator('#peers tr[data-peer="n3"]');
    await expect.poll(() => row.locator('.reason').textContent(), { timeout: 10_000 }).toBe(`(${n3.downReason ?? ''})`);
    if (n3.lastHeardAgeMs !== undefined) expect(await row.locator('.last-heard').textContent()).toMatch(/ago$/);
    await expect.poll(() => p.locator('#events tr[data-peer="n3"][data-kind="state"]').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await expect.poll(() => p.locator('#cluster-nodes li[data-node="n3"]').count(), { timeout: 20_000 }).toBe(1);
    expect(await p.locator('#cluster-map .cnode.unreachable[data-node="n3"]').count()).toBe(1);
    await expect.poll(() => p.locator('#cluster-links tr[data-from="n1"][data-to="n3"]').getAttribute('data-state'), { timeout: 10_000 }).toBe('down');
    await p.screenshot({ path: join(findRepoRoot(), 'test-artifacts', 'dashboard-peer-down.png'), fullPage: true });
  });
});
