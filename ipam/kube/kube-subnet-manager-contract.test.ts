/**
 * The SubnetManager contract (test/subnet-manager-contract.ts) against the Kubernetes manager on
 * a real control plane (lab/kube; IPv4 only, as the contract's cluster is). The contract's node
 * registers as a kubelet would and nodeipam gives it its podCIDR; the other nodes are Nodes
 * created with their podCIDR already set (as a cloud's IPAM does; nodeipam keeps off it) and the
 * annotations their podtun would publish. Each fixture deletes its Nodes when done, so the next
 * one starts from an empty cluster.
 *
 * Needs the binaries from lab/kube/build-control-plane.sh: fails, naming it, without them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { parseCidr } from '../../core/cidr.js';
import type { Lease } from '../../core/lease.js';
import { freePort, kubeControlPlaneBinDir, requireKubeBinaries, startControlPlane } from '../../lab/kube/control-plane.js';
import type { ControlPlane } from '../../lab/kube/control-plane.js';
import { quietLogger } from '../../test/recording-logger.js';
import { CONTRACT_CLUSTER_CIDRS, CONTRACT_NODE, subnetManagerContract } from '../../test/subnet-manager-contract.js';
import { KubeClient } from './kube-client.js';
import { kubeconfigConnection } from './kube-connection.js';
import { KubeSubnetManager } from './kube-subnet-manager.js';
import { DEFAULT_ANNOTATION_PREFIX, annotationKeys, leaseOfNode } from './node-lease.js';

const KEYS = annotationKeys(DEFAULT_ANNOTATION_PREFIX);
const OWN_ADDRESS = '192.168.77.1';

describe('on a real kube-apiserver', () => {
  let dir = '';
  let plane: ControlPlane | undefined;

  beforeAll(async () => {
    const binDir = requireKubeBinaries(kubeControlPlaneBinDir());
    dir = await mkdtemp(join(tmpdir(), 'podtun-kube-contract-'));
    plane = await startControlPlane({ dir, binDir, bindAddress: '127.0.0.1', port: await freePort(), clusterCidrs: [...CONTRACT_CLUSTER_CIDRS] });
  }, 240_000);

  afterAll(async () => {
    await plane?.close();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  subnetManagerContract('kube manager', async () => {
    if (plane === undefined) throw new Error('control plane not started');
    const admin = plane.admin;
    const nodePath = (name: string): string => `/api/v1/nodes/${encodeURIComponent(name)}`;
    await admin.registerNode(CONTRACT_NODE, { internalIP: OWN_ADDRESS });
    const manager = new KubeSubnetManager({
      client: new KubeClient(kubeconfigConnection(plane.adminKubeconfig)),
      node: CONTRACT_NODE,
      clusterCidrs: CONTRACT_CLUSTER_CIDRS,
      advertise: { endpoints: {}, transports: ['udp'], mtu: undefined },
      endpointsAt: (host) => ({ udp: `${host}:8285` }),
      annotationPrefix: DEFAULT_ANNOTATION_PREFIX,
      resyncMs: 60_000,
      retryMinMs: 50,
      retryMaxMs: 500,
      log: quietLogger,
    });
    const peers = new Map<string, readonly string[]>();
    const annotationsOf = (lease: Lease): Record<string, string> => ({
      [KEYS.transports]: Object.keys(lease.endpoints).join(','),
      ...Object.fromEntries(Object.entries(lease.endpoints).map(([kind, endpoint]) => [KEYS.endpoint(kind), endpoint])),
    });
    return {
      manager,
      putPeer: async (lease) => {
        const subnets = peers.get(lease.node);
        if (subnets === undefined) {
          await admin.create('/api/v1/nodes', {
            apiVersion: 'v1',
            kind: 'Node',
            metadata: { name: lease.node, annotations: annotationsOf(lease) },
            spec: { podCIDRs: [...lease.subnets], podCIDR: lease.subnets[0] },
          });
          peers.set(lease.node, lease.subnets);
          return;
        }
        if (subnets.join() !== lease.subnets.join()) throw new Error(`${lease.node}: spec.podCIDRs cannot change on a Node`);
        await admin.patch(nodePath(lease.node), { metadata: { annotations: annotationsOf(lease) } }, 'merge');
      },
      removePeer: async (node) => {
        await admin.deleteNode(node);
        peers.delete(node);
      },
      published: async () => leaseOfNode(await admin.get(nodePath(CONTRACT_NODE)), KEYS, CONTRACT_CLUSTER_CIDRS.map((c) => parseCidr(c))),
      close: async () => {
        for (const node of [CONTRACT_NODE, ...peers.keys()]) await admin.deleteNode(node);
      },
    };
  });
});
