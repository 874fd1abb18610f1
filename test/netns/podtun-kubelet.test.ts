/**
 * podtun installed as Kubernetes installs it: deploy/kubernetes applied to a real control plane,
 * its DaemonSet run by real kubelets (lab/kube/kubelet-node.ts: kubelet + containerd's CRI in
 * each node namespace) from the image deploy/Containerfile builds, and pods that kubelet starts
 * attached through the CNI plugin the DaemonSet installed.
 *
 * ```
 *                underlay ns (bridge ul0, 192.168.77.0/24)
 *          /                   |                          \
 *   kube ns (.251)          n1: kubelet, containerd     n2: kubelet, containerd
 *   etcd, apiserver,          DaemonSet pod podtun        DaemonSet pod podtun
 *   controller-manager,       pod "server" (HTTP)  <====  pod "client" (GET, then exits)
 *   scheduler
 * ```
 *
 * Needs root, the kube binaries (lab/kube/build-control-plane.sh, kubelet and scheduler
 * included), containerd, runc, jq, gcc with libc's static archive, podman and mmdebstrap (the
 * image is built as deploy/image/image.test.ts builds it: seconds when its layers are cached).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cidrContainsAddress, parseAddress, parseCidr } from '../../core/cidr.js';
import { findRepoRoot, tail } from '../../lab/cluster.js';
import { kubeBinariesMissing, kubeControlPlaneBinDir } from '../../lab/kube/control-plane.js';
import { podCidrsOf } from '../../lab/kube/kube-api.js';
import type { KubeObject } from '../../lab/kube/kube-api.js';
import { KUBE_IP, KUBE_PORT, PODTUN_NAMESPACE } from '../../lab/kube/kube-lab.js';
import { PAUSE_IMAGE, ensurePauseImage, saveImage, startKubeletNode } from '../../lab/kube/kubelet-node.js';
import type { KubeletNode } from '../../lab/kube/kubelet-node.js';
import { pollUntil, run } from '../../lab/shell.js';
import { netnsSkipReason, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['nft', 'containerd', 'ctr', 'runc', 'jq', 'gcc', 'podman', 'mmdebstrap']) ?? podtunSkipReason() ?? kubeBinariesMissing();
printSkip('podtun-kubelet.test.ts', skipReason);

const IMAGE = 'localhost/podtun:dev';
/** What the manifests' `podtun:dev` means to a CRI runtime. */
const IMAGE_IN_PODS = 'docker.io/library/podtun:dev';
const IMAGE_BUILD_TIMEOUT_MS = 25 * 60_000;
const NODES_READY_TIMEOUT_MS = 180_000;
const POD_TIMEOUT_MS = 120_000;
const SERVER_PORT = 8080;
const CNI_EXECUTABLES = ['podtun', 'podtun-ipam', 'bridge', 'host-local', 'loopback', 'portmap'];

/** Answers every request with the address it came from. */
const SERVER_JS = `require('http').createServer((q, r) => r.end(JSON.stringify({ remote: q.socket.remoteAddress }))).listen(${SERVER_PORT}, '0.0.0.0')`;
/** Asks the server until it answers (at most 60 tries), and leaves the answer as the termination message. */
const CLIENT_JS = `
const url = process.argv[1];
const fs = require('fs');
(async () => {
  for (let i = 0; i < 60; i++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      fs.writeFileSync('/dev/termination-log', JSON.stringify({ status: res.status, body: await res.json(), tries: i + 1 }));
      return;
    } catch (err) {
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  fs.writeFileSync('/dev/termination-log', JSON.stringify({ status: 0 }));
  process.exit(1);
})();`;

type Pod = KubeObject & { spec: { nodeName?: string }; status: PodStatus };
interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  state: { running?: unknown; terminated?: { exitCode: number; message?: string; reason?: string }; waiting?: { reason?: string } };
}
interface PodStatus {
  phase?: string;
  podIP?: string;
  containerStatuses?: ContainerStatus[];
  initContainerStatuses?: ContainerStatus[];
}

function testPod(name: string, node: string, args: string[]): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      nodeName: node,
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 1,
      containers: [{ name, image: 'podtun:dev', imagePullPolicy: 'IfNotPresent', command: ['node', '-e', ...args] }],
    },
  };
}

