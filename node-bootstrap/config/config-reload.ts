/**
 * Which config edits a running node can take: the node list (peers come and go, their
 * endpoints, transport preferences and MTUs change; static mode) and the log level. The rest
 * shapes the TUN, the sockets, the secret or this node's addresses, so changing it needs a
 * restart: such a reload is refused, naming each field (never printing the secret or proxy
 * credentials).
 */
import { ConfigError, localNodeOf, tunMtuOf } from './node-config.js';
import type { NodeConfig } from './node-config.js';

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
  for (const t of running.transports) {
    compare(t.settingsKey, settingsText(t.settings), settingsText(next.transports.find((n) => n.kind === t.kind)?.settings));
  }
  compare('underlayMtu', running.underlayMtu, next.underlayMtu);
  compare('encryption', running.encryption, next.encryption);
  compare('nodeKeyFile', running.nodeKeyFile, next.nodeKeyFile);
  compare('resolveSeconds', running.resolveSeconds, next.resolveSeconds);
  compare('api', running.api, next.api);
  compare('dashboard', running.dashboard, next.dashboard);
  compare('subnetManager', { type: running.subnetManager.type, ...asObject(running.subnetManager.settings) },
    { type: next.subnetManager.type, ...asObject(next.subnetManager.settings) });
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
  if (issues.length === 0 && next.subnetManager.readsNodeList) {
    const at = next.nodes.findIndex((n) => n.name === next.nodeName);
    compare(`nodes[${at}].subnets`, localNodeOf(running).subnets, localNodeOf(next).subnets);
  }
  if (issues.length > 0) throw new ConfigError(next.source, issues);
}

/** Settings as compared: a "host:port" listen by its text, blocks by their JSON. */
function settingsText(settings: unknown): unknown {
  if (typeof settings === 'object' && settings !== null && 'text' in settings) return (settings as { text: unknown }).text;
  return settings;
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? { ...(value as Record<string, unknown>) } : {};
}
