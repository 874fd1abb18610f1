/**
 * podtun as a Kubernetes cluster's pod network, end to end on the real kernel and a real control
 * plane: deploy/kubernetes applied to the kube-apiserver, each node's podtun authenticated with
 * the token of the ServiceAccount it creates (only its ClusterRole's rights), node subnets from
 * the podCIDRs nodeipam assigns, pods attached by a real CNI runtime client through the plugin
 * podtun installed.
 *
 * ```
 *                     underlay ns (bridge ul0, 192.168.77.0/24, fd77::/64)
 *        /             |              |              \
 *   kube ns (.251)    n1             n2             n3      subnetManager: kube, NODE_NAME=nN
 *   etcd, apiserver   pod k1  <==>  pod k2  <==>  pod k3    (v4 + v6 from the dual-stack podCIDRs)
 *   controller-manager
 * ```
 */
import { describe, expect, it } from 'vitest';
import { fetchApi } from '../../api/api-client.js';
import { cnitoolSkipReason } from '../../lab/cnitool.js';
import type { Cluster, PodInfo } from '../../lab/cluster.js';
import { kubeBinariesMissing } from '../../lab/kube/control-plane.js';
import { podCidrsOf } from '../../lab/kube/kube-api.js';
import { readStatus } from '../../lab/podtun-status.js';
import { pollUntil, sleep } from '../../lab/shell.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping']) ?? podtunSkipReason() ?? cnitoolSkipReason() ?? kubeBinariesMissing();
printSkip('podtun-kube.test.ts', skipReason);

const OUTAGE_MS = 30_000;

async function routeNodes(c: Cluster, i: number): Promise<Map<string, string>> {
  return new Map((await readStatus(c, i)).routes.map((r) => [r.subnet, r.node]));
}

async function pingOk(c: Cluster, from: PodInfo, to: string, count = 3): Promise<number> {
  const out = await c.outcome(from.ns, ['ping', '-c', String(count), '-i', '0.2', '-W', '2', to]);
  return parsePing(out.stdout).received;
}

