/**
 * Liveness of one peer, as a pure state machine driven by the caller's clock (ms).
 *
 *   unknown --reply--> up --no reply for deadAfterMs--> down --reply--> up
 *   unknown --no reply for deadAfterMs after tracking began--> down
 *
 * The owner calls `tick(now)` often (at least every probeIntervalMs): it sends a probe whenever
 * `tick` returns a sequence number, feeds replies to `onProbeReply`, and other traffic from the
 * peer to `onInbound`. The state answers "do our datagrams reach the peer?", so only probe
 * replies count for it: traffic from the peer proves that it reaches us, not that we reach it,
 * and with UDP blocked one way (a node that can receive but not send) the peer must still go
 * down so that the transport selector moves it to WebSocket. Inbound traffic only updates
 * `lastSeenMs` for status.
 * RTT is smoothed like TCP's srtt (RFC 6298, alpha 1/8).
 */
import type { PeerState } from '../../core/transport.js';

export const DEFAULT_PROBE_INTERVAL_MS = 1000;
export const DEFAULT_DEAD_AFTER_MS = 3000;

/** Replies to probes older than this many sequence numbers are ignored as stale. */
const REPLY_SEQ_WINDOW = 64;
const SRTT_GAIN = 1 / 8;

export interface LivenessConfig {
  probeIntervalMs: number;
  deadAfterMs: number;
}

export interface LivenessChange {
  state: PeerState;
  previous: PeerState;
  /** Smoothed RTT at the change, ms (undefined until the first reply). */
  rttMs: number | undefined;
  lastSeenMs: number | undefined;
}

export type LivenessListener = (change: LivenessChange) => void;

export class PeerLiveness {
  private stateNow: PeerState = 'unknown';
  private srttMs: number | undefined;
  private lastSeen: number | undefined;
  private lastReply: number | undefined;
  private readonly sinceMs: number;
  private lastProbeMs = Number.NEGATIVE_INFINITY;
  private lastSeq = 0;

  constructor(
    private readonly config: LivenessConfig,
    nowMs: number,
    private readonly onChange: LivenessListener,
  ) {
    this.sinceMs = nowMs;
  }

  get state(): PeerState {
    return this.stateNow;
  }

  /** Smoothed RTT, ms; undefined until the first reply. */
  get rttMs(): number | undefined {
    return this.srttMs;
  }

  /** When anything last arrived from the peer (reply or inbound traffic). */
  get lastSeenMs(): number | undefined {
    return this.lastSeen;
  }

  /**
   * Checks the deadline, then says whether a probe is due: returns its sequence number (the
   * caller sends it now, stamped with `nowMs`), or -1.
   */
  tick(nowMs: number): number {
    const quietSince = this.lastReply ?? this.sinceMs;
    if (this.stateNow !== 'down' && nowMs - quietSince >= this.config.deadAfterMs) {
      this.change('down');
    }
    if (nowMs - this.lastProbeMs < this.config.probeIntervalMs) return -1;
    this.lastProbeMs = nowMs;
    this.lastSeq = (this.lastSeq + 1) >>> 0;
    if (this.lastSeq === 0) this.lastSeq = 1;
    return this.lastSeq;
  }

  /**
   * A reply to probe `seq`, which was stamped `sentAtMs`. Returns false (and changes nothing)
   * for a reply that does not match a recent probe.
   */
  onProbeReply(seq: number, sentAtMs: number, nowMs: number): boolean {
    const age = (this.lastSeq - seq) >>> 0;
    if (seq === 0 || age >= REPLY_SEQ_WINDOW) return false;
    const sampleMs = nowMs - sentAtMs;
    if (!Number.isFinite(sampleMs) || sampleMs < 0 || sampleMs > nowMs - this.sinceMs) return false;
    this.srttMs = this.srttMs === undefined ? sampleMs : this.srttMs + SRTT_GAIN * (sampleMs - this.srttMs);
    this.lastSeen = nowMs;
    this.lastReply = nowMs;
    if (this.stateNow !== 'up') this.change('up');
    return true;
  }

  /** Any other traffic from the peer (data, its probes): recorded as seen, state unchanged. */
  onInbound(nowMs: number): void {
    if (this.lastSeen === undefined || nowMs > this.lastSeen) this.lastSeen = nowMs;
  }

  private change(state: PeerState): void {
    const previous = this.stateNow;
    this.stateNow = state;
    this.onChange({ state, previous, rttMs: this.srttMs, lastSeenMs: this.lastSeen });
  }
}
