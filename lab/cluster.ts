/**
 * A podtun cluster built from network namespaces: real kernel, real veths and bridges, one
 * namespace per node and per pod, the underlay switch in a namespace of its own.
 *
 * ```
 *                  underlay ns (bridge ul0, 192.168.77.0/24, fd77::/64)
 *               /               |                \
 *    node ns n1            node ns n2           node ns n3       (veth to ul0: 192.168.77.N, fd77::N)
 *    podtun0 (TUN)         podtun0              podtun0
 *    bridge cni0 10.244.N.1/24, fd00:10:244:N::1/64
 *      |   \                 ...
 *    pod ns p1a  p1b     (veth into cni0: 10.244.N.(10+k), fd00:10:244:N::(10+k), default routes via .1 / ::1)
 * ```
 *
 * Pod subnets 10.244.N.0/24 and fd00:10:244:N::/64 lie in the cluster CIDRs 10.244.0.0/16 and
 * fd00:10:244::/48. Modes decide how pod traffic crosses nodes:
 * - `podtun`: each node runs `node bin/podtun.js run --config <yaml>` in its namespace;
 * - `kernel-routing`: plain routes to peer pod subnets via peer underlay addresses (upper bound);
 * - `kernel-vxlan`: flannel's vxlan backend by hand (VNI 1, port 8472, static fdb/neigh, MTU 1450);
 * - `none`: no cross-node path (pods on one node still talk through cni0).
 *
 * In podtun mode every node listens on UDP :8285 and WebSocket :8443 and carries the run's
 * random clusterSecret; `blockUdp`, `blockInbound` (nftables) and `startProxy` +
 * `isolateBehindProxy` (a squid / tinyproxy namespace at 192.168.77.200) make the restricted
 * networks the WebSocket transport is for.
 *
 * Rules kept: the root namespace gets no address or route; every name carries the run id
 * (`pt<id>-n1`); the run is recorded under the OS temp dir with its owner PID, and namespaces of
 * dead owners are removed at the next start; `destroy()` also runs on exit, SIGINT and SIGTERM.
 *
 * Leases from etcd (`podtun.etcd`): a real etcd runs in namespace `pt<id>-e` on the underlay at
 * ETCD_IP; node configs carry `subnetManager: etcd`, `advertise` and a `cni` block (per-node
 * bin/conf/state dirs under the run dir, since namespaces share the filesystem), no `nodes`.
 * Nodes get no pre-built cni0 or pods: `attachPod` attaches a pod namespace through a real CNI
 * runtime client (cnitool.ts) and the `podtun` plugin podtun installed, with the reference
 * `bridge` plugin from /usr/lib/cni.
 *
 * Leases from Kubernetes (`podtun.kube`): a real kube-apiserver, etcd and kube-controller-manager
 * run in namespace `pt<id>-k` at KUBE_IP (lab/kube/kube-lab.ts); deploy/kubernetes is applied to
 * it and every node's podtun uses the token of the ServiceAccount it creates; nodes are
 * registered as Nodes with their underlay InternalIP and get podCIDRs from nodeipam. Node configs
 * carry `subnetManager: kube` and a `cni` block, no `nodes` and no `nodeName` (NODE_NAME is set,
 * as a DaemonSet does). Pods come from `attachPod`, as with etcd.
 *
 * Numbering: nodes are 1-based (`node(1)` is n1), pods 0-based within a node (`pod(1, 0)` is
 * p1a at 10.244.1.10).
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { fetchStatusReport } from '../api/api-client.js';
import {
  harnessDir,
  listNamespaces,
  removeNamespaceSync,
  removeRecord,
  removeStaleRuns,
  writeRecord,
} from './cleanup.js';
import type { RunRecord } from './cleanup.js';
import {
  outcomeIn,
  pollUntil,
  runIn,
  signalGroup,
  spawnIn,
  stopChild,
  waitExit,
} from './shell.js';
import type { Outcome, RunOptions, RunResult, SpawnOptions } from './shell.js';
import { ensureCnitool } from './cnitool.js';
import { generateNodeKeyText, publicKeyOfPrivateText } from '../tunnel/seal/node-key.js';
import { ETCD_BINARY, ETCD_READY_LINE, etcdArgs } from './etcd-server.js';
import { ensureProbeAgent, startProbe } from './probe.js';
import { KUBE_IP, startKubeLab } from './kube/kube-lab.js';
import type { KubeLab } from './kube/kube-lab.js';

export type ClusterMode = 'podtun' | 'kernel-routing' | 'kernel-vxlan' | 'none';

export const UNDERLAY_V4_PREFIX = '192.168.77.';
export const UNDERLAY_V6_PREFIX = 'fd77::';
export const CLUSTER_CIDR_V4 = '10.244.0.0/16';
export const CLUSTER_CIDR_V6 = 'fd00:10:244::/48';
export const PODTUN_PORT = 8285;
export const TUN_NAME = 'podtun0';
export const VXLAN_PORT = 8472;
export const VXLAN_MTU = 1450;
/** Where every node accepts WebSocket connections (`ws.listen`, `wsEndpoint` in configs). */
export const WS_PORT = 8443;
/** The forward proxy of `startProxy`, on the underlay. */
export const PROXY_IP = '192.168.77.200';
export const PROXY_PORT = 3128;
/** A proxy outlives no run: it exits by itself after this long even if nobody ends it. */
const PROXY_LIFETIME_S = 900;
/** etcd's client address in `podtun.etcd` clusters (namespace `pt<id>-e`). */
export const ETCD_IP = '192.168.77.250';
export const ETCD_PORT = 2379;
/** The reference plugins (Debian's containernetworking-plugins). */
export const REFERENCE_CNI_DIR = '/usr/lib/cni';
/** 1500-byte underlay minus podtun's 60 bytes of IPv4 + UDP + sealed tunnel header and tag. */
export const PODTUN_POD_MTU = 1440;
const POD_HOST_OFFSET = 10;
/** How long cluster creation waits for podtun peers to come up before going on anyway. */
const SETTLE_PEERS_MS = 5_000;
/** How long startNode waits for the `node ready` line before judging readiness by the kernel state. */
const READY_FALLBACK_MS = 5_000;
const MAX_NODES = 50;
const MAX_PODS_PER_NODE = 26;

export interface PodtunOptions {
  /** Extra arguments after `run --config FILE`. */
  extraArgs?: readonly string[];
  /** Top-level config keys merged into every node's YAML (written as JSON flow values). */
  config?: Readonly<Record<string, unknown>>;
  /** Extra environment for the podtun processes. */
  env?: Readonly<Record<string, string>>;
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** How long `startNode` waits for readiness; default 20 s. */
  readyTimeoutMs?: number;
  /** Tunnel over the IPv6 underlay (`listen: "[::]:8285"`, endpoints `[fd77::N]:8285`); needs ipv6. */
  underlayIpv6?: boolean;
  /** Node indexes listed in node i's config at start (default: all); see setMembers. */
  members?: (i: number) => readonly number[];
  /**
   * `transport:` written on the peer entries of every node's config: one mode for all, or per
   * (node, peer); undefined leaves the key out (podtun's default, auto).
   */
  transport?: TransportChoice | ((i: number, peer: number) => TransportChoice | undefined);
  /** Node i's `clusterSecret`; undefined: the run's random `cluster.clusterSecret`. */
  secretFor?: (i: number) => string | undefined;
  /**
   * WebSocket listener (`ws.listen` on WS_PORT) and `wsEndpoint` for every node; default true.
   * false writes neither (UDP only, as before the WebSocket transport).
   */
  ws?: boolean;
  /** Top-level keys for node i's config, after `config`; a value of undefined removes the key. */
  nodeOverrides?: (i: number) => Readonly<Record<string, unknown>>;
  /** Keys of peer `peer`'s entry in node i's config; undefined removes the key (e.g. `endpoint`). */
  peerOverrides?: (i: number, peer: number) => Readonly<Record<string, unknown>>;
  /** Extra environment for node i's podtun (after `env`), e.g. HTTPS_PROXY. */
  envFor?: (i: number) => Readonly<Record<string, string>>;
  /** Leases from a real etcd instead of `nodes`; pods come from attachPod (podsPerNode must be 0). */
  etcd?: { ttlSeconds?: number };
  /**
   * Leases from a real Kubernetes API (podCIDRs, Node annotations); pods come from attachPod
   * (podsPerNode must be 0). `allocateNodeCidrs: false` starts without the controller manager.
   * `runsPods`: the control plane can run pods (scheduler, daemonset controller) for kubelets a
   * test starts on the nodes (lab/kube/kubelet-node.ts), which register the Nodes themselves.
   */
  kube?: { allocateNodeCidrs?: boolean; runsPods?: boolean };
}

