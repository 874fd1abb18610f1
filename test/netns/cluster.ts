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
 * Rules kept: the root namespace gets no address or route; every name carries the run id
 * (`pt<id>-n1`); the run is recorded under the OS temp dir with its owner PID, and namespaces of
 * dead owners are removed at the next start; `destroy()` also runs on exit, SIGINT and SIGTERM.
 *
 * Numbering: nodes are 1-based (`node(1)` is n1), pods 0-based within a node (`pod(1, 0)` is
 * p1a at 10.244.1.10).
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
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

export type ClusterMode = 'podtun' | 'kernel-routing' | 'kernel-vxlan' | 'none';

export const UNDERLAY_V4_PREFIX = '192.168.77.';
export const UNDERLAY_V6_PREFIX = 'fd77::';
export const CLUSTER_CIDR_V4 = '10.244.0.0/16';
export const CLUSTER_CIDR_V6 = 'fd00:10:244::/48';
export const PODTUN_PORT = 8285;
export const TUN_NAME = 'podtun0';
export const VXLAN_PORT = 8472;
export const VXLAN_MTU = 1450;
/** 1500-byte underlay minus podtun's 40 bytes of IPv4 + UDP + tunnel header. */
export const PODTUN_POD_MTU = 1460;
const POD_HOST_OFFSET = 10;
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
}

export interface ClusterOptions {
  nodes: number;
  podsPerNode: number;
  ipv6: boolean;
  mode: ClusterMode;
  podtun?: PodtunOptions;
  /** MTU of pod veths; defaults per mode (1500, VXLAN 1450, podtun 1460). */
  podMtu?: number;
  /** Start podtun on every node during creation (default true in 'podtun' mode). */
  startNodes?: boolean;
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
  /**
   * The status socket the harness asks podtun to serve (env PODTUN_STATUS_SOCKET): a path under
   * the run's temp dir, one per node, since path sockets are shared by all namespaces.
   */
  statusSocket: string;
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
  /** Drops (or stops dropping) UDP to/from the podtun port in node i's namespace (nftables). */
  blockUdp(i: number, blocked?: boolean): Promise<void>;
  /** podtun's log for node i so far ('' if none). */
  readLog(i: number): string;
  /** Rewrites node i's config to list only these nodes (podtun picks the edit up live). */
  setMembers(i: number, members: readonly number[]): void;
  /** Idempotent; also called on exit and signals. */
  destroy(options?: DestroyOptions): Promise<void>;
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

function newRunId(): string {
  const existing = listNamespaces();
  for (let attempt = 0; attempt < 20; attempt++) {
    const id = randomBytes(3).toString('hex').slice(0, 3);
    if (!existing.some((ns) => ns.startsWith(`pt${id}-`))) return id;
  }
  throw new Error('cannot find an unused run id for namespaces');
}

function vtepMac(i: number): string {
  return `02:77:00:00:${Math.floor(i / 256).toString(16).padStart(2, '0')}:${(i % 256).toString(16).padStart(2, '0')}`;
}

function yamlValue(value: unknown): string {
  return JSON.stringify(value);
}

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
  const cluster = new ClusterImpl(options, newRunId(), findRepoRoot());
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
  private destroyed = false;
  private destroying: Promise<void> | undefined;

