/**
 * WireGuard in userspace (wireguard-go) as the cross-node data path of a namespace cluster: the
 * benchmark's encrypted anchors, in the same node and pod namespaces as every other data path.
 *
 * ```
 *   pod ns p1a --veth-- node ns n1                                 node ns n2 --veth-- pod ns p2a
 *   10.244.1.10         wg<id>n1 (TUN, held by wireguard-go)       wg<id>n2           10.244.2.10
 *                       route 10.244.2.0/24 dev wg<id>n1 ==UDP 51820 over ul0== route 10.244.1.0/24
 * ```
 *
 * On a cluster built with mode `none` (and `podMtu: WIREGUARD_MTU`):
 * 1. asks the kernel for a `wireguard` link in n1, to say in the facts that it has none (this
 *    kernel has no module, so only the userspace one can run);
 * 2. keys from `wg genkey` / `wg pubkey`, private keys in 0600 files in the run's dir;
 * 3. one `wireguard-go -f NAME` per node namespace (WG_PROCESS_FOREGROUND=1), started through the
 *    cluster, so destroy() ends it if close() was not called;
 * 4. `wg set`: listen port, private key, one peer per other node with AllowedIPs = that node's pod
 *    subnet(s) and its underlay endpoint; `ip link set mtu up`; routes to the peers' pod subnets
 *    over the interface;
 * 5. checks that each interface is a TUN whose fd the wireguard-go process holds
 *    (/proc/PID/fdinfo `iff:`), and records whether its virtio header (TUN offloads) is on.
 *
 * Interface names carry the run id: wireguard-go's control socket is a path,
 * /var/run/wireguard/NAME.sock, shared by all namespaces.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Cluster, NodeInfo } from './cluster.js';
import { outcomeIn, pollUntil, run, runIn, stopChild } from './shell.js';

export const WIREGUARD_PORT = 51820;
/** 1500-byte underlay minus WireGuard's 60 bytes over IPv4: IP 20 + UDP 8 + data header 16 + tag 16. */
export const WIREGUARD_MTU = 1440;
/** Where wireguard-go and `wg` meet (UAPI sockets); a path, so one for all namespaces. */
const UAPI_DIR = '/var/run/wireguard';
const START_TIMEOUT_MS = 10_000;

export interface WireguardGoOptions {
  /** The wireguard-go executable. */
  binary: string;
  /** MTU of the wg interfaces; default WIREGUARD_MTU. */
  mtu?: number;
  /** wireguard-go's LOG_LEVEL; default error. */
  logLevel?: 'silent' | 'error' | 'verbose';
}

export interface WireguardGoMesh {
  /** What `wireguard-go --version` said, e.g. `v0.0.20220316`. */
  readonly version: string;
  /** The wireguard-go PIDs, node order (for CPU readings). */
  readonly pids: readonly number[];
  readonly interfaces: readonly string[];
  /** What was checked, as sentences for a report. */
  readonly facts: readonly string[];
  /** SIGTERM to every wireguard-go (each removes its TUN and socket), then stale sockets removed. Safe twice. */
  close(): Promise<void>;
}

interface Member {
  node: NodeInfo;
  ifName: string;
  privateKeyFile: string;
  publicKey: string;
  child: ChildProcess;
  pid: number;
}

/** The version wireguard-go prints (`wireguard-go v0.0.20220316`), or why it did not run. */
export async function wireguardGoVersion(binary: string): Promise<string> {
  const out = await run([binary, '--version'], { timeoutMs: 5_000 });
  const version = /wireguard-go (v\S+)/.exec(out.stdout)?.[1];
  if (version === undefined) throw new Error(`${binary} --version said no version: ${out.stdout.slice(0, 200)}`);
  return version;
}

