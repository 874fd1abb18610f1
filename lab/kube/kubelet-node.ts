/**
 * A real kubelet on a namespace node: containerd (Debian's, CRI) and kubelet (built with the
 * control plane) run in the node's network namespace and a mount namespace of their own
 * (kubelet-node.sh), so pods, hostPath volumes and CNI calls land on that node as on a machine of
 * its own. What a cluster would have and this machine does not is stood in for, each said where:
 * the pause image is built here from pause.c; kube-proxy's one rule that matters (the
 * `kubernetes` Service's ClusterIP to the API server) is an nftables DNAT in the node; runc runs
 * through runc-oom-floor.sh, since root here lacks CAP_SYS_RESOURCE.
 *
 *   node ns nN ── kubelet-node.sh (own mount ns: /opt, /etc/cni, /var/lib, /var/log, /run are the node's)
 *                   containerd (CRI) ── runc-oom-floor.sh ── pods (cgroups under a per-run root)
 *                   kubelet ── https://KUBE_IP:6443 (and 10.96.0.1:443 -> DNAT -> the same)
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pidsWhere, run, runIn, signalGroup, sleep, stopChild } from '../shell.js';
import type { SpawnOptions } from '../shell.js';
import { KUBERNETES_SERVICE_IP } from './control-plane.js';

/** Where the scripts and pause.c are, under the repository root (dist/ holds only JavaScript). */
const SOURCE_DIR = join('lab', 'kube');
export const PAUSE_IMAGE = 'localhost/podtun-pause:lab';
const KUBERNETES_SERVICE_PORT = 443;
const CGROUP_FS = '/sys/fs/cgroup';
const STOP_GRACE_MS = 5_000;
const TASK_STOP_TRIES = 20;
const TASK_STOP_INTERVAL_MS = 250;
const IMAGE_SAVE_TIMEOUT_MS = 5 * 60_000;

export interface NodeImage {
  /** `podman save` archive. */
  archive: string;
  /** [name in the archive, extra name] pairs: `podtun:dev` in a pod spec means docker.io/library/podtun:dev. */
  tags: ReadonlyArray<readonly [string, string]>;
}

export interface KubeletNodeOptions {
  repoRoot: string;
  ns: string;
  /** The Node's name (kubelet's --hostname-override). */
  name: string;
  /** InternalIP: where the node is reached on the underlay. */
  ip: string;
  /** Created; everything the node writes stays under it. */
  dir: string;
  /** Holds kubelet. */
  binDir: string;
  /** What kubelet authenticates to the API server with. */
  kubeconfig: string;
  /** Client certificates kubelet's own API accepts. */
  caFile: string;
  apiServer: { ip: string; port: number };
  images: readonly NodeImage[];
  /** A cgroup name unique to this node and run: pods' cgroups go below it in every hierarchy. */
  cgroupRoot: string;
  /** The harness's spawn (its processes are bounded and ended at destroy). */
  spawnIn(ns: string, argv: readonly string[], options: SpawnOptions): ChildProcess;
}

export interface KubeletNode {
  readonly name: string;
  /** kubelet's and containerd's logs are here. */
  readonly dir: string;
  /** Kills every pod, then kubelet and containerd; removes the node's cgroups. Safe twice. */
  stop(): Promise<void>;
}