  constructor(
    readonly options: Readonly<ClusterOptions>,
    readonly id: string,
    readonly repoRoot: string,
  ) {
    const prefix = `pt${id}`;
    this.underlayNs = `${prefix}-u`;
    this.dir = join(harnessDir(), id);
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
        statusSocket: join(this.dir, `n${i}.sock`),
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
    await Promise.all(this.nodeInfos.map((node) => this.buildNode(node)));
    if (this.mode === 'kernel-routing') {
      await Promise.all(this.nodeInfos.map((node) => this.addKernelRoutes(node)));
    } else if (this.mode === 'kernel-vxlan') {
      await Promise.all(this.nodeInfos.map((node) => this.addVxlan(node)));
    } else if (this.mode === 'podtun') {
      for (const node of this.nodeInfos) this.writeConfig(node, this.options.podtun?.members?.(node.index));
      if (this.options.startNodes !== false) {
        await Promise.all(this.nodeInfos.map((node) => this.startNode(node.index)));
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

  // ---- podtun ----

  /** One YAML per node (the README, "Configuration"). */
  setMembers(i: number, members: readonly number[]): void {
    this.writeConfig(this.node(i), members);
  }

  private writeConfig(node: NodeInfo, members?: readonly number[]): void {
    const podtun = this.options.podtun ?? {};
    const cidrs = this.options.ipv6 ? [CLUSTER_CIDR_V4, CLUSTER_CIDR_V6] : [CLUSTER_CIDR_V4];
    const overIpv6 = podtun.underlayIpv6 === true;
    if (overIpv6 && !this.options.ipv6) throw new Error('underlayIpv6 needs ipv6: true');
    const endpointOf = (peer: NodeInfo): string =>
      overIpv6 ? `[${peer.underlayIpv6 ?? ''}]:${PODTUN_PORT}` : `${peer.underlayIp}:${PODTUN_PORT}`;
    const lines = [
      `# podtun netns harness, run ${this.id}`,
      `nodeName: ${node.name}`,
      `clusterCidrs: ${yamlValue(cidrs)}`,
      `tunName: ${TUN_NAME}`,
      `listen: ${yamlValue(overIpv6 ? `[::]:${PODTUN_PORT}` : `0.0.0.0:${PODTUN_PORT}`)}`,
      'underlayMtu: 1500',
      `logLevel: ${podtun.logLevel ?? 'info'}`,
    ];
    for (const [key, value] of Object.entries(podtun.config ?? {})) {
      if (!/^[A-Za-z][A-Za-z0-9]*$/.test(key)) throw new Error(`bad config key ${key}`);
      lines.push(`${key}: ${yamlValue(value)}`);
    }
    lines.push('nodes:');
    const listed = this.nodeInfos.filter((n) => n === node || members === undefined || members.includes(n.index));
    for (const peer of listed) {
      const subnets = peer.subnetV6 === undefined ? [peer.subnetV4] : [peer.subnetV4, peer.subnetV6];
      lines.push(`  - name: ${peer.name}`);
      lines.push(`    subnets: ${yamlValue(subnets)}`);
      lines.push(`    endpoint: ${yamlValue(endpointOf(peer))}`);
    }
    writeFileSync(node.configFile, `${lines.join('\n')}\n`);
  }

  private podtunEnv(node: NodeInfo): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.startsWith('PODTUN_') && key !== 'NODE_OPTIONS') env[key] = value;
    }
    return {
      ...env,
      PODTUN_STATUS_SOCKET: node.statusSocket,
      ...(this.options.podtun?.env ?? {}),
    };
  }

  async startNode(i: number): Promise<void> {
    if (this.mode !== 'podtun') throw new Error(`startNode: cluster mode is ${this.mode}`);
    const node = this.node(i);
    if (this.nodeRunning(i)) throw new Error(`startNode: podtun already runs on ${node.name}`);
    const bin = join(this.repoRoot, 'bin', 'podtun.js');
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
          return (await this.isReady(node, logStart)) ? true : undefined;
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

  /** Ready: the `node ready` log line, or the TUN up + cluster route + UDP port bound. */
  private async isReady(node: NodeInfo, logStart: number): Promise<boolean> {
    if (this.readLog(node.index).slice(logStart).includes('node ready')) return true;
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

  async stopNode(i: number): Promise<number | null> {
    const child = this.podtunProcs.get(i);
    if (child === undefined) return null;
    const pid = child.pid;
    if (pid !== undefined && this.nodeRunning(i)) {
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
    // Graceful first: podtun should remove its TUN and routes on SIGTERM.
    await Promise.all([...this.podtunProcs.values()].map((child) => stopChild(child, 3_000)));
    this.podtunProcs.clear();
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
