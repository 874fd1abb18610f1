/**
 * Leases from a static list of nodes (the node config's `nodes`), reloaded when the file changes
 * or on request (SIGHUP). Flow:
 *
 *  1. localLease() and the first watch batch come from the config loaded at start.
 *  2. A change in the file's directory (debounced) or reload() reads the list again
 *     (`source.reload`, which validates the whole config, so a bad edit throws: it is logged and
 *     ignored, the running list stays).
 *  3. A good edit replaces the current list and every watcher gets the diff (lease-diff.ts).
 *
 * The directory is watched, not the file: editors and ConfigMap updates replace the file by
 * rename, which a watch on the file itself would lose.
 */
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { errorMessage } from '../core/config-check.js';
import type { Logger } from '../core/logger.js';
import { diffLeases, fullSet } from './lease-diff.js';
import type { Lease, LeaseEvent } from '../core/lease.js';
import type { ConfigLeases, SubnetManager } from '../core/subnet-manager.js';

export interface StaticSubnetManagerOptions {
  /** This node's name: its lease must be in every list. */
  node: string;
  /** The config's node list, as leases, and how to read it again. */
  source: ConfigLeases;
  /** Quiet time after the last file event before reloading; default 200 ms. */
  debounceMs?: number;
  log: Logger;
}

export const DEFAULT_RELOAD_DEBOUNCE_MS = 200;

type Listener = (events: LeaseEvent[]) => void;

export class StaticSubnetManager implements SubnetManager {
  private leases: readonly Lease[];
  private readonly node: string;
  private readonly source: ConfigLeases;
  private readonly debounceMs: number;
  private readonly log: Logger;
  private readonly listeners = new Set<Listener>();
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  /** The reload in flight, and whether another was asked for meanwhile. */
  private running: Promise<boolean> | undefined;
  private again = false;
  /** Aborts on close(): running watches end, nothing is reloaded any more. */
  private readonly stop = new AbortController();

  constructor(options: StaticSubnetManagerOptions) {
    this.node = options.node;
    this.source = options.source;
    this.leases = options.source.initial;
    this.debounceMs = options.debounceMs ?? DEFAULT_RELOAD_DEBOUNCE_MS;
    this.log = options.log;
    localLeaseIn(this.leases, this.node);
  }

  /** The leases currently in force. */
  current(): readonly Lease[] {
    return this.leases;
  }

  localLease(): Promise<Lease> {
    return Promise.resolve(localLeaseIn(this.leases, this.node));
  }

  /**
   * Emits every lease (this node's own included: the router treats the lease whose node is the
   * local node as local), then the diff of each accepted reload, until `signal` aborts or the
   * manager closes.
   */
  async watchLeases(signal: AbortSignal, onEvents: (events: LeaseEvent[]) => void): Promise<void> {
    if (signal.aborted || this.stop.signal.aborted) return;
    onEvents(fullSet(this.leases));
    const listener: Listener = (events) => onEvents(events);
    this.listeners.add(listener);
    this.startWatching();
    const either = AbortSignal.any([signal, this.stop.signal]);
    await new Promise<void>((resolve) => either.addEventListener('abort', () => resolve(), { once: true }));
    this.listeners.delete(listener);
    if (this.listeners.size === 0) this.stopWatching();
  }

  /**
   * Loads the config again and, when valid, emits the diff to every watcher. Resolves true when a
   * new config was accepted, false when the load failed (logged; the old config stays). Calls
   * are serialised; calls during a reload coalesce into one more.
   */
  reload(): Promise<boolean> {
    if (this.stop.signal.aborted) return Promise.resolve(false);
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    const run = async (): Promise<boolean> => {
      let accepted = false;
      do {
        this.again = false;
        accepted = (await this.reloadOnce()) || accepted;
      } while (this.again);
      return accepted;
    };
    this.running = run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async reloadOnce(): Promise<boolean> {
    let next: readonly Lease[];
    try {
      next = await this.source.reload();
      localLeaseIn(next, this.node);
    } catch (err: unknown) {
      // The message names the file, field and reason; the stack would only be noise here.
      this.log.warn({ reason: errorMessage(err) }, 'config reload rejected; keeping the running config');
      this.log.debug({ err }, 'config reload rejected');
      return false;
    }
    if (this.stop.signal.aborted) return false;
    const events = diffLeases(this.leases, next);
    this.leases = next;
    this.log.info({ added: count(events, 'added'), removed: count(events, 'removed') }, 'config reloaded');
    if (events.length > 0) {
      for (const listener of this.listeners) {
        try {
          listener(events);
        } catch (err: unknown) {
          this.log.error({ err }, 'lease event handler failed');
        }
      }
    }
    return true;
  }

  /** Stops watching the file and ends running watches. Safe twice. */
  close(): Promise<void> {
    this.stop.abort();
    this.stopWatching();
    return Promise.resolve();
  }

  private startWatching(): void {
    const watchPath = this.source.watchPath;
    if (watchPath === undefined || this.watcher !== undefined || this.stop.signal.aborted) return;
    const file = basename(watchPath);
    try {
      this.watcher = watch(dirname(watchPath), { persistent: false }, (_event, name) => {
        // "..data" is the symlink a Kubernetes ConfigMap volume swaps on update.
        if (name !== null && name !== file && name !== '..data') return;
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => {
          this.debounce = undefined;
          void this.reload();
        }, this.debounceMs);
      });
      this.watcher.on('error', (err: unknown) => {
        this.log.warn({ err, reason: errorMessage(err) }, 'config watch failed; reload with SIGHUP');
        this.stopWatching();
      });
    } catch (err: unknown) {
      this.log.warn({ err, reason: errorMessage(err) }, 'cannot watch the config file; reload with SIGHUP');
    }
  }

  private stopWatching(): void {
    clearTimeout(this.debounce);
    this.debounce = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }
}

function localLeaseIn(leases: readonly Lease[], node: string): Lease {
  const local = leases.find((l) => l.node === node);
  if (local === undefined) throw new Error(`node "${node}" is not in the node list`);
  return local;
}

function count(events: readonly LeaseEvent[], type: LeaseEvent['type']): number {
  return events.filter((e) => e.type === type).length;
}
