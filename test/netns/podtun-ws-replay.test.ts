/**
 * A WebSocket handshake captured on plain ws:// and replayed at the node it was made for. n2
 * reaches n1 only through a TCP relay that records what n2 sends (its upgrade request, then its
 * proof message). Replayed while n1 runs, the hello is refused (its nonce is remembered: 401).
 * Replayed after n1 restarts (the nonce cache is gone), the hello passes, but the recorded proof
 * is over the old server nonce: n1 closes the connection, counts a proof failure, and n2's real
 * connection is neither replaced nor disturbed; pod traffic keeps flowing.
 *
 * ```
 *                    underlay ns (bridge ul0, 192.168.77.0/24)
 *        /                           |                                \
 *   n1 ws :8443  <------  relay ns pt<id>-rly 192.168.77.210:8443  <------  n2 (dial-out only;
 *     ^                    (records n2 -> n1 bytes: capture-<n>.bin)           its wsEndpoint for
 *     '------ replay of capture: upgrade + proof, from the relay ns --'        n1 is the relay)
 *   p1a 10.244.1.10  <-------------------- ping -------------------->  p2a 10.244.2.10
 * ```
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WS_PORT } from '../../lab/cluster.js';
import { logEntries, peerView, readStatus, transportStat, waitPeers } from '../../lab/podtun-status.js';
import { pollUntil } from '../../lab/shell.js';
import { runWsAttack, startWsAttack, wsAttackSkipReason } from '../../lab/ws-attack.js';
import type { AgentRun } from '../../lab/ws-attack.js';
import { PROOF_LEN, PROOF_MAGIC } from '../../tunnel/ws/ws-handshake.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping', 'nft']) ?? podtunSkipReason() ?? wsAttackSkipReason();
printSkip('podtun-ws-replay.test.ts', skipReason);

const RELAY_IP = '192.168.77.210';

interface ReplayResult {
  status: number;
  closedByServer: boolean;
  closedAfterMs: number;
  bytesIn: number;
}

/**
 * The upgrade request and the first WebSocket frame (the proof) of a recorded client stream, or
 * undefined when it holds no complete proof frame.
 */
function handshakeOf(stream: Buffer): Buffer | undefined {
  const end = stream.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const frameAt = end + 4;
  const b1 = stream[frameAt + 1];
  if (b1 === undefined || (b1 & 0x7f) >= 126) return undefined;
  const masked = (b1 & 0x80) !== 0;
  const len = b1 & 0x7f;
  const payloadAt = frameAt + 2 + (masked ? 4 : 0);
  if (stream.length < payloadAt + len || len !== PROOF_LEN) return undefined;
  const mask = masked ? stream.subarray(frameAt + 2, frameAt + 6) : Buffer.alloc(4);
  const payload = Buffer.from(stream.subarray(payloadAt, payloadAt + len));
  for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] ?? 0) ^ (mask[i % 4] ?? 0);
  if (!payload.subarray(0, PROOF_MAGIC.length).equals(PROOF_MAGIC)) return undefined;
  return stream.subarray(0, payloadAt + len);
}

