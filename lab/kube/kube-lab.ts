/**
 * A Kubernetes control plane for a namespace cluster (lab/cluster.ts `podtun.kube`):
 *
 * ```
 *   underlay ul0 ── kube ns pt<id>-k: etcd, kube-apiserver :6443, kube-controller-manager
 *                   (192.168.77.251)      ^ reached by the nodes over the underlay
 *   this process ── Unix sockets <dir>/kube-<port>.sock ── unix-forward agents in the kube ns
 * ```
 *
 * The manifests of deploy/kubernetes are applied to it first; the nodes' podtun then talks to the
 * API with the token of the ServiceAccount those manifests make, so it has exactly the rights
 * deploy's ClusterRole grants and a missing one fails the test that needs it. Nodes are
 * registered as a kubelet registers them (InternalIP on the underlay); the controller manager's
 * nodeipam gives them their podCIDRs.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { kubeControlPlaneBinDir, requireKubeBinaries, startControlPlane } from './control-plane.js';
import type { ControlPlane, SpawnFn } from './control-plane.js';
import type { KubeApi } from './kube-api.js';

export const KUBE_IP = '192.168.77.251';
export const KUBE_PORT = 6443;
const ETCD_CLIENT_PORT = 2379;
const ETCD_PEER_PORT = 2380;
const CONTROLLER_MANAGER_PORT = 10257;
const SCHEDULER_PORT = 10259;
/** deploy/kubernetes, applied in this order (kustomization.yaml's). */
const MANIFESTS = ['namespace.yaml', 'rbac.yaml', 'configmap.yaml', 'daemonset.yaml'];
export const PODTUN_NAMESPACE = 'podtun-system';
export const PODTUN_SERVICE_ACCOUNT = 'podtun';
/** TokenRequest's minimum is 10 minutes; a run is shorter. */
const TOKEN_SECONDS = 3600;

export interface KubeLabOptions {
  repoRoot: string;
  dir: string;
  clusterCidrs: string[];
  /** false: no controller manager until the test starts it (a node waits for its podCIDR). */
  allocateNodeCidrs: boolean;
  /** Kubelets will run pods (control-plane.ts runsPods). */
  runsPods: boolean;
  spawnInKubeNs: SpawnFn;
  /** Starts a unix-forward agent in the kube namespace: the socket leads to KUBE_IP:port. */
  forward(port: number, socketPath: string): Promise<void>;
}

export interface KubeLab {
  readonly plane: ControlPlane;
  /** As system:masters (test set-up and checks). */
  readonly admin: KubeApi;
  /** A kubeconfig with the podtun ServiceAccount's token: what every node's podtun uses. */
  readonly podtunKubeconfig: string;
  /** "https://192.168.77.251:6443" */
  readonly url: string;
  registerNode(name: string, internalIP: string, internalIPv6: string | undefined): Promise<void>;
}

export async function startKubeLab(options: KubeLabOptions): Promise<KubeLab> {
  const dir = join(options.dir, 'kube');
  const socketFor = (port: number): string => join(options.dir, `kube-${port}.sock`);
  const ports = [KUBE_PORT, ETCD_CLIENT_PORT, CONTROLLER_MANAGER_PORT, ...(options.runsPods ? [SCHEDULER_PORT] : [])];
  for (const port of ports) await options.forward(port, socketFor(port));
  const plane = await startControlPlane({
    dir,
    binDir: requireKubeBinaries(kubeControlPlaneBinDir()),
    bindAddress: KUBE_IP,
    port: KUBE_PORT,
    clusterCidrs: options.clusterCidrs,
    allocateNodeCidrs: options.allocateNodeCidrs,
    runsPods: options.runsPods,
    spawn: options.spawnInKubeNs,
    ports: { etcdClient: ETCD_CLIENT_PORT, etcdPeer: ETCD_PEER_PORT, controllerManager: CONTROLLER_MANAGER_PORT, scheduler: SCHEDULER_PORT },
    reach: socketFor,
  });
  try {
    const deploy = join(options.repoRoot, 'deploy', 'kubernetes');
    for (const file of MANIFESTS) await plane.admin.applyManifests(await readFile(join(deploy, file), 'utf8'));
    const token = await plane.admin.serviceAccountToken(PODTUN_NAMESPACE, PODTUN_SERVICE_ACCOUNT, TOKEN_SECONDS);
    const podtunKubeconfig = join(dir, 'podtun.kubeconfig');
    await writeFile(podtunKubeconfig, JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'lab', cluster: { server: plane.url, 'certificate-authority': plane.caFile } }],
      users: [{ name: 'podtun', user: { token } }],
      contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'podtun' } }],
      'current-context': 'lab',
    }, null, 2), { mode: 0o600 });
    return {
      plane,
      admin: plane.admin,
      podtunKubeconfig,
      url: plane.url,
      async registerNode(name, internalIP, internalIPv6) {
        await plane.admin.registerNode(name, { internalIP, ...(internalIPv6 === undefined ? {} : { internalIPv6 }) });
      },
    };
  } catch (err: unknown) {
    await plane.close();
    throw err;
  }
}
