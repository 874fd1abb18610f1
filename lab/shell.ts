/**
 * Running commands for the namespace harness: argv arrays through execFile (never a shell), in
 * the root namespace or inside one with `ip netns exec NS`. Every call has a timeout; a failure
 * throws a CommandError that carries the command line, the exit code and stderr.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { readdirSync } from 'node:fs';

export const DEFAULT_TIMEOUT_MS = 20_000;
const MAX_BUFFER_BYTES = 64 * 1024 * 1024;

export interface RunOptions {
  /** Killed (SIGKILL) after this long; default DEFAULT_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Written to the command's stdin. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** A command that failed, timed out or could not start. */
export class CommandError extends Error {
  readonly code = 'ECOMMAND';
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly stdout: string,
    readonly stderr: string,
    readonly timedOut: boolean,
    options?: { cause: unknown },
  ) {
    const why = timedOut
      ? 'timed out'
      : exitCode !== null
        ? `exited with ${exitCode}`
        : signal !== null
          ? `killed by ${signal}`
          : 'failed to start';
    const detail = stderr.trim() || stdout.trim().slice(-2000);
    super(`command ${why}: ${argv.join(' ')}${detail === '' ? '' : `: ${detail}`}`, options);
    this.name = 'CommandError';
  }
}

/** argv that runs `argv` inside namespace `ns` (or unchanged for the root namespace, ns = null). */
export function inNs(ns: string | null, argv: readonly string[]): string[] {
  return ns === null ? [...argv] : ['ip', 'netns', 'exec', ns, ...argv];
}

/** Runs argv; resolves with its output, rejects with a CommandError. */
export function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new Error('run: empty argv'));
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: MAX_BUFFER_BYTES,
        encoding: 'utf8',
        ...(options.env === undefined ? {} : { env: options.env }),
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ stdout, stderr });
          return;
        }
        const exitCode = typeof error.code === 'number' ? error.code : null;
        const signal = error.signal ?? null;
        const timedOut = error.killed === true && signal === 'SIGKILL';
        reject(new CommandError(argv, exitCode, signal, stdout, stderr, timedOut, { cause: error }));
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Runs argv inside namespace `ns` (null: the root namespace). */
export function runIn(
  ns: string | null,
  argv: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return run(inNs(ns, argv), options);
}

export interface Outcome extends RunResult {
  /** 0 on success; the exit code otherwise (-1 when killed or not started). */
  exitCode: number;
  timedOut: boolean;
}

/** Like runIn, but a non-zero exit is an answer, not an error (ping to an unreachable host). */
export async function outcomeIn(
  ns: string | null,
  argv: readonly string[],
  options: RunOptions = {},
): Promise<Outcome> {
  try {
    const r = await runIn(ns, argv, options);
    return { ...r, exitCode: 0, timedOut: false };
  } catch (error: unknown) {
    if (!(error instanceof CommandError)) throw error;
    return {
      stdout: error.stdout,
      stderr: error.stderr,
      exitCode: error.exitCode ?? -1,
      timedOut: error.timedOut,
    };
  }
}

/**
 * Synchronous variant for exit handlers (process 'exit' allows no async work). Never throws;
 * returns whether the command succeeded.
 */
export function runSyncQuiet(argv: readonly string[], timeoutMs = 5_000): boolean {
  const [file, ...args] = argv;
  if (file === undefined) return false;
  try {
    execFileSync(file, args, { timeout: timeoutMs, stdio: 'ignore', killSignal: 'SIGKILL' });
    return true;
  } catch {
    return false;
  }
}

export interface SpawnOptions {
  stdio?: StdioOptions;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Starts argv inside `ns` as the leader of a new process group, so that the group (the
 * `ip netns exec` wrapper is replaced by the command via exec, children included) can be
 * signalled with `signalGroup`. The caller owns the child and must end it.
 */
export function spawnIn(
  ns: string | null,
  argv: readonly string[],
  options: SpawnOptions = {},
): ChildProcess {
  const [file, ...args] = inNs(ns, argv);
  if (file === undefined) throw new Error('spawnIn: empty argv');
  return spawn(file, args, {
    detached: true,
    stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
}

/** Sends `signal` to the process group led by `pid`; false when it is already gone. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * The PIDs (other than this process's) for which `matches` holds; `matches` may read /proc/PID/*:
 * a process that ends while it looks is skipped.
 */
export function pidsWhere(matches: (pid: number) => boolean): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    try {
      if (matches(pid)) found.push(pid);
    } catch {
      // ended while we looked
    }
  }
  return found;
}

/** Whether a process with this PID exists (signal 0). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error: unknown) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Waits until `child` exits, at most `timeoutMs`; resolves with whether it exited. A child that
 * already exited resolves at once.
 */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** SIGTERM to the group, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  if (child.exitCode !== null || child.signalCode !== null) {
    signalGroup(pid, 'SIGKILL');
    return;
  }
  signalGroup(pid, 'SIGTERM');
  if (await waitExit(child, graceMs)) {
    signalGroup(pid, 'SIGKILL');
    return;
  }
  signalGroup(pid, 'SIGKILL');
  await waitExit(child, 2_000);
}

/** Polls `check` every `intervalMs` until it returns a value other than undefined, or times out. */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const maxRounds = Math.ceil(timeoutMs / intervalMs) + 1;
  let lastError: unknown;
  for (let round = 0; round < maxRounds; round++) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error: unknown) {
      lastError = error;
    }
    if (Date.now() >= deadline) break;
    await sleep(intervalMs);
  }
  const suffix = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${suffix}`, {
    cause: lastError,
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
