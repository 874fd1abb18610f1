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

  it('serves process metrics and no podtun series while starting', async () => {
    const text = await createMetrics({ stats: () => undefined }).render();
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).not.toContain('podtun_peer_up{');
  });

  it('sums router and transport drops by reason', () => {
    expect(dropsByReason({ ...FAKE_STATS, drops: { malformed: 1 }, transport: { 'ws.drop.malformed': 2, 'udp.rx': 9 } }).get('malformed')).toBe(3);
  });
});
