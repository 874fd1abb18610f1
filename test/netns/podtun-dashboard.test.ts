/**
 * The live dashboard (node-bootstrap/local-api/dashboard): the server alone (routes, bounded SSE clients,
 * close twice), then a 3-node podtun cluster watched from node 1 in headless Debian chromium
 * (playwright-core): the page shows n1 and its 2 peers with 2 links, the route table lists the
 * peer subnets, n2's throughput on the chart rises while a paced TCP transfer p1a -> p2a runs,
 * and a stopped peer (n3) turns into a red dashed link.
 *
 * The dashboard server runs in the test process, fed by n1's status socket; the browser runs in
 * the root namespace against 127.0.0.1.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startDashboard } from '../../node-bootstrap/local-api/dashboard/dashboard-server.js';
import type { Dashboard, DashboardSnapshot } from '../../node-bootstrap/local-api/dashboard/dashboard-server.js';
import { fetchStatusReport } from '../../api/api-client.js';
import type { StatusReport } from '../../api/status-schema.js';
import { findRepoRoot } from '../../lab/cluster.js';
import { probe, startProbe } from '../../lab/probe.js';
import type { SendResult, SinkResult } from '../../lab/probe.js';
import { waitPeers } from '../../lab/podtun-status.js';
import { netnsSkipReason, podtunSkipReason, printSkip, useCluster } from './support.js';
import { quietLogger } from '../recording-logger.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const skipReason =
  netnsSkipReason() ?? podtunSkipReason() ?? (existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (Debian package chromium)`);
printSkip('podtun-dashboard.test.ts', skipReason);


/** GET on 127.0.0.1:port; for /events, the status and the first `data:` line, then hangs up. */
function get(port: number, path: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (path === '/events' && body.includes('data: ')) {
          resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard server', () => {
  it('serves the page, uPlot, /status and bounded /events; close() twice ends streams', async () => {
    let reads = 0;
    const fake: StatusReport = {
      node: 'n1',
      localSubnets: ['10.244.1.0/24'],
      drops: { spoofed: 2 },
      icmpSuppressed: 0,
      peers: [{
        node: 'n2', subnets: ['10.244.2.0/24'], endpoints: {}, tunnelMtu: 1400, mtu: 1400,
        txPackets: 1, txBytes: 10, rxPackets: 1, rxBytes: 5, spoofed: 0, state: 'up', transport: 'udp', rttMs: 0.4,
      }],
      transport: {},
      lease: ['10.244.1.0/24'],
      routes: [],
    };
    const d = await startDashboard({
      listen: '127.0.0.1:0',
      getStatus: async () => {
        reads++;
        return fake;
      },
      log: quietLogger,
      intervalMs: 100,
      maxClients: 1,
    });
    try {
      expect(d.port).toBeGreaterThan(0);
      const page = await get(d.port, '/');
      expect(page.status).toBe(200);
      expect(page.body).toContain('/uplot.min.js');
      expect((await get(d.port, '/uplot.min.js')).body).toContain('uPlot');
      expect((await get(d.port, '/uplot.min.css')).type).toContain('text/css');
      expect((await get(d.port, '/dashboard.js')).status).toBe(200);
      expect((await get(d.port, '/nope')).status).toBe(404);
      const status = JSON.parse((await get(d.port, '/status')).body) as DashboardSnapshot;
      expect(status.node).toBe('n1');
      expect(status.peers[0]?.rttMs).toBe(0.4);

      // One client allowed: a second gets 503 while the first is connected.
      const first = new Promise<{ status: number; ended: Promise<void>; data: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: d.port, path: '/events' }, (res) => {
          let data = '';
          const ended = new Promise<void>((r) => res.on('end', () => r()));
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            data += chunk;
            if (data.includes('data: ')) resolve({ status: res.statusCode ?? 0, ended, data });
          });
        });
        req.on('error', reject);
        req.end();
      });
      const stream = await first;
      expect(stream.status).toBe(200);
      expect(stream.data).toContain('"node":"n1"');
      expect((await get(d.port, '/events')).status).toBe(503);
      await d.close();
      await d.close();
      await stream.ended;
      expect(reads).toBeGreaterThan(0);
    } finally {
      await d.close();
    }
  });

  it('reports a failing getStatus as an error snapshot', async () => {
    const d = await startDashboard({
      listen: '127.0.0.1:0',
      getStatus: () => Promise.reject(new Error('socket gone')),
      log: quietLogger,
    });
    try {
      const res = await get(d.port, '/status');
      expect(res.status).toBe(502);
      expect(res.body).toContain('socket gone');
    } finally {
      await d.close();
    }
  });
});

