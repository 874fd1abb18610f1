/**
 * Pacing and reporting of retries against a control plane that does not answer (etcd, the
 * Kubernetes API): exponential backoff with jitter, and one warning per run of failures.
 */
import type { LogFields } from '../core/log-fields.js';
import type { Logger } from '../core/logger.js';

/**
 * The pause before retry number `attempt` (1-based): minMs doubled per attempt, capped at capMs,
 * then jittered to between half and all of it so that nodes that failed together do not retry in
 * step.
 */
export function backoffMs(attempt: number, minMs: number, capMs: number, random: () => number = Math.random): number {
  const raw = Math.min(Math.max(capMs, 1), minMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 20));
  return raw / 2 + (random() * raw) / 2;
}

/** Failure number `attempt` of a run: the first at warn, the rest at debug (a long outage is one warning). */
export function logRetry(log: Logger, attempt: number, reason: string, msg: string, fields: LogFields = {}): void {
  const line: LogFields = { ...fields, attempt, reason };
  if (attempt === 1) log.warn(line, msg);
  else log.debug(line, msg);
}
