/**
 * Admission of connections to the WebSocket listener until they have authenticated: what keeps a
 * flood of idle or slow connections from taking the process's file descriptors (and with them
 * peers' connections and the local API).
 *
 *   1. accepted, raw TCP (before TLS or HTTP sees it): with maxUnauthenticatedPerSource already
 *      from its address, or the global cap reached, it is reset at once (refused.perSourceCap,
 *      refused.globalCap): no HTTP parser, no TLS state, no timer is made for it
 *   2. admitted: one timer. No byte within firstByteTimeoutMs, or not authenticated within
 *      authTimeoutMs (upgrade answered and the client's proof verified): destroyed
 *      (handshakeTimeouts)
 *   3. authenticated: it leaves admission; from then the transport bounds it (one inbound
 *      connection per peer, a newer one replacing the older)
 *
 * The global cap is maxUnauthenticated (default min(1024, open-files limit / 4), ws-fd-limit.ts);
 * a quarter of it is kept for peers' addresses (their endpoints' hosts), so strangers holding
 * every other slot cannot keep a peer out. Refusals and timeouts are logged at warn at most once
 * per REFUSAL_LOG_INTERVAL_MS per kind, with how many there were since the last line.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { LogFields } from '../../core/log-fields.js';
import type { ConnectionOwner, WsConnection } from './ws-connection.js';
import { defaultMaxUnauthenticated, openFilesSoftLimit } from './ws-fd-limit.js';

/** Refusals and timeouts of one kind are logged at warn at most this often. */
export const REFUSAL_LOG_INTERVAL_MS = 1000;
/** The share of the global cap only peers' addresses may use. */
const PEER_RESERVE_FRACTION = 0.25;

/** One admitted connection, until it authenticates or closes. */
export interface Admitted {
  /** Its address, IPv4-mapped IPv6 unmapped. */
  readonly source: string;
  readonly fromPeer: boolean;
  /** The raw TCP socket (under TLS, if any). */
  readonly socket: Socket;
  readonly acceptedAtMs: number;
  /** remote address, port and local address: finds it again from the upgrade's socket (TLS or not). */
  readonly key: string;
  timer: NodeJS.Timeout | undefined;
  /** Its WebSocket connection once upgraded, awaiting the client's proof. */
  conn: WsConnection | undefined;
  /** It left admission (authenticated, timed out, closed). */
  left: boolean;
}

/** Logs one kind of event at warn at most once per interval, counting those in between. */
class ThrottledWarn {
  private lastMs = Number.NEGATIVE_INFINITY;
  private since = 0;

  constructor(private readonly owner: ConnectionOwner, private readonly msg: string) {}

  note(remote: string, reason: string): void {
    this.since++;
    const nowMs = this.owner.nowMs();
    if (nowMs - this.lastMs < REFUSAL_LOG_INTERVAL_MS) return;
    const fields: LogFields = { remote, reason, count: this.since };
    this.owner.log.warn(fields, this.msg);
    this.lastMs = nowMs;
    this.since = 0;
  }
}

export class Admission {
  /** The global cap. */
  readonly maxTotal: number;
  /** What addresses that are not peers' may hold of it. */
  private readonly maxStrangers: number;
  private readonly admitted = new Map<string, Admitted>();
  private readonly perSource = new Map<string, number>();
  private strangers = 0;
  private closed = false;
  private readonly perSourceLog: ThrottledWarn;
  private readonly globalLog: ThrottledWarn;
  private readonly timeoutLog: ThrottledWarn;

  constructor(
    private readonly owner: ConnectionOwner,
    /** Whether `address` is one of a peer's endpoint hosts. */
    private readonly isPeerAddress: (address: string) => boolean,
  ) {
    const config = owner.config;
    this.maxTotal = config.maxUnauthenticated ?? defaultMaxUnauthenticated(openFilesSoftLimit());
    this.maxStrangers = Math.max(1, this.maxTotal - Math.ceil(this.maxTotal * PEER_RESERVE_FRACTION));
    this.perSourceLog = new ThrottledWarn(owner, 'connections refused');
    this.globalLog = new ThrottledWarn(owner, 'connections refused');
    this.timeoutLog = new ThrottledWarn(owner, 'handshake timed out');
  }

