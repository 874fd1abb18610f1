import { describe, expect, it } from 'vitest';
import { FAKE_NOW_MS as NOW_MS, FAKE_STATS } from '../../test/fake-router-stats.js';
import { buildStatusReport } from '../local-api/status-report.js';
import { formatAgo, formatDrops, formatPeers, formatRoutes, formatStatus, formatTable, humanBytes } from './status-format.js';

describe('humanBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [8 * 1024 * 1024, '8.0 MiB'],
    [3 * 1024 ** 3, '3.0 GiB'],
  ])('%d -> %s', (n, want) => expect(humanBytes(n)).toBe(want));
});

describe('formatAgo', () => {
  it.each([
    [0, 'just now'],
    [-5, 'just now'],
    [42_000, '42s ago'],
    [90_000, '1m ago'],
    [3 * 3600_000, '3h ago'],
    [49 * 3600_000, '2d ago'],
  ])('%d ms -> %s', (ms, want) => expect(formatAgo(ms)).toBe(want));
});

describe('formatTable', () => {
  it('aligns columns and trims trailing blanks', () => {
    expect(formatTable(['A', 'BB'], [['xxx', ''], ['y', 'z']])).toBe('A    BB\nxxx\ny    z\n');
  });
});

describe('views (not a TTY: plain text)', () => {
  const report = buildStatusReport(FAKE_STATS);

  it.each([
    ['status', formatStatus(report, NOW_MS), [
      'node   n1',
      'lease  10.244.1.0/24',
      '',
      'PEER  TRANSPORT  STATE                   ENDPOINT           RTT     LAST HEARD  MTU   RX       TX       LAST SWITCH',
      'n2    udp        up                      192.168.77.2:8285  0.50ms  just now    1460  1.5 KiB  8.5 MiB  -',
      'n3    ws         down (no answer on ws)  -                  -       1m ago      1400  0 B      100 B    1m ago (udp->ws: udp silent 3s)',
      '  n3: no answer on ws: opening handshake timed out after 5000 ms',
      '',
      'drops: no_route 7, unauthenticated 4, spoofed 3, bad_header 2',
    ]],
    ['routes', formatRoutes(report), [
      'SUBNET         NODE  TRANSPORT  STATE',
      '10.244.1.0/24  n1    local      local',
      '10.244.2.0/24  n2    udp        up',
      '10.244.3.0/24  n3    ws         down',
    ]],
    ['peers, none', formatPeers({ ...report, peers: [] }, NOW_MS), ['no peers']],
    ['peers, one down for a reason', formatPeers({ ...report, peers: report.peers.slice(1).map((p) => ({ ...p, downReason: 'authentication failed' })) }, NOW_MS), [
      'PEER  TRANSPORT  STATE                         ENDPOINT  RTT  LAST HEARD  MTU   RX   TX     LAST SWITCH',
      'n3    ws         down (authentication failed)  -         -    1m ago      1400  0 B  100 B  1m ago (udp->ws: udp silent 3s)',
    ]],
    ['peers, one never heard from', formatPeers({ ...report, peers: report.peers.slice(1).map(({ lastHeardAgeMs: _, ...p }) => p) }, NOW_MS), [
      'PEER  TRANSPORT  STATE                   ENDPOINT  RTT  LAST HEARD  MTU   RX   TX     LAST SWITCH',
      'n3    ws         down (no answer on ws)  -         -    never       1400  0 B  100 B  1m ago (udp->ws: udp silent 3s)',
    ]],
    ['drops, none', formatDrops({}, { 'udp.drop.congested': 0, 'udp.packetsIn': 5 }), ['drops: none']],
  ])('%s', (_name, text, lines) => {
    expect(text).toBe(`${lines.join('\n')}\n`);
    // eslint-disable-next-line no-control-regex
    expect(text).not.toMatch(/\x1b/);
  });
});
