/**
 * The node config (the README): read once at the edge from YAML or JSON, every field
 * validated with its path and the reason, then deep-frozen. The only importer of `yaml`.
 *
 * Addresses are carried as canonical text (CIDRs as `router/cidr.ts` prints them, endpoints as
 * "host:port" / "[v6]:port"): typed arrays cannot be frozen, and consumers re-parse cheaply with
 * `parseCidr` where they need bytes.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { cidrContains, cidrsOverlap, parseCidr } from '../core/cidr.js';
import type { Cidr, IpFamily } from '../core/cidr.js';
import { formatEndpoint, parseEndpoint } from '../core/endpoint.js';
import { MIN_SECRET_BYTES } from '../tunnel/cluster-auth.js';
import { nodeIdOf } from '../tunnel/node-id.js';
import type { TransportMode } from '../core/transport.js';
import { UDP_OVERHEAD_IPV4, UDP_OVERHEAD_IPV6 } from '../tunnel/udp-header.js';
import { ClusterSecret } from './cluster-secret.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_TUN_NAME = 'podtun0';
export const DEFAULT_LISTEN = '0.0.0.0:8285';
export const DEFAULT_UNDERLAY_MTU = 1500;
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';
export const TRANSPORT_MODES = ['udp', 'ws', 'auto'] as const satisfies readonly TransportMode[];
export const DEFAULT_TRANSPORT_MODE: TransportMode = 'auto';
/** How to make a secret, quoted in the errors about it. */
export const SECRET_HOWTO = 'make one with `head -c 32 /dev/urandom | base64 > /etc/podtun/secret` and set clusterSecretFile: /etc/podtun/secret (the same file on every node)';


export const MTU_MIN = 576;
export const MTU_MIN_IPV6 = 1280;
export const MTU_MAX = 65535;
/** Linux IFNAMSIZ - 1. */
export const TUN_NAME_MAX = 15;

/** "host:port" parsed; `host` is an IP literal (never a name: the addon binds and sends to numbers). */
export interface HostPort {
  readonly host: string;
  readonly port: number;
  readonly family: IpFamily;
  /** Canonical text: "192.168.77.1:8285", "[fd00::1]:8285". */
  readonly text: string;
}

export interface NodeSpec {
  readonly name: string;
  /** tunnel/node-id.ts nodeIdOf(name); unique in the config. */
  readonly nodeId: number;
  /** Canonical CIDR text, the IPv4 subnet first, then the optional IPv6 one. */
  readonly subnets: readonly string[];
  /** Undefined for a node that only dials out. */
  readonly endpoint: HostPort | undefined;
  /** This node's underlay MTU when smaller than the cluster's. */
  readonly mtu: number | undefined;
  /** Where the node accepts WebSocket connections ("ws://host:port", "wss://host:port"), as written. */
  readonly wsEndpoint: string | undefined;
  /** How peers reach the node: udp, ws, or auto (UDP, WebSocket while UDP is unanswered). */
  readonly transport: TransportMode;
}

/** The local API's settings (the `api` block): the Unix socket is always served, TCP only when set. */
/** An optional TCP listener (the `api` and `dashboard` blocks). */
export interface ListenSettings {
  /** "host:port" to serve on; undefined: not served over TCP. */
  readonly listen: HostPort | undefined;
}

/** The WebSocket transport's settings (the `ws` block); file paths are absolute. */
export interface WsSettings {
  /** "host:port" to accept connections on; undefined: this node only dials out. */
  readonly listen: HostPort | undefined;
  /** Certificate and key for the listener (wss); undefined: plain ws. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** CA bundle to trust when dialing wss peers (default: the system's). */
  readonly caFile: string | undefined;
}

/** Where node subnet leases come from (the `subnetManager` block). */
export type SubnetManagerSettings = StaticManagerSettings | EtcdManagerSettings;

/** The `nodes` list of this file (the default). */
export interface StaticManagerSettings {
  readonly type: 'static';
}

/** Leases held in etcd: each node acquires a free subnet of the cluster CIDRs. */
export interface EtcdManagerSettings {
  readonly type: 'etcd';
  /** Client URLs, "http(s)://host:port". */
  readonly endpoints: readonly string[];
  /** Key prefix, starting and ending with "/". */
  readonly prefix: string;
  /** A lease not renewed for this long is free again. */
  readonly ttlSeconds: number;
  readonly subnetLengthV4: number;
  readonly subnetLengthV6: number;
  /** Client TLS (absolute paths); undefined: plain or system-trusted https. */
  readonly tls: { readonly caFile: string | undefined; readonly certFile: string | undefined; readonly keyFile: string | undefined } | undefined;
}

/** How peers reach this node, when leases come from etcd (static mode: its `nodes` entry). */
export interface AdvertiseSettings {
  /** Undefined: this node only dials out. */
  readonly endpoint: HostPort | undefined;
  readonly wsEndpoint: string | undefined;
  readonly transport: TransportMode;
  readonly mtu: number | undefined;
}

/** Installing the CNI executables and conflist once the node is ready (the `cni` block). */
export interface CniSettings {
  readonly binDir: string;
  readonly confDir: string;
  readonly confFileName: string;
  readonly networkName: string;
  /** podtun-ipam's state directory. */
  readonly dataDir: string;
  /** The pod bridge the reference `bridge` plugin creates. */
  readonly bridge: string;
}

export const DEFAULT_ETCD_PREFIX = '/podtun/';
export const DEFAULT_LEASE_TTL_SECONDS = 60;
export const DEFAULT_SUBNET_LENGTH_V4 = 24;
export const DEFAULT_SUBNET_LENGTH_V6 = 64;
/** etcd grants no lease shorter than ~1.5 election timeouts; renewals need headroom. */
export const MIN_LEASE_TTL_SECONDS = 3;
export const MAX_LEASE_TTL_SECONDS = 7 * 24 * 3600;
export const DEFAULT_CNI: CniSettings = {
  binDir: '/opt/cni/bin',
  confDir: '/etc/cni/net.d',
  confFileName: '10-podtun.conflist',
  networkName: 'podtun',
  dataDir: '/var/lib/cni/networks',
  bridge: 'cni0',
};

