/**
 * Validates a parsed config document: every problem is collected with its field path and reason,
 * then thrown at once as a ConfigError; a good one comes back deep-frozen. Flow:
 *
 *  1. the node's own fields (name, cluster CIDRs, TUN, log level, secret, api, dashboard, cni);
 *  2. each registered transport validates its own settings key (tunnel/transports.ts);
 *  3. the `subnetManager` block goes to the manager its `type` names (ipam/subnet-managers.ts);
 *     a manager that reads the node list wants `nodes` (fields/nodes.ts), the others `advertise`;
 *  4. cross-field: the underlay family (any IPv6 endpoint or bound listener) and the MTU it leaves.
 */
import { dirname } from 'node:path';
import type { IpFamily } from '../../core/cidr.js';
import { checkKnownKeys, describe, intAt, isAbsent, isRecord, show } from '../../core/config-check.js';
import type { ConfigIssue, IssueFn } from '../../core/config-check.js';
import type { SubnetManagerBlockContext, SubnetManagerChoice } from '../../core/subnet-manager.js';
import { DEFAULT_SUBNET_MANAGER, SUBNET_MANAGERS, subnetManagerOf } from '../../ipam/subnet-managers.js';
import type { TransportChoice } from '../../tunnel/transport-type.js';
import { TRANSPORTS } from '../../tunnel/transports.js';
import { advertiseAt } from './fields/advertise.js';
import { clusterCidrsAt } from './fields/cidrs.js';
import { clusterSecretAt } from './fields/cluster-secret-field.js';
import { cniAt } from './fields/cni-block.js';
import { dashboardAt } from './fields/dashboard-block.js';
import { encryptionAt, nodeKeyFileAt } from './fields/encryption.js';
import { listenBlockAt } from './fields/listen-block.js';
import { checkTunnelMtu, mtuAt } from './fields/mtu.js';
import { nodeNameAt, tunNameAt } from './fields/names.js';
import { nodesAt } from './fields/nodes.js';
import { proxyAt } from './fields/proxy.js';
import {
  ConfigError, DEFAULT_LOG_LEVEL, DEFAULT_RESOLVE_SECONDS, DEFAULT_UNDERLAY_MTU, LOG_LEVELS, MAX_RESOLVE_SECONDS, isLogLevel,
} from './node-config.js';
import type { AdvertiseSettings, ConfigOverrides, LogLevel, NodeConfig, NodeSpec } from './node-config.js';

const OWN_KEYS = [
  'nodeName', 'clusterCidrs', 'tunName', 'underlayMtu', 'logLevel', 'clusterSecret', 'clusterSecretFile',
  'proxy', 'api', 'dashboard', 'subnetManager', 'advertise', 'cni', 'nodes', 'encryption', 'nodeKeyFile',
  'resolveSeconds',
] as const;
const TOP_LEVEL_KEYS: readonly string[] = [...OWN_KEYS, ...TRANSPORTS.map((t) => t.settingsKey)];