  /** Connections admitted and not authenticated yet. */
  get size(): number {
    return this.admitted.size;
  }

  /**
   * A raw connection just accepted: true when admitted (it is now timed and counted), false when
   * it was reset (over a cap, or already gone). Runs before anything else is made for it.
   */
  admit(socket: Socket): boolean {
    const address = socket.remoteAddress;
    if (this.closed || address === undefined) {
      socket.destroy();
      return false;
    }
    const config = this.owner.config;
    const counters = this.owner.counters;
    const source = unmapped(address);
    const fromSource = this.perSource.get(source) ?? 0;
    if (fromSource >= config.maxUnauthenticatedPerSource) {
      counters.refusedPerSourceCap++;
      socket.resetAndDestroy();
      this.perSourceLog.note(source, `${config.maxUnauthenticatedPerSource} unauthenticated connections from this address`);
      return false;
    }
    const fromPeer = this.isPeerAddress(source);
    if (this.admitted.size >= this.maxTotal || (!fromPeer && this.strangers >= this.maxStrangers)) {
      counters.refusedGlobalCap++;
      socket.resetAndDestroy();
      this.globalLog.note(source, `${this.admitted.size} unauthenticated connections (cap ${this.maxTotal})`);
      return false;
    }
    const entry: Admitted = {
      source,
      fromPeer,
      socket,
      acceptedAtMs: this.owner.nowMs(),
      key: keyOf(socket),
      timer: undefined,
      conn: undefined,
      left: false,
    };
    this.admitted.set(entry.key, entry);
    this.perSource.set(source, fromSource + 1);
    if (!fromPeer) this.strangers++;
    socket.on('error', ignore);
    socket.once('close', () => this.leave(entry));
    entry.timer = setTimeout(() => this.expire(entry), Math.min(config.firstByteTimeoutMs, config.authTimeoutMs));
    return true;
  }

  /** The admitted connection under an upgrade's socket (the raw one, or TLS over it). */
  entryOf(socket: Duplex): Admitted | undefined {
    return this.admitted.get(keyOf(socket as Partial<Socket>));
  }

  /** Proved itself: no longer timed or counted here. */
  authenticated(entry: Admitted): void {
    this.leave(entry);
  }

  /** Destroys every admitted connection; no timer is left. Safe twice. */
  close(): void {
    this.closed = true;
    for (const entry of [...this.admitted.values()]) {
      this.leave(entry);
      entry.socket.destroy();
    }
  }

  private expire(entry: Admitted): void {
    entry.timer = undefined;
    if (entry.left) return;
    const { firstByteTimeoutMs, authTimeoutMs } = this.owner.config;
    const elapsedMs = this.owner.nowMs() - entry.acceptedAtMs;
    const silent = entry.socket.bytesRead === 0;
    let reason: string | undefined;
    if (silent && elapsedMs >= firstByteTimeoutMs) reason = `no data within ${firstByteTimeoutMs} ms`;
    else if (elapsedMs >= authTimeoutMs) reason = `not authenticated within ${authTimeoutMs} ms`;
    if (reason === undefined) {
      const dueMs = silent ? Math.min(firstByteTimeoutMs, authTimeoutMs) : authTimeoutMs;
      entry.timer = setTimeout(() => this.expire(entry), Math.max(1, dueMs - elapsedMs));
      return;
    }
    this.owner.counters.handshakeTimeouts++;
    this.timeoutLog.note(entry.source, reason);
    this.leave(entry);
    entry.conn?.end(reason);
    entry.socket.destroy();
  }

  private leave(entry: Admitted): void {
    if (entry.left) return;
    entry.left = true;
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    entry.timer = undefined;
    this.admitted.delete(entry.key);
    const n = (this.perSource.get(entry.source) ?? 1) - 1;
    if (n > 0) this.perSource.set(entry.source, n);
    else this.perSource.delete(entry.source);
    if (!entry.fromPeer) this.strangers--;
  }
}

const ignore = (): void => {};

/** "::ffff:10.1.2.3" -> "10.1.2.3": one address, one count, however the socket was bound. */
export function unmapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function keyOf(socket: Partial<Socket>): string {
  return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? 0}|${socket.localAddress ?? ''}`;
}
