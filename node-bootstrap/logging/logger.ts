/**
 * The process's one root logger (pino) and its component children. The only importer of pino
 * and pino-pretty; everything else sees core/logger.ts's `Logger` (fields: core/log-fields.ts).
 *
 * Output: JSON lines, synchronous (control-plane volume only, and nothing is lost on exit), to
 * stderr by default. When the destination is a terminal, pino-pretty renders it instead.
 */
import { createRequire } from 'node:module';
import { pino } from 'pino';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import type { LogFields } from '../../core/log-fields.js';
import type { Logger } from '../../core/logger.js';
import type { LogLevel } from '../config/node-config.js';

export type LogDestination = 'stderr' | 'stdout';

export interface RootLoggerOptions {
  level: LogLevel;
  /** Default stderr. */
  destination?: LogDestination;
  /** Pretty output; default: when the destination is a terminal and pino-pretty is installed. */
  pretty?: boolean;
  /** Bound on every line (e.g. { node }). */
  base?: Record<string, unknown>;
  /** A stream instead of the file descriptor (tests). */
  stream?: DestinationStream;
}

/** A root logger plus what the process needs to control it. */
export interface RootLogger {
  readonly log: Logger;
  /** Changes the level at run time (a config reload). */
  setLevel(level: LogLevel): void;
  /** Flushes buffered output (sync destinations: nothing to do). */
  flush(): void;
}

export function createRootLogger(options: RootLoggerOptions): RootLogger {
  const fd = options.destination === 'stdout' ? 1 : 2;
  const stream = options.stream ?? destinationFor(fd, options.pretty);
  const root: PinoLogger = pino(
    {
      level: options.level,
      base: { pid: process.pid, ...(options.base ?? {}) },
      // Fixed names for the standard fields; errors under `err` whatever they were passed as.
      serializers: { err: pino.stdSerializers.err },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
  return {
    log: root,
    setLevel(level) {
      root.level = level;
    },
    flush() {
      root.flush();
    },
  };
}

/** A child for one component: every line carries { component }. */
export function componentLogger(parent: Logger, component: string, bindings: LogFields = {}): Logger {
  return parent.child({ component, ...bindings });
}

function destinationFor(fd: 1 | 2, pretty: boolean | undefined): DestinationStream {
  const wantPretty = pretty ?? (fd === 1 ? process.stdout.isTTY : process.stderr.isTTY) === true;
  if (wantPretty) {
    const prettyStream = loadPretty(fd);
    if (prettyStream !== undefined) return prettyStream;
  }
  return pino.destination({ dest: fd, sync: true });
}

type PrettyFactory = (options: { destination: number; sync: boolean; colorize: boolean; translateTime: string; ignore: string }) => DestinationStream;

/** pino-pretty is optional: without it, JSON. */
function loadPretty(fd: 1 | 2): DestinationStream | undefined {
  try {
    const require = createRequire(import.meta.url);
    const mod = require('pino-pretty') as PrettyFactory | { default: PrettyFactory };
    const factory = typeof mod === 'function' ? mod : mod.default;
    return factory({ destination: fd, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  } catch {
    return undefined;
  }
}
