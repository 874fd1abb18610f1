/**
 * The host-side probes `podtun doctor` runs: commands through execFile (never a shell) with a
 * hard timeout, sysctl reads from /proc/sys (per network namespace), a bounded TCP connect, and
 * the daemon's `GET /status` read against its schema. The host probes resolve with an answer and
 * never throw on a failing host, so one broken layer never hides the others; `status` rejects,
 * and the daemon check says why.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { fetchStatusReport } from '../../api/api-client.js';
import type { StatusReport } from '../../api/status-schema.js';

export interface ExecOutcome {
  /** 0 on success; the exit code otherwise; -1 when killed (timeout) or not started. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** What the checks need from the host; tests may swap any of them. */
export interface DoctorProbes {
  exec(argv: readonly string[], timeoutMs: number): Promise<ExecOutcome>;
  /** A /proc/sys value by path ("net/ipv4/ip_forward"), trimmed; undefined when unreadable. */
  sysctl(path: string): Promise<string | undefined>;
  /** Resolves with undefined when connected, else the reason. */
  tcpConnect(host: string, port: number, timeoutMs: number): Promise<string | undefined>;
  /** The daemon's report; rejects when it does not answer, is not ready, or is not a podtun status reply. */
  status(socketPath: string): Promise<StatusReport>;
}

const MAX_BUFFER_BYTES = 4 * 1024 * 1024;

export function execBounded(argv: readonly string[], timeoutMs: number): Promise<ExecOutcome> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.resolve({ code: -1, stdout: '', stderr: 'empty command' });
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_BUFFER_BYTES, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ code: 0, stdout, stderr });
          return;
        }
        const code = typeof error.code === 'number' ? error.code : -1;
        const why = error.killed === true ? `timed out after ${timeoutMs} ms` : error.message;
        resolve({ code, stdout, stderr: stderr.trim() === '' ? why : stderr });
      },
    );
    child.stdin?.end();
  });
}

/** Takes a slash path: interface names may hold dots ("net/ipv4/conf/pod.tun/rp_filter"). */
export async function readSysctl(path: string): Promise<string | undefined> {
  if (path.split('/').some((part) => part === '' || part === '..')) return undefined;
  try {
    return (await readFile(`/proc/sys/${path}`, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

export function tcpConnect(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (reason: string | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => done(undefined));
    socket.once('error', (err: Error) => done(err.message));
  });
}

/** fetchStatusReport with an outer bound (its own request timeout does not cover a stuck connect). */
export function statusWithin(socketPath: string, timeoutMs: number): Promise<StatusReport> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply from ${socketPath} within ${timeoutMs} ms`)), timeoutMs);
    fetchStatusReport(socketPath).then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

export const defaultProbes: DoctorProbes = {
  exec: execBounded,
  sysctl: readSysctl,
  tcpConnect,
  status: (socketPath) => statusWithin(socketPath, 3_000),
};
