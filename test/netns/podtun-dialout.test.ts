/**
 * podtun with a node that can only dial out: n1 drops every new inbound flow to its listening
 * ports (UDP 8285, TCP 8443), like a node behind a stateful firewall. With WebSocket forced,
 * the peers' dials to n1 fail and n1's own outbound connections carry traffic both ways; with
 * auto, traffic flows whatever the transport (UDP replies to n1's own probes pass the firewall).
 *
 * ```
 *   n1 192.168.77.1  [nft: ct state new, dport {8285, 8443}: drop]
 *     \--- n1 dials ws://192.168.77.2:8443 and ws://192.168.77.3:8443 --->  n2, n3
 *     <--X n2/n3 dialing n1 (SYN dropped)
 *   p1a 10.244.1.10  <== ping / TCP both ways ==>  p2a 10.244.2.10, p3a 10.244.3.10
 * ```
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { PODTUN_PORT, WS_PORT } from '../../lab/cluster.js';
import { describePeers, readStatus, waitPeers } from '../../lab/podtun-status.js';
import { expectBothWays, netnsSkipReason, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping', 'nft']) ?? podtunSkipReason();
printSkip('podtun-dialout.test.ts', skipReason);


describe.skipIf(skipReason !== undefined)('podtun: n1 only dials out, WebSocket forced (3 nodes)', () => {
  const cluster = useCluster({
    nodes: 3,
    podsPerNode: 1,
    ipv6: false,
    mode: 'podtun',
    startNodes: false,
    podtun: { transport: 'ws' },
  });

  beforeAll(async () => {
    const c = cluster();
    await c.blockInbound(1, [PODTUN_PORT, WS_PORT]);
    await Promise.all(c.nodes().map((n) => c.startNode(n.index)));
  });

  it('brings n1’s peers up over the connections n1 dialed', async () => {
    const c = cluster();
    await waitPeers(c, 1, ['n2', 'n3'], { transport: 'ws' }, 20_000);
    await waitPeers(c, 2, ['n1'], { transport: 'ws' }, 15_000);
    await waitPeers(c, 3, ['n1'], { transport: 'ws' }, 15_000);
    const ss = await c.exec(c.node(1).ns, ['ss', '-Htn', 'state', 'established']);
    const lines = ss.stdout.trim().split('\n').filter((l) => l.trim() !== '');
    // n1 is the client of every tunnel connection: the peer's side is :8443, n1's is not.
    for (const peer of [c.node(2), c.node(3)]) {
      expect(lines.some((l) => l.includes(`${peer.underlayIp}:${WS_PORT}`)), `n1 dialed ${peer.name}:\n${ss.stdout}`).toBe(true);
    }
    expect(lines.filter((l) => new RegExp(`${c.node(1).underlayIp.replace(/\./g, '\\.')}:${WS_PORT}\\s`).test(l))).toEqual([]);
  });

  it('carries ping and TCP both ways between n1’s pod and n2/n3’s pods', async () => {
    await expectBothWays(cluster(), 1, [2, 3]);
  });
});

describe.skipIf(skipReason !== undefined)('podtun: n1 only dials out, transport auto (2 nodes)', () => {
  const cluster = useCluster({ nodes: 2, podsPerNode: 1, ipv6: false, mode: 'podtun', startNodes: false });

  beforeAll(async () => {
    const c = cluster();
    await c.blockInbound(1, [PODTUN_PORT, WS_PORT]);
    await Promise.all(c.nodes().map((n) => c.startNode(n.index)));
  });

  it('carries ping and TCP both ways', async () => {
    const c = cluster();
    await waitPeers(c, 1, ['n2'], {}, 20_000);
    await waitPeers(c, 2, ['n1'], {}, 20_000);
    await expectBothWays(c, 1, [2]);
    process.stdout.write(`  n1 peers: ${describePeers(await readStatus(c, 1))}; n2 peers: ${describePeers(await readStatus(c, 2))}\n`);
  });
});