export function validateConfig(raw: unknown, source: string, overrides: ConfigOverrides = {}): NodeConfig {
  const issues: ConfigIssue[] = [];
  const issue: IssueFn = (path, reason) => {
    issues.push({ path, reason });
    return undefined;
  };
  if (!isRecord(raw)) {
    throw new ConfigError(source, [{ path: '', reason: `expected a mapping of settings, got ${describe(raw)}` }]);
  }
  checkKnownKeys(raw, '', TOP_LEVEL_KEYS, issue);
  const baseDir = dirname(source);

  const nodeName = raw['nodeName'] === undefined && overrides.nodeName !== undefined
    ? nodeNameAt(overrides.nodeName, 'NODE_NAME', issue, true)
    : nodeNameAt(raw['nodeName'], 'nodeName', issue, true);
  const clusterCidrs = clusterCidrsAt(raw['clusterCidrs'], issue);
  const tunName = tunNameAt(raw['tunName'], issue);
  const logLevel = logLevelAt(raw['logLevel'], overrides, issue);
  const clusterSecret = clusterSecretAt(raw['clusterSecret'], raw['clusterSecretFile'], baseDir, issue);
  const encryption = encryptionAt(raw['encryption'], issue);
  const nodeKeyFile = nodeKeyFileAt(raw['nodeKeyFile'], baseDir, issue);
  const proxy = proxyAt(raw['proxy'], issue);
  const resolveSeconds = intAt(raw['resolveSeconds'], 'resolveSeconds', DEFAULT_RESOLVE_SECONDS, 1, MAX_RESOLVE_SECONDS, issue);
  const api = listenBlockAt(raw['api'], 'api', issue);
  const dashboard = dashboardAt(raw['dashboard'], issue);
  const cni = isAbsent(raw['cni']) ? undefined : cniAt(raw['cni'], baseDir, issue);
  const transports = TRANSPORTS.map((t) => t.validate(raw[t.settingsKey], { baseDir, issue }));

  const subnetManager = subnetManagerAt(raw['subnetManager'], { baseDir, issue, clusterCidrs });
  const families: IpFamily[] = transports.flatMap((t) => (t?.boundFamily === undefined ? [] : [t.boundFamily]));
  let nodes: NodeSpec[] = [];
  let advertise: AdvertiseSettings | undefined;
  const readsNodeList = subnetManager?.readsNodeList ?? true;
  if (readsNodeList) {
    const result = nodesAt(raw['nodes'], { nodeName, clusterCidrs, transports, encryption, issue });
    nodes = result.nodes;
    families.push(...result.families);
    if (raw['advertise'] !== undefined) issue('advertise', `only used with subnetManager.type ${controlPlaneTypes()}; in static mode this node's endpoints are its nodes[] entry`);
  } else {
    if (raw['nodes'] !== undefined) issue('nodes', `not used with subnetManager.type ${subnetManager?.type ?? ''} (leases come from it); remove it, and put this node's endpoints under advertise`);
    const result = advertiseAt(raw['advertise'], transports, clusterCidrs, issue);
    advertise = result?.advertise;
    families.push(...(result?.families ?? []));
  }

  const underlayFamily: IpFamily = families.includes(6) ? 6 : 4;
  const underlayMtu =
    raw['underlayMtu'] === undefined
      ? checkTunnelMtu(DEFAULT_UNDERLAY_MTU, 'underlayMtu', clusterCidrs, underlayFamily, issue)
      : mtuAt(raw['underlayMtu'], 'underlayMtu', underlayFamily, clusterCidrs, issue);

  if (issues.length > 0) throw new ConfigError(source, issues);
  const complete = transports.filter((t): t is TransportChoice => t !== undefined);
  if (nodeName === undefined || tunName === undefined || underlayMtu === undefined || clusterSecret === undefined ||
    api === undefined || dashboard === undefined || subnetManager === undefined || resolveSeconds === undefined ||
    complete.length !== transports.length) {
    throw new ConfigError(source, [{ path: '', reason: 'internal: missing field without an issue' }]);
  }
  return deepFreeze({
    source,
    nodeName,
    clusterCidrs: clusterCidrs.map((c) => c.text),
    tunName,
    underlayMtu,
    underlayFamily,
    logLevel,
    clusterSecret,
    encryption,
    nodeKeyFile,
    transports: complete,
    proxy,
    resolveSeconds,
    api,
    dashboard,
    subnetManager,
    advertise,
    cni,
    nodes,
  });
}

function logLevelAt(value: unknown, overrides: ConfigOverrides, issue: IssueFn): LogLevel {
  let level: LogLevel = DEFAULT_LOG_LEVEL;
  if (value !== undefined) {
    if (typeof value === 'string' && isLogLevel(value)) level = value;
    else issue('logLevel', `${show(value)} is not one of ${LOG_LEVELS.join('|')}`);
  }
  return overrides.logLevel ?? level;
}

/** The optional `subnetManager` block: its `type` picks the manager, which validates the rest. */
function subnetManagerAt(value: unknown, ctx: SubnetManagerBlockContext): SubnetManagerChoice | undefined {
  const types = SUBNET_MANAGERS.map((m) => m.type).join('|');
  const block = isAbsent(value) ? { type: DEFAULT_SUBNET_MANAGER } : value;
  if (!isRecord(block)) return ctx.issue('subnetManager', `expected a mapping (type: ${types}, ...), got ${describe(block)}`);
  const type = block['type'] ?? DEFAULT_SUBNET_MANAGER;
  const entry = typeof type === 'string' ? subnetManagerOf(type) : undefined;
  if (entry === undefined) return ctx.issue('subnetManager.type', `${show(type)} is not one of ${types}`);
  if (entry.keys.length === 0) {
    const extra = Object.keys(block).find((k) => k !== 'type');
    if (extra !== undefined) return ctx.issue(`subnetManager.${extra}`, `unknown setting for type ${entry.type}`);
  } else {
    checkKnownKeys(block, 'subnetManager', ['type', ...entry.keys], ctx.issue);
  }
  return entry.validate(block, ctx);
}

function controlPlaneTypes(): string {
  return SUBNET_MANAGERS.filter((m) => !m.readsNodeList).map((m) => m.type).join(' or ');
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
