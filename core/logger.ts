/**
 * The logging surface the core needs. pino's Logger satisfies it; only node-bootstrap imports
 * pino itself. Object first, message second: log.info({ peer, subnet }, 'peer added'); the
 * object may only use the fields of core/log-fields.ts.
 */
import type { LogFields } from './log-fields.js';

export interface LogFn {
  (obj: LogFields, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: LogFields): Logger;
  isLevelEnabled(level: string): boolean;
}
