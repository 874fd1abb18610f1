/**
 * Per-peer choice among the registered transports, behind the one Transport the router sees.
 * Every transport knows every peer: one that does not carry a peer keeps probing or holding its
 * connection (that is how its return is noticed) and accepts the peer's packets if they come.
 *
 * Per peer (slot), its preference (`PeerSpec.transports`, most preferred first; the default is
 * every transport in registry order, today `[udp, ws]`):
 *   - it starts on the first; while that is still 'unknown' (first probes in flight) it stays,
 *     so a start does not flap;
 *   - when the carrier is 'down', it moves to the most preferred transport that is 'up';
 *   - when the carrier is not 'up' and a more preferred one is, it moves there at once;
 *   - when the carrier is 'up' and a more preferred one has been 'up' for upHoldMs, it moves
 *     back (no flapping on one reply);
 *   - never to a transport that is not 'up'; with none up the carrier is kept;
 *   - a transport left out of the preference never carries the peer.
 *
 * A timer re-evaluates every switchCheckMs; each switch is logged and counted, and the last one
 * is reported in peerStatus(). `send` is one typed-array lookup and a call: nothing allocated.
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
  TransportSwitch,
} from '../core/transport.js';
import { MAX_PEER_SLOTS, transportNowMs } from '../core/transport.js';
import { TransportError, nonNegativeOption, positiveOption } from './transport-error.js';
import { addPrefixed } from './transport-stats.js';

export const DEFAULT_SWITCH_CHECK_MS = 250;
export const DEFAULT_UP_HOLD_MS = 2000;
const OPTION_ERROR = 'ERR_PODTUN_SELECTOR_OPTION';

export interface TransportSelectorOptions {
  /** How often each peer's choice is re-evaluated, ms. */
  switchCheckMs?: number;
  /** How long a more preferred transport must have been up before a peer goes back to it, ms. */
  upHoldMs?: number;
  /** Clock in ms (default: performance clock as epoch ms, like the transports). A seam for tests. */
  nowMs?: () => number;
}

interface SlotState {
  node: string;
  /** Indexes into the selector's transports, most preferred first. */
  preference: number[];
  /** Per transport index: when it was first seen up in the current run of 'up' checks. */
  upSinceMs: (number | undefined)[];
  /** When the peer was set (for "silent for N ms" before any reply). */
  addedMs: number;
  lastSwitch: TransportSwitch | undefined;
}


export class TransportSelector implements Transport {
  readonly kind: TransportKind = 'selector';

  private readonly switchCheckMs: number;
  private readonly upHoldMs: number;
  private readonly nowMs: () => number;
  /** Per slot: the index of the transport carrying it. */
  private readonly current = new Uint8Array(MAX_PEER_SLOTS);
  private readonly slots = new Map<number, SlotState>();
  private timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private switches = 0;

  /**
   * `transports` in registry order (the default preference); the selector owns them from here:
   * start and close go to all of them.
   */
  constructor(
    private readonly transports: readonly Transport[],
    private readonly log: Logger,
    options: TransportSelectorOptions = {},
  ) {
    if (transports.length === 0 || transports.length > 255) throw new TransportError(OPTION_ERROR, `needs 1-255 transports, got ${transports.length}`);
    this.switchCheckMs = positiveOption(options.switchCheckMs, DEFAULT_SWITCH_CHECK_MS, 'switchCheckMs', OPTION_ERROR);
    this.upHoldMs = nonNegativeOption(options.upHoldMs, DEFAULT_UP_HOLD_MS, 'upHoldMs', OPTION_ERROR);
    this.nowMs = options.nowMs ?? transportNowMs;
  }

  /** Starts every transport in order (all deliver to `sink`), then the re-evaluation timer. */
  async start(sink: InboundSink): Promise<void> {
    for (const t of this.transports) await t.start(sink);
    if (this.closing !== undefined) return;
    this.timer = setInterval(() => this.evaluate(), this.switchCheckMs);
  }

  /** Gives the peer to every transport; a changed preference takes effect at once. */
  setPeer(slot: number, peer: PeerSpec): void {
    for (const t of this.transports) t.setPeer(slot, peer);
    const preference = this.preferenceOf(peer);
    const nowMs = this.nowMs();
    const old = this.slots.get(slot);
    if (old !== undefined && old.node === peer.node) {
      if (sameOrder(old.preference, preference)) return;
      old.preference = preference;
      const carrier = this.current[slot] ?? 0;
      const first = preference[0] ?? 0;
      if (!preference.includes(carrier)) this.switchTo(slot, old, first, `transport set to ${this.nameOf(first)}`, nowMs);
      return;
    }
    this.slots.set(slot, {
      node: peer.node,
      preference,
      upSinceMs: this.transports.map(() => undefined),
      addedMs: nowMs,
      lastSwitch: undefined,
    });
    this.current[slot] = preference[0] ?? 0;
  }

  removePeer(slot: number): void {
    for (const t of this.transports) t.removePeer(slot);
    this.slots.delete(slot);
    if (slot >= 0 && slot < MAX_PEER_SLOTS) this.current[slot] = 0;
  }

  /**
   * Hands the packets to the transport currently carrying `slot` (borrowed batch, as
   * Transport.send). An unknown slot goes to the first transport, which drops and counts it.
   */
  send(slot: number, batch: PacketBatch, idx: Int32Array, count: number): number {
    return this.transports[this.current[slot] ?? 0]!.send(slot, batch, idx, count);
  }

