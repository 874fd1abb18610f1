/**
 * Leases from a static list of nodes (the node config's `nodes`), reloaded when the file changes
 * or on request (SIGHUP). Flow:
 *
 *  1. localLease() and the first watch batch come from the config loaded at start.
 *  2. A change in the file's directory (debounced) or reload() calls `load()` again; `load`
 *     validates, so a bad edit throws: it is logged and ignored, the running config stays.
 *  3. A good edit replaces the current config and every watcher gets the diff (lease-diff.ts).
 *
 * The directory is watched, not the file: editors and ConfigMap updates replace the file by
 * rename, which a watch on the file itself would lose.
 */
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from '../core/logger.js';
import type { TransportMode } from '../core/transport.js';
import { diffLeases, fullSet } from './lease-diff.js';
import type { Lease, LeaseEvent, SubnetManager } from '../core/subnet-manager.js';

/** One node as the static list holds it; node-bootstrap's NodeSpec has this shape. */
export interface StaticNode {
  readonly name: string;
  readonly subnets: readonly string[];
  readonly endpoint: { readonly text: string } | undefined;
  readonly mtu: number | undefined;
  readonly wsEndpoint?: string | undefined;
  readonly transport?: TransportMode;
}

/** What the manager reads; node-bootstrap's NodeConfig has this shape. */
export interface StaticNodeList {
  readonly nodeName: string;
  readonly nodes: readonly StaticNode[];
}

export interface StaticSubnetManagerOptions<C extends StaticNodeList> {
  /** The config loaded at start. */
  initial: C;
  /** Reads and validates the source again; throws on a bad edit. */
  load: () => Promise<C>;
  /** File to watch for edits; without it the list changes only through reload(). */
  watchPath?: string;
  /** Quiet time after the last file event before reloading; default 200 ms. */
  debounceMs?: number;
  log: Logger;
  /** Called with each accepted config (after watchers got their events). */
  onReload?: (config: C) => void;
}

export const DEFAULT_RELOAD_DEBOUNCE_MS = 200;

type Listener = (events: LeaseEvent[]) => void;

export class StaticSubnetManager<C extends StaticNodeList> implements SubnetManager {
  private config: C;
  private readonly load: () => Promise<C>;
  private readonly watchPath: string | undefined;
  private readonly debounceMs: number;
  private readonly log: Logger;
  private readonly onReload: ((config: C) => void) | undefined;
  private readonly listeners = new Set<Listener>();
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  /** The reload in flight, and whether another was asked for meanwhile. */
  private running: Promise<boolean> | undefined;
  private again = false;

  constructor(options: StaticSubnetManagerOptions<C>) {
    this.config = options.initial;
    this.load = options.load;
    this.watchPath = options.watchPath;
    this.debounceMs = options.debounceMs ?? DEFAULT_RELOAD_DEBOUNCE_MS;
    this.log = options.log;
    this.onReload = options.onReload;
    localEntry(this.config);
  }

  /** The config currently in force. */
  current(): C {
    return this.config;
  }

  localLease(): Promise<Lease> {
    return Promise.resolve(leaseOf(localEntry(this.config)));
  }

  /**
   * Emits every lease (this node's own included: the router treats the lease whose node is the
   * local node as local), then the diff of each accepted reload, until `signal` aborts.
   */
  async watchLeases(signal: AbortSignal, onEvents: (events: LeaseEvent[]) => void): Promise<void> {
    if (signal.aborted) return;
    onEvents(fullSet(leasesOf(this.config)));
    const listener: Listener = (events) => onEvents(events);
    this.listeners.add(listener);
    this.startWatching();
    await new Promise<void>((resolve) => {
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    this.listeners.delete(listener);
    if (this.listeners.size === 0) this.stopWatching();
  }

  /**
   * Loads the config again and, when valid, emits the diff to every watcher. Resolves true when a
   * new config was accepted, false when the load failed (logged; the old config stays). Calls
   * are serialised; calls during a reload coalesce into one more.
   */
  reload(): Promise<boolean> {
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
    let next: C;
    try {
      next = await this.load();
      localEntry(next);
    } catch (err: unknown) {
      // The message names the file, field and reason; the stack would only be noise here.
      this.log.warn({ reason: errorMessage(err) }, 'config reload rejected; keeping the running config');
      this.log.debug({ err }, 'config reload rejected');
      return false;
    }
    const events = diffLeases(leasesOf(this.config), leasesOf(next));
    this.config = next;
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
    this.onReload?.(next);
    return true;
  }

  private startWatching(): void {
    if (this.watchPath === undefined || this.watcher !== undefined) return;
    const file = basename(this.watchPath);
    try {
      this.watcher = watch(dirname(this.watchPath), { persistent: false }, (_event, name) => {
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

export function leaseOf(node: StaticNode): Lease {
  const lease: Lease = { node: node.name, subnets: [...node.subnets], endpoint: node.endpoint?.text };
  if (node.wsEndpoint !== undefined) lease.wsEndpoint = node.wsEndpoint;
  if (node.transport !== undefined) lease.transport = node.transport;
  if (node.mtu !== undefined) lease.mtu = node.mtu;
  return lease;
}

export function leasesOf(list: StaticNodeList): Lease[] {
  return list.nodes.map(leaseOf);
}

function localEntry(list: StaticNodeList): StaticNode {
  const local = list.nodes.find((n) => n.name === list.nodeName);
  if (local === undefined) throw new Error(`node "${list.nodeName}" is not in the node list`);
  return local;
}

function count(events: readonly LeaseEvent[], type: LeaseEvent['type']): number {
  return events.filter((e) => e.type === type).length;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
