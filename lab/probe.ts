/**
 * Driving probe-agent (probe-agent.ts) inside namespaces: one-shot runs and servers that are
 * awaited until they print {"event":"listening"}. The agent runs compiled
 * (dist/lab/probe-agent.js); `ensureProbeAgent` compiles it alone when missing or older
 * than its source, so the namespace tests do not depend on the whole build being clean.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { run, runIn, stopChild } from './shell.js';
import type { Cluster } from './cluster.js';

export interface SinkResult {
  bytes: number;
  sha256: string;
  peerAddress: string;
  peerPort: number;
  seconds: number;
}

export interface SendResult {
  bytes: number;
  sha256: string;
  seconds: number;
  localAddress: string;
}

export interface RttResult {
  count: number;
  connectMs: number;
  rttMs: { min: number; median: number; avg: number; max: number };
  localAddress: string;
}

export interface UdpListenResult {
  datagrams: number;
  bytes: number;
  sources: string[];
  firstHex: string;
}

export interface UdpSendResult {
  datagrams: number;
  bytes: number;
}

export type ProbeFlags = Readonly<Record<string, string | number>>;

export function probeAgentPath(repoRoot: string): string {
  return join(repoRoot, 'dist', 'lab', 'probe-agent.js');
}

/** Compiles probe-agent.ts on its own if the compiled file is missing or stale. */
export async function ensureProbeAgent(repoRoot: string): Promise<string> {
  const out = probeAgentPath(repoRoot);
  const src = join(repoRoot, 'lab', 'probe-agent.ts');
  if (existsSync(out) && (!existsSync(src) || statSync(out).mtimeMs >= statSync(src).mtimeMs)) {
    return out;
  }
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  await run(
    [
      process.execPath, tsc,
      '--outDir', join(repoRoot, 'dist', 'lab'),
      '--rootDir', join(repoRoot, 'lab'),
      '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022',
      '--strict', '--skipLibCheck', '--types', 'node',
      src,
    ],
    { timeoutMs: 120_000, cwd: repoRoot },
  );
  return out;
}

function flagArgs(flags: ProbeFlags): string[] {
  return Object.entries(flags).flatMap(([k, v]) => [`--${k}`, String(v)]);
}

function lastJson(stdout: string, what: string): unknown {
  const lines = stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  const last = lines[lines.length - 1];
  if (last === undefined) throw new Error(`${what}: no JSON output (stdout: ${stdout.slice(-500)})`);
  const parsed = JSON.parse(last) as { error?: unknown };
  if (typeof parsed.error === 'string') throw new Error(`${what}: ${parsed.error}`);
  return parsed;
}

/** Runs one probe-agent mode inside `ns` to completion; returns its result line. */
export async function probe<T>(
  cluster: Cluster,
  ns: string,
  mode: string,
  flags: ProbeFlags,
): Promise<T> {
  const timeoutMs = Number(flags['timeout-ms'] ?? 30_000);
  const agent = probeAgentPath(cluster.repoRoot);
  const what = `probe-agent ${mode} in ${ns}`;
  try {
    const { stdout } = await runIn(ns, ['node', agent, mode, ...flagArgs(flags)], {
      timeoutMs: timeoutMs + 10_000,
    });
    return lastJson(stdout, what) as T;
  } catch (error: unknown) {
    if (error instanceof Error && 'stdout' in error && typeof error.stdout === 'string') {
      lastJson(error.stdout, what);
    }
    throw error;
  }
}

export interface ProbeServer<T> {
  readonly child: ChildProcess;
  /** The result line, once the mode finishes. */
  readonly result: Promise<T>;
  stop(): Promise<void>;
}

/** Starts a server mode (tcp-sink, echo-server, udp-listen) and waits until it listens. */
export async function startProbe<T>(
  cluster: Cluster,
  ns: string,
  mode: string,
  flags: ProbeFlags,
): Promise<ProbeServer<T>> {
  const agent = probeAgentPath(cluster.repoRoot);
  const what = `probe-agent ${mode} in ${ns}`;
  const child = cluster.spawnIn(ns, ['node', agent, mode, ...flagArgs(flags)]);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    if (stderr.length < 20_000) stderr += d;
  });
  const listening = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not listening after 10 s`)), 10_000);
    child.stdout?.on('data', (d: string) => {
      stdout += d;
      if (stdout.includes('"event":"listening"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`${what} exited before listening: ${stdout}${stderr}`));
    });
  });
  const result = new Promise<T>((resolve, reject) => {
    child.once('exit', () => {
      try {
        resolve(lastJson(stdout, what) as T);
      } catch (error: unknown) {
        reject(error instanceof Error ? new Error(`${error.message} ${stderr}`) : error);
      }
    });
  });
  // Unobserved rejections are reported through `result` by whoever awaits it.
  result.catch(() => undefined);
  await listening;
  return { child, result, stop: () => stopChild(child, 1_000) };
}
