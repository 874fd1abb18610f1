/**
 * The node config as the daemon and the tools use it once loaded (load-config.ts) and validated
 * (validate-config.ts): deep-frozen, every address in canonical text. Transports and subnet
 * managers bring their own blocks (tunnel/transports.ts, ipam/subnet-managers.ts); the config
 * holds each validated block bound to its owner.
 */
import type { EncryptionMode } from './fields/encryption.js';
import type { IpFamily } from '../../core/cidr.js';
import type { ConfigIssue, HostPort } from '../../core/config-check.js';
import type { Lease } from '../../core/lease.js';
import type { SubnetManagerChoice } from '../../core/subnet-manager.js';
import type { PeerEndpoints, TransportKind } from '../../core/transport.js';
import type { TransportChoice } from '../../tunnel/transport-type.js';
import { tunnelMtuOf } from '../../tunnel/tunnel-mtu.js';
import type { ClusterSecret } from './cluster-secret.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_TUN_NAME = 'podtun0';
export const DEFAULT_UNDERLAY_MTU = 1500;
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';
/** Peers' host-name endpoints are looked up again this often (and every few seconds while a peer is down). */
export const DEFAULT_RESOLVE_SECONDS = 60;
export const MAX_RESOLVE_SECONDS = 86_400;

export interface NodeSpec {
  readonly name: string;
  /** Canonical CIDR text, the IPv4 subnet first, then the optional IPv6 one. */
  readonly subnets: readonly string[];
  /** Where it listens, per transport kind, canonical text; empty for a node that only dials out. */
  readonly endpoints: PeerEndpoints;
  /** This node's underlay MTU when smaller than the cluster's. */
  readonly mtu: number | undefined;
  /** How peers reach it, most preferred first (`transport: auto` is every transport in registry order). */
  readonly transports: readonly TransportKind[];
  /** Its public key (required for peers with encryption: sealed). */
  readonly publicKey?: string;
}

/** An optional TCP listener (the `api` and `dashboard` blocks). */
export interface ListenSettings {
  /** "host:port" to serve on; undefined: not served over TCP. */
  readonly listen: HostPort | undefined;
}

/** The `dashboard` block (fields/dashboard-block.ts). */
export interface DashboardSettings extends ListenSettings {
  /** Where peers' dashboards answer, at their lease address (the cluster view); undefined: not asked. */
  readonly peerPort: number | undefined;
  /** How often the per-peer link history is sampled. */
  readonly sampleIntervalMs: number;
}

export const DEFAULT_DASHBOARD_SAMPLE_MS = 2000;

/** How peers reach this node when leases come from a control plane (static mode: its `nodes` entry). */
export interface AdvertiseSettings {
  /** Per transport kind; empty: this node only dials out. */
  readonly endpoints: PeerEndpoints;
  readonly transports: readonly TransportKind[];
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
  /** Canonical CIDR text, the IPv4 one first. */
  readonly clusterCidrs: readonly string[];
  readonly tunName: string;
  readonly underlayMtu: number;
  /** The underlay family that sizes the TUN MTU (IPv6 when any endpoint or a bound listener is). */
  readonly underlayFamily: IpFamily;
  readonly logLevel: LogLevel;
  /** Proves membership on every transport; printed as "[redacted]". */
  readonly clusterSecret: ClusterSecret;
  /** sealed (default): every tunnelled packet authenticated and encrypted per node pair; none: trusted underlay only. */
  readonly encryption: EncryptionMode;
  /** This node's private key (sealed), created on first start; absolute path. */
  readonly nodeKeyFile: string;
  /** Every registered transport with its validated settings, in registry order. */
  readonly transports: readonly TransportChoice[];
  /** Proxy for outgoing WebSocket dials (http, https, socks5, socks5h URL; fields/proxy.ts); undefined: from the environment. */
  readonly proxy: string | undefined;
  /** How often peers' endpoints that name a host are looked up again, seconds. */
  readonly resolveSeconds: number;
  /** The local API over TCP too (e.g. Prometheus scrapes); it is always on the Unix socket. */
  readonly api: ListenSettings;
  /** The live dashboard; off unless `dashboard.listen` is set. */
  readonly dashboard: DashboardSettings;
  readonly subnetManager: SubnetManagerChoice;
  /** Control-plane managers only: how peers reach this node (static mode reads it from `nodes`). */
  readonly advertise: AdvertiseSettings | undefined;
  /** Install the CNI plugins and conflist once ready; undefined: leave CNI alone. */
  readonly cni: CniSettings | undefined;
  /** Static mode: every node, this one included. Empty otherwise. */
  readonly nodes: readonly NodeSpec[];
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

/** Values from flags and the environment: the log level wins over the file's; the node name fills in for it. */
export interface ConfigOverrides {
  logLevel?: LogLevel;
  /** NODE_NAME (a DaemonSet's downward API): the node's name when the file sets none. */
  nodeName?: string;
}

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** This node's entry (static mode: validation guarantees it exists; control-plane modes have none). */
export function localNodeOf(config: NodeConfig): NodeSpec {
  const local = config.nodes.find((n) => n.name === config.nodeName);
  if (local === undefined) throw new ConfigError(config.source, [{ path: 'nodeName', reason: `"${config.nodeName}" is not in nodes` }]);
  return local;
}

/** TUN MTU = underlay MTU - tunnel overhead (1460 on a 1500-byte IPv4 underlay). */
export function tunMtuOf(config: NodeConfig): number {
  return tunnelMtuOf(config.underlayMtu, config.underlayFamily);
}

/** The transport of `kind` as configured. */
export function transportChoice(config: NodeConfig, kind: TransportKind): TransportChoice | undefined {
  return config.transports.find((t) => t.kind === kind);
}

/** The `nodes` list as leases (the static subnet manager's source). */
export function leasesOfConfig(config: NodeConfig): Lease[] {
  return config.nodes.map((n) => ({
    node: n.name,
    subnets: [...n.subnets],
    endpoints: { ...n.endpoints },
    transports: [...n.transports],
    ...(n.mtu === undefined ? {} : { mtu: n.mtu }),
    ...(n.publicKey === undefined ? {} : { publicKey: n.publicKey }),
  }));
}
