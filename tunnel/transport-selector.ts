/**
 * Per-peer choice between the UDP and the WebSocket transport, behind the one Transport the
 * router sees. Both transports always know every peer: UDP keeps probing a peer even while
 * WebSocket carries its traffic (that is how UDP's return is noticed), and WebSocket keeps (or
 * redials) its connection while UDP carries it.
 *
 * Per peer (slot), by its mode:
 *   'udp'  -> always UDP;   'ws' -> always WebSocket;
 *   'auto' -> UDP to begin with, and while its probes are answered;
 *             WebSocket once UDP is 'down' (probes unanswered for the UDP transport's
 *             deadAfterMs) and WebSocket is 'up'; while UDP is still 'unknown' (a new peer,
 *             first probes in flight) it stays on UDP, so a start does not flap ws -> udp;
 *             back to UDP once UDP has been 'up' for udpUpHoldMs (no flapping on one reply),
 *             or at once when WebSocket goes down while UDP is up.
 *   Never to a WebSocket that is not up; with both down the current one is kept.
 *
 * A timer re-evaluates every switchCheckMs; each switch is logged and counted, and the last one
 * is reported in peerStatus(). `send` is one typed-array lookup and a call: nothing allocated.
 *
 * The MTU: `overheadBytes` is UDP's, so the TUN MTU (and the routes' MTUs) stay sized for UDP
 * whichever transport carries a peer; WebSocket carries packets of any size up to its
 * maxPayload, so switching never changes the TUN MTU or a route.
 */
import type { PacketBatch } from '../core/packet-batch.js';
import type { Logger } from '../core/logger.js';
import type {
  InboundSink,
  PeerSpec,
  PeerState,
  PeerStatus,
  Transport,
  TransportKind,
  TransportMode,
  TransportSwitch,
} from '../core/transport.js';
import { MAX_PEER_SLOTS } from '../core/transport.js';

export const DEFAULT_SWITCH_CHECK_MS = 250;
export const DEFAULT_UDP_UP_HOLD_MS = 2000;

export interface TransportSelectorOptions {
  /** How often each peer's choice is re-evaluated, ms. */
  switchCheckMs?: number;
  /** How long UDP must have been up before an 'auto' peer goes back to it from WebSocket, ms. */
  udpUpHoldMs?: number;
  /** Clock in ms (default: performance clock as epoch ms, like the transports). A seam for tests. */
  nowMs?: () => number;
}

/** A bad option; `code` is stable. */
export class TransportSelectorError extends Error {
  readonly code = 'ERR_PODTUN_SELECTOR_OPTION';
}

/** Index into `current`: which transport carries a slot. */
const USE_UDP = 0;
const USE_WS = 1;
const KIND_OF: readonly ['udp', 'ws'] = ['udp', 'ws'];

interface SlotState {
  node: string;
  mode: TransportMode;
  /** When UDP was first seen up in the current run of 'up' checks; undefined while not up. */
  udpUpSinceMs: number | undefined;
  /** When the peer was set (for "unanswered for N ms" before any reply). */
  addedMs: number;
  lastSwitch: TransportSwitch | undefined;
}

const defaultNowMs = (): number => performance.timeOrigin + performance.now();

export class TransportSelector implements Transport {
  /** The kind that sizes the tunnel MTU; each peer's carrier is in peerStatus(). */
  readonly kind: TransportKind = 'udp';
  readonly overheadBytes: number;

  private readonly switchCheckMs: number;
  private readonly udpUpHoldMs: number;
  private readonly nowMs: () => number;
  /** Per slot: USE_UDP or USE_WS. */
  private readonly current = new Uint8Array(MAX_PEER_SLOTS);
  private readonly slots = new Map<number, SlotState>();
  private timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private switches = 0;

  /**
   * `udp` is the UdpTransport and `ws` the WsTransport in production (any Transport in tests);
   * the selector owns both from here: start and close go to both.
   */
  constructor(
    private readonly udp: Transport,
    private readonly ws: Transport,
    private readonly log: Logger,
    options: TransportSelectorOptions = {},
  ) {
    this.overheadBytes = udp.overheadBytes;
    this.switchCheckMs = positive(options.switchCheckMs, DEFAULT_SWITCH_CHECK_MS, 'switchCheckMs');
    this.udpUpHoldMs = nonNegative(options.udpUpHoldMs, DEFAULT_UDP_UP_HOLD_MS, 'udpUpHoldMs');
    this.nowMs = options.nowMs ?? defaultNowMs;
  }

  /** Starts UDP, then WebSocket (both deliver to `sink`), then the re-evaluation timer. */
  async start(sink: InboundSink): Promise<void> {
    await this.udp.start(sink);
    await this.ws.start(sink);
    if (this.closing !== undefined) return;
    this.timer = setInterval(() => this.evaluate(), this.switchCheckMs);
  }

