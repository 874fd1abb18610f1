import { describe, expect, it } from 'vitest';
import type { RouterStats } from '../../router/router.js';
import { createMetrics, dropsByReason } from './metrics.js';
import { FAKE_STATS } from '../../test/fake-router-stats.js';

/** The value of one sample line, e.g. `podtun_peer_up{peer="n2",transport="udp"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('createMetrics', () => {
  it.each([
    ['podtun_peer_tx_bytes_total{peer="n2",transport="udp"}', 8_912_896],
    ['podtun_peer_tx_packets_total{peer="n2",transport="udp"}', 6000],
    ['podtun_peer_rx_bytes_total{peer="n2",transport="udp"}', 1536],
    ['podtun_peer_rx_packets_total{peer="n3",transport="ws"}', 0],
    ['podtun_peer_up{peer="n2",transport="udp"}', 1],
    ['podtun_peer_up{peer="n3",transport="ws"}', 0],
    ['podtun_peer_rtt_seconds{peer="n2",transport="udp"}', 0.0005],
    ['podtun_peer_rtt_seconds{peer="n3",transport="ws"}', undefined],
    ['podtun_peer_last_heard_seconds{peer="n2",transport="udp"}', 0.4],
    ['podtun_peer_last_heard_seconds{peer="n3",transport="ws"}', 95],
    ['podtun_peer_down_reason{peer="n3",reason="no answer on ws"}', 1],
    ['podtun_drops_total{reason="unauthenticated"}', 4],
    ['podtun_drops_total{reason="spoofed"}', 3],
    ['podtun_drops_total{reason="no_route"}', 7],
    ['podtun_drops_total{reason="bad_header"}', 2],
    ['podtun_drops_total{reason="malformed"}', 0],
    ['podtun_transport_switches_total', 1],
  ])('%s = %s', async (series, want) => {
    const text = await createMetrics({ stats: () => FAKE_STATS, processMetrics: false }).render();
    expect(sample(text, series)).toBe(want);
  });

  it('reads the stats at each scrape and forgets peers that are gone', async () => {
    let stats: RouterStats = FAKE_STATS;
    const metrics = createMetrics({ stats: () => stats, processMetrics: false });
    await metrics.render();
    stats = { ...FAKE_STATS, peers: FAKE_STATS.peers.slice(0, 1).map((p) => ({ ...p, txBytes: p.txBytes + 10 })) };
    const text = await metrics.render();
    expect(sample(text, 'podtun_peer_tx_bytes_total{peer="n2",transport="udp"}')).toBe(8_912_906);
    expect(text).not.toContain('peer="n3"');
    expect(text).toContain('# TYPE podtun_peer_tx_bytes_total counter');
    expect(metrics.contentType).toContain('text/plain');
  });

  it('shows per sealed peer the age of its keys, and why a peer is not up', async () => {
    const [n2, n3] = FAKE_STATS.peers;
    if (n2 === undefined || n3 === undefined) throw new Error('FAKE_STATS has two peers');
    const stats: RouterStats = { ...FAKE_STATS, peers: [{ ...n2, sealed: true, lastHandshakeAgeMs: 42_000 }, { ...n3, downReason: 'authentication failed' }] };
    const text = await createMetrics({ stats: () => stats, processMetrics: false }).render();
    expect(sample(text, 'podtun_peer_handshake_age_seconds{peer="n2",transport="udp"}')).toBe(42);
    expect(sample(text, 'podtun_peer_down_reason{peer="n3",reason="authentication failed"}')).toBe(1);
    expect(text).not.toContain('podtun_peer_down_reason{peer="n2"');
  });

  it('serves process metrics and no podtun series while starting', async () => {
    const text = await createMetrics({ stats: () => undefined }).render();
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).not.toContain('podtun_peer_up{');
  });

  it('counts WebSocket connections refused before authenticating, by reason, when the transport reports them', async () => {
    const transport = { ...FAKE_STATS.transport, 'ws.refused.perSourceCap': 7, 'ws.refused.globalCap': 5, 'ws.handshakeTimeouts': 2,
      'ws.authRejected': 0, 'ws.proofFailures': 1, 'ws.preProofMessages': 3 };
    const text = await createMetrics({ stats: () => ({ ...FAKE_STATS, transport }), processMetrics: false }).render();
    const cases: Array<[string, number]> = [['per_source_cap', 7], ['global_cap', 5], ['handshake_timeout', 2], ['auth_rejected', 0],
      ['proof_failure', 1], ['message_before_proof', 3]];
    for (const [reason, n] of cases) expect({ reason, n: sample(text, `podtun_ws_connections_refused_total{reason="${reason}"}`) }).toEqual({ reason, n });
    const without = await createMetrics({ stats: () => FAKE_STATS, processMetrics: false }).render();
    expect(without).not.toContain('podtun_ws_connections_refused_total{');
  });

  it('sums router and transport drops by reason', () => {
    expect(dropsByReason({ ...FAKE_STATS, drops: { malformed: 1 }, transport: { 'ws.drop.malformed': 2, 'udp.rx': 9 } }).get('malformed')).toBe(3);
  });
});
