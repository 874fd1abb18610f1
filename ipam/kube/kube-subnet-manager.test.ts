/**
 * The Kubernetes subnet manager against a real control plane on loopback (lab/kube): the
 * manifests of deploy/kubernetes applied first, podtun authenticated with the token of the
 * ServiceAccount they create (a kubeconfig, the out-of-cluster path), so a right the ClusterRole
 * lacks fails here. Nodes are registered as a kubelet would; nodeipam gives the podCIDRs.
 *
 *   kube-apiserver + kube-controller-manager (nodeipam, 10.244.0.0/16 + fd00:10:244::/48)
 *     ^ KubeSubnetManager for n1, n2, n3 (one process, one manager per node)
 *
 * Needs the binaries from lab/kube/build-control-plane.sh: fails, naming it, without them.
 */
import { testPublicKey } from '../../test/node-keys.js';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LeaseEvent } from '../../core/lease.js';
import { findRepoRoot } from '../../lab/cluster.js';
import { freePort, kubeControlPlaneBinDir, requireKubeBinaries, startControlPlane } from '../../lab/kube/control-plane.js';
import type { ControlPlane } from '../../lab/kube/control-plane.js';
import { PODTUN_NAMESPACE, PODTUN_SERVICE_ACCOUNT } from '../../lab/kube/kube-lab.js';
import { quietLogger, recordingLogger } from '../../test/recording-logger.js';
import type { LogLine } from '../../test/recording-logger.js';
import { KubeClient } from './kube-client.js';
import { kubeconfigConnection } from './kube-connection.js';
import { KubeLeaseError, KubeSubnetManager } from './kube-subnet-manager.js';
import type { KubeSubnetManagerOptions } from './kube-subnet-manager.js';

const CLUSTER_CIDRS = ['10.244.0.0/16', 'fd00:10:244::/48'];
const ADDRESSES: Record<string, string> = { n1: '10.99.0.1', n2: '10.99.0.2', n3: '10.99.0.3', n4: '10.99.0.4' };

