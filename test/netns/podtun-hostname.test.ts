/**
 * Peers named by host name (dynamic DNS): every node's config names the others as
 * `nN.podtun.test:8285`, which each node resolves through the system resolver from its own
 * /etc/netns/<ns>/hosts (real glibc lookups by the daemon). n2 is then re-addressed on the
 * underlay and its name updated, as a home router's new lease and a dynamic DNS update would:
 * n1 finds n2 silent, looks the name up again, and traffic between the pods resumes over UDP,
 * with the same sealed session.
 *
 * ```
 *                underlay ns (bridge ul0, 192.168.77.0/24)
 *               /                              \
 *   n1 192.168.77.1                      n2 192.168.77.2 -> 192.168.77.12
 *   hosts: n2.podtun.test -> .2, then .12
 *   p1a 10.244.1.10  ===== ping, tcp ======  p2a 10.244.2.10
 * ```
 */
import { describe, expect, it } from 'vitest';
import { PODTUN_PORT, UNDERLAY_V4_PREFIX } from '../../lab/cluster.js';
import type { Cluster } from '../../lab/cluster.js';
import { writeNamespaceHosts } from '../../lab/netns-hosts.js';
import { peerView, readStatus, transportStat, waitPeers } from '../../lab/podtun-status.js';
import { pollUntil } from '../../lab/shell.js';
import { expectBothWays, netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping']) ?? podtunSkipReason();
printSkip('podtun-hostname.test.ts', skipReason);

const DOMAIN = 'podtun.test';
const MOVED_IP = `${UNDERLAY_V4_PREFIX}12`;
/** 3 s of silence marks n2 down, then one lookup and one probe round trip. */
const RESUME_LIMIT_MS = 6_000;

const nameOf = (i: number): string => `n${i}.${DOMAIN}`;

/** Every node's hosts file: each node's name at `addresses[i]`. */
function writeHosts(c: Cluster, addresses: Readonly<Record<number, string>>): void {
  const names = Object.fromEntries(c.nodes().map((n) => [nameOf(n.index), addresses[n.index] ?? n.underlayIp]));
  for (const node of c.nodes()) writeNamespaceHosts(node.ns, names);
}

describe.skipIf(skipReason !== undefined)('podtun: peers named by host name follow an address change', () => {
  const cluster = useCluster({
    nodes: 2,
    podsPerNode: 1,
    ipv6: false,
    mode: 'podtun',
    startNodes: false,
    podtun: {
      // UDP only: a resumed path proves the name was followed (no WebSocket to fall back on).
      ws: false,
      transport: 'udp',
      peerOverrides: (_i, peer) => ({ endpoint: `${nameOf(peer)}:${PODTUN_PORT}` }),
    },
  });

  it('resolves the names at start and shows name and address in status', { timeout: 60_000 }, async () => {
    const c = cluster();
    writeHosts(c, {});
    await Promise.all(c.nodes().map((n) => c.startNode(n.index)));
    await waitPeers(c, 1, ['n2'], { transport: 'udp' }, 10_000);
    await waitPeers(c, 2, ['n1'], { transport: 'udp' }, 10_000);
    const n2 = peerView(await readStatus(c, 1), 'n2');
    expect(n2?.endpoints).toEqual({ udp: `${nameOf(2)}:${PODTUN_PORT}` });
    expect(n2?.endpoint).toBe(`${c.node(2).underlayIp}:${PODTUN_PORT}`);
    expect(c.readLog(1)).toMatch(/"address":"192\.168\.77\.2".*"msg":"peer endpoint resolved"/);
    await expectBothWays(c, 1, [2]);
  });

  it('follows n2 to its new address once its name says so, within a bounded time', { timeout: 60_000 }, async () => {
    const c = cluster();
    const n2 = c.node(2);
    const handshakesBefore = transportStat(await readStatus(c, 1), 'udp.handshake.initsSent');
    await c.exec(n2.ns, ['ip', 'addr', 'del', `${n2.underlayIp}/24`, 'dev', 'eth0']);
    await c.exec(n2.ns, ['ip', 'addr', 'add', `${MOVED_IP}/24`, 'dev', 'eth0']);
    writeHosts(c, { 2: MOVED_IP });
    const movedAt = Date.now();

    const p1 = c.pod(1, 0);
    const p2 = c.pod(2, 0);
    // One ping a try (1 s timeout each): bounded by the poll's deadline.
    await pollUntil('p1a -> p2a answers again', async () => {
      const out = await c.outcome(p1.ns, ['ping', '-c', '1', '-W', '1', p2.ipv4]);
      return parsePing(out.stdout).received === 1 ? true : undefined;
    }, 2 * RESUME_LIMIT_MS, 50);
    const resumedMs = Date.now() - movedAt;
    process.stdout.write(`podtun-hostname: pod traffic resumed ${resumedMs} ms after n2 moved\n`);
    expect(resumedMs).toBeLessThan(RESUME_LIMIT_MS);

    await waitPeers(c, 1, ['n2'], { transport: 'udp' }, 5_000);
    const status = await readStatus(c, 1);
    expect(peerView(status, 'n2')).toMatchObject({
      endpoint: `${MOVED_IP}:${PODTUN_PORT}`,
      endpoints: { udp: `${nameOf(2)}:${PODTUN_PORT}` },
      transport: 'udp',
      state: 'up',
    });
    expect(c.readLog(1)).toMatch(/"address":"192\.168\.77\.12".*"msg":"peer endpoint moved"/);
    // The session went on at the new address: n1 made no new one.
    expect(transportStat(status, 'udp.handshake.initsSent')).toBe(handshakesBefore);
    await expectBothWays(c, 1, [2]);
  });
});