describe.skipIf(skipReason !== undefined)('podtun: a WebSocket handshake replayed after a restart (2 nodes + a relay)', () => {
  const cluster = useCluster({
    nodes: 2,
    podsPerNode: 1,
    ipv6: false,
    mode: 'podtun',
    startNodes: false,
    podtun: {
      transport: 'ws',
      peerOverrides: (i, peer) => (i === 2 && peer === 1 ? { wsEndpoint: `ws://${RELAY_IP}:${WS_PORT}` } : {}),
    },
  });
  let relay: AgentRun<{ connections: number }> | undefined;
  let relayNs = '';
  let replayFile = '';

  it('n2 reaches n1 through the recording relay only', async () => {
    const c = cluster();
    relayNs = await c.createNamespace('rly');
    await c.exec(c.underlayNs, ['ip', 'link', 'add', 'rly', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', relayNs]);
    await c.exec(c.underlayNs, ['ip', 'link', 'set', 'rly', 'master', 'ul0', 'up']);
    await c.exec(relayNs, ['ip', 'addr', 'add', `${RELAY_IP}/24`, 'dev', 'eth0']);
    await c.exec(relayNs, ['ip', 'link', 'set', 'eth0', 'up']);
    relay = startWsAttack(c, relayNs, 'relay', {
      listen: `${RELAY_IP}:${WS_PORT}`,
      to: `${c.node(1).underlayIp}:${WS_PORT}`,
      record: join(c.dir, 'capture'),
      'timeout-ms': 600_000,
    });
    await relay.event('listening', 10_000);
    await c.blockInbound(2, [WS_PORT]);
    await c.startNode(1);
    await c.startNode(2);
    await waitPeers(c, 1, ['n2'], { transport: 'ws' }, 20_000);
    await waitPeers(c, 2, ['n1'], { transport: 'ws' }, 20_000);
    const ping = await c.outcome(c.pod(2, 0).ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', c.pod(1, 0).ipv4]);
    expect(parsePing(ping.stdout).received).toBe(3);

    // The capture: n2's upgrade request and its proof, as they crossed the wire.
    const captures = readdirSync(c.dir).filter((f) => /^capture-\d+\.bin$/.test(f))
      .sort((x, y) => Number(/\d+/.exec(x)?.[0]) - Number(/\d+/.exec(y)?.[0]));
    const handshakes = captures.map((f) => handshakeOf(readFileSync(join(c.dir, f)))).filter((h) => h !== undefined);
    const last = handshakes[handshakes.length - 1];
    expect(last, `a complete upgrade + proof among ${captures.join(', ')}`).toBeDefined();
    if (last === undefined) return;
    expect(last.toString('latin1')).toMatch(/^GET \/ HTTP\/1\.1\r\n[\s\S]*x-podtun-auth: [0-9a-f]{64}\r\n/i);
    replayFile = join(c.dir, 'replay.bin');
    writeFileSync(replayFile, last);
  });

  it('replayed while n1 runs: the hello is refused (401, its nonce is remembered)', async () => {
    const c = cluster();
    expect(replayFile).not.toBe('');
    const before = transportStat(await readStatus(c, 1), 'ws.authRejected');
    const replay = await runWsAttack<ReplayResult>(c, relayNs, 'replay', {
      to: c.node(1).underlayIp, port: WS_PORT, file: replayFile, 'hold-ms': 3_000, 'timeout-ms': 10_000,
    });
    process.stdout.write(`  replay before the restart: ${JSON.stringify(replay)}\n`);
    expect(replay.status).toBe(401);
    expect(transportStat(await readStatus(c, 1), 'ws.authRejected')).toBe(before + 1);
  });

  it('replayed after n1 restarts: the hello passes, the proof fails; nothing replaced, traffic flows', { timeout: 90_000 }, async () => {
    const c = cluster();
    await c.stopNode(1);
    await c.startNode(1);
    await waitPeers(c, 1, ['n2'], { transport: 'ws' }, 20_000);
    await waitPeers(c, 2, ['n1'], { transport: 'ws' }, 20_000);
    // Settled: n2's connection through the relay is n1's inbound one for n2, and the only link.
    const n1Before = await readStatus(c, 1);
    const n2Before = await readStatus(c, 2);
    expect(transportStat(n1Before, 'ws.inboundAccepted')).toBe(1);

    const ping = c.outcome(c.pod(2, 0).ns, ['ping', '-c', '20', '-i', '0.1', '-W', '1', c.pod(1, 0).ipv4]);
    const replay = await runWsAttack<ReplayResult>(c, relayNs, 'replay', {
      to: c.node(1).underlayIp, port: WS_PORT, file: replayFile, 'hold-ms': 5_000, 'timeout-ms': 15_000,
    });
    process.stdout.write(`  replay after the restart: ${JSON.stringify(replay)}\n`);
    // The hello passes (the nonce cache did not survive), the proof over the old nonce does not.
    expect(replay.status).toBe(101);
    expect(replay.closedByServer).toBe(true);
    expect(replay.closedAfterMs).toBeLessThan(2_000);
    const pinged = parsePing((await ping).stdout);
    expect(pinged.received, 'p2a -> p1a during the replay').toBe(20);

    const n1After = await pollUntil('n1 counts the proof failure', async () => {
      const s = await readStatus(c, 1);
      return transportStat(s, 'ws.proofFailures') === transportStat(n1Before, 'ws.proofFailures') + 1 ? s : undefined;
    }, 5_000, 100);
    const n2After = await readStatus(c, 2);
    const delta = (after: typeof n1After, before: typeof n1After, key: string): number => transportStat(after, key) - transportStat(before, key);
    process.stdout.write(`  n1: ws.proofFailures +${delta(n1After, n1Before, 'ws.proofFailures')}, ws.inboundAccepted +${delta(n1After, n1Before, 'ws.inboundAccepted')}; n2: ws.connectsOk +${delta(n2After, n2Before, 'ws.connectsOk')}\n`);
    expect(delta(n1After, n1Before, 'ws.inboundAccepted')).toBe(0);
    expect(delta(n2After, n2Before, 'ws.connectsOk')).toBe(0);
    expect(delta(n2After, n2Before, 'ws.reconnects')).toBe(0);
    expect(peerView(n1After, 'n2')?.state).toBe('up');
    expect(logEntries(c, 1, 'connection closed').filter((e) => e['reason'] === 'replaced by a newer connection from the peer')).toEqual([]);
    expect(logEntries(c, 1, 'connection refused').some((e) => /proof did not verify/.test(String(e['reason'])))).toBe(true);
    const back = await c.outcome(c.pod(1, 0).ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', c.pod(2, 0).ipv4]);
    expect(parsePing(back.stdout).received).toBe(3);
    const relayed = await relay?.stop();
    process.stdout.write(`  relay: ${JSON.stringify(relayed)}\n`);
  });
});