describe.skipIf(skipReason !== undefined)('podtun as a DaemonSet on real kubelets (2 nodes)', () => {
  const cluster = useCluster({ nodes: 2, podsPerNode: 0, ipv6: false, mode: 'podtun', podtun: { kube: { runsPods: true } }, startNodes: false });
  const kubelets: KubeletNode[] = [];
  let scratch = '';
  let serverIp = '';

  const kube = () => {
    const k = cluster().kube;
    if (k === undefined) throw new Error('no kube lab');
    return k;
  };
  const podtunPods = async (): Promise<Pod[]> =>
    (await kube().admin.list(`/api/v1/namespaces/${PODTUN_NAMESPACE}/pods`)) as Pod[];
  const getPod = async (name: string): Promise<Pod> => (await kube().admin.get(`/api/v1/namespaces/default/pods/${name}`)) as Pod;

  beforeAll(async () => {
    const repoRoot = findRepoRoot();
    scratch = await mkdtemp('/tmp/podtun-kubelet-');
    // The image the manifests name, built from this checkout (cached layers: seconds).
    await run([join(repoRoot, 'deploy/image/make-base-image.sh')], { timeoutMs: IMAGE_BUILD_TIMEOUT_MS });
    await run([join(repoRoot, 'deploy/image/build-image.sh'), repoRoot], { timeoutMs: IMAGE_BUILD_TIMEOUT_MS });
    await ensurePauseImage(repoRoot, scratch);
    const images = [
      { archive: join(scratch, 'podtun.tar'), tags: [[IMAGE, IMAGE_IN_PODS]] as const },
      { archive: join(scratch, 'pause.tar'), tags: [] },
    ];
    await saveImage(IMAGE, images[0]!.archive);
    await saveImage(PAUSE_IMAGE, images[1]!.archive);

    const c = cluster();
    const k = kube();
    // The cluster secret, as the README's step 2 creates it.
    await k.admin.create(`/api/v1/namespaces/${PODTUN_NAMESPACE}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'podtun-cluster-secret' },
      stringData: { 'cluster-secret': c.clusterSecret },
    });
    for (const node of c.nodes()) {
      kubelets.push(await startKubeletNode({
        repoRoot,
        ns: node.ns,
        name: node.name,
        ip: node.underlayIp,
        dir: join(scratch, node.name),
        binDir: kubeControlPlaneBinDir(),
        kubeconfig: k.plane.adminKubeconfig,
        caFile: k.plane.caFile,
        apiServer: { ip: KUBE_IP, port: KUBE_PORT },
        images,
        cgroupRoot: `podtun-lab-${c.id}-${node.name}`,
        spawnIn: (ns, argv, options) => c.spawnIn(ns, argv, options),
      }));
    }
  }, IMAGE_BUILD_TIMEOUT_MS + 120_000);

  afterAll(async () => {
    for (const kubelet of kubelets) await kubelet.stop();
    if (scratch !== '') await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  it('the DaemonSet runs podtun on every node; each node turns Ready once podtun forwards', { timeout: NODES_READY_TIMEOUT_MS + 30_000 }, async () => {
    const c = cluster();
    try {
      await pollUntil('a ready podtun pod on every node, and every Node Ready', async () => {
        const pods = await podtunPods();
        const onNodes = new Set(pods.filter((p) => p.status.containerStatuses?.every((s) => s.ready) === true).map((p) => p.spec.nodeName));
        if (!c.nodes().every((n) => onNodes.has(n.name))) return undefined;
        const nodes = await kube().admin.list('/api/v1/nodes');
        const ready = nodes.filter((n) => conditions(n).some((x) => x.type === 'Ready' && x.status === 'True'));
        return ready.length === c.nodes().length ? true : undefined;
      }, NODES_READY_TIMEOUT_MS, 1000);
    } catch (err: unknown) {
      await printDiagnostics();
      throw err;
    }
    for (const pod of await podtunPods()) {
      const init = pod.status.initContainerStatuses?.[0];
      expect(init?.name).toBe('install-cni');
      expect(init?.state.terminated?.exitCode).toBe(0);
      expect(pod.status.containerStatuses?.[0]?.restartCount).toBe(0);
    }
    for (const [i, node] of c.nodes().entries()) {
      const object = await kube().admin.get(`/api/v1/nodes/${node.name}`);
      // Published by the podtun in the pod, authenticated with the pod's projected token.
      const annotations = (object['metadata'] as { annotations?: Record<string, string> }).annotations ?? {};
      expect(annotations['podtun.io/endpoint-udp']).toBe(`${node.underlayIp}:8285`);
      expect(conditions(object).find((x) => x.type === 'NetworkUnavailable')?.status).toBe('False');
      expect(podCidrsOf(object)).toHaveLength(1);
      // The init step installed into this node's /opt/cni/bin; the daemon wrote the conflist.
      const dir = kubelets[i]!.dir;
      expect((await readdir(join(dir, 'host/opt/cni/bin'))).sort()).toEqual(expect.arrayContaining(CNI_EXECUTABLES));
      expect(await readdir(join(dir, 'host/etc-cni/net.d'))).toContain('10-podtun.conflist');
    }
  });

  it('pods kubelet starts on two nodes reach each other, and the server sees the client pod\'s own address', { timeout: POD_TIMEOUT_MS * 2 }, async () => {
    const c = cluster();
    const k = kube();
    // The serviceaccount controller makes `default`; the admission plugin refuses pods before it.
    await pollUntil('ServiceAccount default/default', async () => (await k.admin.get('/api/v1/namespaces/default/serviceaccounts/default')) ?? undefined, 30_000, 500);
    await k.admin.create('/api/v1/namespaces/default/pods', testPod('server', c.node(1).name, [SERVER_JS]));
    const server = await pollUntil('server pod running with an IP', async () => {
      const pod = await getPod('server');
      return pod.status.phase === 'Running' && pod.status.podIP !== undefined ? pod : undefined;
    }, POD_TIMEOUT_MS, 500).catch(async (err: unknown) => {
      await printDiagnostics();
      throw err;
    });
    serverIp = server.status.podIP ?? '';
    const { clientIp } = await runClient('client');
    // Each pod's address lies in its own node's podCIDR.
    const cidrOf = async (node: string) => podCidrsOf(await k.admin.get(`/api/v1/nodes/${node}`))[0] ?? '';
    expect(cidrContainsAddress(parseCidr(await cidrOf(c.node(1).name)), parseAddress(serverIp)), `${serverIp} in n1's podCIDR`).toBe(true);
    expect(cidrContainsAddress(parseCidr(await cidrOf(c.node(2).name)), parseAddress(clientIp)), `${clientIp} in n2's podCIDR`).toBe(true);
  });

  it('a DaemonSet rollout on the server\'s node (its podtun pod replaced) keeps the server\'s address and reach', { timeout: NODES_READY_TIMEOUT_MS + POD_TIMEOUT_MS }, async () => {
    const c = cluster();
    const k = kube();
    const n1 = c.node(1).name;
    const old = (await podtunPods()).find((p) => p.spec.nodeName === n1);
    const oldName = String((old?.['metadata'] as { name?: string } | undefined)?.name);
    await k.admin.delete(`/api/v1/namespaces/${PODTUN_NAMESPACE}/pods/${oldName}`);
    await pollUntil(`a new ready podtun pod on ${n1}`, async () => {
      const fresh = (await podtunPods()).find((p) => p.spec.nodeName === n1 && (p['metadata'] as { name?: string }).name !== oldName);
      return fresh?.status.containerStatuses?.every((s) => s.ready) === true ? true : undefined;
    }, NODES_READY_TIMEOUT_MS, 500).catch(async (err: unknown) => {
      await printDiagnostics();
      throw err;
    });
    const server = await getPod('server');
    expect(server.status.phase).toBe('Running');
    expect(server.status.podIP).toBe(serverIp);
    const { tries } = await runClient('client-after-rollout');
    // The client asks once a second: reach is back within a few seconds of the new pod's readiness.
    expect(tries).toBeLessThanOrEqual(5);
  });

  /** Runs a client pod on n2 against the server; expects an answer that saw the client's own address. */
  async function runClient(name: string): Promise<{ clientIp: string; tries: number }> {
    const k = kube();
    await k.admin.create('/api/v1/namespaces/default/pods', testPod(name, cluster().node(2).name, [CLIENT_JS, `http://${serverIp}:${SERVER_PORT}/`]));
    const client = await pollUntil(`${name} pod finished`, async () => {
      const pod = await getPod(name);
      return pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed' ? pod : undefined;
    }, POD_TIMEOUT_MS, 500).catch(async (err: unknown) => {
      await printDiagnostics();
      throw err;
    });
    const clientIp = client.status.podIP ?? '';
    const message = client.status.containerStatuses?.[0]?.state.terminated?.message ?? '';
    expect(client.status.phase, message).toBe('Succeeded');
    const answer = JSON.parse(message) as { status: number; body: { remote: string }; tries: number };
    expect(answer.status).toBe(200);
    // No NAT between nodes: the server saw the client pod's own address.
    expect(answer.body.remote).toBe(clientIp);
    return { clientIp, tries: answer.tries };
  }

  async function printDiagnostics(): Promise<void> {
    for (const kubelet of kubelets) {
      const log = await readFile(join(kubelet.dir, 'kubelet.log'), 'utf8').catch(() => '');
      process.stderr.write(`--- ${kubelet.name} kubelet.log (errors, tail) ---\n${tail(log.split('\n').filter((l) => l.startsWith('E')).join('\n'), 20)}\n`);
    }
    for (const pod of await podtunPods().catch(() => [])) {
      process.stderr.write(`--- pod ${String((pod['metadata'] as { name?: string }).name)} on ${pod.spec.nodeName ?? '?'}: ${JSON.stringify(pod.status)}\n`);
    }
  }
});

function conditions(object: KubeObject): Array<{ type: string; status: string }> {
  return ((object['status'] as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions) ?? [];
}
