/**
 * A flood of idle TCP connections on a node's WebSocket port: 20,000 from an attacker namespace
 * on the underlay with 80 source addresses (4 processes of 5,000, each within its own open-files
 * limit), each one the node closes opened again. One process opens all of its connections from a
 * single address, so the per-source cap is met whatever the timing; the other three share 79
 * addresses, more than the global cap lets in. While they come, the node must keep (a) taking its real peer's connection (n2 restarts and dials in
 * again) and forwarding pod traffic over it, (b) answering its local API within 1 s, (c) clear of
 * EMFILE, its open files bounded by the cap on unauthenticated connections.
 *
 * ```
 *                  underlay ns (bridge ul0, 192.168.77.0/24)
 *          /                        |                                   \
 *   n1 ws :8443  <--- dials ---  n2 (refuses inbound :8443:          attacker ns pt<id>-atk
 *     ^  GET /status               dial-out only, transport ws)      192.168.77.100 .. .179
 *     '------------------ 20,000 idle TCP connections, reopened as n1 resets them ------'
 *   p1a 10.244.1.10  <--- ping --->  p2a 10.244.2.10
 * ```
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WS_PORT } from '../../lab/cluster.js';
import { logEntries, readStatus, transportStat, waitPeers } from '../../lab/podtun-status.js';
import { pollUntil } from '../../lab/shell.js';
import { startWsAttack, wsAttackSkipReason } from '../../lab/ws-attack.js';
import { fetchStatusReport } from '../../api/api-client.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping', 'nft', 'prlimit']) ?? podtunSkipReason() ?? wsAttackSkipReason();
printSkip('podtun-ws-flood.test.ts', skipReason);

const FLOOD_CONNECTIONS = 20_000;
const FLOOD_PROCESSES = 4;
const PER_PROCESS = FLOOD_CONNECTIONS / FLOOD_PROCESSES;
const ATTACKER_SOURCES = Array.from({ length: 80 }, (_, i) => `192.168.77.${100 + i}`);
/** Each attacker process's open-files soft limit: room for every connection it holds. */
const ATTACKER_NOFILE = PER_PROCESS + 1000;
/** Open files podtun needs besides unauthenticated connections (TUN, sockets, logs, node's own). */
const FD_HEADROOM = 300;

/** Process 0 floods from one address alone; the others share the rest. */
function floodSources(process: number): string[] {
  if (process === 0) return ATTACKER_SOURCES.slice(0, 1);
  const rest = ATTACKER_SOURCES.slice(1);
  const share = Math.ceil(rest.length / (FLOOD_PROCESSES - 1));
  return rest.slice((process - 1) * share, process * share);
}

/** The listener's admission counters out of a status report's transport stats. */
function admissionCounters(transport: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(transport).filter(([k]) =>
    /^ws\.(refused|handshakeTimeouts|unauthenticated|maxUnauthenticated|proofFailures|inboundAccepted)/.test(k)));
}

interface FloodResult {
  attempts: number;
  connected: number;
  closedByServer: number;
  resets: number;
  maxOpen: number;
  open: number;
  errors: Record<string, number>;
}

/** The agent's open-files option: raise the soft limit (up to the hard one, no privilege needed) when short. */
function attackerNofile(): { nofile?: number; hard?: number } {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const soft = m?.[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m?.[1] ?? 0);
  const hard = m?.[2] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m?.[2] ?? 0);
  if (soft >= ATTACKER_NOFILE) return {};
  if (hard < ATTACKER_NOFILE) throw new Error(`open-files hard limit ${hard} is under the ${ATTACKER_NOFILE} an attacker process needs`);
  return { nofile: ATTACKER_NOFILE, hard };
}

function openFiles(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** A process's open-files limits (Infinity: unlimited). */
function nofile(pid: number): { soft: number; hard: number } {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  const value = (v: string | undefined): number => (v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v ?? 0));
  return { soft: value(m?.[1]), hard: value(m?.[2]) };
}