describe('KubeSubnetManager on a real kube-apiserver', () => {
  let dir = '';
  let plane: ControlPlane | undefined;
  let kubeconfig = '';
  const managers: KubeSubnetManager[] = [];
  const stops: AbortController[] = [];

  beforeAll(async () => {
    const binDir = requireKubeBinaries(kubeControlPlaneBinDir());
    dir = await mkdtemp(join(tmpdir(), 'podtun-kube-manager-'));
    plane = await startControlPlane({ dir, binDir, bindAddress: '127.0.0.1', port: await freePort(), clusterCidrs: CLUSTER_CIDRS });
    const deploy = join(findRepoRoot(), 'deploy', 'kubernetes');
    for (const file of ['namespace.yaml', 'rbac.yaml']) await plane.admin.applyManifests(await readFile(join(deploy, file), 'utf8'));
    const token = await plane.admin.serviceAccountToken(PODTUN_NAMESPACE, PODTUN_SERVICE_ACCOUNT);
    kubeconfig = join(dir, 'podtun.kubeconfig');
    // YAML, as kubectl writes them; a relative CA path is taken from the kubeconfig's directory.
    await writeFile(kubeconfig, [
      'apiVersion: v1', 'kind: Config', 'current-context: lab',
      'clusters:', `- name: lab`, `  cluster: { server: "${plane.url}", certificate-authority: pki/ca.crt }`,
      'users:', `- name: podtun`, `  user: { token: "${token}" }`,
      'contexts:', '- name: lab', '  context: { cluster: lab, user: podtun }', '',
    ].join('\n'));
    for (const name of ['n1', 'n2']) await plane.admin.registerNode(name, { internalIP: ADDRESSES[name] ?? '' });
  }, 240_000);

  afterAll(async () => {
    for (const s of stops) s.abort();
    for (const m of managers) await m.close();
    await plane?.close();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  function manager(node: string, extra: Partial<KubeSubnetManagerOptions> = {}): KubeSubnetManager {
    const m = new KubeSubnetManager({
      client: new KubeClient(kubeconfigConnection(kubeconfig)),
      node,
      clusterCidrs: CLUSTER_CIDRS,
      advertise: { endpoints: {}, transports: ['udp', 'ws'], mtu: undefined },
      endpointsAt: (host) => ({ udp: `${host}:8285`, ws: `ws://${host}:8443` }),
      annotationPrefix: 'podtun.io/',
      resyncMs: 60_000,
      retryMinMs: 50,
      retryMaxMs: 500,
      log: quietLogger,
      ...extra,
    });
    managers.push(m);
    return m;
  }

  function watch(m: KubeSubnetManager): { batches: LeaseEvent[][]; brief: () => string[] } {
    const stop = new AbortController();
    stops.push(stop);
    const batches: LeaseEvent[][] = [];
    void m.watchLeases(stop.signal, (e) => batches.push(e));
    return { batches, brief: () => batches.flat().map((e) => `${e.type === 'added' ? '+' : '-'}${e.lease.node}`) };
  }

  async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
    for (let i = 0; i < ms / 50; i++) {
      if (check()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it('takes the node\'s podCIDRs, publishes its endpoints at its InternalIP, and sees the peers that published', { timeout: 60_000 }, async () => {
    const keyed = (i: number): Partial<KubeSubnetManagerOptions> => ({ advertise: { endpoints: {}, transports: ['udp', 'ws'], mtu: undefined, publicKey: testPublicKey(i) } });
    const n1 = manager('n1', keyed(0));
    const lease = await n1.localLease();
    expect(lease.subnets).toHaveLength(2);
    expect(lease.endpoints).toEqual({ udp: '10.99.0.1:8285', ws: 'ws://10.99.0.1:8443' });
    expect(lease.publicKey).toBe(testPublicKey(0));
    expect(n1.waitingFor()).toBeUndefined();
    const node = await plane!.admin.get('/api/v1/nodes/n1');
    expect((node['metadata'] as { annotations: Record<string, string> }).annotations).toMatchObject({
      'podtun.io/transports': 'udp,ws', 'podtun.io/endpoint-udp': '10.99.0.1:8285', 'podtun.io/endpoint-ws': 'ws://10.99.0.1:8443',
      'podtun.io/public-key': testPublicKey(0),
    });

    const w = watch(n1);
    await until('the first batch', () => w.batches.length >= 1);
    expect(w.brief()).toEqual(['+n1']); // n2 has not published: not a peer yet

    const n2 = manager('n2', keyed(1));
    const lease2 = await n2.localLease();
    await until('n2 to appear at n1', () => w.brief().includes('+n2'));
    const seen = w.batches.flat().find((e) => e.lease.node === 'n2')?.lease;
    expect(seen).toEqual(lease2);
    expect(seen?.publicKey).toBe(testPublicKey(1));
    expect(new Set([...lease.subnets, ...lease2.subnets]).size).toBe(4);
  });

  it('sets NetworkUnavailable=False once the node forwards', { timeout: 30_000 }, async () => {
    const n1 = manager('n1');
    await n1.localLease();
    await n1.forwarding();
    await plane!.admin.waitFor('/api/v1/nodes/n1', (node) => {
      const conditions = (node['status'] as { conditions?: { type: string; status: string; reason?: string }[] }).conditions ?? [];
      return conditions.some((c) => c.type === 'NetworkUnavailable' && c.status === 'False' && c.reason === 'PodtunIsUp');
    }, 20_000);
  });

  it('a user\'s override annotation wins over the InternalIP (a node behind NAT); a change reaches the peers', { timeout: 30_000 }, async () => {
    const w = watch(manager('n1'));
    await plane!.admin.patch('/api/v1/nodes/n2', { metadata: { annotations: { 'podtun.io/override-endpoint-udp': '203.0.113.7:30000' } } }, 'merge');
    const n2 = manager('n2');
    const lease = await n2.localLease();
    expect(lease.endpoints['udp']).toBe('203.0.113.7:30000');
    await until('the override at n1', () => w.batches.flat().some((e) => e.type === 'added' && e.lease.endpoints['udp'] === '203.0.113.7:30000'));
  });

  it('deleting a Node removes its lease at the peers', { timeout: 30_000 }, async () => {
    await plane!.admin.registerNode('n4', { internalIP: ADDRESSES['n4'] ?? '' });
    await manager('n4').localLease();
    const w = watch(manager('n1'));
    await until('n4 present', () => w.brief().includes('+n4'));
    await plane!.admin.deleteNode('n4');
    await until('n4 removed', () => w.brief().includes('-n4'));
  });

  it('a node without podCIDRs waits, saying so, and takes them once nodeipam assigns them', { timeout: 90_000 }, async () => {
    const lines: LogLine[] = [];
    await plane!.stopControllerManager();
    await plane!.admin.registerNode('n3', { internalIP: ADDRESSES['n3'] ?? '' });
    const n3 = manager('n3', { log: recordingLogger(lines) });
    const pending = n3.localLease();
    await until('waiting for the podCIDR', () => n3.waitingFor() === 'podCIDR not assigned');
    expect(lines.find((l) => l.msg === 'podCIDR not assigned')?.obj['reason']).toMatch(/--allocate-node-cidrs --cluster-cidr=10\.244\.0\.0\/16,fd00:10:244::\/48/);
    await plane!.startControllerManager();
    const lease = await pending;
    expect(lease.subnets).toHaveLength(2);
    expect(n3.waitingFor()).toBeUndefined();
  });

  it('refuses a podCIDR outside podtun\'s clusterCidrs, naming both', { timeout: 30_000 }, async () => {
    const wrong = manager('n1', { clusterCidrs: ['10.250.0.0/16'] });
    await expect(wrong.localLease()).rejects.toThrow(KubeLeaseError);
    await expect(wrong.localLease()).rejects.toThrow(/spec\.podCIDRs 10\.244\.\d+\.0\/24 is not inside podtun's clusterCidrs \(10\.250\.0\.0\/16\)/);
  });

  it('close() ends a pending localLease and the watches, twice safe, no timer left', { timeout: 30_000 }, async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const ghost = manager('no-such-node');
    const pending = ghost.localLease();
    await until('the 404', () => ghost.waitingFor() === 'node no-such-node not found');
    const stop = new AbortController();
    const watching = ghost.watchLeases(stop.signal, () => undefined);
    await ghost.close();
    await ghost.close();
    await expect(pending).rejects.toThrow(/closed/);
    await watching;
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(before);
  });
});