describe.skipIf(skipReason !== undefined)('podtun dashboard in chromium', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 1, ipv6: false, mode: 'podtun' });
  let dashboard: Dashboard | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;

  beforeAll(async () => {
    const c = cluster();
    await waitPeers(c, 1, ['n2', 'n3'], {}, 30_000);
    dashboard = await startDashboard({
      listen: '127.0.0.1:0',
      getStatus: () => fetchStatusReport(c.node(1).statusSocket),
      log: quietLogger,
      // The chart draws the history: enough samples within the transfer below.
      sampleIntervalMs: 500,
    });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await dashboard?.close();
  });

  it('shows this node, 2 peers, 2 links and the peer routes', async () => {
    const c = cluster();
    const p = page;
    if (p === undefined || dashboard === undefined) throw new Error('browser not started');
    await p.goto(`http://127.0.0.1:${dashboard.port}/`);
    await p.waitForFunction('Number(document.body.dataset.snapshots || 0) >= 1', undefined, { timeout: 10_000 });
    await p.waitForFunction("document.querySelectorAll('#topology .node').length === 3", undefined, { timeout: 10_000 });
    expect(await p.locator('#topology .node.self').getAttribute('data-node')).toBe('n1');
    expect(await p.locator('#topology line.link').count()).toBe(2);
    for (const i of [2, 3]) {
      const node = c.node(i);
      const row = p.locator(`#routes tr[data-subnet="${node.subnetV4}"]`);
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
      expect(await row.getAttribute('data-node')).toBe(node.name);
      expect(await p.locator(`#topology line.link[data-peer="${node.name}"]`).getAttribute('data-state')).toBe('up');
    }
    expect(await p.locator('#chart .uplot').count()).toBe(1);
  });

  it("n2's throughput rises on the chart during a 200 Mbit/s TCP transfer", { timeout: 90_000 }, async () => {
    const c = cluster();
    const p = page;
    if (p === undefined) throw new Error('browser not started');
    const latest = async (): Promise<number> =>
      Number((await p.locator('#peers tr[data-peer="n2"]').getAttribute('data-latest-mbps')) ?? 'NaN');
    const before = await latest();
    const to = c.pod(2, 0);
    const sink = await startProbe<SinkResult>(c, to.ns, 'tcp-sink', { port: 5020, 'timeout-ms': 60_000 });
    const bytes = 200_000_000; // 8 s at 200 Mbit/s
    const sending = probe<SendResult>(c, c.pod(1, 0).ns, 'tcp-send', {
      to: to.ipv4, port: 5020, bytes, seed: 7, 'rate-mbps': 200, 'timeout-ms': 60_000,
    });
    let peak = 0;
    let shot = false;
    let done = false;
    void sending.finally(() => {
      done = true;
    });
    while (!done) {
      await new Promise((r) => setTimeout(r, 500));
      const now = await latest();
      peak = Math.max(peak, now);
      if (!shot && now > 100) {
        await new Promise((r) => setTimeout(r, 2500)); // a few points on the chart
        const dir = join(findRepoRoot(), 'test-artifacts');
        mkdirSync(dir, { recursive: true });
        await p.screenshot({ path: join(dir, 'dashboard.png'), fullPage: true });
        shot = true;
      }
    }
    const sent = await sending;
    const got = await sink.result;
    expect(got.bytes).toBe(sent.bytes);
    process.stdout.write(`  n2 on the dashboard: before ${before.toFixed(2)} Mbit/s, peak ${peak.toFixed(1)} Mbit/s\n`);
    expect(peak).toBeGreaterThan(100);
    expect(peak).toBeLessThan(400);
    expect(peak).toBeGreaterThan(before + 50);
    expect(shot).toBe(true);
    expect(Number(await p.locator('#chart').getAttribute('data-points'))).toBeGreaterThan(5);
  });

  it('draws a stopped peer as a red dashed link', { timeout: 60_000 }, async () => {
    const c = cluster();
    const p = page;
    if (p === undefined) throw new Error('browser not started');
    await c.stopNode(3);
    await waitPeers(c, 1, ['n3'], { state: 'down' }, 30_000);
    const link = p.locator('#topology line.link[data-peer="n3"]');
    await expect.poll(() => link.getAttribute('data-state'), { timeout: 10_000 }).toBe('down');
    expect(await link.getAttribute('stroke-dasharray')).not.toBeNull();
    expect(await link.getAttribute('stroke')).toBe('#c62828');
    expect(await p.locator('#topology line.link[data-peer="n2"]').getAttribute('data-state')).toBe('up');
  });
});
