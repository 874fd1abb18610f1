/**
 * What happened on each link lately: per peer, a ring of samples (tx/rx bits/s and packets/s,
 * RTT, state, transport) taken at a fixed interval, plus a bounded list of events (state changes,
 * transport switches, peers removed). The dashboard feeds it from its sampling timer and serves
 * it, so a reload or a late viewer sees the last minutes instead of an empty chart.
 *
 * Memory is bounded whatever the churn: a ring holds windowMs / intervalMs samples, at most
 * maxPeers peers are tracked (the rest are counted in `untracked`), a peer gone from a sample
 * loses its ring, and events are one ring for all peers. Pure: the caller passes the time, so
 * tests drive it with a fake clock.
 */
import type { PeerReport } from '../../api/status-schema.js';
import type { PeerState } from '../../core/transport.js';

/** What one sample reads of a peer: its counters now, and what carries it. */
export type LinkCounters = Pick<
  PeerReport,
  'node' | 'state' | 'transport' | 'rttMs' | 'txBytes' | 'rxBytes' | 'txPackets' | 'rxPackets' | 'lastSwitch' | 'downReason'
>;

export interface LinkHistoryOptions {
  /** How far back samples are kept (default 15 min). */
  windowMs?: number;
  /** The sampling period the caller keeps; sizes the rings. */
  intervalMs: number;
  /** Peers tracked at most (default 256). */
  maxPeers?: number;
  /** Events kept at most, all peers together (default 512). */
  maxEvents?: number;
}

/** One peer's samples, oldest first, as columns; a rate or RTT not known is null. */
export interface LinkSeries {
  t: number[];
  txBps: (number | null)[];
  rxBps: (number | null)[];
  txPps: (number | null)[];
  rxPps: (number | null)[];
  rttMs: (number | null)[];
  state: PeerState[];
  transport: (string | null)[];
}

export type LinkEventKind = 'state' | 'switch' | 'removed';

/** A change seen between two samples (a switch carries the time the selector made it). */
export interface LinkEvent {
  t: number;
  peer: string;
  kind: LinkEventKind;
  from: string | null;
  to: string | null;
  /** The down reason for `state`, the selector's reason for `switch`. */
  reason: string | null;
}

export interface LinkHistoryJson {
  intervalMs: number;
  windowMs: number;
  peers: Record<string, LinkSeries>;
  events: LinkEvent[];
  /** Peers not tracked because maxPeers were. */
  untracked: number;
}

/** The latest rates of one peer (null before its second sample or after a counter reset). */
export interface LinkRates {
  txBps: number | null;
  rxBps: number | null;
  txPps: number | null;
  rxPps: number | null;
}

export const DEFAULT_HISTORY_WINDOW_MS = 15 * 60_000;
const DEFAULT_MAX_PEERS = 256;
const DEFAULT_MAX_EVENTS = 512;
/** Slack on top of windowMs / intervalMs: timers fire a little late, never early. */
const RING_SLACK = 2;

const STATES: readonly PeerState[] = ['unknown', 'up', 'down'];

/** One peer's ring: numeric columns in typed arrays (NaN: not known), written at `next`. */
class PeerRing {
  readonly t: Float64Array;
  readonly txBps: Float64Array;
  readonly rxBps: Float64Array;
  readonly txPps: Float64Array;
  readonly rxPps: Float64Array;
  readonly rttMs: Float64Array;
  readonly state: Uint8Array;
  readonly transport: (string | null)[];
  next = 0;
  size = 0;
  /** The previous sample's counters, for rates. */
  last: { t: number; txBytes: number; rxBytes: number; txPackets: number; rxPackets: number; state: PeerState; switchAtMs: number | undefined } | undefined;

  constructor(readonly capacity: number) {
    this.t = new Float64Array(capacity);
    this.txBps = new Float64Array(capacity);
    this.rxBps = new Float64Array(capacity);
    this.txPps = new Float64Array(capacity);
    this.rxPps = new Float64Array(capacity);
    this.rttMs = new Float64Array(capacity);
    this.state = new Uint8Array(capacity);
    this.transport = new Array<string | null>(capacity).fill(null);
  }

  /** Index of the i-th oldest sample. */
  at(i: number): number {
    return (this.next - this.size + i + this.capacity) % this.capacity;
  }
}

export class LinkHistory {
  readonly windowMs: number;
  readonly intervalMs: number;
  private readonly capacity: number;
  private readonly maxPeers: number;
  private readonly maxEvents: number;
  private readonly rings = new Map<string, PeerRing>();
  private readonly events: LinkEvent[] = [];
  private untracked = 0;

  constructor(options: LinkHistoryOptions) {
    if (!(options.intervalMs > 0)) throw new RangeError(`link history: intervalMs must be > 0, got ${options.intervalMs}`);
    this.windowMs = options.windowMs ?? DEFAULT_HISTORY_WINDOW_MS;
    this.intervalMs = options.intervalMs;
    this.capacity = Math.ceil(this.windowMs / this.intervalMs) + RING_SLACK;
    this.maxPeers = options.maxPeers ?? DEFAULT_MAX_PEERS;
    this.maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
  }

