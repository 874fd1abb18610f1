/**
 * Running ws-attack-agent.ts (compiled with the build: dist/lab/ws-attack-agent.js) inside a
 * namespace of a cluster: one-shot modes to their result, long ones (flood, relay) started and
 * ended by the test, their progress events readable while they run.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Cluster } from './cluster.js';
import { findRepoRoot } from './cluster.js';
import { stopChild, waitExit } from './shell.js';

export type AgentFlags = Readonly<Record<string, string | number>>;

export function wsAttackAgentPath(repoRoot: string): string {
  return join(repoRoot, 'dist', 'lab', 'ws-attack-agent.js');
}

/** Why the agent cannot run here, or undefined. */
export function wsAttackSkipReason(): string | undefined {
  return existsSync(wsAttackAgentPath(findRepoRoot())) ? undefined : 'dist/lab/ws-attack-agent.js is missing: run `npm run build` first';
}

export interface AgentRun<T> {
  readonly child: ChildProcess;
  /** Every JSON line with an "event" so far. */
  readonly events: Array<Record<string, unknown>>;
  /** The first event named `name` (already seen or to come). */
  event(name: string, timeoutMs: number): Promise<Record<string, unknown>>;
  /** The result line, once the mode ends. */
  readonly result: Promise<T>;
  /** SIGTERM (the mode reports what it has), then the result; SIGKILL if it does not end in 5 s. */
  stop(): Promise<T>;
}

export interface AgentOptions {
  /** The agent's open-files soft limit (`prlimit --nofile`); its hard limit stays, or is `hard`. */
  nofile?: number;
  hard?: number;
}

/** Starts `mode` in `ns`. */
export function startWsAttack<T>(cluster: Cluster, ns: string, mode: string, flags: AgentFlags, options: AgentOptions = {}): AgentRun<T> {
  const argv = [
    ...(options.nofile === undefined ? [] : ['prlimit', `--nofile=${options.nofile}:${limitText(options.hard ?? options.nofile)}`]),
    'node', wsAttackAgentPath(cluster.repoRoot), mode,
    ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, String(v)]),
  ];
  const child = cluster.spawnIn(ns, argv);
  const what = `ws-attack-agent ${mode} in ${ns}`;
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<{ name: string; resolve: (e: Record<string, unknown>) => void }> = [];
  let last: Record<string, unknown> | undefined;
  let pending = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    if (stderr.length < 20_000) stderr += d;
  });
  child.stdout?.on('data', (d: string) => {
    pending += d;
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (typeof parsed['event'] === 'string') {
        events.push(parsed);
        for (const w of waiters.filter((x) => x.name === parsed['event'])) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(parsed);
        }
      } else {
        last = parsed;
      }
    }
  });
  const result = new Promise<T>((resolve, reject) => {
    child.once('close', (code, signal) => {
      if (last !== undefined && typeof last['error'] !== 'string') resolve(last as T);
      else reject(new Error(`${what}: ${typeof last?.['error'] === 'string' ? last['error'] : `exited ${code ?? signal ?? '?'}`} ${stderr}`));
    });
  });
  result.catch(() => undefined);
  return {
    child,
    events,
    result,
    event(name, timeoutMs) {
      const seen = events.find((e) => e['event'] === name);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${what}: no "${name}" event within ${timeoutMs} ms; ${stderr}`)), timeoutMs);
        waiters.push({ name, resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        } });
        void result.catch((err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        });
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(child.pid, 'SIGTERM');
        if (!(await waitExit(child, 5_000))) await stopChild(child, 1_000);
      }
      return result;
    },
  };
}

/** Runs a one-shot mode (replay, client) in `ns` to its result. */
export function runWsAttack<T>(cluster: Cluster, ns: string, mode: string, flags: AgentFlags, options: AgentOptions = {}): Promise<T> {
  return startWsAttack<T>(cluster, ns, mode, flags, options).result;
}

function limitText(n: number): string {
  return Number.isFinite(n) ? String(n) : 'unlimited';
}
