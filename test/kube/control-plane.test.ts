/**
 * A real Kubernetes control plane on loopback, in the root namespace (no address or route is
 * added anywhere):
 *
 *   vitest worker (root netns)
 *     ├─ etcd                     http://127.0.0.1:<free>
 *     ├─ kube-apiserver           https://127.0.0.1:<free>    Node,RBAC; admin = system:masters
 *     └─ kube-controller-manager  nodeipam over 10.244.0.0/16 + fd00:10:244::/48
 *
 * Needs the binaries from lab/kube/build-control-plane.sh and fails, naming it, without them.
 * The steps share one control plane and run in order.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, kubeControlPlaneBinDir, requireKubeBinaries, startControlPlane } from '../../lab/kube/control-plane.js';
import type { ControlPlane } from '../../lab/kube/control-plane.js';
import { KubeApiError, podCidrsOf } from '../../lab/kube/kube-api.js';
import type { KubeApi } from '../../lab/kube/kube-api.js';

const NODES = [
  { name: 'node-a', internalIP: '10.99.0.1', internalIPv6: 'fd00:99::1' },
  { name: 'node-b', internalIP: '10.99.0.2', internalIPv6: 'fd00:99::2' },
];
const CIDR_TIMEOUT_MS = 60_000;

/** What podtun's DaemonSet will need: read and watch nodes, annotate itself through status. */
const RBAC_MANIFEST = `
apiVersion: v1
kind: Namespace
metadata:
  name: podtun-system
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: podtun
  namespace: podtun-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: podtun
rules:
  - apiGroups: [""]
    resources: [nodes]
    verbs: [get, list, watch]
  - apiGroups: [""]
    resources: [nodes/status]
    verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: podtun
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: podtun
subjects:
  - kind: ServiceAccount
    name: podtun
    namespace: podtun-system
`;

