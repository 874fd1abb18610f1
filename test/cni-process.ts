/**
 * Running CNI plugins as real processes in tests: environment and stdin in, stdout, exit code
 * and the parsed JSON out, optionally SIGKILLed after a delay (crash tests).
 *
 * The podtun-ipam executable is named in ONE place, podtunIpamCommand(): the single executable
 * dist/cni-bin/podtun-ipam that `npm run build` makes and `podtun run` installs.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: test/ (or dist/test/ when built) sits under it. */
function findRepoRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const up = join(here, '..');
  return existsSync(join(up, 'package.json')) ? up : join(up, '..');
}

const DEFAULT_TIMEOUT_MS = 15_000;

/** Where `npm run build` puts the single executables (cni/build-executables.mjs). */
export function cniExecutablesBuildDir(): string {
  return join(findRepoRoot(), 'dist', 'cni-bin');
}

/** argv that runs podtun-ipam: the shipped single executable, no node involved. */
export function podtunIpamCommand(): string[] {
  return [join(cniExecutablesBuildDir(), 'podtun-ipam')];
}

/** podtunIpamCommand(), after checking the build made it. */
export function preparePodtunIpam(): string[] {
  const command = podtunIpamCommand();
  if (!existsSync(command[0] ?? '')) throw new Error(`${command[0] ?? ''} is missing: run \`npm run build\` (it builds the CNI executables)`);
  return command;
}

export interface PluginRunOptions {
  /** SIGKILL the plugin this long after spawning it (crash tests). */
  killAfterMs?: number;
  /** Killed and rejected after this long; default 15 s. */
  timeoutMs?: number;
  /** Called once the process runs, with its PID and a SIGKILL (crash tests that kill on an event). */
  onSpawn?: (pid: number, kill: () => void) => void;
}

export interface PluginRun {
  stdout: string;
  stderr: string;
  /** null when killed by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** stdout parsed as JSON; undefined when empty or not JSON. */
  json: unknown;
}

/**
 * Runs a plugin (an executable path or argv) with exactly `env` (plus PATH) and `stdin`, as a
 * runtime does: CNI_* in the environment, the config on stdin.
 */
export function runPlugin(
  command: string | readonly string[],
  env: Readonly<Record<string, string>>,
  stdin: string,
  options: PluginRunOptions = {},
): Promise<PluginRun> {
  const argv = typeof command === 'string' ? [command] : [...command];
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new Error('runPlugin: empty command'));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdin.on('error', () => undefined);
    if (child.pid !== undefined) options.onSpawn?.(child.pid, () => child.kill('SIGKILL'));
    child.stdin.end(stdin);
    const killTimer = options.killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timeout = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${argv.join(' ')} did not finish within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timeout);
      if (killTimer !== undefined) clearTimeout(killTimer);
      reject(err);
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timeout);
      if (killTimer !== undefined) clearTimeout(killTimer);
      let json: unknown;
      try {
        json = stdout.trim() === '' ? undefined : JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ stdout, stderr, exitCode, signal, json });
    });
  });
}

/** The CNI_* environment of one invocation. */
export function cniEnv(command: string, fields: { containerId?: string; netns?: string; ifName?: string; path?: string; args?: string } = {}): Record<string, string> {
  const env: Record<string, string> = { CNI_COMMAND: command };
  if (fields.containerId !== undefined) env['CNI_CONTAINERID'] = fields.containerId;
  if (fields.netns !== undefined) env['CNI_NETNS'] = fields.netns;
  if (fields.ifName !== undefined) env['CNI_IFNAME'] = fields.ifName;
  if (fields.path !== undefined) env['CNI_PATH'] = fields.path;
  if (fields.args !== undefined) env['CNI_ARGS'] = fields.args;
  return env;
}