export interface NodeConfig {
  /** The file it came from, as given (used in messages). */
  readonly source: string;
  readonly nodeName: string;
  readonly nodeId: number;
  /** Canonical CIDR text, the IPv4 one first. */
  readonly clusterCidrs: readonly string[];
  readonly tunName: string;
  readonly listen: HostPort;
  readonly underlayMtu: number;
  readonly logLevel: LogLevel;
  /** Proves membership on both transports; printed as "[redacted]". */
  readonly clusterSecret: ClusterSecret;
  readonly ws: WsSettings;
  /** HTTP proxy for WebSocket dials ("http://[user:pass@]host:port"); undefined: from the environment. */
  readonly proxy: string | undefined;
  /** The local API over TCP too (e.g. Prometheus scrapes); it is always on the Unix socket. */
  readonly api: ListenSettings;
  /** The live dashboard; off unless `dashboard.listen` is set. */
  readonly dashboard: ListenSettings;
  readonly subnetManager: SubnetManagerSettings;
  /** etcd mode only: this node's endpoints (static mode reads them from `nodes`). */
  readonly advertise: AdvertiseSettings | undefined;
  /** Install the CNI plugins and conflist once ready; undefined: leave CNI alone. */
  readonly cni: CniSettings | undefined;
  /** Static mode: every node, this one included. Empty in etcd mode. */
  readonly nodes: readonly NodeSpec[];
}

export interface ConfigIssue {
  /** Field path, e.g. "nodes[1].subnets[0]"; empty for the file as a whole. */
  readonly path: string;
  readonly reason: string;
}

/** An invalid config: every issue found, each with its field path and reason. */
export class ConfigError extends Error {
  readonly code = 'ERR_PODTUN_CONFIG';
  readonly source: string;
  readonly issues: readonly ConfigIssue[];

  constructor(source: string, issues: readonly ConfigIssue[], options?: { cause: unknown }) {
    super(issues.map((i) => (i.path === '' ? `${source}: ${i.reason}` : `${source}: ${i.path}: ${i.reason}`)).join('\n'), options);
    this.name = 'ConfigError';
    this.source = source;
    this.issues = Object.freeze(issues.map((i) => Object.freeze({ ...i })));
  }
}

/** Values from flags and the environment that win over the file. */
export interface ConfigOverrides {
  logLevel?: LogLevel;
}

export interface ConfigSources {
  /** Where the config file is. */
  path: string;
  overrides: ConfigOverrides;
}

/**
 * Flags first, then PODTUN_ environment variables: `--config` / PODTUN_CONFIG,
 * `--log-level` / PODTUN_LOG_LEVEL (which wins over the file's logLevel).
 */
export function resolveConfigSources(
  flags: { config?: string | undefined; logLevel?: string | undefined },
  env: Readonly<Record<string, string | undefined>>,
): ConfigSources {
  const path = nonEmpty(flags.config) ?? nonEmpty(env['PODTUN_CONFIG']);
  if (path === undefined) {
    throw new ConfigError('podtun', [{ path: '--config', reason: 'required (or set PODTUN_CONFIG)' }]);
  }
  const overrides: ConfigOverrides = {};
  const flagLevel = nonEmpty(flags.logLevel);
  const envLevel = nonEmpty(env['PODTUN_LOG_LEVEL']);
  const [level, from] = flagLevel !== undefined ? [flagLevel, '--log-level'] : [envLevel, 'PODTUN_LOG_LEVEL'];
  if (level !== undefined) {
    if (!isLogLevel(level)) throw new ConfigError(from, [{ path: '', reason: `"${level}" is not one of ${LOG_LEVELS.join('|')}` }]);
    overrides.logLevel = level;
  }
  return { path, overrides };
}

/** Reads, parses and validates the file; throws ConfigError naming the file, field and reason. */
export async function loadConfig(path: string, overrides: ConfigOverrides = {}): Promise<NodeConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err: unknown) {
    throw new ConfigError(path, [{ path: '', reason: `cannot read: ${errorMessage(err)}` }], { cause: err });
  }
  return parseConfigText(text, path, overrides);
}

/** YAML (or JSON, which YAML 1.2 reads too; `.json` files go through JSON.parse). */
export function parseConfigText(text: string, source: string, overrides: ConfigOverrides = {}): NodeConfig {
  let raw: unknown;
  if (source.endsWith('.json')) {
    try {
      raw = JSON.parse(text);
    } catch (err: unknown) {
      throw new ConfigError(source, [{ path: '', reason: `not valid JSON: ${errorMessage(err)}` }], { cause: err });
    }
  } else {
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
    if (doc.errors.length > 0) {
      throw new ConfigError(source, doc.errors.map((e) => ({ path: '', reason: `not valid YAML: ${yamlReason(e.message)}` })));
    }
    raw = doc.toJS();
  }
  return validateConfig(raw, source, overrides);
}