/** The pause image, built from pause.c when podman does not have it yet; needs gcc and libc's static archive. */
export async function ensurePauseImage(repoRoot: string, workDir: string): Promise<void> {
  const exists = await run(['podman', 'image', 'exists', PAUSE_IMAGE], { timeoutMs: 30_000 }).then(() => true, () => false);
  if (exists) return;
  const context = join(workDir, 'pause-image');
  await mkdir(context, { recursive: true });
  await run(['gcc', '-static', '-Os', '-s', '-o', join(context, 'pause'), join(repoRoot, SOURCE_DIR, 'pause.c')], { timeoutMs: 60_000 });
  await writeFile(join(context, 'Containerfile'), 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n');
  await run(['podman', 'build', '-q', '-t', PAUSE_IMAGE, context], { timeoutMs: 120_000 });
}

/** `podman save` of an image into `archive`, for every node's containerd to import. */
export async function saveImage(image: string, archive: string): Promise<void> {
  await run(['podman', 'save', '-q', '-o', archive, image], { timeoutMs: IMAGE_SAVE_TIMEOUT_MS });
}

export async function startKubeletNode(o: KubeletNodeOptions): Promise<KubeletNode> {
  await mkdir(o.dir, { recursive: true });
  await writeFile(join(o.dir, 'containerd.toml'), containerdConfig(o));
  await writeFile(join(o.dir, 'kubelet.yaml'), kubeletConfig(o));
  await copyFile(o.kubeconfig, join(o.dir, 'kubelet.kubeconfig'));
  await writeFile(join(o.dir, 'images.list'), o.images.map((image) => `${image.archive}\n`).join(''));
  await writeFile(join(o.dir, 'image-tags.list'), o.images.flatMap((image) => image.tags.map(([from, to]) => `${from} ${to}\n`)).join(''));
  await standInForKubeProxy(o);
  const log = openSync(join(o.dir, 'kubelet.log'), 'a');
  let child: ChildProcess;
  try {
    child = o.spawnIn(o.ns, [
      'unshare', '--mount', '--propagation', 'private',
      join(o.repoRoot, SOURCE_DIR, 'kubelet-node.sh'), o.dir, join(o.binDir, 'kubelet'), o.name, o.ip,
    ], { stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  let stopped = false;
  return {
    name: o.name,
    dir: o.dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await killPods(o.dir);
      await stopChild(child, STOP_GRACE_MS);
      const containerd = Number((await readFile(join(o.dir, 'containerd.pid'), 'utf8').catch(() => '')).trim());
      if (Number.isInteger(containerd) && containerd > 1) signalGroup(containerd, 'SIGKILL');
      // Shims (their own process groups) and anything left in the node's cgroups.
      for (const pid of processesOf(o.dir, o.cgroupRoot)) signalGroup(pid, 'SIGKILL');
      await sleep(200);
      removeCgroups(o.cgroupRoot);
    },
  };
}

/** kube-proxy's part for the one Service pods here use: the API server's ClusterIP, from the node and from pods. */
async function standInForKubeProxy(o: KubeletNodeOptions): Promise<void> {
  const to = `${o.apiServer.ip}:${o.apiServer.port}`;
  const match = `ip daddr ${KUBERNETES_SERVICE_IP} tcp dport ${KUBERNETES_SERVICE_PORT}`;
  const rules = [
    'table ip podtun-lab-kube-proxy {',
    `  chain output { type nat hook output priority -100; ${match} dnat to ${to}; }`,
    `  chain prerouting { type nat hook prerouting priority -100; ${match} dnat to ${to}; }`,
    '}',
  ].join('\n');
  await writeFile(join(o.dir, 'kube-proxy.nft'), rules);
  await runIn(o.ns, ['nft', '-f', join(o.dir, 'kube-proxy.nft')]);
  // A route, so that a connect() to the ClusterIP reaches the output hook at all.
  await runIn(o.ns, ['ip', 'route', 'add', `${KUBERNETES_SERVICE_IP}/32`, 'dev', 'eth0']);
}

async function killPods(dir: string): Promise<void> {
  const ctr = (args: string[]) => run(['ctr', '-a', join(dir, 'containerd.sock'), '-n', 'k8s.io', ...args], { timeoutMs: 10_000 });
  const tasks = async (): Promise<string[]> => {
    try {
      return (await ctr(['tasks', 'ls', '-q'])).stdout.split('\n').filter((t) => t !== '');
    } catch {
      return [];
    }
  };
  for (const task of await tasks()) await ctr(['tasks', 'kill', '-a', '-s', 'SIGKILL', task]).catch(() => undefined);
  for (let i = 0; i < TASK_STOP_TRIES; i++) {
    const left = await tasks();
    if (left.length === 0) return;
    for (const task of left) await ctr(['tasks', 'delete', task]).catch(() => undefined);
    await sleep(TASK_STOP_INTERVAL_MS);
  }
}

/** PIDs whose command line names the node's dir (containerd, shims) or that sit in its cgroups. */
function processesOf(dir: string, cgroupRoot: string): number[] {
  return pidsWhere((pid) =>
    readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${dir}/`) ||
    readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/${cgroupRoot}/`));
}

/** rmdir, deepest first, of the node's cgroup in every hierarchy; a cgroup still in use stays. */
function removeCgroups(cgroupRoot: string): void {
  const removeTree = (path: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(path, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const child of entries) removeTree(join(path, child));
    try {
      rmdirSync(path);
    } catch {
      // busy or gone
    }
  };
  for (const hierarchy of readdirSync(CGROUP_FS)) removeTree(join(CGROUP_FS, hierarchy, cgroupRoot));
}

function containerdConfig(o: KubeletNodeOptions): string {
  const dir = o.dir;
  return `version = 2
root = "${join(dir, 'containerd', 'root')}"
state = "${join(dir, 'containerd', 'state')}"
[grpc]
  address = "${join(dir, 'containerd.sock')}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "${join(o.repoRoot, SOURCE_DIR, 'runc-oom-floor.sh')}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
`;
}

/**
 * cgroup v1 here (failCgroupV1: false), no swap accounting, no systemd; cgroupsPerQOS off so
 * every pod's cgroup sits right under cgroupRoot, which stop() removes. Eviction thresholds are
 * near zero: a test machine's disk is not a reason to evict the pod network.
 */
function kubeletConfig(o: KubeletNodeOptions): string {
  const sock = `unix://${join(o.dir, 'containerd.sock')}`;
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${o.ip}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: false }
  x509: { clientCAFile: ${o.caFile} }
authorization: { mode: AlwaysAllow }
cgroupDriver: cgroupfs
cgroupsPerQOS: false
cgroupRoot: /${o.cgroupRoot}
enforceNodeAllocatable: []
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: ${sock}
imageServiceEndpoint: ${sock}
registerNode: true
resolvConf: ""
evictionHard: { memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%" }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
syncFrequency: 5s
nodeStatusUpdateFrequency: 5s
`;
}
