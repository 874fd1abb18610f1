/**
 * Node subnet leases from the Kubernetes API. Flow:
 *
 *  1. localLease(): GET this Node (its name from nodeName / NODE_NAME). Its spec.podCIDRs are
 *     this node's subnets: podtun never allocates here (kube-controller-manager's nodeipam
 *     does). While there are none, the node waits, retrying with backoff, and /readyz says
 *     "podCIDR not assigned" (the log names the fix); while the API cannot be reached or the Node
 *     does not exist, likewise, with that reason. A podCIDR outside podtun's clusterCidrs is a
 *     configuration error naming both.
 *  2. It publishes how it is reached in one patch of its Node's status: annotations under the
 *     prefix (node-lease.ts): the configured endpoints, else its listeners at the Node's
 *     InternalIP; a user's override annotation wins (a node behind NAT).
 *  3. forwarding(): the Node's NetworkUnavailable condition goes False (retried until it takes).
 *  4. watchLeases(): peers are the Nodes carrying podtun's annotations and podCIDRs, listed and
 *     watched through lease-watch-loop.ts (bookmarks, a relist on 410 Gone, backoff, a watchdog
 *     and a periodic resync); a deleted Node is a removed lease. While the API is away nothing is
 *     removed: forwarding goes on with the routes known.
 */
import { parseCidr } from '../../core/cidr.js';
import type { Cidr } from '../../core/cidr.js';
import type { Lease, LeaseEvent } from '../../core/lease.js';
import type { Logger } from '../../core/logger.js';
import type { Advertisement, SubnetManager } from '../../core/subnet-manager.js';
import type { PeerEndpoints } from '../../core/transport.js';
import { sleep } from '../abortable.js';
import { backoffMs } from '../retry.js';
import { KubeError } from './kube-client.js';
import type { KubeClient, KubeObject } from './kube-client.js';
import { advertisedAnnotations, annotationKeys, internalIpsOf, leaseOfNode, NodeLeaseError, nodeName, podSubnetsOf } from './node-lease.js';
import type { AnnotationKeys } from './node-lease.js';
import { runNodeWatch } from './node-watch.js';

export interface KubeSubnetManagerOptions {
  client: KubeClient;
  /** This node's name: its Node object. */
  node: string;
  clusterCidrs: readonly string[];
  /** What the config says about how this node is reached (endpoints given explicitly, preference, MTU). */
  advertise: Advertisement;
  /** This node's listeners at an address (used with its InternalIP for what the config leaves out). */
  endpointsAt: (host: string) => PeerEndpoints;
  annotationPrefix: string;
  /** A full relist at least this often, ms. */
  resyncMs: number;
  log: Logger;
  /** First and longest pause between retries while the API cannot help; default 500 ms and 30 s. */
  retryMinMs?: number;
  retryMaxMs?: number;
}

/** localLease gave up: closed, or a configuration error (the message names both sides). */
export class KubeLeaseError extends Error {
  readonly code = 'ERR_PODTUN_KUBE_LEASE';
}

const NOT_ASSIGNED = 'podCIDR not assigned';

export class KubeSubnetManager implements SubnetManager {
  private readonly client: KubeClient;
  private readonly node: string;
  private readonly clusters: readonly Cidr[];
  private readonly keys: AnnotationKeys;
  private readonly log: Logger;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly stop = new AbortController();
  private waiting: string | undefined = 'Kubernetes API not asked yet';
  private local: Lease | undefined;
  private acquiring: Promise<Lease> | undefined;
  private readonly running = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;

  constructor(private readonly options: KubeSubnetManagerOptions) {
    this.client = options.client;
    this.node = options.node;
    this.clusters = options.clusterCidrs.map((c) => parseCidr(c));
    this.keys = annotationKeys(options.annotationPrefix);
    this.log = options.log;
    this.retryMinMs = options.retryMinMs ?? 500;
    this.retryMaxMs = options.retryMaxMs ?? 30_000;
  }

  waitingFor(): string | undefined {
    return this.waiting;
  }

  localLease(): Promise<Lease> {
    if (this.local !== undefined) return Promise.resolve(this.local);
    this.acquiring ??= this.track(this.acquire());
    return this.acquiring;
  }

  async watchLeases(signal: AbortSignal, onEvents: (events: LeaseEvent[]) => void): Promise<void> {
    if (this.closing !== undefined || signal.aborted) return;
    const both = AbortSignal.any([signal, this.stop.signal]);
    await this.track(
      runNodeWatch({
        client: this.client,
        leaseOf: (node) => this.peerLease(node),
        resyncMs: this.options.resyncMs,
        retryMinMs: this.retryMinMs,
        retryMaxMs: this.retryMaxMs,
        signal: both,
        log: this.log,
        onEvents,
      }),
    );
  }