  /** Records one sample of every peer at wall-clock `tMs`; peers absent from it are forgotten. */
  add(tMs: number, peers: readonly LinkCounters[]): void {
    const present = new Set(peers.map((p) => p.node));
    for (const [node, ring] of this.rings) {
      if (present.has(node)) continue;
      this.rings.delete(node);
      this.event({ t: tMs, peer: node, kind: 'removed', from: ring.last?.state ?? null, to: null, reason: null });
    }
    let untracked = 0;
    for (const p of peers) {
      let ring = this.rings.get(p.node);
      if (ring === undefined) {
        if (this.rings.size >= this.maxPeers) {
          untracked++;
          continue;
        }
        ring = new PeerRing(this.capacity);
        this.rings.set(p.node, ring);
      }
      this.write(ring, tMs, p);
    }
    this.untracked = untracked;
    this.trimEvents(tMs);
  }

  /** The newest rates of `peer`, undefined when it has no sample. */
  latest(peer: string): LinkRates | undefined {
    const ring = this.rings.get(peer);
    if (ring === undefined || ring.size === 0) return undefined;
    const i = ring.at(ring.size - 1);
    return { txBps: known(ring.txBps[i]), rxBps: known(ring.rxBps[i]), txPps: known(ring.txPps[i]), rxPps: known(ring.rxPps[i]) };
  }

  /** Samples newer than `sinceMs` (default: the whole window before `nowMs`) and the events after it. */
  toJSON(nowMs: number, sinceMs?: number): LinkHistoryJson {
    const from = Math.max(nowMs - this.windowMs, sinceMs ?? Number.NEGATIVE_INFINITY);
    const peers: Record<string, LinkSeries> = {};
    for (const [node, ring] of this.rings) {
      const s: LinkSeries = { t: [], txBps: [], rxBps: [], txPps: [], rxPps: [], rttMs: [], state: [], transport: [] };
      for (let k = 0; k < ring.size; k++) {
        const i = ring.at(k);
        const t = ring.t[i] ?? 0;
        if (t <= from) continue;
        s.t.push(t);
        s.txBps.push(known(ring.txBps[i]));
        s.rxBps.push(known(ring.rxBps[i]));
        s.txPps.push(known(ring.txPps[i]));
        s.rxPps.push(known(ring.rxPps[i]));
        s.rttMs.push(known(ring.rttMs[i]));
        s.state.push(STATES[ring.state[i] ?? 0] ?? 'unknown');
        s.transport.push(ring.transport[i] ?? null);
      }
      peers[node] = s;
    }
    return {
      intervalMs: this.intervalMs,
      windowMs: this.windowMs,
      peers,
      events: this.events.filter((e) => e.t > from),
      untracked: this.untracked,
    };
  }

  private write(ring: PeerRing, tMs: number, p: LinkCounters): void {
    const i = ring.next;
    const last = ring.last;
    const dtS = last === undefined ? 0 : (tMs - last.t) / 1000;
    // A counter that went down means they were reset (the peer removed and added again
    // between two samples): no rates for this sample rather than a wrong one.
    const valid = last !== undefined && dtS > 0 && p.txBytes >= last.txBytes && p.rxBytes >= last.rxBytes &&
      p.txPackets >= last.txPackets && p.rxPackets >= last.rxPackets;
    const rate = (now: number, before: number, bits: number): number => (valid ? ((now - before) * bits) / dtS : Number.NaN);
    ring.t[i] = tMs;
    ring.txBps[i] = rate(p.txBytes, last?.txBytes ?? 0, 8);
    ring.rxBps[i] = rate(p.rxBytes, last?.rxBytes ?? 0, 8);
    ring.txPps[i] = rate(p.txPackets, last?.txPackets ?? 0, 1);
    ring.rxPps[i] = rate(p.rxPackets, last?.rxPackets ?? 0, 1);
    ring.rttMs[i] = p.rttMs ?? Number.NaN;
    ring.state[i] = STATES.indexOf(p.state);
    ring.transport[i] = p.transport ?? null;
    ring.next = (i + 1) % ring.capacity;
    ring.size = Math.min(ring.size + 1, ring.capacity);

    if (last !== undefined && last.state !== p.state) {
      this.event({ t: tMs, peer: p.node, kind: 'state', from: last.state, to: p.state, reason: p.state === 'up' ? null : p.downReason ?? null });
    }
    // Only the newest switch is in the status: two within one interval show as the second.
    const sw = p.lastSwitch;
    if (sw !== undefined && sw.atMs !== last?.switchAtMs && (last !== undefined || tMs - sw.atMs <= this.windowMs)) {
      this.event({ t: sw.atMs, peer: p.node, kind: 'switch', from: sw.from, to: sw.to, reason: sw.reason });
    }
    ring.last = {
      t: tMs, txBytes: p.txBytes, rxBytes: p.rxBytes, txPackets: p.txPackets, rxPackets: p.rxPackets,
      state: p.state, switchAtMs: sw?.atMs,
    };
  }

  /** Keeps events in time order: a switch is stamped when the selector made it, before the sample that saw it. */
  private event(e: LinkEvent): void {
    let at = this.events.length;
    while (at > 0 && (this.events[at - 1]?.t ?? 0) > e.t) at--;
    this.events.splice(at, 0, e);
    if (this.events.length > this.maxEvents) this.events.splice(0, this.events.length - this.maxEvents);
  }

  private trimEvents(nowMs: number): void {
    let old = 0;
    while (old < this.events.length && (this.events[old]?.t ?? 0) <= nowMs - this.windowMs) old++;
    if (old > 0) this.events.splice(0, old);
  }
}

function known(value: number | undefined): number | null {
  return value === undefined || Number.isNaN(value) ? null : value;
}
