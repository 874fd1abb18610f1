/**
 * Drops at debug, rate-limited: once a second, one line per reason whose counter moved, with
 * how many since the last line (`{ reason, count }`, 'packets dropped'). The data path only
 * counts; this reads the counters from the side, so nothing is logged per packet.
 */
import type { Logger } from '../../core/logger.js';

export const DROP_LOG_INTERVAL_MS = 1000;

export interface DropLogOptions {
  /** Drop counters by reason now (running totals). */
  drops: () => Readonly<Record<string, number>> | undefined;
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
      if (since > 0 && debug) options.log.debug({ reason, count: since }, 'packets dropped');
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
