import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchApi } from '../../api/api-client.js';
import { readStatusReport } from '../../api/status-schema.js';
import type { RouterStats } from '../../router/router.js';
import { FAKE_STATS } from '../../test/fake-router-stats.js';
import { quietLogger } from '../../test/recording-logger.js';
import { startLocalApi } from './local-api.js';
import type { LocalApi, LocalApiLimits } from './local-api.js';
import { createMetrics } from './metrics.js';
import { Readiness } from './readiness.js';

describe('local API', () => {
  let api: LocalApi | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  const POD_NETWORK = { node: 'n1', subnets: ['10.244.1.0/24'], mtu: 1460, clusterCidrs: ['10.244.0.0/16'] };

  async function start(
    stats: () => RouterStats | undefined,
    readiness = new Readiness(),
    podNetwork: () => typeof POD_NETWORK | undefined = () => POD_NETWORK,
    limits: Partial<LocalApiLimits> = {},
  ): Promise<{ socket: string; tcp: string }> {
    const socket = join(mkdtempSync(join(tmpdir(), 'podtun-api-')), 'sub', 'podtun.sock');
    api = await startLocalApi({
      socketPath: socket,
      tcp: { host: '127.0.0.1', port: 0, family: 4, text: '127.0.0.1:0' },
      stats,
      readiness,
      metrics: createMetrics({ stats, processMetrics: false }),
      podNetwork,
      log: quietLogger,
      limits,
    });
    return { socket, tcp: `http://127.0.0.1:${api.tcpAddress?.port ?? 0}` };
  }

  it('answers /status, /healthz, /metrics on the socket and over TCP', async () => {
    const { socket, tcp } = await start(() => FAKE_STATS);
    const status = await fetchApi(socket, '/status');
    expect(status.status).toBe(200);
    expect(readStatusReport(status.body)).toMatchObject({ node: 'n1', lease: ['10.244.1.0/24'], routes: expect.any(Array) });
    expect((await fetchApi(socket, '/healthz')).body).toBe('ok\n');
    const metrics = await fetch(`${tcp}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('podtun_drops_total{reason="spoofed"} 3');
    expect((await fetch(`${tcp}/nope`)).status).toBe(404);
  });

  it('answers /readyz 503 with the first missing step, then 200, then 503 while stopping', async () => {
    const readiness = new Readiness();
    const { socket } = await start(() => undefined, readiness);
    expect(await fetchApi(socket, '/readyz')).toEqual({
      status: 503,
      body: { ready: false, reason: 'tun not up', checks: { tun: false, transports: false, routes: false, lease: false } },
    });
    expect((await fetchApi(socket, '/status')).status).toBe(503);
    Object.assign(readiness.checks, { tun: true, transports: true, routes: true });
    expect((await fetchApi(socket, '/readyz')).body).toMatchObject({ reason: 'lease not up' });
    readiness.checks.lease = true;
    expect(await fetchApi(socket, '/readyz')).toEqual({ status: 200, body: { ready: true } });
    readiness.stopping = true;
    expect((await fetchApi(socket, '/readyz')).body).toMatchObject({ reason: 'shutting down' });
  });

  it('answers /cni only once ready and the lease is known', async () => {
    const readiness = new Readiness();
    let network: typeof POD_NETWORK | undefined;
    const { socket } = await start(() => undefined, readiness, () => network);
    expect(await fetchApi(socket, '/cni')).toEqual({ status: 503, body: { ready: false, reason: 'tun not up' } });
    Object.assign(readiness.checks, { tun: true, transports: true, routes: true, lease: true });
    expect(await fetchApi(socket, '/cni')).toEqual({ status: 503, body: { ready: false, reason: 'lease not up' } });
    network = POD_NETWORK;
    expect(await fetchApi(socket, '/cni')).toEqual({ status: 200, body: { ready: true, ...POD_NETWORK } });
    readiness.stopping = true;
    expect(await fetchApi(socket, '/cni')).toEqual({ status: 503, body: { ready: false, reason: 'shutting down' } });
  });

  it('closes twice and removes the socket file', async () => {
    const { socket } = await start(() => FAKE_STATS);
    await api?.close();
    await api?.close();
    await expect(fetchApi(socket, '/healthz')).rejects.toThrow(/ENOENT/);
  });

  it('keeps answering on the socket while idle connections flood both servers: the oldest idle ones make room, then time out', async () => {
    const HEADERS_MS = 1000;
    const { socket, tcp } = await start(() => FAKE_STATS, new Readiness(), () => POD_NETWORK,
      { maxConnections: 4, headersTimeoutMs: HEADERS_MS, requestTimeoutMs: 2000, keepAliveTimeoutMs: 300 });
    const port = Number(new URL(tcp).port);
    const flood: Array<{ s: Socket; closed: boolean }> = [];
    const idle = (s: Socket): void => {
      const entry = { s, closed: false };
      s.on('error', () => {});
      s.on('data', () => {});
      s.once('close', () => {
        entry.closed = true;
      });
      flood.push(entry);
    };
    try {
      for (let i = 0; i < 20; i++) {
        idle(connect(port, '127.0.0.1'));
        idle(connect(socket));
      }
      // One of them sends half its headers and stops: slow, not busy, evictable too.
      flood[0]?.s.write('GET /status HTTP/1.1\r\nHost: x\r\n');
      await new Promise((r) => setTimeout(r, 200));
      expect(flood.filter((f) => !f.closed).length).toBeLessThanOrEqual(8); // 4 per server
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        expect((await fetchApi(socket, '/status', 1000)).status).toBe(200);
        expect(performance.now() - started).toBeLessThan(1000);
        idle(connect(socket)); // the flood goes on
      }
      expect((await fetch(`${tcp}/healthz`)).status).toBe(200);
      const deadline = Date.now() + HEADERS_MS * 4;
      while (flood.some((f) => !f.closed) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(flood.filter((f) => !f.closed)).toEqual([]); // idle ones closed by headersTimeout
    } finally {
      for (const f of flood) f.s.destroy();
    }
  });
});