const TOP_LEVEL_KEYS = [
  'nodeName', 'clusterCidrs', 'tunName', 'listen', 'underlayMtu', 'logLevel',
  'clusterSecret', 'clusterSecretFile', 'ws', 'proxy', 'api', 'dashboard', 'subnetManager', 'advertise',
  'cni', 'nodes',
] as const;
const ETCD_KEYS = ['type', 'endpoints', 'prefix', 'ttlSeconds', 'subnetLength', 'subnetLengthV6', 'tls'] as const;
const ETCD_TLS_KEYS = ['caFile', 'certFile', 'keyFile'] as const;
const ADVERTISE_KEYS = ['endpoint', 'wsEndpoint', 'transport', 'mtu'] as const;
const CNI_KEYS = ['binDir', 'confDir', 'confFileName', 'networkName', 'dataDir', 'bridge'] as const;
const CNI_NETWORK_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const LISTEN_BLOCK_KEYS = ['listen'] as const;
const NODE_KEYS = ['name', 'subnets', 'endpoint', 'wsEndpoint', 'transport', 'mtu'] as const;
const WS_KEYS = ['listen', 'tls', 'caFile'] as const;
const TLS_KEYS = ['certFile', 'keyFile'] as const;
const NODE_NAME_MAX = 253;
const NODE_NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const TUN_NAME_RE = /^[A-Za-z0-9_.-]+$/;
/** The TUN takes the subnet's network address and the pod bridge .1: at least 4 addresses. */
const SUBNET_PREFIX_MAX: Record<IpFamily, number> = { 4: 30, 6: 126 };

