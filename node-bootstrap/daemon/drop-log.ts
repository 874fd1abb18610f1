/**
 * Drops at debug, rate-limited: once a second, one line per reason whose counter moved, with
 * how many since the last line and, where the router kept it, the last dropped packet's
 * addresses (`{ reason, count, src, dst }`, 'packets dropped'). The data path only counts;
 * this reads the counters from the side, so nothing is logged per packet.
 */
import type { Logger } from '../../core/logger.js';

export const DROP_LOG_INTERVAL_MS = 1000;

export interface DropLogOptions {
  /** Drop counters by reason now (running totals). */
  drops: () => Readonly<Record<string, number>> | undefined;
  /** The last dropped packet's inner addresses for a reason, when known. */
  lastDropped?: (reason: string) => { readonly src: string; readonly dst: string } | undefined;
  log: Logger;
  /** Default DROP_LOG_INTERVAL_MS. */
  intervalMs?: number;
}

export interface DropLog {
  /** Reads the counters and logs what moved (the timer calls this; tests call it directly). */
  tick(): void;
  /** Stops the timer. Safe twice. */
  close(): void;
}

export function startDropLog(options: DropLogOptions): DropLog {
  const last = new Map<string, number>();
  const tick = (): void => {
    const now = options.drops();
    if (now === undefined) return;
    const debug = options.log.isLevelEnabled('debug');
    for (const [reason, total] of Object.entries(now)) {
      const since = total - (last.get(reason) ?? 0);
      last.set(reason, total);
      if (since <= 0 || !debug) continue;
      const sample = options.lastDropped?.(reason);
      options.log.debug({ reason, count: since, src: sample?.src, dst: sample?.dst }, 'packets dropped');
    }
  };
  const timer = setInterval(tick, options.intervalMs ?? DROP_LOG_INTERVAL_MS);
  timer.unref();
  return {
    tick,
    close() {
      clearInterval(timer);
    },
  };
}
