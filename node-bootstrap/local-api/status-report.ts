/**
 * What `GET /status` answers (its schema: api/status-schema.ts): the router's stats plus the
 * views an operator asks for — this node's lease, the route table as (subnet, node, transport,
 * state), and each peer's MTU. Pure: built from a RouterStats snapshot.
 */
import { LOCAL_ROUTE } from '../../api/status-schema.js';
import type { RouteView, StatusReport } from '../../api/status-schema.js';
import type { RouterStats } from '../../router/router.js';

export function buildStatusReport(stats: RouterStats): StatusReport {
  const routes: RouteView[] = stats.localSubnets.map((subnet) => ({ subnet, node: stats.node, transport: LOCAL_ROUTE, state: LOCAL_ROUTE }));
  for (const peer of stats.peers) {
    for (const subnet of peer.subnets) {
      routes.push({ subnet, node: peer.node, transport: peer.transport ?? '-', state: peer.state });
    }
  }
  return {
    ...stats,
    lease: [...stats.localSubnets],
    routes,
    peers: stats.peers.map((p) => ({ ...p, mtu: p.tunnelMtu })),
  };
}

/** The report of a node whose router is not built yet: its name and nothing else. */
export function emptyStatusReport(node: string): StatusReport {
  return { node, localSubnets: [], drops: {}, icmpSuppressed: 0, peers: [], transport: {}, lease: [], routes: [] };
}