/** Validates an already parsed document. Every problem is collected, then thrown at once. */
export function validateConfig(raw: unknown, source: string, overrides: ConfigOverrides = {}): NodeConfig {
  const issues: ConfigIssue[] = [];
  const issue = (path: string, reason: string): undefined => {
    issues.push({ path, reason });
    return undefined;
  };

  if (!isRecord(raw)) {
    throw new ConfigError(source, [{ path: '', reason: `expected a mapping of settings, got ${describe(raw)}` }]);
  }
  checkKnownKeys(raw, '', TOP_LEVEL_KEYS, issue);

  const nodeName = nodeNameAt(raw['nodeName'], 'nodeName', issue, true);

  // clusterCidrs: one IPv4, optionally one IPv6.
  const clusterCidrs: Cidr[] = [];
  const rawCidrs = raw['clusterCidrs'];
  if (rawCidrs === undefined) issue('clusterCidrs', 'required (one IPv4 CIDR, optionally one IPv6 CIDR)');
  else if (!Array.isArray(rawCidrs)) issue('clusterCidrs', `expected a list of CIDRs, got ${describe(rawCidrs)}`);
  else if (rawCidrs.length === 0) issue('clusterCidrs', 'empty; needs one IPv4 CIDR');
  else {
    const before = issues.length;
    rawCidrs.forEach((value: unknown, i) => {
      const cidr = cidrAt(value, `clusterCidrs[${i}]`, issue);
      if (cidr === undefined) return;
      const same = clusterCidrs.find((c) => c.family === cidr.family);
      if (same !== undefined) issue(`clusterCidrs[${i}]`, `"${cidr.text}": a second IPv${cidr.family} cluster CIDR (already ${same.text}); one per family`);
      else clusterCidrs.push(cidr);
    });
    if (issues.length === before && !clusterCidrs.some((c) => c.family === 4)) issue('clusterCidrs', 'needs one IPv4 CIDR');
  }
  clusterCidrs.sort((a, b) => a.family - b.family);

  const tunName = tunNameAt(raw['tunName'], issue);
  const listen = hostPortAt(raw['listen'] ?? DEFAULT_LISTEN, 'listen', issue);

  let logLevel: LogLevel = DEFAULT_LOG_LEVEL;
  const rawLevel = raw['logLevel'];
  if (rawLevel !== undefined) {
    if (typeof rawLevel === 'string' && isLogLevel(rawLevel)) logLevel = rawLevel;
    else issue('logLevel', `${show(rawLevel)} is not one of ${LOG_LEVELS.join('|')}`);
  }
  if (overrides.logLevel !== undefined) logLevel = overrides.logLevel;

  const baseDir = dirname(source);
  const clusterSecret = clusterSecretAt(raw['clusterSecret'], raw['clusterSecretFile'], baseDir, issue);
  const ws = wsSettingsAt(raw['ws'], baseDir, issue);
  const proxy = raw['proxy'] === undefined || raw['proxy'] === null ? undefined : proxyAt(raw['proxy'], issue);
  const api = listenBlockAt(raw['api'], 'api', issue);
  const dashboard = listenBlockAt(raw['dashboard'], 'dashboard', issue);
  const subnetManager = subnetManagerAt(raw['subnetManager'], clusterCidrs, baseDir, issue);
  const etcdMode = subnetManager?.type === 'etcd';
  const cni = raw['cni'] === undefined || raw['cni'] === null ? undefined : cniAt(raw['cni'], baseDir, issue);

  // nodes
  const nodes: NodeSpec[] = [];
  const rawNodes = raw['nodes'];
  const seenSubnets: { cidr: Cidr; path: string }[] = [];
  const seenNames = new Map<string, string>();
  const seenIds = new Map<number, { name: string; path: string }>();
  const seenEndpoints = new Map<string, string>();
  if (etcdMode) {
    if (rawNodes !== undefined) issue('nodes', 'not used with subnetManager.type etcd (leases come from etcd); remove it, and put this node\'s endpoints under advertise');
  } else if (rawNodes === undefined) issue('nodes', 'required (the list of nodes, this one included), or subnetManager: {type: etcd, ...}');
  else if (!Array.isArray(rawNodes)) issue('nodes', `expected a list of nodes, got ${describe(rawNodes)}`);
  else if (rawNodes.length === 0) issue('nodes', 'empty; it must list this node at least');
  else {
    rawNodes.forEach((rawNode: unknown, i) => {
      const at = `nodes[${i}]`;
      if (!isRecord(rawNode)) return issue(at, `expected a mapping (name, subnets, endpoint, mtu), got ${describe(rawNode)}`);
      checkKnownKeys(rawNode, at, NODE_KEYS, issue);
      const name = nodeNameAt(rawNode['name'], `${at}.name`, issue, true);
      if (name !== undefined) {
        const dup = seenNames.get(name);
        const nodeId = nodeIdOf(name);
        const clash = seenIds.get(nodeId);
        if (dup !== undefined) issue(`${at}.name`, `"${name}" is already used by ${dup}`);
        else if (clash !== undefined) {
          issue(`${at}.name`, `"${name}" has node id 0x${hex32(nodeId)}, the same as "${clash.name}" (${clash.path}); rename one`);
        } else {
          seenNames.set(name, `${at}.name`);
          seenIds.set(nodeId, { name, path: `${at}.name` });
        }
      }

      const subnets: Cidr[] = [];
      const rawSubnets = rawNode['subnets'];
      if (rawSubnets === undefined) issue(`${at}.subnets`, 'required (one IPv4 subnet, optionally one IPv6 subnet)');
      else if (!Array.isArray(rawSubnets)) issue(`${at}.subnets`, `expected a list of CIDRs, got ${describe(rawSubnets)}`);
      else {
        let subnetIssues = false;
        rawSubnets.forEach((value: unknown, j) => {
          const path = `${at}.subnets[${j}]`;
          const before = issues.length;
          const cidr = cidrAt(value, path, issue);
          if (cidr !== undefined) subnetAt(cidr, path, clusterCidrs, subnets, seenSubnets, issue);
          if (issues.length > before) subnetIssues = true;
          else if (cidr !== undefined) {
            subnets.push(cidr);
            seenSubnets.push({ cidr, path });
          }
        });
        if (!subnetIssues && !subnets.some((c) => c.family === 4)) issue(`${at}.subnets`, 'needs one IPv4 subnet');
      }
      subnets.sort((a, b) => a.family - b.family);

      let endpoint: HostPort | undefined;
      const rawEndpoint = rawNode['endpoint'];
      if (rawEndpoint !== undefined && rawEndpoint !== null) {
        endpoint = hostPortAt(rawEndpoint, `${at}.endpoint`, issue);
        if (endpoint !== undefined) {
          const dup = seenEndpoints.get(endpoint.text);
          if (dup !== undefined) issue(`${at}.endpoint`, `"${endpoint.text}" is already used by ${dup}`);
          else seenEndpoints.set(endpoint.text, `${at}.endpoint`);
        }
      }

      let mtu: number | undefined;
      if (rawNode['mtu'] !== undefined) mtu = mtuAt(rawNode['mtu'], `${at}.mtu`, endpoint?.family ?? 4, clusterCidrs, issue);

      const rawWsEndpoint = rawNode['wsEndpoint'];
      const wsEndpoint = rawWsEndpoint === undefined || rawWsEndpoint === null
        ? undefined
        : wsEndpointAt(rawWsEndpoint, `${at}.wsEndpoint`, issue);
      const transport = transportAt(rawNode['transport'], `${at}.transport`, issue);
      const isLocal = name !== undefined && name === nodeName;
      // Simple rules, each about who could dial whom over WebSocket (ws.listen absent = dial-out only).
      if (isLocal && wsEndpoint !== undefined && ws !== undefined && ws.listen === undefined) {
        issue(`${at}.wsEndpoint`, `this node (${name}) has no ws.listen, so nothing answers at ${wsEndpoint}; add ws.listen or drop wsEndpoint`);
      }
      if (!isLocal && transport === 'ws' && (rawWsEndpoint === undefined || rawWsEndpoint === null) && ws !== undefined && ws.listen === undefined) {
        issue(`${at}.transport`, `"ws" but ${name ?? 'this node'} has no wsEndpoint and this node has no ws.listen: neither side can dial the other (add one, or use auto/udp)`);
      }

      if (name !== undefined && transport !== undefined) {
        nodes.push({ name, nodeId: nodeIdOf(name), subnets: subnets.map((c) => c.text), endpoint, mtu, wsEndpoint, transport });
      }
    });
  }

  let advertise: AdvertiseSettings | undefined;
  if (etcdMode) advertise = advertiseAt(raw['advertise'], listen, ws, clusterCidrs, issue);
  else if (raw['advertise'] !== undefined) issue('advertise', 'only used with subnetManager.type etcd; in static mode this node\'s endpoints are its nodes[] entry');

  if (!etcdMode && nodeName !== undefined && Array.isArray(rawNodes) && nodes.length > 0 && !nodes.some((n) => n.name === nodeName)) {
    issue('nodeName', `"${nodeName}" is not in nodes (${nodes.map((n) => n.name).join(', ')})`);
  }

  const family = underlayFamily(listen, nodes, advertise);
  const underlayMtu =
    raw['underlayMtu'] === undefined
      ? checkTunnelMtu(DEFAULT_UNDERLAY_MTU, 'underlayMtu', clusterCidrs, family, issue)
      : mtuAt(raw['underlayMtu'], 'underlayMtu', family, clusterCidrs, issue);

  if (issues.length > 0) throw new ConfigError(source, issues);
  if (nodeName === undefined || tunName === undefined || listen === undefined || underlayMtu === undefined ||
    clusterSecret === undefined || ws === undefined || api === undefined || dashboard === undefined ||
    subnetManager === undefined) {
    throw new ConfigError(source, [{ path: '', reason: 'internal: missing field without an issue' }]);
  }
  return deepFreeze({
    source,
    nodeName,
    nodeId: nodeIdOf(nodeName),
    clusterCidrs: clusterCidrs.map((c) => c.text),
    tunName,
    listen,
    underlayMtu,
    logLevel,
    clusterSecret,
    ws,
    proxy,
    api,
    dashboard,
    subnetManager,
    advertise,
    cni,
    nodes,
  });
}

/** This node's entry (static mode: validation guarantees it exists; etcd mode has none). */
export function localNodeOf(config: NodeConfig): NodeSpec {
  const local = config.nodes.find((n) => n.name === config.nodeName);
  if (local === undefined) throw new ConfigError(config.source, [{ path: 'nodeName', reason: `"${config.nodeName}" is not in nodes` }]);
  return local;
}

