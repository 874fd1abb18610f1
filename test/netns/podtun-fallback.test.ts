/**
 * podtun transport selection (auto) under a TCP stream that outlives two switches: UDP on n1's
 * underlay is blocked (peers move to WebSocket), unblocked (back to UDP), blocked again (to
 * WebSocket). Each switch is timed from the nftables change to /status showing it; the stream
 * finishes with the same SHA-256, and each switch is logged with its reason.
 *
 * ```
 *   p1a 10.244.1.10 -- n1 ==UDP 8285 (blocked / unblocked / blocked on n1)== n2 -- p2a 10.244.2.10
 *                         \=========== WebSocket :8443 (fallback) ==========/
 *   tcp-send paced at 48 Mbit/s, 192 MiB (~34 s) ---------------------------------> tcp-sink
 * ```
 */
import { describe, expect, it } from 'vitest';
import { probe, startProbe } from '../../lab/probe.js';
import type { SendResult, SinkResult } from '../../lab/probe.js';
import { logEntries, peerView, readStatus, waitPeers } from '../../lab/podtun-status.js';
import { sleep } from '../../lab/shell.js';
import { netnsSkipReason, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['nft']) ?? podtunSkipReason();
printSkip('podtun-fallback.test.ts', skipReason);

const SINK_PORT = 5030;
const BYTES = 192 * 1024 * 1024;
const RATE_MBPS = 48;
/** From the UDP block (or unblock) to /status showing the other transport. */
const SWITCH_LIMIT_MS = 10_000;
const SWITCH_BACK_LIMIT_MS = 20_000;

describe.skipIf(skipReason !== undefined)('podtun: auto transport falls back to WebSocket and back (2 nodes)', () => {
  const cluster = useCluster({ nodes: 2, podsPerNode: 1, ipv6: false, mode: 'podtun' });

  it('switches udp -> ws -> udp -> ws under a live TCP stream that arrives intact', { timeout: 120_000 }, async () => {
    const c = cluster();
    await waitPeers(c, 1, ['n2'], { transport: 'udp' }, 10_000);
    await waitPeers(c, 2, ['n1'], { transport: 'udp' }, 10_000);
    const from = c.pod(1, 0);
    const to = c.pod(2, 0);
    const sink = await startProbe<SinkResult>(c, to.ns, 'tcp-sink', { port: SINK_PORT, 'timeout-ms': 100_000 });
    const sending = probe<SendResult>(c, from.ns, 'tcp-send', {
      to: to.ipv4,
      port: SINK_PORT,
      bytes: BYTES,
      seed: 31,
      'rate-mbps': RATE_MBPS,
      'timeout-ms': 100_000,
    });
    sending.catch(() => undefined);

    const timings: string[] = [];
    const step = async (blocked: boolean, transport: 'udp' | 'ws', limitMs: number): Promise<number> => {
      await c.blockUdp(1, blocked);
      const t0 = Date.now();
      await waitPeers(c, 1, ['n2'], { transport }, limitMs + 5_000, 50);
      const n1Ms = Date.now() - t0;
      await waitPeers(c, 2, ['n1'], { transport }, limitMs + 5_000, 50);
      const bothMs = Date.now() - t0;
      timings.push(`${blocked ? 'block' : 'unblock'} -> ${transport}: n1 ${n1Ms} ms, both ${bothMs} ms`);
      return bothMs;
    };

    await sleep(3_000);
    const first = await step(true, 'ws', SWITCH_LIMIT_MS);
    await sleep(3_000);
    const back = await step(false, 'udp', SWITCH_BACK_LIMIT_MS);
    await sleep(3_000);
    const again = await step(true, 'ws', SWITCH_LIMIT_MS);
    process.stdout.write(`  switches: ${timings.join('; ')}\n`);

    const sent = await sending;
    const got = await sink.result;
    expect(sent.bytes).toBe(BYTES);
    expect(got.bytes).toBe(BYTES);
    expect(got.sha256).toBe(sent.sha256);
    process.stdout.write(`  stream: ${BYTES / 1024 / 1024} MiB in ${sent.seconds.toFixed(1)} s across the switches\n`);

    const status = await readStatus(c, 1);
    const last = peerView(status, 'n2')?.lastSwitch;
    expect(last?.to).toBe('ws');
    expect(last?.reason ?? '').not.toBe('');
    const switched = logEntries(c, 1, 'peer transport switched');
    process.stdout.write(
      `  n1 log: ${switched.map((e) => `${String(e['from'] ?? '?')}->${String(e['to'] ?? '?')} (${String(e['reason'] ?? e['line'] ?? '?')})`).join('; ')}\n`,
    );
    expect(switched.length).toBeGreaterThanOrEqual(3);
    expect(switched.every((e) => typeof e['reason'] === 'string' && e['reason'] !== '')).toBe(true);
    expect(first).toBeLessThan(SWITCH_LIMIT_MS);
    expect(back).toBeLessThan(SWITCH_BACK_LIMIT_MS);
    expect(again).toBeLessThan(SWITCH_LIMIT_MS);
  });
});
