import { describe, expect, it } from 'vitest';
import { readStatusReport } from '../../api/status-schema.js';
import { FAKE_STATS } from '../../test/fake-router-stats.js';
import { buildStatusReport, emptyStatusReport } from './status-report.js';

describe('buildStatusReport', () => {
  it('adds lease, routes and per-peer mtu', () => {
    const r = buildStatusReport(FAKE_STATS);
    expect(r.lease).toEqual(['10.244.1.0/24']);
    expect(r.routes).toEqual([
      { subnet: '10.244.1.0/24', node: 'n1', transport: 'local', state: 'local' },
      { subnet: '10.244.2.0/24', node: 'n2', transport: 'udp', state: 'up' },
      { subnet: '10.244.3.0/24', node: 'n3', transport: 'ws', state: 'down' },
    ]);
    expect(r.peers.map((p) => p.mtu)).toEqual([1460, 1400]);
  });

  it.each([
    ['a router snapshot', buildStatusReport(FAKE_STATS)],
    ['a node not built yet', emptyStatusReport('n1')],
  ])('%s reads back through the schema unchanged', (_name, report) => {
    expect(readStatusReport(JSON.parse(JSON.stringify(report)))).toEqual(report);
  });
});
