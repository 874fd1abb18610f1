/**
 * The logging surface the core needs. pino's Logger satisfies it; only node-bootstrap imports
 * pino itself. Object first, message second: log.info({ node, subnet }, 'peer added').
 */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
  isLevelEnabled(level: string): boolean;
}
