/**
 * podtun's cluster secret: n3 holds a wrong secret (transport auto, as by default), so its UDP
 * probes go unanswered and n1 and n2 refuse its WebSocket connections (counted, logged); nothing
 * from n3's pod reaches n1's pod, while n1 <-> n2 carry on. Then a hand-made client in n2's namespace, authenticated as n2 with the right
 * secret (hello, then its proof over n1's nonce), sends junk binary messages and one message over
 * maxPayload to n1: counted, and n1 keeps forwarding. One that sends data before its proof is
 * closed and counted (preProofMessages).
 *
 * ```
 *                  underlay ns (bridge ul0, 192.168.77.0/24)
 *        /                     |                          \
 *   n1 ws :8443  <==ok==>  n2 ws :8443              n3 (wrong clusterSecret)
 *     ^  ^----- refused ------------------------------/  (and by n2 too)
 *     '---- ws-attack-agent client in n2's ns: upgrade as n2, proof, junk, oversize
 *   p1a 10.244.1.10         p2a 10.244.2.10           p3a 10.244.3.10 --X--> p1a
 * ```
 */
import { describe, expect, it } from 'vitest';
import { WS_PORT } from '../../lab/cluster.js';
import { probe, startProbe } from '../../lab/probe.js';
import type { UdpListenResult } from '../../lab/probe.js';
import { logEntries, peerView, readStatus, transportStat, waitPeers } from '../../lab/podtun-status.js';
import { pollUntil } from '../../lab/shell.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';
import { runWsAttack, wsAttackSkipReason } from '../../lab/ws-attack.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../../tunnel/ws/ws-transport.js';

const skipReason = netnsSkipReason(['ping']) ?? podtunSkipReason() ?? wsAttackSkipReason();
printSkip('podtun-ws-auth.test.ts', skipReason);

const WRONG_SECRET = 'not-the-cluster-secret-0123456789';
const LISTEN_PORT = 6100;
/** Just over the WebSocket transport's maxPayload (the harness leaves the default). */
const OVERSIZE_BYTES = DEFAULT_MAX_PAYLOAD_BYTES + 1024;

interface WsRawResult {
  status: number;
  proofSent: boolean;
  response: string;
  junkSent: number;
  oversizeSent: boolean;
  closeCode: number;
  closedAfterMs: number;
}