  /** Gives the peer to both transports; a changed mode takes effect at once. */
  setPeer(slot: number, peer: PeerSpec): void {
    this.udp.setPeer(slot, peer);
    this.ws.setPeer(slot, peer);
    const nowMs = this.nowMs();
    const old = this.slots.get(slot);
    if (old !== undefined && old.node === peer.node) {
      if (old.mode === peer.mode) return;
      old.mode = peer.mode;
      if (peer.mode === 'udp' && this.current[slot] !== USE_UDP) this.switchTo(slot, old, USE_UDP, 'transport set to udp', nowMs);
      else if (peer.mode === 'ws' && this.current[slot] !== USE_WS) this.switchTo(slot, old, USE_WS, 'transport set to ws', nowMs);
      return;
    }
    this.slots.set(slot, { node: peer.node, mode: peer.mode, udpUpSinceMs: undefined, addedMs: nowMs, lastSwitch: undefined });
    this.current[slot] = peer.mode === 'ws' ? USE_WS : USE_UDP;
  }

  removePeer(slot: number): void {
    this.udp.removePeer(slot);
    this.ws.removePeer(slot);
    this.slots.delete(slot);
    if (slot >= 0 && slot < MAX_PEER_SLOTS) this.current[slot] = USE_UDP;
  }

  /**
   * Hands the packets to the transport currently carrying `slot` (borrowed batch, as
   * Transport.send). An unknown slot goes to UDP, which drops and counts it.
   */
  send(slot: number, batch: PacketBatch, idx: Int32Array, count: number): number {
    return this.current[slot] === USE_WS ? this.ws.send(slot, batch, idx, count) : this.udp.send(slot, batch, idx, count);
  }

  /** One entry per peer: the carrying transport, its state and RTT, and the last switch. */
  peerStatus(): PeerStatus[] {
    const udp = bySlot(this.udp.peerStatus());
    const ws = bySlot(this.ws.peerStatus());
    const out: PeerStatus[] = [];
    for (const [slot, state] of this.slots) {
      const use = this.current[slot] ?? USE_UDP;
      const s = (use === USE_WS ? ws : udp).get(slot);
      const status: PeerStatus = {
        slot,
        node: state.node,
        transport: KIND_OF[use] ?? 'udp',
        endpoint: s?.endpoint,
        state: s?.state ?? 'unknown',
        rttMs: s?.rttMs,
        lastSeenMs: s?.lastSeenMs,
      };
      if (state.lastSwitch !== undefined) status.lastSwitch = state.lastSwitch;
      out.push(status);
    }
    return out.sort((a, b) => a.slot - b.slot);
  }

  /** Both transports' counters as `udp.<name>` and `ws.<name>`, plus `switches`. */
  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [prefix, t] of [['udp', this.udp], ['ws', this.ws]] as const) {
      const stats = t.stats();
      for (const name of Object.keys(stats)) out[`${prefix}.${name}`] = stats[name] ?? 0;
    }
    out['switches'] = this.switches;
    return out;
  }

  /** Stops the timer and closes both transports (both are closed even if one fails). Safe twice. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    const results = await Promise.allSettled([this.udp.close(), this.ws.close()]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /** Re-evaluates every 'auto' peer (timer; public for tests driving their own clock). */
  evaluate(): void {
    if (this.closing !== undefined) return;
    const nowMs = this.nowMs();
    let udp: Map<number, PeerStatus> | undefined;
    let ws: Map<number, PeerStatus> | undefined;
    for (const [slot, state] of this.slots) {
      if (state.mode !== 'auto') continue;
      udp ??= bySlot(this.udp.peerStatus());
      ws ??= bySlot(this.ws.peerStatus());
      const u = udp.get(slot);
      const udpState: PeerState = u?.state ?? 'unknown';
      const wsUp = ws.get(slot)?.state === 'up';
      if (udpState === 'up') state.udpUpSinceMs ??= nowMs;
      else state.udpUpSinceMs = undefined;

      if (this.current[slot] === USE_UDP) {
        if (udpState === 'down' && wsUp) {
          const quietMs = Math.round(nowMs - (u?.lastSeenMs ?? state.addedMs));
          this.switchTo(slot, state, USE_WS, `udp probes unanswered for ${quietMs} ms`, nowMs);
        }
      } else if (state.udpUpSinceMs !== undefined) {
        if (!wsUp) this.switchTo(slot, state, USE_UDP, 'websocket down, udp answering', nowMs);
        else if (nowMs - state.udpUpSinceMs >= this.udpUpHoldMs) this.switchTo(slot, state, USE_UDP, 'udp answering again', nowMs);
      }
    }
  }

  private switchTo(slot: number, state: SlotState, use: number, reason: string, nowMs: number): void {
    const from = KIND_OF[this.current[slot] ?? USE_UDP] ?? 'udp';
    const to = KIND_OF[use] ?? 'udp';
    this.current[slot] = use;
    this.switches++;
    state.lastSwitch = { atMs: nowMs, from, to, reason };
    this.log.info({ node: state.node, from, to, reason }, 'peer transport switched');
  }
}

function bySlot(list: readonly PeerStatus[]): Map<number, PeerStatus> {
  const map = new Map<number, PeerStatus>();
  for (const s of list) map.set(s.slot, s);
  return map;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TransportSelectorError(`${name} must be a positive number, got ${value}`);
  return value;
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new TransportSelectorError(`${name} must be a number >= 0, got ${value}`);
  return value;
}