export async function startWireguardGo(cluster: Cluster, options: WireguardGoOptions): Promise<WireguardGoMesh> {
  if (cluster.mode !== 'none') throw new Error(`startWireguardGo: cluster mode must be none, got ${cluster.mode}`);
  const mtu = options.mtu ?? WIREGUARD_MTU;
  const version = await wireguardGoVersion(options.binary);
  const facts: string[] = [];
  const nodes = cluster.nodes();
  const first = nodes[0];
  if (first === undefined) throw new Error('startWireguardGo: the cluster has no nodes');

  const probeName = `wg${cluster.id}k`;
  const kernel = await outcomeIn(first.ns, ['ip', 'link', 'add', probeName, 'type', 'wireguard']);
  if (kernel.exitCode === 0) {
    await outcomeIn(first.ns, ['ip', 'link', 'del', probeName]);
    facts.push('the kernel has WireGuard, unused here: wireguard-go makes a TUN either way');
  } else {
    facts.push(`no kernel WireGuard (\`ip link add type wireguard\`: ${kernel.stderr.trim() || `exit ${kernel.exitCode}`})`);
  }

  const members: Member[] = [];
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      await Promise.all(members.map((m) => stopChild(m.child, 3_000)));
      for (const m of members) rmSync(join(UAPI_DIR, `${m.ifName}.sock`), { force: true });
    })();
    return closed;
  };
  try {
    for (const node of nodes) {
      const ifName = `wg${cluster.id}${node.name}`;
      if (ifName.length > 15) throw new Error(`startWireguardGo: interface name ${ifName} is longer than 15`);
      const privateKey = (await run(['wg', 'genkey'])).stdout.trim();
      const publicKey = (await run(['wg', 'pubkey'], { input: `${privateKey}\n` })).stdout.trim();
      const privateKeyFile = join(cluster.dir, `${node.name}-wg.key`);
      writeFileSync(privateKeyFile, `${privateKey}\n`, { mode: 0o600 });
      const child = spawnWireguardGo(cluster, node, ifName, options);
      if (child.pid === undefined) throw new Error(`wireguard-go did not start on ${node.name}`);
      members.push({ node, ifName, privateKeyFile, publicKey, child, pid: child.pid });
    }
    await Promise.all(members.map((m) => waitUp(m)));
    for (const m of members) {
      const args = ['wg', 'set', m.ifName, 'listen-port', String(WIREGUARD_PORT), 'private-key', m.privateKeyFile];
      for (const peer of members) {
        if (peer === m) continue;
        const allowed = [peer.node.subnetV4, ...(peer.node.subnetV6 === undefined ? [] : [peer.node.subnetV6])];
        args.push('peer', peer.publicKey, 'endpoint', `${peer.node.underlayIp}:${WIREGUARD_PORT}`, 'allowed-ips', allowed.join(','));
      }
      await runIn(m.node.ns, args);
      await runIn(m.node.ns, ['ip', 'link', 'set', m.ifName, 'mtu', String(mtu), 'up']);
      for (const peer of members) {
        if (peer === m) continue;
        await runIn(m.node.ns, ['ip', 'route', 'add', peer.node.subnetV4, 'dev', m.ifName]);
        if (peer.node.subnetV6 !== undefined) {
          await runIn(m.node.ns, ['ip', '-6', 'route', 'add', peer.node.subnetV6, 'dev', m.ifName]);
        }
      }
    }
    const vnetHdr = await Promise.all(members.map((m) => checkTun(m)));
    facts.push(
      `wireguard-go ${version}: ${members.map((m) => `${m.ifName} is a TUN held by PID ${m.pid}`).join(', ')}; ` +
        `TUN offloads (virtio header) ${vnetHdr.every((on) => on) ? 'on' : vnetHdr.some((on) => on) ? 'on for some' : 'off'}; MTU ${mtu}`,
    );
  } catch (error: unknown) {
    await close();
    throw error;
  }
  return { version, pids: members.map((m) => m.pid), interfaces: members.map((m) => m.ifName), facts, close };
}

function spawnWireguardGo(cluster: Cluster, node: NodeInfo, ifName: string, options: WireguardGoOptions): ChildProcess {
  const logFd = openSync(join(cluster.dir, `${node.name}-wireguard-go.log`), 'a');
  try {
    return cluster.spawnIn(node.ns, [options.binary, '-f', ifName], {
      stdio: ['ignore', logFd, logFd],
      env: {
        PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        WG_PROCESS_FOREGROUND: '1',
        LOG_LEVEL: options.logLevel ?? 'error',
      },
      cwd: cluster.dir,
    });
  } finally {
    closeSync(logFd);
  }
}

/** Until the interface exists in the node's namespace and its control socket is there. */
async function waitUp(m: Member): Promise<void> {
  await pollUntil(
    `wireguard-go ${m.ifName} on ${m.node.name}`,
    async () => {
      if (m.child.exitCode !== null || m.child.signalCode !== null) {
        throw new Error(`wireguard-go on ${m.node.name} exited (${m.child.exitCode ?? m.child.signalCode})`);
      }
      if (!existsSync(join(UAPI_DIR, `${m.ifName}.sock`))) return undefined;
      return (await outcomeIn(m.node.ns, ['ip', 'link', 'show', 'dev', m.ifName])).exitCode === 0 ? true : undefined;
    },
    START_TIMEOUT_MS,
    50,
  );
}

/** Throws unless m.ifName is a TUN whose fd m.pid holds; resolves with whether vnet_hdr is on. */
async function checkTun(m: Member): Promise<boolean> {
  const link = await runIn(m.node.ns, ['ip', '-d', '-j', 'link', 'show', 'dev', m.ifName]);
  const parsed = JSON.parse(link.stdout) as Array<{ linkinfo?: { info_kind?: string; info_data?: { vnet_hdr?: boolean } } }>;
  const info = parsed[0]?.linkinfo;
  if (info?.info_kind !== 'tun') throw new Error(`${m.ifName} on ${m.node.name} is not a TUN (${info?.info_kind ?? 'no kind'})`);
  const fdinfo = `/proc/${m.pid}/fdinfo`;
  const held = readdirSync(fdinfo).some((fd) => {
    try {
      return readFileSync(join(fdinfo, fd), 'utf8').includes(`iff:\t${m.ifName}\n`);
    } catch {
      return false;
    }
  });
  if (!held) throw new Error(`no fd of wireguard-go (PID ${m.pid}) is attached to ${m.ifName}`);
  return info.info_data?.vnet_hdr === true;
}
