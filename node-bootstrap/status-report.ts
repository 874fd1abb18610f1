/**
 * What `GET /status` answers: the router's stats plus the views an operator asks for — this
 * node's lease, the route table as (subnet, node, transport, state), and each peer's MTU. Pure:
 * built from a RouterStats snapshot; the CLI formats it (status-format.ts).
 */
import type { PeerStats, RouterStats } from '../router/router.js';

/** The transport / state a route to this node's own subnets shows. */
export const LOCAL_ROUTE = 'local';

export interface RouteView {
  subnet: string;
  node: string;
  /** 'udp' | 'ws' for a peer (what carries it now), 'local' for this node's lease, '-' when none yet. */
  transport: string;
  /** The peer's state ('up', 'down', 'unknown'), 'local' for this node's lease. */
  state: string;
}

export interface PeerReport extends PeerStats {
  /** Largest inner packet sent to this peer, bytes. */
  mtu: number;
}

export interface StatusReport extends Omit<RouterStats, 'peers'> {
  /** This node's subnets (its lease). */
  lease: string[];
  routes: RouteView[];
  peers: PeerReport[];
}

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
