/**
 * Which config edits a running node can take: the node list (peers come and go, endpoints,
 * WebSocket endpoints, transport modes and MTUs change; static mode) and the log level. The rest shapes the
 * TUN, the sockets, the secret or this node's addresses, so changing it needs a restart: such a
 * reload is refused, naming each field (never printing the secret or proxy credentials).
 */
import { ConfigError, localNodeOf, tunMtuOf } from './config.js';
import type { NodeConfig } from './config.js';

/** Throws ConfigError when `next` changes a field that only a restart can apply. */
export function checkReloadable(running: NodeConfig, next: NodeConfig): void {
  const issues: { path: string; reason: string }[] = [];
  const compare = (path: string, before: unknown, after: unknown): void => {
    const a = JSON.stringify(before);
    const b = JSON.stringify(after);
    if (a !== b) issues.push({ path, reason: `changed from ${a} to ${b}; restart podtun to apply` });
  };
  compare('nodeName', running.nodeName, next.nodeName);
  compare('clusterCidrs', running.clusterCidrs, next.clusterCidrs);
  compare('tunName', running.tunName, next.tunName);
  compare('listen', running.listen.text, next.listen.text);
  compare('underlayMtu', running.underlayMtu, next.underlayMtu);
  compare('ws', running.ws, next.ws);
  compare('api', running.api, next.api);
  compare('dashboard', running.dashboard, next.dashboard);
  compare('subnetManager', running.subnetManager, next.subnetManager);
  compare('advertise', running.advertise, next.advertise);
  compare('cni', running.cni, next.cni);
  if (!running.clusterSecret.equals(next.clusterSecret)) {
    issues.push({ path: 'clusterSecret', reason: 'changed; restart podtun to apply (on every node)' });
  }
  if (running.proxy !== next.proxy) issues.push({ path: 'proxy', reason: 'changed; restart podtun to apply' });
  if (issues.length === 0 && tunMtuOf(running) !== tunMtuOf(next)) {
    issues.push({
      path: 'nodes',
      reason: `the endpoints' address family changes the tunnel MTU from ${tunMtuOf(running)} to ${tunMtuOf(next)}; restart podtun to apply`,
    });
  }
  if (issues.length === 0 && next.subnetManager.type === 'static') {
    const at = next.nodes.findIndex((n) => n.name === next.nodeName);
    compare(`nodes[${at}].subnets`, localNodeOf(running).subnets, localNodeOf(next).subnets);
  }
  if (issues.length > 0) throw new ConfigError(next.source, issues);
}