describe.skipIf(skipReason !== undefined)('podtun: WebSocket port flooded with idle connections (2 nodes + an attacker)', () => {
  const cluster = useCluster({
    nodes: 2,
    podsPerNode: 1,
    ipv6: false,
    mode: 'podtun',
    startNodes: false,
    podtun: { transport: 'ws' },
  });

  it('n2 dials n1 over WebSocket; n1 cannot dial n2', async () => {
    const c = cluster();
    await c.blockInbound(2, [WS_PORT]);
    await c.startNode(1);
    await c.startNode(2);
    await waitPeers(c, 1, ['n2'], { transport: 'ws' }, 20_000);
    await waitPeers(c, 2, ['n1'], { transport: 'ws' }, 20_000);
    const ping = await c.outcome(c.pod(2, 0).ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', c.pod(1, 0).ipv4]);
    expect(parsePing(ping.stdout).received).toBe(3);
    expect(transportStat(await readStatus(c, 1), 'ws.inboundAccepted')).toBeGreaterThanOrEqual(1);
  });

  it('under 20,000 idle connections: the peer reconnects and pods talk, /status answers within 1 s, no EMFILE', { timeout: 180_000 }, async () => {
    const c = cluster();
    const atk = await c.createNamespace('atk');
    await c.exec(c.underlayNs, ['ip', 'link', 'add', 'atk', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', atk]);
    await c.exec(c.underlayNs, ['ip', 'link', 'set', 'atk', 'master', 'ul0', 'up']);
    const batch = [...ATTACKER_SOURCES.map((a) => `addr add ${a}/24 dev eth0`), 'link set eth0 up'].join('\n');
    await c.exec(atk, ['ip', '-batch', '-'], { input: `${batch}\n` });

    const pid = c.nodePid(1);
    if (pid === undefined) throw new Error('n1 is not running');
    // The daemon raised its soft limit to the hard one at start.
    const { soft: limit, hard } = nofile(pid);
    expect(limit).toBe(hard);
    expect(logEntries(c, 1, 'open-files limit')[0]?.['count']).toBe(limit);
    const before = await readStatus(c, 1);
    const cap = transportStat(before, 'ws.maxUnauthenticated');
    const fdsBefore = openFiles(pid);
    process.stdout.write(`  n1: open files ${fdsBefore} (soft limit ${limit}), unauthenticated cap ${cap}\n`);
    expect(cap).toBeGreaterThan(0);
    expect(cap + FD_HEADROOM).toBeLessThan(limit);

    const floods = Array.from({ length: FLOOD_PROCESSES }, (_, k) => startWsAttack<FloodResult>(c, atk, 'flood', {
      to: c.node(1).underlayIp,
      port: WS_PORT,
      sources: floodSources(k).join(','),
      count: PER_PROCESS,
      'hold-ms': 150_000,
      'reopen-per-s': 500,
      'max-opens': 20 * PER_PROCESS,
      'timeout-ms': 170_000,
    }, attackerNofile()));
    let maxFds = fdsBefore;
    const sampler = setInterval(() => {
      try {
        maxFds = Math.max(maxFds, openFiles(pid));
      } catch {
        // the process is gone: the checks below say so
      }
    }, 100);
    try {
      const holding = await Promise.all(floods.map((f) => f.event('holding', 60_000)));
      process.stdout.write(`  flood: all ${FLOOD_CONNECTIONS} tried: ${JSON.stringify(holding)}\n`);

      // (b) the local API answers, each time within 1 s.
      const apiMs: number[] = [];
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        await fetchStatusReport(c.node(1).statusSocket, 1000);
        apiMs.push(Math.round(performance.now() - started));
        await new Promise((r) => setTimeout(r, 200));
      }
      process.stdout.write(`  n1 GET /status under the flood: ${apiMs.join(', ')} ms\n`);
      for (const ms of apiMs) expect(ms).toBeLessThan(1000);

      // (a) the real peer's connection is made again, and carries pod traffic.
      const acceptedBefore = transportStat(await readStatus(c, 1), 'ws.inboundAccepted');
      await c.stopNode(2);
      const restartedAt = performance.now();
      await c.startNode(2);
      await waitPeers(c, 1, ['n2'], { transport: 'ws' }, 30_000);
      await waitPeers(c, 2, ['n1'], { transport: 'ws' }, 30_000);
      const reconnectMs = Math.round(performance.now() - restartedAt);
      process.stdout.write(`  n2 restarted and up again at n1 after ${reconnectMs} ms\n`);
      expect(transportStat(await readStatus(c, 1), 'ws.inboundAccepted')).toBeGreaterThan(acceptedBefore);
      for (const [a, b] of [[c.pod(2, 0), c.pod(1, 0)], [c.pod(1, 0), c.pod(2, 0)]] as const) {
        const ping = await c.outcome(a.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', b.ipv4]);
        expect(parsePing(ping.stdout).received, `${a.name} -> ${b.name} under the flood`).toBe(3);
      }

      // The caps and the deadline were what held the flood back.
      const during = await pollUntil('n1 refuses over both caps and times idle connections out', async () => {
        const s = await fetchStatusReport(c.node(1).statusSocket, 1000);
        const ok = transportStat(s, 'ws.refused.perSourceCap') > 0 && transportStat(s, 'ws.refused.globalCap') > 0
          && transportStat(s, 'ws.handshakeTimeouts') > 0;
        // Thrown, so a timeout names the counters it last saw.
        if (!ok) throw new Error(`n1 counters ${JSON.stringify(admissionCounters(s.transport))}`);
        return s;
      }, 30_000, 500);
      process.stdout.write(`  n1 counters: ${JSON.stringify(admissionCounters(during.transport))}\n`);
      expect(transportStat(during, 'ws.unauthenticated')).toBeLessThanOrEqual(cap);
    } finally {
      clearInterval(sampler);
      const results = await Promise.all(floods.map((f) => f.stop().catch((err: unknown) => ({ error: String(err) }))));
      process.stdout.write(`  flood results: ${JSON.stringify(results)}\n`);
    }

    // (c) no EMFILE; open files bounded by the cap, far under the limit.
    process.stdout.write(`  n1 open files: ${fdsBefore} before, at most ${maxFds} during the flood (limit ${limit})\n`);
    expect(c.nodeRunning(1)).toBe(true);
    expect(c.readLog(1)).not.toMatch(/EMFILE|too many open files/i);
    expect(maxFds).toBeLessThanOrEqual(fdsBefore + cap + FD_HEADROOM);
    expect(maxFds).toBeLessThan(limit / 2);
    expect(logEntries(c, 1, 'connections refused').length).toBeGreaterThan(0);
    await pollUntil('n1 holds no unauthenticated connection once the flood stops', async () => {
      const s = await readStatus(c, 1);
      return transportStat(s, 'ws.unauthenticated') === 0 ? true : undefined;
    }, 15_000, 250);
    const ping = await c.outcome(c.pod(1, 0).ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', c.pod(2, 0).ipv4]);
    expect(parsePing(ping.stdout).received).toBe(3);
  });
});
