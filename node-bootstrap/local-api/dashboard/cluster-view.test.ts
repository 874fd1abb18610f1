/**
 * The cluster view against real HTTP servers on loopback standing in for peers' dashboards: one
 * answering, one naming another node, one that never answers, one answering too much, one with
 * no address in its lease. Then two real dashboards: n1's /api/cluster holds n2's links.
 */
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerReport, StatusReport } from '../../../api/status-schema.js';
import { quietLogger } from '../../../test/recording-logger.js';
import { createClusterView, peerTarget, readLinksReply } from './cluster-view.js';
import type { ClusterReply, LinksReply } from './cluster-view.js';
import { startDashboard } from './dashboard-server.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => {
    s.closeAllConnections();
    return new Promise<void>((resolve) => s.close(() => resolve()));
  }));
});

/** A server on 127.0.0.1 (a free port) answering every request with `answer`. */
async function fakePeer(answer: (res: ServerResponse) => void): Promise<number> {
  const server = createServer((_req, res) => answer(res));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

function peer(node: string, endpoints: Record<string, string>, more: Partial<PeerReport> = {}): PeerReport {
  return {
    node, subnets: [], endpoints, tunnelMtu: 1400, mtu: 1400, txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0,
    spoofed: 0, state: 'up', transport: 'udp', rttMs: 0.3, ...more,
  };
}

function report(node: string, peers: PeerReport[]): StatusReport {
  return { node, localSubnets: [], drops: {}, icmpSuppressed: 0, peers, transport: {}, lease: [], routes: [] };
}

function links(node: string, peers: string[]): LinksReply {
  return {
    node, t: 1, links: peers.map((p) => ({
      peer: p, state: 'up', transport: 'udp', endpoint: null, rttMs: 1, downReason: null, lastHeardAgeMs: null,
      lastSwitch: null, txBps: 8e6, rxBps: 0,
    })),
  };
}

describe('peerTarget', () => {
  it.each([
    [{ udp: '192.168.77.2:8285', ws: 'ws://10.0.0.2:8443' }, undefined, '192.168.77.2'],
    [{ udp: '[fd77::2]:8285' }, undefined, 'fd77::2'],
    [{ ws: 'wss://[fd77::3]:8443' }, undefined, 'fd77::3'],
    [{ ws: 'wss://node-c.example:8443' }, undefined, 'node-c.example'],
    [{}, '192.168.77.9:40000', '192.168.77.9'],
    [{}, undefined, undefined],
  ])('%j, endpoint %s -> %s', (endpoints, endpoint, host) => {
    expect(peerTarget({ node: 'n2', endpoints, endpoint }).host).toBe(host);
  });
});

describe('cluster view', () => {
  it('asks each peer once per refresh, bounded in time and size, and names what failed', async () => {
    // Every fake peer listens on one port, each on its own loopback address.
    let asked = 0;
    const port = await fakePeer((res) => {
      asked++;
      res.end(JSON.stringify(links('n2', ['n1', 'n3'])));
    });
    const impostor = createServer((_q, res) => res.end(JSON.stringify(links('n9', ['n1']))));
    const silent = createServer(() => undefined);
    const big = createServer((_q, res) => res.end(JSON.stringify({ ...links('n5', []), pad: 'x'.repeat(10_000) })));
    for (const [s, host] of [[impostor, '127.0.0.3'], [silent, '127.0.0.4'], [big, '127.0.0.5']] as const) {
      servers.push(s);
      await new Promise<void>((resolve) => s.listen(port, host, () => resolve()));
    }
    const view = createClusterView({
      status: async () => report('n1', [
        peer('n2', { udp: '127.0.0.1:8285' }),
        peer('n3', { udp: '127.0.0.3:8285' }),
        peer('n4', { ws: 'ws://127.0.0.4:8443' }),
        peer('n5', { udp: '127.0.0.5:8285' }),
        peer('n6', {}, { endpoint: undefined }),
        peer('n7', { udp: '127.0.0.1:8285' }),
      ]),
      rates: (p) => (p === 'n2' ? { txBps: 1e6, rxBps: 2e6, txPps: 1, rxPps: 2 } : undefined),
      peerPort: port,
      timeoutMs: 300,
      maxReplyBytes: 4096,
      maxPeers: 5,
      concurrency: 2,
    });
    const started = performance.now();
    const [a, b] = await Promise.all([view.get(), view.get()]);
    const tookMs = performance.now() - started;
    expect(b).toBe(a);
    const byNode = new Map((a as ClusterReply).nodes.map((n) => [n.node, n]));
    expect(a.peersAsked).toBe(true);
    expect(a.nodes[0]).toMatchObject({ node: 'n1', address: null, error: null });
    expect(byNode.get('n1')?.links.find((l) => l.peer === 'n2')).toMatchObject({ txBps: 1e6, rxBps: 2e6 });
    expect(byNode.get('n2')).toMatchObject({ address: `127.0.0.1:${port}`, error: null });
    expect(byNode.get('n2')?.links.map((l) => l.peer)).toEqual(['n1', 'n3']);
    expect(byNode.get('n3')?.error).toBe('answered as "n9"');
    expect(byNode.get('n4')?.error).toBe('no answer within 300 ms');
    expect(byNode.get('n5')?.error).toBe('reply over 4096 bytes');
    expect(byNode.get('n6')?.error).toBe('not asked: its lease has no address');
    expect(byNode.get('n7')?.error).toBe('not asked: over 5 peers');
    expect(tookMs).toBeLessThan(2000);
    // Cached: a second viewer within refreshMs asks nobody.
    await view.get();
    expect(asked).toBe(1);
    view.close();
    view.close();
  });

  it('asks nobody without peerPort', async () => {
    const view = createClusterView({ status: async () => report('n1', [peer('n2', { udp: '127.0.0.1:1' })]), rates: () => undefined, peerPort: undefined });
    const reply = await view.get();
    expect(reply.peersAsked).toBe(false);
    expect(reply.nodes.map((n) => n.node)).toEqual(['n1']);
  });

  it('refuses a reply that is not a links reply, naming the field', () => {
    expect(() => readLinksReply({ node: 'n2', t: 1, links: [{ peer: 'n1', state: 'sideways' }] })).toThrow('links[0].state');
    expect(() => readLinksReply({ node: 'n2', t: 1, links: [{ ...links('n2', ['n1']).links[0], rttMs: 'fast' }] })).toThrow('links[0].rttMs');
    expect(() => readLinksReply([])).toThrow('reply is not an object');
  });

  it("two dashboards: n1's cluster view holds n2's links; history and links are served", async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    let n2Bytes = 0;
    const n2 = await startDashboard({
      listen: '127.0.0.2:0',
      getStatus: () => {
        n2Bytes += 125_000;
        return report('n2', [peer('n1', { udp: '127.0.0.1:8285' }, { txBytes: n2Bytes })]);
      },
      log: quietLogger,
      sampleIntervalMs: 50,
    });
    const n1 = await startDashboard({
      listen: '127.0.0.1:0',
      getStatus: () => report('n1', [peer('n2', { udp: '127.0.0.2:8285' }, { state: 'down', rttMs: undefined, downReason: 'no handshake answer' })]),
      log: quietLogger,
      sampleIntervalMs: 50,
      peerPort: n2.port,
    });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const get = async (port: number, host: string, path: string): Promise<unknown> => {
        const res = await fetch(`http://${host}:${port}${path}`);
        expect(res.status).toBe(200);
        return res.json();
      };
      const cluster = (await get(n1.port, '127.0.0.1', '/api/cluster')) as ClusterReply;
      expect(cluster.nodes.map((n) => n.node)).toEqual(['n1', 'n2']);
      expect(cluster.nodes[0]?.links[0]).toMatchObject({ peer: 'n2', state: 'down', downReason: 'no handshake answer' });
      expect(cluster.nodes[1]?.links[0]).toMatchObject({ peer: 'n1', state: 'up' });
      expect(cluster.nodes[1]?.links[0]?.txBps).toBeGreaterThan(0);
      const history = (await get(n2.port, '127.0.0.2', '/api/history')) as { peers: Record<string, { t: number[]; txBps: (number | null)[] }> };
      expect(history.peers['n1']?.t.length).toBeGreaterThanOrEqual(3);
      expect(history.peers['n1']?.txBps.slice(1).every((v) => v !== null && v > 0)).toBe(true);
      expect((await fetch(`http://127.0.0.1:${n1.port}/api/history?since=soon`)).status).toBe(400);
    } finally {
      await n1.close();
      await n2.close();
      await n1.close();
    }
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(before);
  });
});
