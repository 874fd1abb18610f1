/**
 * Keeps the host names of peers' endpoints ("node-b.example.net:8285": dynamic DNS) resolved,
 * off the data path, for a transport that needs addresses. Per watched name:
 *
 *   1. looked up at once when watched, then again every `intervalMs`;
 *   2. while its peer is down (it went silent: it may have moved), at once and then every
 *      DOWN_INTERVAL_MS, so a peer that changed address is followed within seconds;
 *   3. an answer that differs from the last one goes to `onAddress` (the owner re-addresses the
 *      peer) and is logged; a failed lookup keeps the last good address, is retried with backoff
 *      (RETRY_MIN_MS doubling, up to the period) and logged at warn at most once per
 *      WARN_EVERY_MS per name (debug in between).
 *
 * The lookup is injected (the system resolver in production, a fake in tests), and so is the
 * clock: the owner calls `tick(nowMs)` from the timer it already has. It holds no timer of its
 * own; a lookup still in flight when its name is forgotten or the resolver closed is ignored when
 * it settles.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { formatAddress, parseAddress } from '../core/cidr.js';
import type { IpFamily } from '../core/cidr.js';
import { errorReason } from '../core/error-reason.js';
import type { LogFields } from '../core/log-fields.js';
import type { Logger } from '../core/logger.js';

/** One address of `name` in `family` (undefined: either), as text; rejects when there is none. */
export type HostLookup = (name: string, family: IpFamily | undefined) => Promise<string>;

/** The system's resolver (getaddrinfo: /etc/hosts, DNS, as nsswitch says), first answer. */
export const systemLookup: HostLookup = async (name, family) =>
  (await dnsLookup(name, family === undefined ? {} : { family })).address;

export const DEFAULT_RESOLVE_INTERVAL_MS = 60_000;
/** How often a down peer's name is looked up again. */
export const DOWN_INTERVAL_MS = 5_000;
const RETRY_MIN_MS = 1_000;
const WARN_EVERY_MS = 60_000;

export interface ResolvedAddress {
  /** Canonical address text: "192.168.77.2", "fd77::2". */
  readonly host: string;
  readonly family: IpFamily;
}

export interface EndpointResolverOptions {
  lookup: HostLookup;
  /** The family a usable address must have (a socket bound to IPv4 takes only IPv4); undefined: either. */
  family: IpFamily | undefined;
  intervalMs: number;
  log: Logger;
  /** The address of `key`'s name is new or changed. */
  onAddress(key: number, address: ResolvedAddress): void;
}

/** A name to keep resolved, and what its log lines say about it. */
export interface WatchedName {
  readonly name: string;
  readonly peer: string;
  /** The endpoint as written ("node-b.example.net:8285"). */
  readonly endpoint: string;
}

interface Entry {
  readonly watched: WatchedName;
  address: ResolvedAddress | undefined;
  dueMs: number;
  inFlight: boolean;
  down: boolean;
  lastStartMs: number;
  /** Failed lookups in a row, and when one was last logged at warn. */
  failures: number;
  warnedAtMs: number;
}

export class EndpointResolver {
  private readonly entries = new Map<number, Entry>();
  private closed = false;

  constructor(private readonly options: EndpointResolverOptions) {}

  /**
   * Keeps `watched.name` resolved for `key`, starting a lookup now unless the same name is
   * watched already. Returns the address known for it (undefined before the first answer).
   */
  watch(key: number, watched: WatchedName, nowMs: number): ResolvedAddress | undefined {
    const old = this.entries.get(key);
    if (old !== undefined && old.watched.name === watched.name) return old.address;
    const entry: Entry = {
      watched,
      address: undefined,
      dueMs: nowMs,
      inFlight: false,
      down: false,
      lastStartMs: Number.NEGATIVE_INFINITY,
      failures: 0,
      warnedAtMs: Number.NEGATIVE_INFINITY,
    };
    this.entries.set(key, entry);
    this.start(key, entry, nowMs);
    return undefined;
  }

  forget(key: number): void {
    this.entries.delete(key);
  }

  /** The peer of `key` went down (look its name up now, then often) or came back up. */
  setDown(key: number, down: boolean, nowMs: number): void {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.down === down) return;
    entry.down = down;
    if (down) this.start(key, entry, nowMs);
    else entry.dueMs = Math.max(nowMs, entry.lastStartMs + this.options.intervalMs);
  }

  /** Starts the lookups that are due. */
  tick(nowMs: number): void {
    for (const [key, entry] of this.entries) {
      if (nowMs >= entry.dueMs) this.start(key, entry, nowMs);
    }
  }

  /** Lookups in flight are ignored from now on. Safe twice. */
  close(): void {
    this.closed = true;
    this.entries.clear();
  }

  private start(key: number, entry: Entry, nowMs: number): void {
    if (entry.inFlight || this.closed) return;
    entry.inFlight = true;
    entry.lastStartMs = nowMs;
    const { name } = entry.watched;
    this.options.lookup(name, this.options.family).then(
      (text) => this.answered(key, entry, nowMs, text),
      (err: unknown) => this.failed(key, entry, nowMs, err),
    );
  }

  private current(key: number, entry: Entry): boolean {
    return !this.closed && this.entries.get(key) === entry;
  }

  private answered(key: number, entry: Entry, startedMs: number, text: string): void {
    entry.inFlight = false;
    if (!this.current(key, entry)) return;
    let address: ResolvedAddress;
    try {
      const parsed = parseAddress(text);
      if (this.options.family !== undefined && parsed.family !== this.options.family) {
        throw new Error(`${text} is not an IPv${this.options.family} address`);
      }
      address = { host: formatAddress(parsed), family: parsed.family };
    } catch (err: unknown) {
      this.failed(key, entry, startedMs, err);
      return;
    }
    const { peer, endpoint } = entry.watched;
    const recovered = entry.failures > 0;
    entry.failures = 0;
    entry.warnedAtMs = Number.NEGATIVE_INFINITY;
    entry.dueMs = startedMs + this.periodMs(entry);
    if (entry.address?.host === address.host) {
      if (recovered) this.options.log.info({ peer, endpoint, address: address.host }, 'peer endpoint resolves again');
      return;
    }
    const moved = entry.address !== undefined;
    entry.address = address;
    this.options.log.info({ peer, endpoint, address: address.host }, moved ? 'peer endpoint moved' : 'peer endpoint resolved');
    this.options.onAddress(key, address);
  }

  private failed(key: number, entry: Entry, startedMs: number, err: unknown): void {
    entry.inFlight = false;
    if (!this.current(key, entry)) return;
    entry.failures++;
    const delayMs = Math.min(this.periodMs(entry), RETRY_MIN_MS * 2 ** (entry.failures - 1));
    entry.dueMs = startedMs + delayMs;
    const { peer, endpoint } = entry.watched;
    const fields: LogFields = { peer, endpoint, reason: errorReason(err), attempt: entry.failures, delayMs,
      ...(entry.address === undefined ? {} : { address: entry.address.host }) };
    const message = entry.address === undefined
      ? 'cannot resolve peer endpoint; no address for it yet'
      : 'cannot resolve peer endpoint; keeping its last address';
    if (startedMs - entry.warnedAtMs >= WARN_EVERY_MS) {
      entry.warnedAtMs = startedMs;
      this.options.log.warn(fields, message);
    } else {
      this.options.log.debug(fields, message);
    }
  }

  private periodMs(entry: Entry): number {
    return entry.down ? Math.min(DOWN_INTERVAL_MS, this.options.intervalMs) : this.options.intervalMs;
  }
}