export interface CniCallOptions {
  network?: string;
  confDir?: string;
}

/** The etcd of a `podtun.etcd` cluster. */
export interface EtcdInfo {
  ns: string;
  /** "http://192.168.77.250:2379" */
  endpoint: string;
  /** Key prefix of this run's leases. */
  prefix: string;
  dataDir: string;
  logFile: string;
  running(): boolean;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** Starts it again on the same data dir; waits until it serves. */
  start(): Promise<void>;
}

export type TransportChoice = 'udp' | 'ws' | 'auto';

/**
 * squid and tinyproxy: HTTP proxies (CONNECT); squid-https: squid serving TLS on its port, an
 * https:// proxy (its certificate made per run: ProxyInfo.caFile); microsocks: a SOCKS5 proxy.
 */
export type ProxyKind = 'squid' | 'tinyproxy' | 'squid-https' | 'microsocks';

export interface ProxyOptions {
  /** Basic credentials the proxy requires (both or neither). */
  user?: string;
  pass?: string;
  /** Ports CONNECT may reach; default [WS_PORT]. */
  connectPorts?: readonly number[];
}

export interface ProxyInfo {
  kind: ProxyKind;
  ns: string;
  ip: string;
  port: number;
  /** `http://[user:pass@]192.168.77.200:3128` (`https://`, `socks5://` by kind), for a node's `proxy:` key. */
  url: string;
  /** squid-https: the proxy's self-signed certificate, for NODE_EXTRA_CA_CERTS of the nodes using it. */
  caFile: string | undefined;
  /** Where the proxy logs requests (squid's access log; tinyproxy's log). */
  accessLog: string;
  /** The proxy's log so far ('' if none). */
  readLog(): string;
  pid: number;
}

export interface ClusterOptions {
  nodes: number;
  podsPerNode: number;
  ipv6: boolean;
  mode: ClusterMode;
  podtun?: PodtunOptions;
  /** MTU of pod veths; defaults per mode (1500, VXLAN 1450, podtun 1440). */
  podMtu?: number;
  /** Start podtun on every node during creation (default true in 'podtun' mode). */
  startNodes?: boolean;
  /** Another checkout whose built bin/podtun.js the nodes run (a benchmark's A/B); default this one. */
  podtunRoot?: string;
  /**
   * A fixed run id instead of a random one (1-8 of a-z, 0-9; not 3 hex digits, which random ids
   * use): the lab's `lab`, so its namespaces `ptlab-*` can be found again by name. Refused while
   * namespaces of that id exist.
   */
  runId?: string;
  /** The run's folder (configs, keys, logs, sockets); default `<tmp>/podtun-netns/<id>`. */
  dir?: string;
}

export interface PodInfo {
  /** Namespace name, e.g. `ptk3a-p1a`. */
  ns: string;
  name: string;
  node: number;
  index: number;
  ipv4: string;
  /** Undefined when the cluster has no IPv6. */
  ipv6: string | undefined;
}

export interface NodeInfo {
  ns: string;
  /** Node name in podtun configs: n1, n2, ... */
  name: string;
  index: number;
  underlayIp: string;
  underlayIpv6: string | undefined;
  subnetV4: string;
  subnetV6: string | undefined;
  /** podtun's stdout + stderr (podtun mode; the file may not exist before the first start). */
  logFile: string;
  configFile: string;
  /** Its `nodeKeyFile` (made when the cluster is), and that key's public half for its peers' entries. */
  keyFile: string;
  publicKey: string;
  /**
   * The status socket the harness asks podtun to serve (env PODTUN_STATUS_SOCKET): a path under
   * the run's temp dir, one per node, since path sockets are shared by all namespaces.
   */
  statusSocket: string;
  /** The node's `cni` dirs (etcd clusters): where podtun installs its CNI executables and conflist, and IPAM state. */
  cniBinDir: string;
  cniConfDir: string;
  cniDataDir: string;
}

export interface DestroyOptions {
  /** Keep the temp dir (configs, logs) for a failing test; its path is printed. */
  keepLogs?: boolean;
}

export interface Cluster {
  readonly id: string;
  readonly mode: ClusterMode;
  readonly options: Readonly<ClusterOptions>;
  readonly underlayNs: string;
  /** Temp dir with configs and logs. */
  readonly dir: string;
  readonly repoRoot: string;
  /** The `clusterSecret` every node's config carries (random per run), unless `secretFor`. */
  readonly clusterSecret: string;
  node(i: number): NodeInfo;
  pod(i: number, k: number): PodInfo;
  nodes(): NodeInfo[];
  pods(): PodInfo[];
  /** Runs argv inside `ns`; rejects with a CommandError on failure. */
  exec(ns: string, argv: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** Runs argv inside `ns`; a non-zero exit is returned, not thrown. */
  outcome(ns: string, argv: readonly string[], options?: RunOptions): Promise<Outcome>;
  /** Starts argv inside `ns`; the cluster ends it at destroy() if the caller has not. */
  spawnIn(ns: string, argv: readonly string[], options?: SpawnOptions): ChildProcess;
  /** Starts podtun on node i and waits until it is ready. */
  startNode(i: number): Promise<void>;
  /** SIGTERM to node i's podtun; waits for exit (SIGKILL after 10 s). Resolves with exit code. */
  stopNode(i: number): Promise<number | null>;
  /** SIGKILL to node i's podtun; waits for exit. */
  killNode(i: number): Promise<void>;
  /** Whether node i's podtun process is running. */
  nodeRunning(i: number): boolean;
  /** PID of node i's podtun process (node itself: `ip netns exec` execs it), if running. */
  nodePid(i: number): number | undefined;
  /** Sends a signal to node i's podtun (SIGSTOP / SIGCONT / SIGHUP); false if not running. */
  signalNode(i: number, signal: NodeJS.Signals): boolean;
  /**
   * Drops (or stops dropping) UDP to/from the podtun port in node i's namespace, both ways
   * (nftables table `ptblock`, input and output hooks).
   */
  blockUdp(i: number, blocked?: boolean): Promise<void>;
  /**
   * Drops new inbound TCP and UDP flows to `ports` in node i's namespace (nftables table
   * `ptinbound`, `ct state new`): like a node behind a stateful firewall, it can only dial out;
   * replies to what it sent still arrive. `blocked = false` removes the table.
   */
  blockInbound(i: number, ports: readonly number[], blocked?: boolean): Promise<void>;
  /**
   * Starts a forward proxy (ProxyKind) in a namespace of its own on the underlay at
   * PROXY_IP:PROXY_PORT; config and logs in the run's dir; ended at destroy(), and by itself
   * after 15 minutes. One per cluster.
   */
  startProxy(kind: ProxyKind, options?: ProxyOptions): Promise<ProxyInfo>;
  /**
   * Leaves node i's underlay only a /32 route to PROXY_IP (the /24 and /64 on-link routes are
   * removed): it reaches peers only through the proxy, and peers cannot reach it directly.
   */
  isolateBehindProxy(i: number): Promise<void>;
  /** podtun's log for node i so far ('' if none). */
  readLog(i: number): string;
  /** The etcd of a `podtun.etcd` cluster; undefined otherwise. */
  readonly etcd: EtcdInfo | undefined;
  /** The Kubernetes control plane of a `podtun.kube` cluster; undefined otherwise. */
  readonly kube: KubeLab | undefined;
  /**
   * Attaches a new pod namespace `pt<id>-<name>` to node i through the real CNI runtime client
   * and the conflist podtun installed (etcd clusters); resolves with its addresses.
   */
  attachPod(i: number, name: string): Promise<PodInfo>;
  /** A new empty namespace `pt<id>-<suffix>` (lo up), removed at destroy(); for pods a test attaches itself. */
  createNamespace(suffix: string): Promise<string>;
  /** Deletes a namespace made by createNamespace. */
  removeNamespace(ns: string): void;
  /** CNI DEL of an attached pod, then its namespace is deleted. */
  detachPod(pod: PodInfo): Promise<void>;
  /**
   * Runs cnitool (add|check|del) for a pod namespace on node i; a failure is returned, not thrown.
   * Default: network `podtun` from the conflist podtun installed; `network`/`confDir` pick another.
   */
  cni(i: number, verb: 'add' | 'check' | 'del', podNs: string, options?: CniCallOptions): Promise<Outcome>;
  /** Rewrites node i's config to list only these nodes (podtun picks the edit up live). */
  setMembers(i: number, members: readonly number[]): void;
  /**
   * Rotates node i's key as an operator would in static mode: a new key in its key file, the new
   * public half in every node's `nodes` list (running nodes reload it). Node i must be stopped
   * first and started after: a running podtun keeps the key it loaded.
   */
  rotateNodeKey(i: number): void;
  /** Idempotent; also called on exit and signals. */
  destroy(options?: DestroyOptions): Promise<void>;
  /**
   * Hands the running cluster over to the caller (the lab keeps it after its CLI exits): it is no
   * longer destroyed on exit or by a later run's stale-run sweep, its processes no longer keep
   * this process alive, and destroy() becomes a no-op. The caller stops the processes and removes
   * the namespaces and `dir` (lab/lab-down.ts).
   */
  detach(): void;
}

/** The project root: the nearest ancestor holding podtun's package.json. */
export function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 8; depth++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const parsed = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown };
        if (parsed.name === 'podtun') return dir;
      } catch {
        // keep looking upwards
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error('cannot find the podtun project root (package.json named "podtun")');
}

