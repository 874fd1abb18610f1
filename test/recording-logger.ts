/** A Logger (router/logger.ts) that keeps every line in memory, for assertions on log output. */
import type { Logger } from '../core/logger.js';

export interface LogLine {
  level: string;
  /** The line's fields, including the bindings of the child logger that wrote it. */
  obj: Record<string, unknown>;
  msg: string;
  /** performance.now() when written. */
  atMs: number;
}

export function recordingLogger(lines: LogLine[], bindings: Record<string, unknown> = {}): Logger {
  const at = (level: string) => (objOrMsg: object | string, msg?: string): void => {
    const atMs = performance.now();
    if (typeof objOrMsg === 'string') lines.push({ level, obj: { ...bindings }, msg: objOrMsg, atMs });
    else lines.push({ level, obj: { ...bindings, ...(objOrMsg as Record<string, unknown>) }, msg: msg ?? '', atMs });
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => recordingLogger(lines, { ...bindings, ...more }),
    isLevelEnabled: () => true,
  };
}

/** A Logger that drops everything, for tests that assert nothing about logs. */
export const quietLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => quietLogger,
  isLevelEnabled: () => false,
};
