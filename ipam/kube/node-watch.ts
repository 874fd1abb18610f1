/**
 * The Nodes as a source of lease events: list, then watch from the list's resourceVersion,
 * handed to the shared list -> watch -> relist loop (lease-watch-loop.ts).
 *
 *  - list: GET /api/v1/nodes; every Node that is a podtun peer (node-lease.ts) is a lease;
 *  - watch: ADDED/MODIFIED/DELETED become the lease set's changes; BOOKMARKs only move the
 *    version on; the server's timeoutSeconds ends each watch (then resumed from the last version);
 *  - a 410 Gone (the version expired) or any error ends the watch: the loop relists after its
 *    backoff and hands on only what changed against what it delivered.
 */
import type { Lease, LeaseEvent } from '../../core/lease.js';
import type { Logger } from '../../core/logger.js';
import { runLeaseWatchLoop } from '../lease-watch-loop.js';
import type { LeaseSnapshot, LeaseWatchSource, WatchOutcome } from '../lease-watch-loop.js';
import { KubeError } from './kube-client.js';
import type { KubeClient, KubeObject } from './kube-client.js';
import { nodeName } from './node-lease.js';

export interface NodeWatchOptions {
  client: KubeClient;
  /** A Node as a lease; undefined: not a peer (yet), or unusable (the caller warns). */
  leaseOf: (node: KubeObject) => Lease | undefined;
  /** A full relist at least this often, ms. */
  resyncMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  signal: AbortSignal;
  log: Logger;
  onEvents: (events: LeaseEvent[]) => void;
}

const NODES = '/api/v1/nodes';
/** The server ends each watch after this long; a stream silent for longer than that plus a margin is dead. */
const WATCH_TIMEOUT_SECONDS = 240;
const WATCHDOG_MARGIN_MS = 30_000;

export function runNodeWatch(options: NodeWatchOptions): Promise<void> {
  const { client, leaseOf } = options;
  const source: LeaseWatchSource = {
    async list(): Promise<LeaseSnapshot> {
      const list = await client.get(NODES);
      const items = Array.isArray(list['items']) ? (list['items'] as KubeObject[]) : [];
      const leases: Lease[] = [];
      for (const item of items) {
        const lease = leaseOf(item);
        if (lease !== undefined) leases.push(lease);
      }
      return { leases, version: resourceVersionOf(list) };
    },
    async watch(fromVersion, onChange, signal): Promise<WatchOutcome> {
      let version = fromVersion;
      try {
        const end = await client.watch(NODES, { resourceVersion: fromVersion, timeoutSeconds: WATCH_TIMEOUT_SECONDS, signal }, (event) => {
          version = resourceVersionOf(event.object) || version;
          if (event.type === 'BOOKMARK') {
            onChange({ version });
            return;
          }
          const name = nodeName(event.object);
          // A Node that stops being a usable peer is a removal, as a deleted one is.
          const lease = event.type === 'DELETED' ? undefined : leaseOf(event.object);
          onChange(lease === undefined ? { version, removed: name } : { version, lease });
        });
        return end === 'aborted' ? { kind: 'aborted' } : { kind: 'ended', version };
      } catch (err: unknown) {
        if (err instanceof KubeError && (err.status === 410 || err.reason === 'Expired' || err.reason === 'Gone')) {
          return { kind: 'expired', reason: err.message };
        }
        throw err;
      }
    },
  };
  return runLeaseWatchLoop({
    source,
    what: 'kubernetes nodes',
    retryMinMs: options.retryMinMs,
    retryMaxMs: options.retryMaxMs,
    resyncMs: options.resyncMs,
    watchdogMs: WATCH_TIMEOUT_SECONDS * 1000 + WATCHDOG_MARGIN_MS,
    signal: options.signal,
    log: options.log,
    onEvents: options.onEvents,
  });
}

function resourceVersionOf(object: KubeObject): string {
  const version = (object['metadata'] as { resourceVersion?: unknown } | undefined)?.resourceVersion;
  return typeof version === 'string' ? version : '';
}