describe('kube control plane (etcd, kube-apiserver, kube-controller-manager)', () => {
  const binDir = kubeControlPlaneBinDir();
  let dir: string | undefined;
  let plane: ControlPlane | undefined;
  let podtun: KubeApi | undefined;

  /** The plane started by the first steps; a clear failure when they did not get that far. */
  const started = (): ControlPlane => {
    if (plane === undefined) throw new Error('the control plane did not start (see the first failing step)');
    return plane;
  };

  afterAll(async () => {
    await plane?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('has the binaries from build-control-plane.sh', () => {
    expect(() => requireKubeBinaries(binDir)).not.toThrow();
  });

  it('starts on loopback and answers the admin', { timeout: 240_000 }, async () => {
    requireKubeBinaries(binDir);
    dir = await mkdtemp(join(tmpdir(), 'podtun-kube-'));
    plane = await startControlPlane({
      dir,
      binDir,
      bindAddress: '127.0.0.1',
      port: await freePort(),
      clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/48'],
    });
    expect(plane.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const version = await plane.admin.get('/version');
    expect(version['gitVersion']).toMatch(/^v1\.\d+\.\d+/);
  });

  it('keeps the InternalIPs of registered nodes and gives each two distinct podCIDRs', { timeout: 120_000 }, async () => {
    const { admin } = started();
    for (const { name, ...addresses } of NODES) {
      const node = await admin.registerNode(name, addresses);
      expect(internalIPs(node)).toEqual([addresses.internalIP, addresses.internalIPv6]);
    }
    const all: string[] = [];
    for (const { name } of NODES) {
      const node = await admin.waitFor(`/api/v1/nodes/${name}`, (n) => podCidrsOf(n).length === 2, CIDR_TIMEOUT_MS);
      const [v4, v6] = podCidrsOf(node);
      expect(v4).toMatch(/^10\.244\.\d{1,3}\.0\/24$/);
      expect(v6).toMatch(/^fd00:10:244:([0-9a-f]{1,4}:)?:\/64$/);
      all.push(...podCidrsOf(node));
    }
    expect(new Set(all).size).toBe(4);
  });

  it('gives a ServiceAccount token only what its ClusterRole grants', { timeout: 60_000 }, async () => {
    const { admin } = started();
    const applied = await admin.applyManifests(RBAC_MANIFEST);
    expect(applied.map((o) => o['kind'])).toEqual(['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding']);
    podtun = admin.withToken(await admin.serviceAccountToken('podtun-system', 'podtun'));

    const names = (await podtun.list('/api/v1/nodes')).map((n) => (n['metadata'] as { name: string }).name);
    expect(names.sort()).toEqual(['node-a', 'node-b']);

    const annotate = { metadata: { annotations: { 'podtun.io/endpoint': 'udp://10.99.0.1:8472' } } };
    await podtun.patch('/api/v1/nodes/node-a/status', annotate, 'strategic');
    const annotated = await admin.get('/api/v1/nodes/node-a');
    expect((annotated['metadata'] as { annotations?: Record<string, string> }).annotations).toMatchObject({
      'podtun.io/endpoint': 'udp://10.99.0.1:8472',
    });

    await expectStatus(podtun.delete('/api/v1/nodes/node-b'), 403);
    await expectStatus(podtun.patch('/api/v1/nodes/node-b', annotate, 'strategic'), 403);
  });

  it('keeps the nodes across an apiserver restart', { timeout: 180_000 }, async () => {
    const cp = started();
    await cp.stopApiServer();
    await expect(cp.admin.get('/readyz')).rejects.toMatchObject({ code: 'KUBE_REQUEST_FAILED' });
    await cp.startApiServer();
    for (const { name } of NODES) {
      expect(podCidrsOf(await cp.admin.get(`/api/v1/nodes/${name}`))).toHaveLength(2);
    }
    // The token is still valid: its signing key and issuer did not change.
    expect(await podtun?.list('/api/v1/nodes')).toHaveLength(2);
  });

  it('assigns a podCIDR once a late controller manager starts', { timeout: 120_000 }, async () => {
    const cp = started();
    await cp.stopControllerManager();
    await cp.admin.registerNode('node-c', { internalIP: '10.99.0.3' });
    await sleep(1_000);
    expect(podCidrsOf(await cp.admin.get('/api/v1/nodes/node-c'))).toEqual([]);
    await cp.startControllerManager();
    const node = await cp.admin.waitFor('/api/v1/nodes/node-c', (n) => podCidrsOf(n).length === 2, CIDR_TIMEOUT_MS);
    expect(podCidrsOf(node)[0]).toMatch(/^10\.244\.\d{1,3}\.0\/24$/);
  });

  it('deletes a node', { timeout: 30_000 }, async () => {
    const { admin } = started();
    await admin.deleteNode('node-b');
    await expectStatus(admin.get('/api/v1/nodes/node-b'), 404);
  });

  it('leaves no process behind after close (twice)', { timeout: 90_000 }, async () => {
    const cp = started();
    const children = childProcessesFrom(binDir);
    expect(children.map((c) => c.name).sort()).toEqual(['etcd', 'kube-apiserver', 'kube-controller-manager']);
    await cp.close();
    await cp.close();
    expect(childProcessesFrom(binDir)).toEqual([]);
    for (const { pid } of children) expect(isAlive(pid)).toBe(false);
  });
});

function internalIPs(node: Record<string, unknown>): string[] {
  const addresses = (node['status'] as { addresses?: { type: string; address: string }[] } | undefined)?.addresses ?? [];
  return addresses.filter((a) => a.type === 'InternalIP').map((a) => a.address);
}

/** A request that failed with this HTTP status. */
async function expectStatus(promise: Promise<unknown>, status: number): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KubeApiError);
  expect((error as KubeApiError).status).toBe(status);
}

/** Child processes of this worker whose executable lives in `binDir`. */
function childProcessesFrom(binDir: string): { pid: number; name: string }[] {
  const found: { pid: number; name: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The parent PID is the 4th field, after the parenthesized command name.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const exe = readlinkSync(`/proc/${entry}/exe`);
      if (ppid === process.pid && exe.startsWith(`${binDir}/`)) {
        found.push({ pid: Number(entry), name: exe.slice(binDir.length + 1) });
      }
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
