/**
 * The registry (registry.ts) as a source for the lease watch loop (lease-watch-loop.ts): its
 * version is the store revision.
 *
 *  - list: the registry's records, read as leases (registry-records.ts), at the list's revision;
 *  - watch(v): a registry watch from v + 1; each transaction updates the records and hands on
 *    the lease of every node it touched (its newest record may have changed) or its removal;
 *  - a watch broken as 'compacted' is `expired` (relist at once); any other break rejects (the
 *    loop pauses, then relists).
 *
 * Every view of the records (after a list, after each transaction) also goes to `onView`, with
 * the revision it is as of: the holder checks there that our own records are still ours.
 */
import type { Lease } from '../core/lease.js';
import type { LeaseChange, LeaseWatchSource, WatchOutcome } from './lease-watch-loop.js';
import { deriveLeases } from './registry-records.js';
import type { Decoded, RecordReader } from './registry-records.js';
import { RegistryError } from './registry.js';
import type { Registry, RegistryEvent, RegistryWatch } from './registry.js';

export interface RegistryLeaseSourceOptions {
  readonly registry: Registry;
  readonly records: RecordReader;
  /** The records by subnet as of `revision`, after every list and every transaction seen. */
  readonly onView: (view: ReadonlyMap<string, Decoded>, revision: number) => void;
}

/** A source for one watch loop: it keeps the records between a list and the watch after it. */
export function registryLeaseSource(options: RegistryLeaseSourceOptions): LeaseWatchSource<number> {
  const { registry, records, onView } = options;
  let known = new Map<string, Decoded>();
  let seenRevision = 0;

  /** Applies one transaction; returns the changes of the nodes it touched. */
  const apply = (batch: readonly RegistryEvent[]): LeaseChange<number>[] => {
    const touched = new Set<string>();
    for (const event of batch) {
      const subnet = event.type === 'put' ? event.entry.subnet : event.subnet;
      const before = known.get(subnet)?.lease?.node;
      if (before !== undefined) touched.add(before);
      if (event.type === 'put') {
        const decoded = records.decode(event.entry);
        known.set(subnet, decoded);
        if (decoded.lease !== undefined) touched.add(decoded.lease.node);
        seenRevision = Math.max(seenRevision, event.entry.revision);
      } else {
        known.delete(subnet);
        seenRevision = Math.max(seenRevision, event.revision);
      }
    }
    onView(known, seenRevision);
    const now = new Map<string, Lease>(deriveLeases(known.values()).map((l) => [l.node, l]));
    return [...touched].map((node) => {
      const lease = now.get(node);
      return lease === undefined ? { version: seenRevision, removed: node } : { version: seenRevision, lease };
    });
  };

  return {
    async list() {
      const snapshot = await registry.list();
      known = new Map(snapshot.entries.map((entry) => [entry.subnet, records.decode(entry)]));
      seenRevision = snapshot.revision;
      onView(known, seenRevision);
      return { leases: deriveLeases(known.values()), version: snapshot.revision };
    },

    watch(fromRevision, onChange, signal) {
      return new Promise<WatchOutcome<number>>((resolve, reject) => {
        if (signal.aborted) {
          resolve({ kind: 'aborted' });
          return;
        }
        const onAbort = (): void => {
          handle.close().then(
            () => resolve({ kind: 'aborted' }),
            () => resolve({ kind: 'aborted' }),
          );
        };
        const handle: RegistryWatch = registry.watch(fromRevision + 1, {
          events: (batch) => {
            if (signal.aborted) return;
            // One transaction, delivered in one turn: the loop hands it on as one batch.
            for (const change of apply(batch)) onChange(change);
          },
          broken: (reason, kind) => {
            signal.removeEventListener('abort', onAbort);
            if (kind === 'compacted') resolve({ kind: 'expired', reason });
            else reject(new RegistryError(reason));
          },
        });
        signal.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}