describe.skipIf(skipReason !== undefined)('podtun: WebSocket authentication and junk (3 nodes, n3 with a wrong secret)', () => {
  const cluster = useCluster({
    nodes: 3,
    podsPerNode: 1,
    ipv6: false,
    mode: 'podtun',
    podtun: { secretFor: (i) => (i === 3 ? WRONG_SECRET : undefined) },
  });

  it('refuses n3 on n1 and n2: counted and logged, never up', async () => {
    const c = cluster();
    await waitPeers(c, 1, ['n2'], {}, 15_000);
    await pollUntil(
      'n1 and n2 count refused connections from n3',
      async () => {
        const counts = await Promise.all([1, 2].map(async (i) => transportStat(await readStatus(c, i), 'ws.authRejected')));
        return counts.every((n) => n > 0) ? true : undefined;
      },
      15_000,
      200,
    );
    for (const i of [1, 2]) {
      const status = await readStatus(c, i);
      expect(peerView(status, 'n3')?.state, `n${i} sees n3`).not.toBe('up');
      expect(logEntries(c, i, 'connection refused').length, `n${i} log 'connection refused'`).toBeGreaterThan(0);
    }
  });

  it('delivers nothing from n3’s pod to n1’s pod, while n1 <-> n2 work', async () => {
    const c = cluster();
    const p1 = c.pod(1, 0);
    const listener = await startProbe<UdpListenResult>(c, p1.ns, 'udp-listen', { port: LISTEN_PORT, 'duration-ms': 3_000 });
    await probe(c, c.pod(3, 0).ns, 'udp-send', { to: p1.ipv4, port: LISTEN_PORT, random: 64, count: 50, 'interval-ms': 20 });
    await probe(c, c.pod(2, 0).ns, 'udp-send', { to: p1.ipv4, port: LISTEN_PORT, random: 64, count: 5, 'interval-ms': 20 });
    const got = await listener.result;
    const n3View = JSON.stringify(peerView(await readStatus(c, 1), 'n3'));
    expect(got.sources, `n3's pod reached n1's pod; n1's view of n3: ${n3View}`).not.toContain(c.pod(3, 0).ipv4);
    expect(got.sources).toContain(c.pod(2, 0).ipv4);
    const ping3 = await c.outcome(c.pod(3, 0).ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', p1.ipv4]);
    expect(parsePing(ping3.stdout).received).toBe(0);
    for (const [a, b] of [
      [p1, c.pod(2, 0)],
      [c.pod(2, 0), p1],
    ] as const) {
      const out = await c.outcome(a.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', b.ipv4]);
      expect(parsePing(out.stdout).received, `${a.name} -> ${b.name}`).toBe(2);
    }
  });

  it('counts junk messages and an oversized one from an authenticated client, and keeps forwarding', { timeout: 60_000 }, async () => {
    const c = cluster();
    const before = await readStatus(c, 1);
    // Two connections: n1 may end the first on its junk, before an oversized message could follow.
    const rawClient = (flags: Record<string, number>): Promise<WsRawResult> =>
      runWsAttack<WsRawResult>(c, c.node(2).ns, 'client', {
        to: c.node(1).underlayIp,
        port: WS_PORT,
        secret: c.clusterSecret,
        node: 'n2',
        target: 'n1',
        'hold-ms': 5_000,
        'timeout-ms': 20_000,
        ...flags,
      });
    const junk = await rawClient({ junk: 20 });
    const big = await rawClient({ oversize: OVERSIZE_BYTES });
    const early = await rawClient({ early: 1, 'hold-ms': 3_000 });
    process.stdout.write(`  client junk: ${JSON.stringify(junk)}\n  client oversize: ${JSON.stringify(big)}\n  client data before proof: ${JSON.stringify(early)}\n`);
    expect(junk.status).toBe(101);
    expect(junk.proofSent).toBe(true);
    expect(junk.junkSent).toBeGreaterThan(0);
    expect(early.status).toBe(101);
    expect(early.closedAfterMs, 'n1 closes a connection whose first message is not the proof').toBeGreaterThanOrEqual(0);
    expect(big.status).toBe(101);
    expect(big.oversizeSent).toBe(true);
    // n1 ends the oversized connection (ws: close 1009, or a reset while the payload still streams).
    expect(big.closedAfterMs).toBeGreaterThanOrEqual(0);
    await pollUntil(
      'n1 still forwards for n2 (ping p2a -> p1a)',
      async () => {
        const out = await c.outcome(c.pod(2, 0).ns, ['ping', '-c', '1', '-W', '1', c.pod(1, 0).ipv4]);
        return parsePing(out.stdout).received === 1 ? true : undefined;
      },
      15_000,
      200,
    );
    const back = await c.outcome(c.pod(1, 0).ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', c.pod(2, 0).ipv4]);
    expect(parsePing(back.stdout).received).toBe(3);
    expect(c.nodeRunning(1)).toBe(true);
    const after = await readStatus(c, 1);
    const delta = (key: string): number => transportStat(after, key) - transportStat(before, key);
    // Sealed (the default): junk is not a sealed message (unsealed), or does not open, or is a
    // handshake message that does not verify: refused and counted. Not compared with junkSent:
    // n1 ends this connection when the real n2 reconnects (a newer connection from the peer
    // replaces it), and messages in flight then are counted on one side only.
    const refusals = ['ws.drop.unsealed', 'ws.drop.auth_failed', 'ws.drop.unknown_session', 'ws.drop.handshake_refused', 'ws.drop.malformed']
      .map((key) => [key, delta(key)] as const);
    process.stdout.write(`  n1: ${refusals.map(([key, n]) => `${key} +${n}`).join(', ')}, ws.oversized +${delta('ws.oversized')}\n`);
    expect(refusals.reduce((sum, [, n]) => sum + n, 0), JSON.stringify(after['transport'])).toBeGreaterThan(0);
    expect(delta('ws.oversized')).toBeGreaterThanOrEqual(1);
    expect(delta('ws.preProofMessages')).toBe(1);
  });
});