  /** One entry per peer: the carrying transport, its state and RTT, and the last switch. */
  peerStatus(): PeerStatus[] {
    const views = this.transports.map((t) => bySlot(t.peerStatus()));
    const out: PeerStatus[] = [];
    for (const [slot, state] of this.slots) {
      const use = this.current[slot] ?? 0;
      const s = views[use]?.get(slot);
      const status: PeerStatus = {
        slot,
        node: state.node,
        transport: this.nameOf(use),
        endpoint: s?.endpoint,
        state: s?.state ?? 'unknown',
        rttMs: s?.rttMs,
        lastSeenMs: s?.lastSeenMs,
      };
      if (state.lastSwitch !== undefined) status.lastSwitch = state.lastSwitch;
      // Not up: the carrying transport's reason, else the most preferred one that has a reason.
      const explained = s?.downReason !== undefined ? s : views.map((v) => v.get(slot)).find((v) => v?.downReason !== undefined);
      if (status.state !== 'up' && explained?.downReason !== undefined) {
        status.downReason = explained.downReason;
        if (explained.downDetail !== undefined) status.downDetail = explained.downDetail;
      }
      if (s?.lastHandshakeAgeMs !== undefined) status.lastHandshakeAgeMs = s.lastHandshakeAgeMs;
      if (s?.sealed !== undefined) status.sealed = s.sealed;
      out.push(status);
    }
    return out.sort((a, b) => a.slot - b.slot);
  }

  /** Every transport's counters as `<kind>.<name>`, plus `switches`. */
  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.transports) addPrefixed(out, t.kind, t.stats());
    out['switches'] = this.switches;
    return out;
  }

  /** Every transport's drop counters as `<kind>.<reason>`. */
  drops(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.transports) addPrefixed(out, t.kind, t.drops());
    return out;
  }

  /** Stops the timer and closes every transport (all are closed even if one fails). Safe twice. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    const results = await Promise.allSettled(this.transports.map((t) => t.close()));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /** Re-evaluates every peer with more than one transport (timer; public for tests driving their own clock). */
  evaluate(): void {
    if (this.closing !== undefined) return;
    const nowMs = this.nowMs();
    let views: Map<number, PeerStatus>[] | undefined;
    for (const [slot, state] of this.slots) {
      if (state.preference.length < 2) continue;
      views ??= this.transports.map((t) => bySlot(t.peerStatus()));
      const stateOf = (t: number): PeerState => views?.[t]?.get(slot)?.state ?? 'unknown';
      for (const t of state.preference) {
        if (stateOf(t) === 'up') state.upSinceMs[t] ??= nowMs;
        else state.upSinceMs[t] = undefined;
      }
      const carrier = this.current[slot] ?? 0;
      const carrierState = stateOf(carrier);
      const rank = state.preference.indexOf(carrier);
      // The most preferred transport that is up, and the most preferred one up long enough.
      const bestUp = state.preference.find((t) => stateOf(t) === 'up');
      const bestSettled = state.preference.find((t) => {
        const since = state.upSinceMs[t];
        return since !== undefined && nowMs - since >= this.upHoldMs;
      });
      if (bestUp === undefined || bestUp === carrier) continue;
      const better = state.preference.indexOf(bestUp) < rank;
      if (better && carrierState !== 'up') {
        this.switchTo(slot, state, bestUp, `${this.nameOf(carrier)} down, ${this.nameOf(bestUp)} answering`, nowMs);
      } else if (carrierState === 'down') {
        const quietMs = Math.round(nowMs - (views[carrier]?.get(slot)?.lastSeenMs ?? state.addedMs));
        this.switchTo(slot, state, bestUp, `${this.nameOf(carrier)} probes unanswered for ${quietMs} ms`, nowMs);
      } else if (bestSettled !== undefined && state.preference.indexOf(bestSettled) < rank && carrierState === 'up') {
        this.switchTo(slot, state, bestSettled, `${this.nameOf(bestSettled)} answering again`, nowMs);
      }
    }
  }

  /** The peer's preference as transport indexes; kinds not registered here are left out. */
  private preferenceOf(peer: PeerSpec): number[] {
    const wanted = peer.transports.length > 0 ? peer.transports : this.transports.map((t) => t.kind);
    const out: number[] = [];
    for (const kind of wanted) {
      const i = this.transports.findIndex((t) => t.kind === kind);
      if (i >= 0 && !out.includes(i)) out.push(i);
    }
    if (out.length === 0) {
      this.log.warn({ peer: peer.node, reason: `none of ${wanted.join(', ')} is a transport here` }, 'peer transports unknown; using the first');
      out.push(0);
    }
    return out;
  }

  private nameOf(index: number): TransportKind {
    return this.transports[index]?.kind ?? 'unknown';
  }

  private switchTo(slot: number, state: SlotState, use: number, reason: string, nowMs: number): void {
    const from = this.nameOf(this.current[slot] ?? 0);
    const to = this.nameOf(use);
    this.current[slot] = use;
    this.switches++;
    state.lastSwitch = { atMs: nowMs, from, to, reason };
    this.log.info({ peer: state.node, from, to, reason }, 'peer transport switched');
  }
}

function bySlot(list: readonly PeerStatus[]): Map<number, PeerStatus> {
  const map = new Map<number, PeerStatus>();
  for (const s of list) map.set(s.slot, s);
  return map;
}

function sameOrder(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
