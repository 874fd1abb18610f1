/**
 * A real, throwaway etcd for tests: /usr/bin/etcd (Debian etcd-server, 3.4) on 127.0.0.1 with a
 * free client and peer port and its data in a temp dir. `stop()` and `kill()` end the process
 * but keep the data; `restart()` starts it again on the same data dir and ports (leases and
 * records survive, as in a real etcd restart); `destroy()` ends it and removes the data. The
 * process is always ended by its PID.
 *
 * Also a tiny client for what tests need beyond the Registry seam (a record written by "an
 * operator", a compaction), over etcd's JSON gateway, so tests need no etcd client library.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ETCD_BINARY = '/usr/bin/etcd';
/** What etcd logs once it serves clients. */
export const ETCD_READY_LINE = 'ready to serve client requests';
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const LOG_KEEP_CHARS = 16_000;

export interface EtcdServer {
  /** "http://127.0.0.1:PORT". */
  readonly endpoint: string;
  /** PID of the running process; undefined while stopped. */
  readonly pid: number | undefined;
  readonly dataDir: string;
  /** SIGTERM, wait for exit; the data stays. Safe when already stopped. */
  stop(): Promise<void>;
  /** SIGKILL, wait for exit; the data stays. */
  kill(): Promise<void>;
  /** Starts again on the same data dir and ports (stopping first if running). */
  restart(): Promise<void>;
  /** Ends the process and removes the data dir. Safe twice. */
  destroy(): Promise<void>;
  /** The last lines etcd wrote, for failure messages. */
  log(): string;
}

/** The command line of a one-member throwaway etcd (small quota, no metrics or pprof listener). */
export function etcdArgs(o: { name: string; dataDir: string; clientUrl: string; peerUrl: string }): string[] {
  return [
    '--name', o.name,
    '--data-dir', o.dataDir,
    '--listen-client-urls', o.clientUrl,
    '--advertise-client-urls', o.clientUrl,
    '--listen-peer-urls', o.peerUrl,
    '--initial-advertise-peer-urls', o.peerUrl,
    '--initial-cluster', `${o.name}=${o.peerUrl}`,
    '--initial-cluster-state', 'new',
    '--listen-metrics-urls', '',
    '--enable-pprof=false',
    '--quota-backend-bytes', String(64 * 1024 * 1024),
    '--log-level', 'info',
  ];
}

/** Why etcd tests cannot run here, or undefined when they can. */
export function etcdSkipReason(): string | undefined {
  try {
    accessSync(ETCD_BINARY, constants.X_OK);
    return undefined;
  } catch {
    return `${ETCD_BINARY} not found (apt-get install etcd-server)`;
  }
}

export async function startEtcd(): Promise<EtcdServer> {
  const dir = await mkdtemp(join(tmpdir(), 'podtun-etcd-'));
  const dataDir = join(dir, 'data');
  let lastError: unknown;
  // A port picked free can be taken before etcd binds it: try a few pairs.
  for (let attempt = 0; attempt < 3; attempt++) {
    const [clientPort, peerPort] = await freePorts(2);
    const server = new LocalEtcd(dir, dataDir, clientPort ?? 0, peerPort ?? 0);
    try {
      await server.start();
      return server;
    } catch (err: unknown) {
      lastError = err;
      await server.kill();
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`could not start etcd: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
}

class LocalEtcd implements EtcdServer {
  readonly endpoint: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';
  private destroyed = false;

  constructor(
    private readonly dir: string,
    readonly dataDir: string,
    clientPort: number,
    private readonly peerPort: number,
  ) {
    this.endpoint = `http://127.0.0.1:${clientPort}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  log(): string {
    return this.output;
  }

  start(): Promise<void> {
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const child = spawn(
      ETCD_BINARY,
      etcdArgs({ name: 'podtun-test', dataDir: this.dataDir, clientUrl: this.endpoint, peerUrl: peer }),
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } },
    );
    this.child = child;
    // If the test process goes away without destroy(), do not leave etcd running behind it.
    const reap = (): void => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    };
    process.once('exit', reap);
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        process.removeListener('exit', reap);
        resolve();
      }),
    );
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onData = (chunk: Buffer): void => {
        this.output = (this.output + chunk.toString()).slice(-LOG_KEEP_CHARS);
        if (this.output.includes(ETCD_READY_LINE)) settle();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (err) => settle(err));
      child.once('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        settle(new Error(`etcd exited (${signal ?? `code ${String(code)}`}) before serving; log:\n${this.output.slice(-2000)}`));
      });
      const timer = setTimeout(
        () => settle(new Error(`etcd not ready after ${START_TIMEOUT_MS} ms; log:\n${this.output.slice(-2000)}`)),
        START_TIMEOUT_MS,
      );
    });
  }

  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  async restart(): Promise<void> {
    await this.stop();
    this.output = '';
    await this.start();
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    process.kill(child.pid, signal);
    const timeout = new Promise<'timeout'>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
      void this.exited.then(() => clearTimeout(timer));
    });
    if ((await Promise.race([this.exited, timeout])) === 'timeout' && signal !== 'SIGKILL') {
      process.kill(child.pid, 'SIGKILL');
      await this.exited;
    }
    this.child = undefined;
  }
}

/** Ports free right now on 127.0.0.1 (held open together, so they are distinct). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
      }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

// ---- etcd's JSON gateway (v3 API over HTTP; keys and values base64) ----

async function gateway(endpoint: string, path: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const response = await fetch(`${endpoint}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`etcd ${path}: HTTP ${response.status}: ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');

/** Writes `key` = `value` without a lease (an operator with etcdctl); returns the new revision. */
export async function etcdPut(endpoint: string, key: string, value: string): Promise<number> {
  const res = await gateway(endpoint, '/v3/kv/put', { key: b64(key), value: b64(value) });
  return Number((res['header'] as { revision?: string } | undefined)?.revision ?? 0);
}

export async function etcdDelete(endpoint: string, key: string): Promise<void> {
  await gateway(endpoint, '/v3/kv/deleterange', { key: b64(key) });
}

/** The store's current revision. */
export async function etcdRevision(endpoint: string): Promise<number> {
  const res = await gateway(endpoint, '/v3/kv/range', { key: b64('\0'), count_only: true });
  return Number((res['header'] as { revision?: string } | undefined)?.revision ?? 0);
}

/** Compacts history up to the current revision: watches from older revisions are refused. */
export async function etcdCompact(endpoint: string): Promise<number> {
  const revision = await etcdRevision(endpoint);
  await gateway(endpoint, '/v3/kv/compaction', { revision: String(revision), physical: true });
  return revision;
}

/** Keys under `prefix`, sorted. */
export async function etcdKeys(endpoint: string, prefix: string): Promise<string[]> {
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  const res = await gateway(endpoint, '/v3/kv/range', { key: b64(prefix), range_end: end.toString('base64'), keys_only: true });
  const kvs = (res['kvs'] as { key: string }[] | undefined) ?? [];
  return kvs.map((kv) => Buffer.from(kv.key, 'base64').toString()).sort();
}