const live = new Set<ClusterImpl>();
let handlersInstalled = false;

function onExitSync(): void {
  for (const cluster of live) cluster.destroySync();
}

function onSignal(signal: NodeJS.Signals): void {
  const code = signal === 'SIGINT' ? 130 : 143;
  const all = [...live].map((c) => c.destroy());
  const hardStop = setTimeout(() => {
    onExitSync();
    process.exit(code);
  }, 15_000);
  hardStop.unref();
  void Promise.allSettled(all).then(() => process.exit(code));
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', onExitSync);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function removeHandlers(): void {
  if (!handlersInstalled || live.size > 0) return;
  handlersInstalled = false;
  process.off('exit', onExitSync);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}

/**
 * A run id no live namespace and no kept run folder uses: a folder kept from a failed run would
 * otherwise have its logs appended to by the new run (two "node ready" lines in one log).
 */
function newRunId(): string {
  const existing = listNamespaces();
  for (let attempt = 0; attempt < 20; attempt++) {
    const id = randomBytes(3).toString('hex').slice(0, 3);
    if (!existing.some((ns) => ns.startsWith(`pt${id}-`)) && !existsSync(join(harnessDir(), id))) return id;
  }
  throw new Error('cannot find an unused run id for namespaces');
}

function fixedRunId(id: string): string {
  if (!/^[a-z0-9]{1,8}$/.test(id) || /^[0-9a-f]{3}$/.test(id)) {
    throw new Error(`createCluster: runId "${id}" must be 1-8 of a-z, 0-9 and not 3 hex digits (random ids)`);
  }
  const existing = namespacesOfRun(id);
  if (existing.length > 0) throw new Error(`createCluster: namespaces of run ${id} exist: ${existing.join(', ')}`);
  return id;
}

function vtepMac(i: number): string {
  return `02:77:00:00:${Math.floor(i / 256).toString(16).padStart(2, '0')}:${(i % 256).toString(16).padStart(2, '0')}`;
}

function yamlValue(value: unknown): string {
  return JSON.stringify(value);
}

const KEY_RE = /^[A-Za-z][A-Za-z0-9]*$/;

/** Sets `overrides` into `into`, in order; an undefined value removes the key. */
function mergeKeys(into: Map<string, unknown>, overrides: Readonly<Record<string, unknown>> | undefined): void {
  for (const [key, value] of Object.entries(overrides ?? {})) {
    if (!KEY_RE.test(key)) throw new Error(`bad config key ${key}`);
    if (value === undefined) into.delete(key);
    else into.set(key, value);
  }
}

/** Environment variables naming a proxy; the harness does not pass the caller's on to podtun. */
const PROXY_ENV = new Set(['http_proxy', 'https_proxy', 'no_proxy', 'all_proxy']);

/** Builds the cluster; on any failure everything built so far is torn down. */
export async function createCluster(options: ClusterOptions): Promise<Cluster> {
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > MAX_NODES) {
    throw new Error(`createCluster: nodes must be 1..${MAX_NODES}, got ${options.nodes}`);
  }
  if (
    !Number.isInteger(options.podsPerNode) ||
    options.podsPerNode < 0 ||
    options.podsPerNode > MAX_PODS_PER_NODE
  ) {
    throw new Error(`createCluster: podsPerNode must be 0..${MAX_PODS_PER_NODE}`);
  }
  removeStaleRuns();
  const cluster = new ClusterImpl(options, options.runId === undefined ? newRunId() : fixedRunId(options.runId), findRepoRoot());
  live.add(cluster);
  installHandlers();
  try {
    await cluster.build();
    return cluster;
  } catch (error: unknown) {
    await cluster.destroy({ keepLogs: true });
    throw error;
  }
}

class ClusterImpl implements Cluster {
  readonly underlayNs: string;
  readonly dir: string;
  private readonly record: RunRecord;
  private readonly nodeInfos: NodeInfo[] = [];
  private readonly podInfos: PodInfo[][] = [];
  private readonly podtunProcs = new Map<number, ChildProcess>();
  private readonly spawned = new Set<ChildProcess>();
  private proxy: ProxyInfo | undefined;
  etcd: EtcdInfo | undefined;
  kube: KubeLab | undefined;
  private etcdProc: ChildProcess | undefined;
  private readonly attached: PodInfo[] = [];
  readonly clusterSecret = randomBytes(24).toString('base64url');
  private destroyed = false;
  private destroying: Promise<void> | undefined;