/**
 * The underlay family that sizes the TUN MTU: IPv6 when any endpoint (or a specific listen
 * address) is IPv6, since the TUN MTU must fit the worst path; IPv4 otherwise.
 */
export function underlayFamilyOf(config: NodeConfig): IpFamily {
  return underlayFamily(config.listen, config.nodes, config.advertise);
}

export function tunnelOverheadBytes(family: IpFamily): number {
  return family === 6 ? UDP_OVERHEAD_IPV6 : UDP_OVERHEAD_IPV4;
}

/** TUN MTU = underlay MTU - tunnel overhead (1460 on a 1500-byte IPv4 underlay). */
export function tunMtuOf(config: NodeConfig): number {
  return config.underlayMtu - tunnelOverheadBytes(underlayFamilyOf(config));
}

/** Parses "a.b.c.d:port" or "[v6]:port" (tunnel/endpoint.ts); the host must be an IP address. */
export function parseHostPort(text: string): HostPort {
  const { host, port, family } = parseEndpoint(text);
  return { host, port, family, text: formatEndpoint(host, port) };
}

// --- field validators: each returns the value or records an issue and returns undefined ---

type IssueFn = (path: string, reason: string) => undefined;

function nodeNameAt(value: unknown, path: string, issue: IssueFn, required: boolean): string | undefined {
  if (value === undefined) return required ? issue(path, 'required') : undefined;
  if (typeof value !== 'string') return issue(path, `expected a string, got ${describe(value)}`);
  if (value.length === 0 || value.length > NODE_NAME_MAX) return issue(path, `must be 1-${NODE_NAME_MAX} characters`);
  if (!NODE_NAME_RE.test(value)) {
    return issue(path, `"${value}" is not a node name (letters, digits, '.', '_', '-'; starts and ends with a letter or digit)`);
  }
  return value;
}

function cidrAt(value: unknown, path: string, issue: IssueFn): Cidr | undefined {
  if (typeof value !== 'string') return issue(path, `expected a CIDR string, got ${describe(value)}`);
  try {
    return parseCidr(value.trim());
  } catch (err: unknown) {
    return issue(path, errorMessage(err));
  }
}

function subnetAt(
  cidr: Cidr,
  path: string,
  clusterCidrs: readonly Cidr[],
  sameNode: readonly Cidr[],
  seen: readonly { cidr: Cidr; path: string }[],
  issue: IssueFn,
): void {
  const cluster = clusterCidrs.find((c) => c.family === cidr.family);
  if (cluster === undefined) {
    issue(path, `"${cidr.text}": no IPv${cidr.family} cluster CIDR to hold it (clusterCidrs: ${clusterCidrs.map((c) => c.text).join(', ') || 'none'})`);
  } else if (!cidrContains(cluster, cidr)) {
    issue(path, `"${cidr.text}" is not inside the IPv${cidr.family} cluster CIDR ${cluster.text}`);
  }
  if (cidr.prefixLen > SUBNET_PREFIX_MAX[cidr.family]) {
    issue(path, `"${cidr.text}" is too small for a node subnet (at most /${SUBNET_PREFIX_MAX[cidr.family]}: the TUN takes the network address, the pod bridge the next one)`);
  }
  const twin = sameNode.find((c) => c.family === cidr.family);
  if (twin !== undefined) issue(path, `"${cidr.text}": a second IPv${cidr.family} subnet on this node (already ${twin.text}); one per family`);
  const other = seen.find((s) => cidrsOverlap(s.cidr, cidr));
  if (other !== undefined) issue(path, `"${cidr.text}" overlaps ${other.path} (${other.cidr.text})`);
}

function tunNameAt(value: unknown, issue: IssueFn): string | undefined {
  if (value === undefined) return DEFAULT_TUN_NAME;
  if (typeof value !== 'string') return issue('tunName', `expected a string, got ${describe(value)}`);
  if (value.length === 0 || value.length > TUN_NAME_MAX) return issue('tunName', `"${value}" must be 1-${TUN_NAME_MAX} characters (Linux interface name)`);
  if (!TUN_NAME_RE.test(value) || value === '.' || value === '..') {
    return issue('tunName', `"${value}" may only use letters, digits, '_', '.', '-'`);
  }
  return value;
}

function hostPortAt(value: unknown, path: string, issue: IssueFn): HostPort | undefined {
  if (Array.isArray(value)) return issue(path, `expected a "host:port" string, got a list (quote IPv6 endpoints in YAML: "[fd00::1]:8285")`);
  if (typeof value !== 'string') return issue(path, `expected a "host:port" string, got ${describe(value)}`);
  try {
    return parseHostPort(value.trim());
  } catch (err: unknown) {
    return issue(path, errorMessage(err));
  }
}

/**
 * Exactly one of clusterSecret (the text's UTF-8 bytes) and clusterSecretFile (the file's bytes,
 * trailing newlines stripped; a relative path is taken from the config file's directory), at
 * least MIN_SECRET_BYTES long. Required: tunnels accept only peers that prove they hold it.
 */
