/**
 * Ownership records for namespaces built by the harness, so that nothing outlives its run.
 *
 * Each run writes `<tmp>/podtun-netns/<runId>.state.json` holding its owner PID and every
 * namespace it created. A later run removes the namespaces of records whose owner is dead.
 * Only processes found inside those namespaces (`ip netns pids`) are killed: a recorded PID
 * could have been reused by an unrelated process, a namespace member cannot.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { NETNS_ETC_DIR } from './netns-hosts.js';
import { pidAlive, runSyncQuiet } from './shell.js';

const STATE_SUFFIX = '.state.json';
const MAX_STALE_RECORDS = 200;

export interface RunRecord {
  runId: string;
  ownerPid: number;
  createdAt: string;
  namespaces: string[];
}

export function harnessDir(): string {
  return join(tmpdir(), 'podtun-netns');
}

function statePath(runId: string): string {
  return join(harnessDir(), `${runId}${STATE_SUFFIX}`);
}

export function writeRecord(record: RunRecord): void {
  mkdirSync(harnessDir(), { recursive: true });
  writeFileSync(statePath(record.runId), `${JSON.stringify(record, null, 2)}\n`);
}

export function removeRecord(runId: string): void {
  rmSync(statePath(runId), { force: true });
}

/** Names of all namespaces on the machine (`ip netns list`). */
export function listNamespaces(): string[] {
  try {
    const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5_000 });
    return out
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[0] ?? '')
      .filter((name) => name !== '');
  } catch {
    return [];
  }
}

/** PIDs of the processes living in namespace `ns` (empty when it does not exist). */
export function namespacePids(ns: string): number[] {
  try {
    const out = execFileSync('ip', ['netns', 'pids', ns], {
      encoding: 'utf8',
      timeout: 5_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out
      .split('\n')
      .map((line) => Number.parseInt(line.trim(), 10))
      .filter((pid) => Number.isInteger(pid) && pid > 1 && pid !== process.pid);
  } catch {
    return [];
  }
}

/**
 * Kills what still runs inside `ns`, then deletes it. Synchronous so that exit handlers can use
 * it. Returns whether the namespace is gone.
 */
export function removeNamespaceSync(ns: string): boolean {
  for (const pid of namespacePids(ns)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  runSyncQuiet(['ip', 'netns', 'del', ns]);
  // What `ip netns exec` mounts into it (netns-hosts.ts); `ip netns del` leaves it. A plain name
  // only: never /etc/netns itself.
  if (/^[A-Za-z0-9_-]+$/.test(ns)) rmSync(join(NETNS_ETC_DIR, ns), { recursive: true, force: true });
  return !listNamespaces().includes(ns);
}

/** Removes namespaces recorded by runs whose owner process is dead. Returns the names removed. */
export function removeStaleRuns(): string[] {
  let files: string[];
  try {
    files = readdirSync(harnessDir()).filter((f) => f.endsWith(STATE_SUFFIX));
  } catch {
    return [];
  }
  const present = new Set(listNamespaces());
  const removed: string[] = [];
  for (const file of files.slice(0, MAX_STALE_RECORDS)) {
    const path = join(harnessDir(), file);
    let record: RunRecord;
    try {
      record = JSON.parse(readFileSync(path, 'utf8')) as RunRecord;
    } catch {
      rmSync(path, { force: true });
      continue;
    }
    if (typeof record.ownerPid !== 'number' || pidAlive(record.ownerPid)) continue;
    const namespaces = Array.isArray(record.namespaces) ? record.namespaces : [];
    for (const ns of namespaces) {
      if (typeof ns === 'string' && present.has(ns) && removeNamespaceSync(ns)) removed.push(ns);
    }
    rmSync(path, { force: true });
  }
  return removed;
}