  constructor(
    readonly options: Readonly<ClusterOptions>,
    readonly id: string,
    readonly repoRoot: string,
  ) {
    const prefix = `pt${id}`;
    this.underlayNs = `${prefix}-u`;
    this.dir = options.dir ?? join(harnessDir(), id);
    mkdirSync(this.dir, { recursive: true });
    this.record = {
      runId: id,
      ownerPid: process.pid,
      createdAt: new Date().toISOString(),
      namespaces: [],
    };
    writeRecord(this.record);
    for (let i = 1; i <= options.nodes; i++) {
      const node: NodeInfo = {
        ns: `${prefix}-n${i}`,
        name: `n${i}`,
        index: i,
        underlayIp: `${UNDERLAY_V4_PREFIX}${i}`,
        underlayIpv6: options.ipv6 ? `${UNDERLAY_V6_PREFIX}${i}` : undefined,
        subnetV4: `10.244.${i}.0/24`,
        subnetV6: options.ipv6 ? `fd00:10:244:${i}::/64` : undefined,
        logFile: join(this.dir, `n${i}.log`),
        configFile: join(this.dir, `n${i}.yaml`),
        ...labNodeKey(join(this.dir, `n${i}.key`)),
        statusSocket: join(this.dir, `n${i}.sock`),
        cniBinDir: join(this.dir, `n${i}-cni`, 'bin'),
        cniConfDir: join(this.dir, `n${i}-cni`, 'net.d'),
        cniDataDir: join(this.dir, `n${i}-cni`, 'ipam'),
      };
      this.nodeInfos.push(node);
      const pods: PodInfo[] = [];
      for (let k = 0; k < options.podsPerNode; k++) {
        const letter = String.fromCharCode(97 + k);
        pods.push({
          ns: `${prefix}-p${i}${letter}`,
          name: `p${i}${letter}`,
          node: i,
          index: k,
          ipv4: `10.244.${i}.${POD_HOST_OFFSET + k}`,
          ipv6: options.ipv6 ? `fd00:10:244:${i}::${(POD_HOST_OFFSET + k).toString(16)}` : undefined,
        });
      }
      this.podInfos.push(pods);
    }
  }

  get mode(): ClusterMode {
    return this.options.mode;
  }

  node(i: number): NodeInfo {
    const node = this.nodeInfos[i - 1];
    if (node === undefined) throw new Error(`no node ${i} (nodes are 1..${this.nodeInfos.length})`);
    return node;
  }

  pod(i: number, k: number): PodInfo {
    const pod = this.podInfos[i - 1]?.[k];
    if (pod === undefined) throw new Error(`no pod ${k} on node ${i}`);
    return pod;
  }

  nodes(): NodeInfo[] {
    return [...this.nodeInfos];
  }

  pods(): PodInfo[] {
    return this.podInfos.flat();
  }

  exec(ns: string, argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    return runIn(ns, argv, options);
  }

  outcome(ns: string, argv: readonly string[], options?: RunOptions): Promise<Outcome> {
    return outcomeIn(ns, argv, options);
  }

  spawnIn(ns: string, argv: readonly string[], options?: SpawnOptions): ChildProcess {
    if (this.destroyed) throw new Error('cluster destroyed');
    const child = spawnIn(ns, argv, options);
    this.spawned.add(child);
    child.once('exit', () => this.spawned.delete(child));
    // A spawn failure surfaces through the exit code; keep it from crashing the process.
    child.on('error', () => undefined);
    return child;
  }

  // ---- building ----

  private async ip(ns: string, args: readonly string[]): Promise<void> {
    await runIn(null, ['ip', '-n', ns, ...args]);
  }

  private async addNamespace(ns: string): Promise<void> {
    this.record.namespaces.push(ns);
    writeRecord(this.record);
    await runIn(null, ['ip', 'netns', 'add', ns]);
    await runIn(ns, [
      'sysctl',
      '-q',
      '-w',
      'net.ipv6.conf.all.accept_dad=0',
      'net.ipv6.conf.default.accept_dad=0',
    ]);
    await this.ip(ns, ['link', 'set', 'lo', 'up']);
  }

  private podMtu(): number {
    if (this.options.podMtu !== undefined) return this.options.podMtu;
    if (this.mode === 'kernel-vxlan') return VXLAN_MTU;
    if (this.mode === 'podtun') return PODTUN_POD_MTU;
    return 1500;
  }

  async build(): Promise<void> {
    const ul = this.underlayNs;
    await this.addNamespace(ul);
    await this.ip(ul, ['link', 'add', 'ul0', 'type', 'bridge']);
    await this.ip(ul, ['link', 'set', 'ul0', 'up']);
    if (this.options.podtun?.etcd !== undefined) {
      if (this.mode !== 'podtun' || this.options.podsPerNode !== 0) throw new Error('podtun.etcd needs mode podtun and podsPerNode 0 (pods come from attachPod)');
      await this.startEtcd();
    }
    if (this.options.podtun?.kube !== undefined) {
      if (this.mode !== 'podtun' || this.options.podsPerNode !== 0) throw new Error('podtun.kube needs mode podtun and podsPerNode 0 (pods come from attachPod)');
      await this.startKube();
    }
    await Promise.all(this.nodeInfos.map((node) => this.buildNode(node)));
    // With runsPods, real kubelets (lab/kube/kubelet-node.ts) register their own Nodes.
    if (this.kube !== undefined && this.options.podtun?.kube?.runsPods !== true) {
      for (const node of this.nodeInfos) await this.kube.registerNode(node.name, node.underlayIp, node.underlayIpv6);
    }
    if (this.mode === 'kernel-routing') {
      await Promise.all(this.nodeInfos.map((node) => this.addKernelRoutes(node)));
    } else if (this.mode === 'kernel-vxlan') {
      await Promise.all(this.nodeInfos.map((node) => this.addVxlan(node)));
    } else if (this.mode === 'podtun') {
      for (const node of this.nodeInfos) this.writeConfig(node, this.options.podtun?.members?.(node.index));
      if (this.options.startNodes !== false) {
        await Promise.all(this.nodeInfos.map((node) => this.startNode(node.index)));
        await this.settlePeers();
      }
    }
  }