function clusterSecretAt(text: unknown, file: unknown, baseDir: string, issue: IssueFn): ClusterSecret | undefined {
  const needed = `at least ${MIN_SECRET_BYTES} bytes`;
  if (text !== undefined && file !== undefined) {
    return issue('clusterSecret', 'set clusterSecret or clusterSecretFile, not both');
  }
  if (text === undefined && file === undefined) {
    return issue('clusterSecret', `required (or clusterSecretFile): tunnels accept only peers holding the cluster secret; ${SECRET_HOWTO}`);
  }
  if (text !== undefined) {
    if (typeof text !== 'string') return issue('clusterSecret', `expected a string, got ${typeof text}`);
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length < MIN_SECRET_BYTES) return issue('clusterSecret', `${bytes.length} bytes is too short (${needed}); ${SECRET_HOWTO}`);
    return new ClusterSecret(bytes);
  }
  if (typeof file !== 'string' || file.trim() === '') return issue('clusterSecretFile', `expected a file path, got ${describe(file)}`);
  const path = resolve(baseDir, file.trim());
  let content: Buffer;
  try {
    content = readFileSync(path);
  } catch (err: unknown) {
    return issue('clusterSecretFile', `cannot read ${path}: ${errorMessage(err)}`);
  }
  let end = content.length;
  while (end > 0 && (content[end - 1] === 0x0a || content[end - 1] === 0x0d)) end--;
  if (end < MIN_SECRET_BYTES) return issue('clusterSecretFile', `${path} holds ${end} bytes, too short (${needed}); ${SECRET_HOWTO}`);
  return new ClusterSecret(content.subarray(0, end));
}

/** The optional `ws` block; absent means no listener (this node still dials out). */
function wsSettingsAt(value: unknown, baseDir: string, report: IssueFn): WsSettings | undefined {
  if (value === undefined || value === null) return { listen: undefined, tls: undefined, caFile: undefined };
  if (!isRecord(value)) return report('ws', `expected a mapping (listen, tls, caFile), got ${describe(value)}`);
  const { issue, bad } = blockIssues(report);
  checkKnownKeys(value, 'ws', WS_KEYS, issue);
  const listen = value['listen'] === undefined ? undefined : hostPortAt(value['listen'], 'ws.listen', issue);
  let tls: WsSettings['tls'];
  const rawTls = value['tls'];
  if (rawTls !== undefined) {
    if (!isRecord(rawTls)) issue('ws.tls', `expected a mapping (certFile, keyFile), got ${describe(rawTls)}`);
    else {
      checkKnownKeys(rawTls, 'ws.tls', TLS_KEYS, issue);
      const certFile = filePathAt(rawTls['certFile'], 'ws.tls.certFile', baseDir, issue, true);
      const keyFile = filePathAt(rawTls['keyFile'], 'ws.tls.keyFile', baseDir, issue, true);
      if (certFile !== undefined && keyFile !== undefined) tls = { certFile, keyFile };
      if (value['listen'] === undefined) issue('ws.tls', 'only used by the listener: set ws.listen too, or drop ws.tls');
    }
  }
  const caFile = filePathAt(value['caFile'], 'ws.caFile', baseDir, issue, false);
  if (bad()) return undefined;
  return { listen, tls, caFile };
}

/** An optional `{ listen: "host:port" }` block (`api`, `dashboard`); absent: no TCP listener. */
function listenBlockAt(value: unknown, field: string, issue: IssueFn): ListenSettings | undefined {
  if (value === undefined || value === null) return { listen: undefined };
  if (!isRecord(value)) return issue(field, `expected a mapping (listen), got ${describe(value)}`);
  const block = blockIssues(issue);
  checkKnownKeys(value, field, LISTEN_BLOCK_KEYS, block.issue);
  const rawListen = value['listen'];
  if (rawListen === undefined || rawListen === null) return block.bad() ? undefined : { listen: undefined };
  const listen = hostPortAt(rawListen, `${field}.listen`, issue);
  if (listen === undefined) return undefined;
  return block.bad() ? undefined : { listen };
}

/** An `http://[user:pass@]host:port` proxy URL, kept as written. */
function proxyAt(value: unknown, issue: IssueFn): string | undefined {
  const form = '"http://[user:pass@]host:port"';
  if (typeof value !== 'string') return issue('proxy', `expected ${form}, got ${describe(value)}`);
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return issue('proxy', `not a URL; expected ${form}`);
  }
  if (url.protocol !== 'http:') return issue('proxy', `scheme "${url.protocol}" not supported; expected ${form}`);
  if (url.hostname === '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    return issue('proxy', `expected ${form} (a host and port, no path)`);
  }
  return value.trim();
}

