/**
 * The Kubernetes subnet manager as it registers (`subnetManager: {type: kube}`): pod subnets
 * from the Nodes' spec.podCIDRs, peers from the Nodes podtun annotated (kube-subnet-manager.ts).
 *
 *   subnetManager:
 *     type: kube
 *     kubeconfig: /etc/podtun/kubeconfig   # optional: else the pod's service account (in-cluster)
 *     annotationPrefix: podtun.io/         # where this node publishes how it is reached
 *     resyncSeconds: 300                   # a full relist at least this often
 */
import { blockIssues, filePathAt, intAt, show } from '../../core/config-check.js';
import type { SubnetManagerType } from '../../core/subnet-manager.js';
import { DEFAULT_ANNOTATION_PREFIX } from './node-lease.js';

export interface KubeManagerSettings {
  /** Absolute path; undefined: in-cluster. */
  readonly kubeconfig: string | undefined;
  readonly annotationPrefix: string;
  readonly resyncSeconds: number;
}

export const DEFAULT_RESYNC_SECONDS = 300;
const MIN_RESYNC_SECONDS = 10;
const MAX_RESYNC_SECONDS = 24 * 3600;
/** A DNS subdomain and a slash, as Kubernetes wants an annotation prefix. */
const PREFIX_RE = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/$/;

export const kubeManagerType: SubnetManagerType<KubeManagerSettings> = {
  type: 'kube',
  readsNodeList: false,
  keys: ['kubeconfig', 'annotationPrefix', 'resyncSeconds'],
  validate(block, ctx) {
    const { issue, bad } = blockIssues(ctx.issue);
    const kubeconfig = filePathAt(block['kubeconfig'], 'subnetManager.kubeconfig', ctx.baseDir, issue, false);
    let annotationPrefix = DEFAULT_ANNOTATION_PREFIX;
    const rawPrefix = block['annotationPrefix'];
    if (rawPrefix !== undefined) {
      if (typeof rawPrefix !== 'string' || !PREFIX_RE.test(rawPrefix)) {
        issue('subnetManager.annotationPrefix', `${show(rawPrefix)} is not an annotation prefix like "podtun.io/" (a DNS name and a slash)`);
      } else annotationPrefix = rawPrefix;
    }
    const resyncSeconds = intAt(block['resyncSeconds'], 'subnetManager.resyncSeconds', DEFAULT_RESYNC_SECONDS, MIN_RESYNC_SECONDS, MAX_RESYNC_SECONDS, issue);
    if (bad() || resyncSeconds === undefined) return undefined;
    return { kubeconfig, annotationPrefix, resyncSeconds };
  },
  async open(settings, ctx) {
    const { inClusterConnection, kubeconfigConnection } = await import('./kube-connection.js');
    const { KubeClient } = await import('./kube-client.js');
    const { KubeSubnetManager } = await import('./kube-subnet-manager.js');
    const connection = settings.kubeconfig === undefined ? inClusterConnection(ctx.env) : kubeconfigConnection(settings.kubeconfig);
    ctx.log.info({ node: ctx.node, url: connection.server.href, reason: connection.describe }, 'kubernetes api');
    return new KubeSubnetManager({
      client: new KubeClient(connection),
      node: ctx.node,
      clusterCidrs: ctx.clusterCidrs,
      advertise: ctx.advertise,
      endpointsAt: ctx.endpointsAt,
      annotationPrefix: settings.annotationPrefix,
      resyncMs: settings.resyncSeconds * 1000,
      log: ctx.log,
    });
  },
};