  /**
   * Best effort, bounded: waits until every node reports all its peers up (tunnel data is only
   * accepted once peers have authenticated each other with their first probes). Set-ups where
   * some peer never comes up (a wrong secret, UDP blocked before WebSocket takes over) just
   * continue after the bound; their tests check what they expect.
   */
  private async settlePeers(): Promise<void> {
    const deadline = Date.now() + SETTLE_PEERS_MS;
    for (const node of this.nodeInfos) {
      for (let round = 0; round < SETTLE_PEERS_MS / 100 && Date.now() < deadline; round++) {
        const status = await fetchStatusReport(node.statusSocket).catch(() => undefined);
        if (status !== undefined && status.peers.every((p) => p.state === 'up')) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  private async buildNode(node: NodeInfo): Promise<void> {
    const ns = node.ns;
    const i = node.index;
    await this.addNamespace(ns);
    await runIn(ns, [
      'sysctl',
      '-q',
      '-w',
      'net.ipv4.ip_forward=1',
      'net.ipv6.conf.all.forwarding=1',
    ]);
    await this.ip(this.underlayNs, [
      'link', 'add', node.name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns,
    ]);
    await this.ip(this.underlayNs, ['link', 'set', node.name, 'master', 'ul0', 'up']);
    await this.ip(ns, ['addr', 'add', `${node.underlayIp}/24`, 'dev', 'eth0']);
    if (node.underlayIpv6 !== undefined) {
      await this.ip(ns, ['-6', 'addr', 'add', `${node.underlayIpv6}/64`, 'dev', 'eth0', 'nodad']);
    }
    await this.ip(ns, ['link', 'set', 'eth0', 'up']);
    // etcd and kube clusters: the subnet is not known before podtun gets it; the bridge plugin makes cni0.
    if (this.leasesFromControlPlane()) return;

    await this.ip(ns, ['link', 'add', 'cni0', 'type', 'bridge']);
    await this.ip(ns, ['addr', 'add', `10.244.${i}.1/24`, 'dev', 'cni0']);
    if (this.options.ipv6) {
      await this.ip(ns, ['-6', 'addr', 'add', `fd00:10:244:${i}::1/64`, 'dev', 'cni0', 'nodad']);
    }
    await this.ip(ns, ['link', 'set', 'cni0', 'up']);
    const mtu = String(this.podMtu());
    for (const pod of this.podInfos[i - 1] ?? []) {
      const hostSide = `veth-${pod.name}`;
      await this.addNamespace(pod.ns);
      await this.ip(ns, [
        'link', 'add', hostSide, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', mtu,
        'netns', pod.ns,
      ]);
      await this.ip(ns, ['link', 'set', hostSide, 'master', 'cni0', 'up']);
      await this.ip(pod.ns, ['addr', 'add', `${pod.ipv4}/24`, 'dev', 'eth0']);
      if (pod.ipv6 !== undefined) {
        await this.ip(pod.ns, ['-6', 'addr', 'add', `${pod.ipv6}/64`, 'dev', 'eth0', 'nodad']);
      }
      await this.ip(pod.ns, ['link', 'set', 'eth0', 'up']);
      await this.ip(pod.ns, ['route', 'add', 'default', 'via', `10.244.${i}.1`]);
      if (pod.ipv6 !== undefined) {
        await this.ip(pod.ns, ['-6', 'route', 'add', 'default', 'via', `fd00:10:244:${i}::1`]);
      }
    }
  }

  private async addKernelRoutes(node: NodeInfo): Promise<void> {
    for (const peer of this.nodeInfos) {
      if (peer.index === node.index) continue;
      await this.ip(node.ns, ['route', 'add', peer.subnetV4, 'via', peer.underlayIp]);
      if (peer.subnetV6 !== undefined && peer.underlayIpv6 !== undefined) {
        await this.ip(node.ns, ['-6', 'route', 'add', peer.subnetV6, 'via', peer.underlayIpv6]);
      }
    }
  }

  /** flannel's vxlan backend: one VTEP per node, static fdb + neigh per peer, no learning. */
  private async addVxlan(node: NodeInfo): Promise<void> {
    const ns = node.ns;
    await this.ip(ns, [
      'link', 'add', 'vxlan0', 'type', 'vxlan', 'id', '1', 'dstport', String(VXLAN_PORT),
      'local', node.underlayIp, 'dev', 'eth0', 'nolearning',
    ]);
    await this.ip(ns, [
      'link', 'set', 'vxlan0', 'address', vtepMac(node.index), 'mtu', String(VXLAN_MTU), 'up',
    ]);
    await this.ip(ns, ['addr', 'add', `10.244.${node.index}.0/32`, 'dev', 'vxlan0']);
    for (const peer of this.nodeInfos) {
      if (peer.index === node.index) continue;
      const mac = vtepMac(peer.index);
      const gw4 = `10.244.${peer.index}.0`;
      await this.ip(ns, ['neigh', 'add', gw4, 'lladdr', mac, 'dev', 'vxlan0', 'nud', 'permanent']);
      await runIn(null, [
        'bridge', '-n', ns, 'fdb', 'append', mac, 'dev', 'vxlan0', 'dst', peer.underlayIp,
      ]);
      await this.ip(ns, ['route', 'add', peer.subnetV4, 'via', gw4, 'dev', 'vxlan0', 'onlink']);
      if (peer.subnetV6 !== undefined) {
        const gw6 = `fd00:10:244:${peer.index}::`;
        await this.ip(ns, [
          '-6', 'neigh', 'add', gw6, 'lladdr', mac, 'dev', 'vxlan0', 'nud', 'permanent',
        ]);
        await this.ip(ns, [
          '-6', 'route', 'add', peer.subnetV6, 'via', gw6, 'dev', 'vxlan0', 'onlink',
        ]);
      }
    }
  }

  // ---- etcd, Kubernetes and CNI ----

  private leasesFromControlPlane(): boolean {
    return this.options.podtun?.etcd !== undefined || this.options.podtun?.kube !== undefined;
  }

  private async startKube(): Promise<void> {
    const ns = `pt${this.id}-k`;
    await this.addNamespace(ns);
    await this.ip(this.underlayNs, ['link', 'add', 'kube', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await this.ip(this.underlayNs, ['link', 'set', 'kube', 'master', 'ul0', 'up']);
    await this.ip(ns, ['addr', 'add', `${KUBE_IP}/24`, 'dev', 'eth0']);
    await this.ip(ns, ['link', 'set', 'eth0', 'up']);
    await this.ip(ns, ['link', 'set', 'lo', 'up']);
    await ensureProbeAgent(this.repoRoot);
    this.kube = await startKubeLab({
      repoRoot: this.repoRoot,
      dir: this.dir,
      clusterCidrs: this.options.ipv6 ? [CLUSTER_CIDR_V4, CLUSTER_CIDR_V6] : [CLUSTER_CIDR_V4],
      allocateNodeCidrs: this.options.podtun?.kube?.allocateNodeCidrs ?? true,
      runsPods: this.options.podtun?.kube?.runsPods ?? false,
      spawnInKubeNs: (argv, { logFile }) => {
        const fd = openSync(logFile, 'a');
        try {
          return this.spawnIn(ns, argv, { stdio: ['ignore', fd, fd] });
        } finally {
          closeSync(fd);
        }
      },
      // Bounded like every harness process: an hour, and ended at destroy() anyway.
      forward: async (port, socketPath) => {
        rmSync(socketPath, { force: true });
        await startProbe(this, ns, 'unix-forward', { socket: socketPath, to: KUBE_IP, port, 'timeout-ms': 3_600_000 });
      },
    });
  }

  private async startEtcd(): Promise<void> {
    const ns = `pt${this.id}-e`;
    await this.addNamespace(ns);
    await this.ip(this.underlayNs, ['link', 'add', 'etcd', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await this.ip(this.underlayNs, ['link', 'set', 'etcd', 'master', 'ul0', 'up']);
    await this.ip(ns, ['addr', 'add', `${ETCD_IP}/24`, 'dev', 'eth0']);
    await this.ip(ns, ['link', 'set', 'eth0', 'up']);
    const dataDir = join(this.dir, 'etcd');
    const logFile = join(this.dir, 'etcd.log');
    const endpoint = `http://${ETCD_IP}:${ETCD_PORT}`;
    const start = async (): Promise<void> => {
      if (this.etcdProc !== undefined && this.etcdProc.exitCode === null && this.etcdProc.signalCode === null) throw new Error('etcd already runs');
      const logStart = readSize(logFile);
      const fd = openSync(logFile, 'a');
      try {
        this.etcdProc = this.spawnIn(ns, [ETCD_BINARY, ...etcdArgs({ name: 'e', dataDir, clientUrl: endpoint, peerUrl: 'http://127.0.0.1:2380' })], {
          stdio: ['ignore', fd, fd],
        });
      } finally {
        closeSync(fd);
      }
      const proc = this.etcdProc;
      await pollUntil('etcd serving', async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`etcd exited:\n${tail(readFileSync(logFile, 'utf8'), 20)}`);
        return readFileSync(logFile, 'utf8').slice(logStart).includes(ETCD_READY_LINE) ? true : undefined;
      }, 20_000, 100);
    };
    const running = (): boolean => this.etcdProc !== undefined && this.etcdProc.exitCode === null && this.etcdProc.signalCode === null;
    this.etcd = {
      ns,
      endpoint,
      prefix: `/podtun-${this.id}/`,
      dataDir,
      logFile,
      running,
      start,
      stop: async () => {
        const proc = this.etcdProc;
        if (proc !== undefined && running()) await stopChild(proc, 5_000);
      },
    };
    await start();
  }

  async cni(i: number, verb: 'add' | 'check' | 'del', podNs: string, options: CniCallOptions = {}): Promise<Outcome> {
    const node = this.node(i);
    const cnitool = await ensureCnitool();
    return outcomeIn(node.ns, [cnitool, verb, options.network ?? 'podtun', `/run/netns/${podNs}`], {
      timeoutMs: 30_000,
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        CNI_PATH: `${node.cniBinDir}:${REFERENCE_CNI_DIR}`,
        NETCONFPATH: options.confDir ?? node.cniConfDir,
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${podNs};K8S_POD_INFRA_CONTAINER_ID=${podNs}`,
      },
    });
  }

  async createNamespace(suffix: string): Promise<string> {
    if (!/^[a-z0-9]{1,8}$/.test(suffix)) throw new Error(`createNamespace: bad name ${suffix} (1-8 of a-z, 0-9)`);
    const ns = `pt${this.id}-${suffix}`;
    await this.addNamespace(ns);
    return ns;
  }

  removeNamespace(ns: string): void {
    if (!this.record.namespaces.includes(ns)) throw new Error(`removeNamespace: ${ns} is not this run's`);
    removeNamespaceSync(ns);
  }

  async attachPod(i: number, name: string): Promise<PodInfo> {
    const ns = await this.createNamespace(name);
    const added = await this.cni(i, 'add', ns);
    if (added.exitCode !== 0) throw new Error(`cnitool add ${ns} on n${i} failed (${added.exitCode}): ${added.stderr}${added.stdout}`);
    const result = JSON.parse(added.stdout) as { ips?: { address?: string }[] };
    const addresses = (result.ips ?? []).map((ip) => (ip.address ?? '').split('/')[0] ?? '');
    const ipv4 = addresses.find((a) => a.includes('.'));
    if (ipv4 === undefined) throw new Error(`cnitool add ${ns}: no IPv4 address in ${added.stdout}`);
    const pod: PodInfo = { ns, name, node: i, index: this.attached.filter((p) => p.node === i).length, ipv4, ipv6: addresses.find((a) => a.includes(':')) };
    this.attached.push(pod);
    return pod;
  }

  async detachPod(pod: PodInfo): Promise<void> {
    const deleted = await this.cni(pod.node, 'del', pod.ns);
    if (deleted.exitCode !== 0) throw new Error(`cnitool del ${pod.ns} failed (${deleted.exitCode}): ${deleted.stderr}${deleted.stdout}`);
    this.removeNamespace(pod.ns);
    this.attached.splice(this.attached.indexOf(pod), 1);
  }

  // ---- podtun ----

  /** One YAML per node (the README, "Configuration"). */
  setMembers(i: number, members: readonly number[]): void {
    this.writeConfig(this.node(i), members);
  }

  rotateNodeKey(i: number): void {
    if (this.nodeRunning(i)) throw new Error(`rotateNodeKey: stop n${i} first`);
    const node = this.node(i);
    node.publicKey = labNodeKey(node.keyFile).publicKey;
    for (const other of this.nodeInfos) this.writeConfig(other);
  }

  private writeConfig(node: NodeInfo, members?: readonly number[]): void {
    const podtun = this.options.podtun ?? {};
    const i = node.index;
    const cidrs = this.options.ipv6 ? [CLUSTER_CIDR_V4, CLUSTER_CIDR_V6] : [CLUSTER_CIDR_V4];
    const overIpv6 = podtun.underlayIpv6 === true;
    if (overIpv6 && !this.options.ipv6) throw new Error('underlayIpv6 needs ipv6: true');
    const withWs = podtun.ws !== false;
    const hostOf = (peer: NodeInfo): string => (overIpv6 ? `[${peer.underlayIpv6 ?? ''}]` : peer.underlayIp);
    const top = new Map<string, unknown>([
      ['nodeName', node.name],
      ['clusterCidrs', cidrs],
      ['tunName', TUN_NAME],
      ['listen', overIpv6 ? `[::]:${PODTUN_PORT}` : `0.0.0.0:${PODTUN_PORT}`],
      ['underlayMtu', 1500],
      ['logLevel', podtun.logLevel ?? 'info'],
      ['clusterSecret', podtun.secretFor?.(i) ?? this.clusterSecret],
      ['nodeKeyFile', node.keyFile],
    ]);
    if (withWs) top.set('ws', { listen: overIpv6 ? `[::]:${WS_PORT}` : `0.0.0.0:${WS_PORT}` });
    if (this.etcd !== undefined) {
      top.set('subnetManager', { type: 'etcd', endpoints: [this.etcd.endpoint], prefix: this.etcd.prefix, ttlSeconds: podtun.etcd?.ttlSeconds ?? 10 });
      top.set('advertise', { endpoint: `${hostOf(node)}:${PODTUN_PORT}`, ...(withWs ? { wsEndpoint: `ws://${hostOf(node)}:${WS_PORT}` } : {}) });
      top.set('cni', { binDir: node.cniBinDir, confDir: node.cniConfDir, dataDir: node.cniDataDir });
    }
    if (this.kube !== undefined) {
      // One config for every node: the name comes from NODE_NAME (podtunEnv), as in a DaemonSet.
      top.delete('nodeName');
      top.set('subnetManager', { type: 'kube', kubeconfig: this.kube.podtunKubeconfig, resyncSeconds: 30 });
      top.set('advertise', { transport: 'auto' });
      top.set('cni', { binDir: node.cniBinDir, confDir: node.cniConfDir, dataDir: node.cniDataDir });
    }
    mergeKeys(top, podtun.config);
    mergeKeys(top, podtun.nodeOverrides?.(i));
    const lines = [`# podtun netns harness, run ${this.id}`];
    for (const [key, value] of top) lines.push(`${key}: ${yamlValue(value)}`);
    if (this.leasesFromControlPlane()) {
      writeFileSync(node.configFile, `${lines.join('\n')}\n`);
      return;
    }
    lines.push('nodes:');
    const listed = this.nodeInfos.filter((n) => n === node || members === undefined || members.includes(n.index));
    for (const peer of listed) {
      const entry = new Map<string, unknown>([
        ['name', peer.name],
        ['subnets', peer.subnetV6 === undefined ? [peer.subnetV4] : [peer.subnetV4, peer.subnetV6]],
        ['endpoint', `${hostOf(peer)}:${PODTUN_PORT}`],
      ]);
      if (withWs) entry.set('wsEndpoint', `ws://${hostOf(peer)}:${WS_PORT}`);
      entry.set('publicKey', peer.publicKey);
      const mode = typeof podtun.transport === 'function' ? podtun.transport(i, peer.index) : podtun.transport;
      if (mode !== undefined && peer !== node) entry.set('transport', mode);
      mergeKeys(entry, podtun.peerOverrides?.(i, peer.index));
      let first = true;
      for (const [key, value] of entry) {
        lines.push(`${first ? '  - ' : '    '}${key}: ${yamlValue(value)}`);
        first = false;
      }
    }
    writeFileSync(node.configFile, `${lines.join('\n')}\n`);
  }

  private podtunEnv(node: NodeInfo): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (key.startsWith('PODTUN_') || key === 'NODE_OPTIONS' || PROXY_ENV.has(key.toLowerCase())) continue;
      env[key] = value;
    }
    return {
      ...env,
      PODTUN_STATUS_SOCKET: node.statusSocket,
      NODE_NAME: node.name,
      ...(this.options.podtun?.env ?? {}),
      ...(this.options.podtun?.envFor?.(node.index) ?? {}),
    };
  }

  async startNode(i: number): Promise<void> {
    if (this.mode !== 'podtun') throw new Error(`startNode: cluster mode is ${this.mode}`);
    const node = this.node(i);
    if (this.nodeRunning(i)) throw new Error(`startNode: podtun already runs on ${node.name}`);
    const bin = join(this.options.podtunRoot ?? this.repoRoot, 'bin', 'podtun.js');
    const logFd = openSync(node.logFile, 'a');
    const logStart = readSize(node.logFile);
    let child: ChildProcess;
    try {
      child = this.spawnIn(
        node.ns,
        ['node', bin, 'run', '--config', node.configFile, ...(this.options.podtun?.extraArgs ?? [])],
        { stdio: ['ignore', logFd, logFd], env: this.podtunEnv(node), cwd: this.repoRoot },
      );
    } finally {
      closeSync(logFd);
    }
    this.podtunProcs.set(i, child);
    const startedAt = Date.now();
    const timeoutMs = this.options.podtun?.readyTimeoutMs ?? 20_000;
    try {
      await pollUntil(
        `podtun ready on ${node.name}`,
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(
              `podtun on ${node.name} exited (${child.exitCode ?? child.signalCode}); log ${node.logFile}:\n${tail(this.readLog(i).slice(logStart), 30)}`,
            );
          }
          return (await this.isReady(node, logStart, Date.now() - startedAt)) ? true : undefined;
        },
        timeoutMs,
        100,
      );
    } catch (error: unknown) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`${message}\n--- ${node.logFile} ---\n${tail(this.readLog(i).slice(logStart), 30)}`, {
        cause: error,
      });
    }
  }

  /**
   * Ready: the `node ready` log line (written once every listener is up; in etcd clusters the
   * `cni installed` line after it). A build that never
   * writes it is taken as ready after READY_FALLBACK_MS with the TUN up + cluster route + UDP
   * port bound.
   */
  private async isReady(node: NodeInfo, logStart: number, elapsedMs: number): Promise<boolean> {
    // etcd clusters: pods can be attached once the CNI install that follows `node ready` is done.
    if (this.leasesFromControlPlane()) return this.readLog(node.index).slice(logStart).includes('cni installed');
    if (this.readLog(node.index).slice(logStart).includes('node ready')) return true;
    if (elapsedMs < READY_FALLBACK_MS) return false;
    const link = await outcomeIn(node.ns, ['ip', '-j', 'link', 'show', 'dev', TUN_NAME]);
    if (link.exitCode !== 0) return false;
    const parsed = JSON.parse(link.stdout) as Array<{ flags?: string[] }>;
    if (!(parsed[0]?.flags ?? []).includes('UP')) return false;
    const route = await outcomeIn(node.ns, ['ip', 'route', 'show', CLUSTER_CIDR_V4]);
    if (!route.stdout.includes(TUN_NAME)) return false;
    const udp = await outcomeIn(node.ns, ['ss', '-Hlun', 'sport', '=', `:${PODTUN_PORT}`]);
    return udp.stdout.trim() !== '';
  }

  nodeRunning(i: number): boolean {
    const child = this.podtunProcs.get(i);
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  nodePid(i: number): number | undefined {
    return this.nodeRunning(i) ? this.podtunProcs.get(i)?.pid : undefined;
  }

  signalNode(i: number, signal: NodeJS.Signals): boolean {
    const pid = this.nodePid(i);
    if (pid === undefined) return false;
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  async stopNode(i: number): Promise<number | null> {
    const child = this.podtunProcs.get(i);
    if (child === undefined) return null;
    const pid = child.pid;
    if (pid !== undefined && this.nodeRunning(i)) {
      signalGroup(pid, 'SIGCONT');
      signalGroup(pid, 'SIGTERM');
      if (!(await waitExit(child, 10_000))) {
        signalGroup(pid, 'SIGKILL');
        await waitExit(child, 2_000);
        throw new Error(`podtun on ${this.node(i).name} ignored SIGTERM for 10 s (killed)`);
      }
    }
    this.podtunProcs.delete(i);
    return child.exitCode;
  }

  async killNode(i: number): Promise<void> {
    const child = this.podtunProcs.get(i);
    if (child === undefined) return;
    if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
    await waitExit(child, 5_000);
    this.podtunProcs.delete(i);
  }

  async blockUdp(i: number, blocked = true): Promise<void> {
    const ns = this.node(i).ns;
    const port = String(PODTUN_PORT);
    if (!blocked) {
      await outcomeIn(ns, ['nft', 'delete', 'table', 'inet', 'ptblock']);
      return;
    }
    const script = [
      'table inet ptblock {',
      '  chain input { type filter hook input priority 0; policy accept;',
      `    udp dport ${port} drop; udp sport ${port} drop; }`,
      '  chain output { type filter hook output priority 0; policy accept;',
      `    udp dport ${port} drop; udp sport ${port} drop; }`,
      '}',
    ].join('\n');
    await runIn(ns, ['nft', '-f', '-'], { input: script });
  }

  async blockInbound(i: number, ports: readonly number[], blocked = true): Promise<void> {
    const ns = this.node(i).ns;
    await outcomeIn(ns, ['nft', 'delete', 'table', 'inet', 'ptinbound']);
    if (!blocked) return;
    if (ports.length === 0 || !ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) {
      throw new Error(`blockInbound: bad ports ${ports.join(',')}`);
    }
    const set = `{ ${ports.join(', ')} }`;
    const script = [
      'table inet ptinbound {',
      '  chain input { type filter hook input priority 0; policy accept;',
      `    ct state new tcp dport ${set} drop; ct state new udp dport ${set} drop; }`,
      '}',
    ].join('\n');
    await runIn(ns, ['nft', '-f', '-'], { input: script });
  }

  async startProxy(kind: ProxyKind, options: ProxyOptions = {}): Promise<ProxyInfo> {
    if (this.proxy !== undefined) throw new Error(`startProxy: ${this.proxy.kind} already runs in this cluster`);
    if ((options.user === undefined) !== (options.pass === undefined)) {
      throw new Error('startProxy: give both user and pass, or neither');
    }
    for (const part of [options.user, options.pass]) {
      if (part !== undefined && !/^[A-Za-z0-9._-]+$/.test(part)) {
        throw new Error('startProxy: user and pass must be [A-Za-z0-9._-]+ (they go into configs and URLs)');
      }
    }
    const ns = `pt${this.id}-x`;
    const dir = join(this.dir, `proxy-${kind}`);
    mkdirSync(dir, { recursive: true });
    // squid drops to its own user ('proxy') and must write its logs here.
    chmodSync(dir, 0o777);
    await this.addNamespace(ns);
    await this.ip(this.underlayNs, ['link', 'add', 'px', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await this.ip(this.underlayNs, ['link', 'set', 'px', 'master', 'ul0', 'up']);
    await this.ip(ns, ['addr', 'add', `${PROXY_IP}/24`, 'dev', 'eth0']);
    await this.ip(ns, ['link', 'set', 'eth0', 'up']);
    const { argv, accessLog, caFile } = await writeProxyConfig(kind, dir, options);
    const outFd = openSync(join(dir, `${kind}.out`), 'a');
    let child: ChildProcess;
    try {
      child = this.spawnIn(ns, ['timeout', String(PROXY_LIFETIME_S), ...argv], {
        stdio: ['ignore', outFd, outFd],
        cwd: dir,
      });
    } finally {
      closeSync(outFd);
    }
    const readOut = (): string => {
      try {
        return readFileSync(join(dir, `${kind}.out`), 'utf8');
      } catch {
        return '';
      }
    };
    await pollUntil(
      `${kind} listening on ${PROXY_IP}:${PROXY_PORT}`,
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`${kind} exited (${child.exitCode ?? child.signalCode}): ${tail(readOut(), 20)}`);
        }
        const ss = await outcomeIn(ns, ['ss', '-Hltn', 'sport', '=', `:${PROXY_PORT}`]);
        return ss.stdout.trim() === '' ? undefined : true;
      },
      15_000,
      100,
    );
    const creds = options.user === undefined ? '' : `${options.user}:${options.pass ?? ''}@`;
    const scheme = kind === 'squid-https' ? 'https' : kind === 'microsocks' ? 'socks5' : 'http';
    const info: ProxyInfo = {
      kind,
      ns,
      ip: PROXY_IP,
      port: PROXY_PORT,
      url: `${scheme}://${creds}${PROXY_IP}:${PROXY_PORT}`,
      caFile,
      accessLog,
      pid: child.pid ?? -1,
      readLog: () => {
        try {
          return readFileSync(accessLog, 'utf8');
        } catch {
          return '';
        }
      },
    };
    this.proxy = info;
    return info;
  }

  async isolateBehindProxy(i: number): Promise<void> {
    const node = this.node(i);
    await this.ip(node.ns, ['route', 'del', `${UNDERLAY_V4_PREFIX}0/24`, 'dev', 'eth0']);
    await this.ip(node.ns, ['route', 'add', `${PROXY_IP}/32`, 'dev', 'eth0']);
    if (node.underlayIpv6 !== undefined) {
      await this.ip(node.ns, ['-6', 'route', 'del', `${UNDERLAY_V6_PREFIX}/64`, 'dev', 'eth0']);
    }
  }

  readLog(i: number): string {
    try {
      return readFileSync(this.node(i).logFile, 'utf8');
    } catch {
      return '';
    }
  }

  // ---- teardown ----

  destroy(options: DestroyOptions = {}): Promise<void> {
    this.destroying ??= this.teardown(options);
    return this.destroying;
  }

  private async teardown(options: DestroyOptions): Promise<void> {
    this.destroyed = true;
    // A node a test stopped (SIGSTOP) could not act on SIGTERM.
    for (const child of this.podtunProcs.values()) {
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGCONT');
    }
    // Graceful first: podtun should remove its TUN and routes on SIGTERM.
    await Promise.all([...this.podtunProcs.values()].map((child) => stopChild(child, 3_000)));
    this.podtunProcs.clear();
    // The control plane in its order (controller manager, apiserver, etcd), before the rest.
    await this.kube?.plane.close().catch((err: unknown) => process.stderr.write(`podtun netns harness: ${String(err)}\n`));
    await Promise.all([...this.spawned].map((child) => stopChild(child, 1_000)));
    this.spawned.clear();
    this.removeNamespaces();
    if (options.keepLogs === true) {
      process.stderr.write(`podtun netns harness: kept configs and logs of run ${this.id} in ${this.dir}\n`);
    } else {
      rmSync(this.dir, { recursive: true, force: true });
    }
    live.delete(this);
    removeHandlers();
  }

  detach(): void {
    if (this.destroying !== undefined) throw new Error('detach: cluster already destroyed');
    this.destroyed = true;
    this.destroying = Promise.resolve();
    for (const child of this.spawned) child.unref();
    removeRecord(this.id);
    live.delete(this);
    removeHandlers();
  }

  /** For exit handlers: SIGKILL everything, delete namespaces, keep the logs. */
  destroySync(): void {
    if (this.destroying !== undefined && !live.has(this)) return;
    this.destroyed = true;
    for (const child of [...this.podtunProcs.values(), ...this.spawned]) {
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
    }
    this.removeNamespaces();
    live.delete(this);
  }

  private removeNamespaces(): void {
    // Pods, then nodes, then the underlay: reverse creation order.
    const remaining = [...this.record.namespaces].reverse();
    const failed: string[] = [];
    for (const ns of remaining) {
      let gone = false;
      for (let attempt = 0; attempt < 3 && !gone; attempt++) gone = removeNamespaceSync(ns);
      if (!gone) failed.push(ns);
    }
    if (failed.length === 0) {
      removeRecord(this.id);
    } else {
      this.record.namespaces = failed;
      writeRecord(this.record);
      process.stderr.write(`podtun netns harness: could not delete namespaces ${failed.join(', ')}\n`);
    }
  }
}

/** Writes the proxy's config into `dir`; returns how to run it (foreground), its request log, its certificate. */
async function writeProxyConfig(
  kind: ProxyKind,
  dir: string,
  options: ProxyOptions,
): Promise<{ argv: string[]; accessLog: string; caFile?: string }> {
  const ports = options.connectPorts ?? [WS_PORT];
  const subnet = `${UNDERLAY_V4_PREFIX}0/24`;
  if (kind === 'microsocks') {
    // No CONNECT port list: the node it serves has a route to nothing but the proxy anyway.
    const auth = options.user === undefined ? [] : ['-u', options.user, '-P', options.pass ?? ''];
    return { argv: ['microsocks', '-i', PROXY_IP, '-p', String(PROXY_PORT), ...auth], accessLog: join(dir, 'microsocks.out') };
  }
  if (kind === 'tinyproxy') {
    const conf = join(dir, 'tinyproxy.conf');
    const accessLog = join(dir, 'tinyproxy.log');
    const lines = [
      `Port ${PROXY_PORT}`,
      `Listen ${PROXY_IP}`,
      'BindSame yes',
      'Timeout 120',
      'MaxClients 64',
      'LogLevel Info',
      `LogFile "${accessLog}"`,
      `PidFile "${join(dir, 'tinyproxy.pid')}"`,
      `Allow ${subnet}`,
      'DisableViaHeader Yes',
      ...ports.map((p) => `ConnectPort ${p}`),
      ...(options.user === undefined ? [] : [`BasicAuth ${options.user} ${options.pass ?? ''}`]),
    ];
    writeFileSync(conf, `${lines.join('\n')}\n`);
    return { argv: ['tinyproxy', '-d', '-c', conf], accessLog };
  }
  const conf = join(dir, 'squid.conf');
  const accessLog = join(dir, 'squid-access.log');
  const auth: string[] = [];
  if (options.user !== undefined) {
    const helper = ['/usr/lib/squid/basic_ncsa_auth', '/usr/lib64/squid/basic_ncsa_auth'].find((p) => existsSync(p));
    if (helper === undefined) throw new Error('startProxy: squid basic_ncsa_auth helper not found (Debian package squid)');
    const hashed = await runIn(null, ['openssl', 'passwd', '-1', options.pass ?? '']);
    const passwd = join(dir, 'passwd');
    writeFileSync(passwd, `${options.user}:${hashed.stdout.trim()}\n`);
    chmodSync(passwd, 0o644);
    auth.push(
      `auth_param basic program ${helper} ${passwd}`,
      'auth_param basic realm podtun',
      'acl authed proxy_auth REQUIRED',
    );
  }
  let listen = `http_port ${PROXY_IP}:${PROXY_PORT}`;
  let caFile: string | undefined;
  if (kind === 'squid-https') {
    caFile = join(dir, 'proxy-cert.pem');
    const keyFile = join(dir, 'proxy-key.pem');
    await runIn(null, ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', keyFile, '-out', caFile, '-days', '1', '-subj', '/CN=podtun test proxy', '-addext', `subjectAltName=IP:${PROXY_IP}`]);
    // squid reads it as its own user ('proxy'); a throwaway key in the run's dir.
    chmodSync(keyFile, 0o644);
    listen = `https_port ${PROXY_IP}:${PROXY_PORT} tls-cert=${caFile} tls-key=${keyFile}`;
  }
  const lines = [
    listen,
    ...auth,
    `acl nodes src ${subnet}`,
    `acl tunnel_ports port ${ports.join(' ')}`,
    'acl CONNECT method CONNECT',
    'http_access deny CONNECT !tunnel_ports',
    options.user === undefined ? 'http_access allow nodes' : 'http_access allow nodes authed',
    'http_access deny all',
    'http_upgrade_request_protocols websocket allow all',
    'cache deny all',
    'cache_mem 8 MB',
    'workers 1',
    'pinger_enable off',
    `access_log stdio:${accessLog}`,
    `cache_log ${join(dir, 'squid-cache.log')}`,
    `pid_filename ${join(dir, 'squid.pid')}`,
    `coredump_dir ${dir}`,
    'shutdown_lifetime 1 seconds',
    'dns_nameservers 127.0.0.1',
  ];
  writeFileSync(conf, `${lines.join('\n')}\n`);
  await runIn(null, ['squid', '-k', 'parse', '-f', conf]);
  return { argv: ['squid', '-N', '-f', conf], accessLog, ...(caFile === undefined ? {} : { caFile }) };
}

function readSize(path: string): number {
  try {
    return readFileSync(path, 'utf8').length;
  } catch {
    return 0;
  }
}

export function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** Namespaces on the machine that belong to run `id` (for teardown checks). */
export function namespacesOfRun(id: string): string[] {
  return listNamespaces().filter((ns) => ns.startsWith(`pt${id}-`));
}

/** A node key made now, as podtun would on first start, so peers' entries can name its public half. */
function labNodeKey(keyFile: string): { keyFile: string; publicKey: string } {
  const privateText = generateNodeKeyText();
  writeFileSync(keyFile, `${privateText}\n`, { mode: 0o600 });
  return { keyFile, publicKey: publicKeyOfPrivateText(privateText) };
}
