/**
 * Kernel plumbing for the addon's tests: commands with timeouts, throwaway namespaces named
 * `ptnat-<random>`, Node scripts run inside them. Nothing here touches the root namespace's
 * addresses or routes.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';

/** Why the kernel tests cannot run here, or undefined. */
export function kernelSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'TUN tests need Linux';
  if (process.getuid?.() !== 0) return 'TUN devices and namespaces need root (CI runs these tests as root)';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  return undefined;
}

/** Runs argv (no shell); rejects with stderr on a non-zero exit or after `timeoutMs`. */
export function run(argv: readonly string[], timeoutMs = 10_000): Promise<string> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(file ?? '', args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout);
      else reject(new Error(`${argv.join(' ')} failed: ${stderr.trim() || error.message}`, { cause: error }));
    });
  });
}

/** A fresh name with the test prefix; `tag` keeps TUN names apart (<= 15 bytes in total). */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(3).toString('hex')}`;
}

export async function createNs(ns: string): Promise<void> {
  await run(['ip', 'netns', 'add', ns]);
  await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
}

/** Deletes namespaces, ignoring those already gone. */
export async function deleteNs(namespaces: readonly string[]): Promise<void> {
  for (const ns of namespaces) await run(['ip', 'netns', 'del', ns]).catch(() => undefined);
}

/** Moves a device of the root namespace into `ns`, then configures it there. */
export async function moveIntoNs(dev: string, ns: string, setup: readonly (readonly string[])[]): Promise<void> {
  await run(['ip', 'link', 'set', 'dev', dev, 'netns', ns]);
  for (const args of setup) await run(['ip', '-n', ns, ...args]);
}

export interface NsScript {
  /** Resolves with stdout when the script exits 0; rejects otherwise or after the timeout. */
  done: Promise<string>;
  /** Resolves when the script printed `marker` (e.g. "listening"). */
  printed(marker: string): Promise<void>;
  kill(): void;
}

/** Runs a CommonJS Node script inside `ns`; killed by PID (SIGKILL) after `timeoutMs`. */
export function nodeInNs(ns: string, script: string, timeoutMs: number): NsScript {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: { marker: string; resolve: () => void }[] = [];
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    for (const w of waiters) if (stdout.includes(w.marker)) w.resolve();
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  };
  const timer = setTimeout(kill, timeoutMs);
  const done = new Promise<string>((resolve, reject) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`script in ${ns} ended with ${code ?? signal}: ${stderr.trim()}`));
    });
  });
  const printed = (marker: string): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (stdout.includes(marker)) resolve();
      else waiters.push({ marker, resolve });
      done.then(() => reject(new Error(`script in ${ns} exited before printing ${marker}`)), reject);
    });
  return { done, printed, kill };
}