/** "ws://host:port" or "wss://host:port" (a host name is fine: TLS checks names), kept as written. */
function wsEndpointAt(value: unknown, path: string, issue: IssueFn): string | undefined {
  const form = '"ws://host:port" or "wss://host:port"';
  if (typeof value !== 'string') return issue(path, `expected ${form}, got ${describe(value)}`);
  const text = value.trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return issue(path, `"${text}" is not a URL; expected ${form}`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') return issue(path, `"${text}": scheme must be ws or wss`);
  if (url.hostname === '') return issue(path, `"${text}" has no host`);
  if (url.username !== '' || url.password !== '') return issue(path, `"${text}": no credentials in the URL (peers prove the cluster secret)`);
  if (url.search !== '' || url.hash !== '') return issue(path, `"${text}": no query or fragment`);
  return text;
}

function transportAt(value: unknown, path: string, issue: IssueFn): TransportMode | undefined {
  if (value === undefined || value === null) return DEFAULT_TRANSPORT_MODE;
  if (typeof value === 'string' && (TRANSPORT_MODES as readonly string[]).includes(value)) return value as TransportMode;
  return issue(path, `${show(value)} is not one of ${TRANSPORT_MODES.join('|')}`);
}

/** A file path (absolute, or relative to the config file's directory); existence is checked by its user. */
function filePathAt(value: unknown, path: string, baseDir: string, issue: IssueFn, required: boolean): string | undefined {
  if (value === undefined) return required ? issue(path, 'required') : undefined;
  if (typeof value !== 'string' || value.trim() === '') return issue(path, `expected a file path, got ${describe(value)}`);
  return resolve(baseDir, value.trim());
}

function mtuAt(value: unknown, path: string, family: IpFamily, clusterCidrs: readonly Cidr[], issue: IssueFn): number | undefined {
  if (typeof value !== 'number' || !Number.isInteger(value)) return issue(path, `expected an integer, got ${describe(value)}`);
  const min = family === 6 ? MTU_MIN_IPV6 : MTU_MIN;
  if (value < min || value > MTU_MAX) {
    return issue(path, `${value} is out of range (${min}-${MTU_MAX}${family === 6 ? ' on an IPv6 underlay' : ''})`);
  }
  return checkTunnelMtu(value, path, clusterCidrs, family, issue);
}

/** With IPv6 pods the tunnel MTU must stay >= 1280, or the kernel disables IPv6 on the TUN. */
function checkTunnelMtu(mtu: number, path: string, clusterCidrs: readonly Cidr[], family: IpFamily, issue: IssueFn): number | undefined {
  const overheadBytes = tunnelOverheadBytes(family);
  if (clusterCidrs.some((c) => c.family === 6) && mtu - overheadBytes < MTU_MIN_IPV6) {
    return issue(path, `${mtu} leaves a tunnel MTU of ${mtu - overheadBytes}, below the ${MTU_MIN_IPV6} IPv6 needs (at least ${MTU_MIN_IPV6 + overheadBytes})`);
  }
  return mtu;
}

function underlayFamily(listen: HostPort | undefined, nodes: readonly NodeSpec[], advertise: AdvertiseSettings | undefined): IpFamily {
  if (nodes.some((n) => n.endpoint?.family === 6) || advertise?.endpoint?.family === 6) return 6;
  if (listen !== undefined && listen.family === 6 && listen.host !== '::') return 6;
  return 4;
}

/** The optional `subnetManager` block: absent or {type: static} reads `nodes`; {type: etcd, ...}. */
function subnetManagerAt(value: unknown, clusterCidrs: readonly Cidr[], baseDir: string, report: IssueFn): SubnetManagerSettings | undefined {
  if (value === undefined || value === null) return { type: 'static' };
  if (!isRecord(value)) return report('subnetManager', `expected a mapping (type: static|etcd, ...), got ${describe(value)}`);
  const type = value['type'];
  if (type === 'static') {
    const extra = Object.keys(value).filter((k) => k !== 'type');
    return extra.length === 0 ? { type: 'static' } : report(`subnetManager.${extra[0] ?? ''}`, 'unknown setting for type static (it reads `nodes`)');
  }
  if (type !== 'etcd') return report('subnetManager.type', `${show(type)} is not one of static|etcd`);
  const { issue, bad } = blockIssues(report);
  checkKnownKeys(value, 'subnetManager', ETCD_KEYS, issue);
  const endpoints: string[] = [];
  const rawEndpoints = value['endpoints'];
  if (!Array.isArray(rawEndpoints) || rawEndpoints.length === 0) {
    issue('subnetManager.endpoints', `required: a list of etcd client URLs ("http://10.0.0.1:2379"), got ${describe(rawEndpoints)}`);
  } else {
    rawEndpoints.forEach((e: unknown, i) => {
      const url = etcdUrlAt(e, `subnetManager.endpoints[${i}]`, issue);
      if (url !== undefined) endpoints.push(url);
    });
  }
  let prefix = DEFAULT_ETCD_PREFIX;
  const rawPrefix = value['prefix'];
  if (rawPrefix !== undefined) {
    if (typeof rawPrefix !== 'string' || !/^\/([\w.-]+\/)*$/.test(rawPrefix)) {
      issue('subnetManager.prefix', `${show(rawPrefix)} is not a key prefix like "/podtun/" (starts and ends with "/"; letters, digits, '_', '.', '-')`);
    } else prefix = rawPrefix;
  }
  const ttlSeconds = intAt(value['ttlSeconds'], 'subnetManager.ttlSeconds', DEFAULT_LEASE_TTL_SECONDS, MIN_LEASE_TTL_SECONDS, MAX_LEASE_TTL_SECONDS, issue);
  const subnetLengthV4 = subnetLengthAt(value['subnetLength'], 'subnetManager.subnetLength', DEFAULT_SUBNET_LENGTH_V4, 4, clusterCidrs, issue);
  const subnetLengthV6 = subnetLengthAt(value['subnetLengthV6'], 'subnetManager.subnetLengthV6', DEFAULT_SUBNET_LENGTH_V6, 6, clusterCidrs, issue);
  let tls: EtcdManagerSettings['tls'];
  const rawTls = value['tls'];
  if (rawTls !== undefined && rawTls !== null) {
    if (!isRecord(rawTls)) issue('subnetManager.tls', `expected a mapping (caFile, certFile, keyFile), got ${describe(rawTls)}`);
    else {
      checkKnownKeys(rawTls, 'subnetManager.tls', ETCD_TLS_KEYS, issue);
      const caFile = filePathAt(rawTls['caFile'], 'subnetManager.tls.caFile', baseDir, issue, false);
      const certFile = filePathAt(rawTls['certFile'], 'subnetManager.tls.certFile', baseDir, issue, false);
      const keyFile = filePathAt(rawTls['keyFile'], 'subnetManager.tls.keyFile', baseDir, issue, false);
      if ((certFile === undefined) !== (keyFile === undefined)) issue('subnetManager.tls', 'certFile and keyFile go together (client certificate and its key)');
      tls = { caFile, certFile, keyFile };
    }
  }
  if (bad() || ttlSeconds === undefined || subnetLengthV4 === undefined || subnetLengthV6 === undefined) return undefined;
  return { type: 'etcd', endpoints, prefix, ttlSeconds, subnetLengthV4, subnetLengthV6, tls };
}

function etcdUrlAt(value: unknown, path: string, issue: IssueFn): string | undefined {
  const form = '"http://host:port" or "https://host:port"';
  if (typeof value !== 'string') return issue(path, `expected ${form}, got ${describe(value)}`);
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return issue(path, `"${value}" is not a URL; expected ${form}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return issue(path, `"${value}": scheme must be http or https`);
  if (url.hostname === '' || (url.pathname !== '/' && url.pathname !== '')) return issue(path, `"${value}": expected ${form} (no path)`);
  return value.trim();
}

function intAt(value: unknown, path: string, fallback: number, min: number, max: number, issue: IssueFn): number | undefined {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value)) return issue(path, `expected an integer, got ${describe(value)}`);
  if (value < min || value > max) return issue(path, `${value} is out of range (${min}-${max})`);
  return value;
}

/** A node subnet length: longer than the cluster CIDR's, short enough for the TUN, the bridge and pods. */
function subnetLengthAt(value: unknown, path: string, fallback: number, family: IpFamily, clusterCidrs: readonly Cidr[], issue: IssueFn): number | undefined {
  const length = intAt(value, path, fallback, 1, family === 4 ? 32 : 128, issue);
  const cluster = clusterCidrs.find((c) => c.family === family);
  if (length === undefined || cluster === undefined) return length;
  if (length <= cluster.prefixLen) return issue(path, `/${length} does not split the cluster CIDR ${cluster.text} into node subnets (needs more than /${cluster.prefixLen})`);
  if (length > SUBNET_PREFIX_MAX[family]) return issue(path, `/${length} is too small for a node subnet (at most /${SUBNET_PREFIX_MAX[family]})`);
  return length;
}

/** etcd mode's `advertise` block; the endpoint defaults to `listen` when that names an address. */
function advertiseAt(value: unknown, listen: HostPort | undefined, ws: WsSettings | undefined, clusterCidrs: readonly Cidr[], report: IssueFn): AdvertiseSettings | undefined {
  const raw = value === undefined || value === null ? {} : value;
  if (!isRecord(raw)) return report('advertise', `expected a mapping (endpoint, wsEndpoint, transport, mtu), got ${describe(raw)}`);
  const { issue, bad } = blockIssues(report);
  checkKnownKeys(raw, 'advertise', ADVERTISE_KEYS, issue);
  const wildcard = listen === undefined || listen.host === '0.0.0.0' || listen.host === '::';
  const endpoint = raw['endpoint'] === undefined || raw['endpoint'] === null
    ? (wildcard ? undefined : listen)
    : hostPortAt(raw['endpoint'], 'advertise.endpoint', issue);
  const wsEndpoint = raw['wsEndpoint'] === undefined || raw['wsEndpoint'] === null ? undefined : wsEndpointAt(raw['wsEndpoint'], 'advertise.wsEndpoint', issue);
  if (wsEndpoint !== undefined && ws !== undefined && ws.listen === undefined) {
    issue('advertise.wsEndpoint', `this node has no ws.listen, so nothing answers at ${wsEndpoint}; add ws.listen or drop wsEndpoint`);
  }
  const transport = transportAt(raw['transport'], 'advertise.transport', issue);
  const mtu = raw['mtu'] === undefined ? undefined : mtuAt(raw['mtu'], 'advertise.mtu', endpoint?.family ?? 4, clusterCidrs, issue);
  if (bad() || transport === undefined) return undefined;
  return { endpoint, wsEndpoint, transport, mtu };
}

/** The optional `cni` block: present means install the CNI executables and conflist when ready. */
function cniAt(value: unknown, baseDir: string, report: IssueFn): CniSettings | undefined {
  if (!isRecord(value)) return report('cni', `expected a mapping (${CNI_KEYS.join(', ')}; {} for the defaults), got ${describe(value)}`);
  const { issue, bad } = blockIssues(report);
  checkKnownKeys(value, 'cni', CNI_KEYS, issue);
  const dir = (key: 'binDir' | 'confDir' | 'dataDir'): string => filePathAt(value[key], `cni.${key}`, baseDir, issue, false) ?? DEFAULT_CNI[key];
  const name = (key: 'confFileName' | 'networkName' | 'bridge', re: RegExp, what: string): string => {
    const v = value[key];
    if (v === undefined) return DEFAULT_CNI[key];
    if (typeof v !== 'string' || !re.test(v)) {
      issue(`cni.${key}`, `${show(v)} is not ${what}`);
      return DEFAULT_CNI[key];
    }
    return v;
  };
  const settings: CniSettings = {
    binDir: dir('binDir'),
    confDir: dir('confDir'),
    dataDir: dir('dataDir'),
    confFileName: name('confFileName', /^[\w.-]+\.conflist$/, 'a file name ending in .conflist'),
    networkName: name('networkName', CNI_NETWORK_NAME_RE, 'a CNI network name (letters, digits, "_", ".", "-")'),
    bridge: name('bridge', /^[A-Za-z0-9_.-]{1,15}$/, 'a Linux interface name (1-15 characters)'),
  };
  return bad() ? undefined : settings;
}

// --- helpers ---

/** Reports every key of `value` not in `known`, at `<path>.<key>` (the key alone at the top). */
function checkKnownKeys(value: Record<string, unknown>, path: string, known: readonly string[], issue: IssueFn): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) issue(path === '' ? key : `${path}.${key}`, `unknown setting (known: ${known.join(', ')})`);
  }
}

/** One block's issues: reported as usual, and remembered so the block can refuse to build a value. */
function blockIssues(report: IssueFn): { issue: IssueFn; bad: () => boolean } {
  let bad = false;
  return {
    issue: (path, reason) => {
      bad = true;
      return report(path, reason);
    },
    bad: () => bad,
  };
}

function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${show(value)}`;
}

function show(value: unknown): string {
  return typeof value === 'string' ? `"${value}"` : String(value);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function yamlReason(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return /\[[0-9a-fA-F:.]+\]:\d/.test(message) ? `${first} (quote IPv6 endpoints: "[fd00::1]:8285")` : first;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