describe.skipIf(skipReason !== undefined)('podtun on Kubernetes: leases from the API server (3 nodes, dual stack)', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 0, ipv6: true, mode: 'podtun', podtun: { kube: {}, readyTimeoutMs: 60_000 } });
  const pods: PodInfo[] = [];

  it('each node takes its Node\'s podCIDRs, publishes its endpoints, and routes to the others', async () => {
    const c = cluster();
    const kube = c.kube;
    if (kube === undefined) throw new Error('no kube');
    for (const node of c.nodes()) {
      const object = await kube.admin.get(`/api/v1/nodes/${node.name}`);
      const lease = (await readStatus(c, node.index)).lease;
      expect(lease).toEqual(podCidrsOf(object));
      const annotations = (object['metadata'] as { annotations?: Record<string, string> }).annotations ?? {};
      expect(annotations['podtun.io/endpoint-udp']).toBe(`${node.underlayIp}:8285`);
      const conditions = (object['status'] as { conditions?: { type: string; status: string }[] }).conditions ?? [];
      expect(conditions.find((x) => x.type === 'NetworkUnavailable')?.status).toBe('False');
    }
    for (const i of [1, 2, 3]) {
      await pollUntil(`n${i} routes to every node`, async () => ((await routeNodes(c, i)).size === 6 ? true : undefined), 15_000, 200);
    }
  });

  it('pods attached through the CNI plugin reach each other across nodes, IPv4 and IPv6', { timeout: 60_000 }, async () => {
    const c = cluster();
    for (const i of [1, 2, 3]) pods.push(await c.attachPod(i, `k${i}`));
    for (const from of pods) {
      for (const to of pods) {
        if (from === to) continue;
        expect(await pingOk(c, from, to.ipv4), `${from.name} -> ${to.name} ${to.ipv4}`).toBe(3);
        expect(await pingOk(c, from, to.ipv6 ?? 'no-ipv6'), `${from.name} -> ${to.name} ${to.ipv6 ?? ''}`).toBe(3);
      }
    }
  });

  it('a podtun restart (a DaemonSet rollout) keeps the pods\' addresses and the peers\' routes; traffic is back within 5 s', { timeout: 90_000 }, async () => {
    const c = cluster();
    const [k1, k2] = pods;
    if (k1 === undefined || k2 === undefined) throw new Error('pods not attached');
    const leaseBefore = (await readStatus(c, 2)).lease;
    const routesBefore = await routeNodes(c, 1);
    const stoppedAt = Date.now();
    await c.stopNode(2);
    // The peers keep the restarting node's routes: its Node and lease stay in the API.
    expect(await routeNodes(c, 1)).toEqual(routesBefore);
    await c.startNode(2);
    expect((await readStatus(c, 2)).lease).toEqual(leaseBefore);
    await pollUntil('k1 -> k2 answers again', async () => ((await pingOk(c, k1, k2.ipv4, 1)) === 1 ? true : undefined), 5_000, 100);
    // From the stop to the first answer: the whole rollout of one pod.
    expect(Date.now() - stoppedAt).toBeLessThan(5_000);
    expect(await pingOk(c, k1, k2.ipv4)).toBe(3);
    const addr = await c.outcome(k2.ns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(addr.stdout).toContain(`${k2.ipv4}/`);
  });

  it('forwards through a 30 s API server outage; a change made after it reaches the routers', { timeout: 150_000 }, async () => {
    const c = cluster();
    const kube = c.kube;
    const [k1, k2] = pods;
    if (kube === undefined || k1 === undefined || k2 === undefined) throw new Error('set-up missing');
    const count = Math.ceil((OUTAGE_MS + 6_000) / 200);
    const ping = c.spawnIn(k1.ns, ['ping', '-i', '0.2', '-c', String(count), '-W', '1', k2.ipv4]);
    let out = '';
    ping.stdout?.setEncoding('utf8');
    ping.stdout?.on('data', (d: string) => {
      out += d;
    });
    const pingDone = new Promise<void>((resolve) => ping.once('exit', () => resolve()));
    await sleep(2_000);
    await kube.plane.stopApiServer();
    await sleep(OUTAGE_MS);
    await kube.plane.startApiServer();
    await pingDone;
    const summary = parsePing(out);
    expect(summary.transmitted).toBe(count);
    expect(summary.received, out.slice(-400)).toBeGreaterThanOrEqual(count - 1);

    // After the outage: node n3 is deleted from the API; the others drop its routes.
    const n3Subnets = (await readStatus(c, 3)).lease;
    await kube.admin.deleteNode('n3');
    for (const i of [1, 2]) {
      await pollUntil(`n${i} drops n3's routes`, async () => {
        const routes = await routeNodes(c, i);
        return n3Subnets.every((s) => !routes.has(s)) ? true : undefined;
      }, 30_000, 200);
    }
  });
});

describe.skipIf(skipReason !== undefined)('podtun on Kubernetes: a node started before its podCIDR is assigned', () => {
  const cluster = useCluster({
    nodes: 2, podsPerNode: 0, ipv6: false, mode: 'podtun', startNodes: false,
    podtun: { kube: { allocateNodeCidrs: false }, readyTimeoutMs: 90_000 },
  });

  it('is not ready, saying why, then ready once the controller manager assigns it', { timeout: 150_000 }, async () => {
    const c = cluster();
    const kube = c.kube;
    if (kube === undefined) throw new Error('no kube');
    const starting = c.startNode(1);
    const reason = await pollUntil('/readyz says podCIDR not assigned', async () => {
      const reply = await fetchApi(c.node(1).statusSocket, '/readyz').catch(() => undefined);
      const why = (reply?.body as { reason?: unknown } | undefined)?.reason;
      return reply?.status === 503 && why === 'podCIDR not assigned' ? why : undefined;
    }, 30_000, 200);
    expect(reason).toBe('podCIDR not assigned');
    expect(c.readLog(1)).toContain('--allocate-node-cidrs');
    await kube.plane.startControllerManager();
    await starting;
    const ready = await fetchApi(c.node(1).statusSocket, '/readyz');
    expect(ready.status).toBe(200);
    await c.startNode(2);
    await pollUntil('n1 routes to n2', async () => ((await routeNodes(c, 1)).size === 2 ? true : undefined), 15_000, 200);
  });
});
