/** A RouterStats snapshot for formatting and metrics tests (no router behind it). */
import type { RouterStats } from '../router/router.js';

export const FAKE_NOW_MS = 1_700_000_000_000;

/** A 3-node view from n1: n2 over UDP, n3 switched to WebSocket 90 s ago. */
export const FAKE_STATS: RouterStats = {
  node: 'n1',
  localSubnets: ['10.244.1.0/24'],
  drops: { spoofed: 3, no_route: 7 },
  icmpSuppressed: 0,
  peers: [
    {
      node: 'n2', subnets: ['10.244.2.0/24'], endpoint: '192.168.77.2:8285', endpoints: { udp: '192.168.77.2:8285' }, tunnelMtu: 1460,
      txPackets: 6000, txBytes: 8_912_896, rxPackets: 3000, rxBytes: 1536, spoofed: 3,
      state: 'up', rttMs: 0.5, lastHeardAgeMs: 400, transport: 'udp',
    },
    {
      node: 'n3', subnets: ['10.244.3.0/24'], endpoint: undefined, endpoints: {}, tunnelMtu: 1400,
      txPackets: 1, txBytes: 100, rxPackets: 0, rxBytes: 0, spoofed: 0,
      state: 'down', rttMs: undefined, lastHeardAgeMs: 95_000, transport: 'ws',
      downReason: 'no answer on ws', downDetail: 'opening handshake timed out after 5000 ms',
      lastSwitch: { atMs: FAKE_NOW_MS - 90_000, from: 'udp', to: 'ws', reason: 'udp silent 3s' },
    },
  ],
  transport: { 'udp.drop.bad_header': 2, 'udp.drop.unauthenticated': 4, switches: 1 },
};