  /** NetworkUnavailable=False on this Node, retried in the background until it takes or close. */
  forwarding(): Promise<void> {
    void this.track(this.retrying('cannot set NetworkUnavailable=False on this node', () => this.client.patch(this.statusPath(), {
      status: {
        conditions: [{
          type: 'NetworkUnavailable',
          status: 'False',
          reason: 'PodtunIsUp',
          message: 'podtun forwards pod traffic on this node',
          lastTransitionTime: new Date().toISOString(),
          lastHeartbeatTime: new Date().toISOString(),
        }],
      },
    }, 'strategic')));
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      while (this.running.size > 0) await Promise.allSettled([...this.running]);
      this.client.close();
    })();
    return this.closing;
  }

  // ---- this node ----

  private async acquire(): Promise<Lease> {
    const node = await this.retrying('waiting for this node\'s podCIDR', async () => {
      const object = await this.client.get(this.nodePath());
      const subnets = podSubnetsOf(object, this.clusters);
      if (subnets.length === 0) {
        this.waitFor(NOT_ASSIGNED,
          `node ${this.node} has no spec.podCIDRs yet: kube-controller-manager assigns them with --allocate-node-cidrs --cluster-cidr=${this.clusters.map((c) => c.text).join(',')} (kubeadm: --pod-network-cidr; kind: networking.podSubnet)`);
        return undefined;
      }
      return { object, subnets };
    });
    const lease = await this.publish(node.object, node.subnets);
    this.local = lease;
    this.waiting = undefined;
    this.log.info({ node: this.node, subnets: lease.subnets, endpoints: lease.endpoints }, 'node subnets from spec.podCIDRs');
    return lease;
  }

  /** One merge patch of this Node's status: the annotations saying how it is reached. */
  private async publish(object: KubeObject, subnets: string[]): Promise<Lease> {
    const advertise = this.options.advertise;
    const address = internalIpsOf(object)[0];
    const endpoints = { ...(address === undefined ? {} : this.options.endpointsAt(address)), ...advertise.endpoints };
    const annotations = advertisedAnnotations(object, { ...advertise, endpoints }, this.keys);
    const patched = await this.retrying('cannot publish this node\'s endpoints', () =>
      this.client.patch(this.statusPath(), { metadata: { annotations } }, 'merge'));
    const published = leaseOfNode(patched, this.keys, this.clusters);
    return published ?? { node: this.node, subnets, endpoints, ...(advertise.transports === undefined ? {} : { transports: advertise.transports }) };
  }

  // ---- peers ----

  /** A Node as a lease (undefined: not a podtun node yet); an unusable one is warned about once. */
  private readonly warned = new Map<string, string>();
  private peerLease(object: KubeObject): Lease | undefined {
    try {
      const lease = leaseOfNode(object, this.keys, this.clusters);
      this.warned.delete(nodeName(object));
      return lease;
    } catch (err: unknown) {
      if (!(err instanceof NodeLeaseError)) throw err;
      const name = nodeName(object);
      if (this.warned.get(name) !== err.message) {
        this.warned.set(name, err.message);
        this.log.warn({ peer: name, reason: err.message }, 'unusable node ignored');
      }
      return undefined;
    }
  }

  // ---- plumbing ----

  /**
   * Runs `step` until it gives a value: an API error is retried with jittered exponential
   * backoff (the reason is what /readyz says meanwhile); a NodeLeaseError (a configuration
   * mismatch) and close end it.
   */
  private async retrying<T>(what: string, step: () => Promise<T | undefined>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.stop.signal.aborted) throw new KubeLeaseError(`${what}: the subnet manager is closed`);
      try {
        const value = await step();
        if (value !== undefined) return value;
      } catch (err: unknown) {
        if (err instanceof NodeLeaseError) throw new KubeLeaseError(err.message, { cause: err });
        if (!(err instanceof KubeError)) throw err;
        const reason = err.status === 404 ? `Node ${this.node} not found (is NODE_NAME right?)` : `Kubernetes API: ${err.message}`;
        this.waitFor(err.status === 404 ? `node ${this.node} not found` : 'Kubernetes API unreachable', `${what}: ${reason}`, attempt);
      }
      // Ends early on close(); the check at the top of the loop then says so.
      await sleep(backoffMs(attempt + 1, this.retryMinMs, this.retryMaxMs), this.stop.signal);
    }
  }

  private lastWarning = '';
  /** Says what the node waits for; the log line is warn when it changes, debug when it repeats. */
  private waitFor(short: string, detail: string, attempt = 0): void {
    this.waiting = short;
    if (detail !== this.lastWarning) {
      this.lastWarning = detail;
      this.log.warn({ node: this.node, reason: detail, attempt }, short);
    } else {
      this.log.debug({ node: this.node, reason: detail, attempt }, short);
    }
  }

  private nodePath(): string {
    return `/api/v1/nodes/${encodeURIComponent(this.node)}`;
  }

  private statusPath(): string {
    return `${this.nodePath()}/status`;
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work);
    void work.finally(() => this.running.delete(work)).catch(() => undefined);
    return work;
  }
}
