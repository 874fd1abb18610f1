import { testPublicKey } from '../test/node-keys.js';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../node-bootstrap/config/load-config.js';
import { leasesOfConfig } from '../node-bootstrap/config/node-config.js';
import type { ConfigLeases } from '../core/subnet-manager.js';
import type { Logger } from '../core/logger.js';
import { StaticSubnetManager } from './static-subnet-manager.js';
import type { LeaseEvent } from '../core/lease.js';

interface LogLine {
  level: string;
  obj: object;
  msg: string | undefined;
}

function memoryLogger(lines: LogLine[]): Logger {
  const at = (level: string) => (objOrMsg: object | string, msg?: string): void => {
    if (typeof objOrMsg === 'string') lines.push({ level, obj: {}, msg: objOrMsg });
    else lines.push({ level, obj: objOrMsg, msg });
  };
  const log: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => log,
    isLevelEnabled: () => true,
  };
  return log;
}

function yamlFor(nodes: { name: string; subnet: string; endpoint: string }[]): string {
  return [
    'nodeName: node-a',
    'clusterSecret: "static subnet manager test secret"',
    'clusterCidrs: [10.244.0.0/16]',
    'nodes:',
    ...nodes.flatMap((n, i) => [`  - name: ${n.name}`, `    subnets: [${n.subnet}]`, `    endpoint: ${n.endpoint}`, `    publicKey: ${testPublicKey(i)}`]),
    '',
  ].join('\n');
}

const A = { name: 'node-a', subnet: '10.244.1.0/24', endpoint: '192.168.77.1:8285' };
const B = { name: 'node-b', subnet: '10.244.2.0/24', endpoint: '192.168.77.2:8285' };
const C = { name: 'node-c', subnet: '10.244.3.0/24', endpoint: '192.168.77.3:8285' };

function brief(events: LeaseEvent[]): string[] {
  return events.map((e) => `${e.type === 'added' ? '+' : '-'}${e.lease.node}`);
}

/** Resolves with the next batch handed to the watcher, or rejects after `ms`. */
function nextBatch(batches: LeaseEvent[][], ms = 5000): Promise<LeaseEvent[]> {
  const start = batches.length;
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + ms;
    const poll = (): void => {
      const batch = batches[start];
      if (batch !== undefined) resolve(batch);
      else if (Date.now() > deadline) reject(new Error('no lease events'));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The node list of the config file at `path`, read through the real config loader. */
async function fileLeases(path: string, watchPath: string | undefined): Promise<ConfigLeases> {
  return {
    initial: leasesOfConfig(await loadConfig(path)),
    reload: async () => leasesOfConfig(await loadConfig(path)),
    watchPath,
  };
}

describe('StaticSubnetManager', () => {
  let dir = '';
  let path = '';
  let lines: LogLine[] = [];
  let manager: StaticSubnetManager;
  let abort: AbortController;
  let batches: LeaseEvent[][];
  let watching: Promise<void>;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podtun-static-'));
    path = join(dir, 'node.yaml');
    await writeFile(path, yamlFor([A, B]));
    lines = [];
    manager = new StaticSubnetManager({ node: 'node-a', source: await fileLeases(path, path), debounceMs: 50, log: memoryLogger(lines) });
    abort = new AbortController();
    batches = [];
    watching = manager.watchLeases(abort.signal, (events) => batches.push(events));
  });

  afterEach(async () => {
    abort.abort();
    await watching;
    await rm(dir, { recursive: true, force: true });
  });

  it('gives the local lease from the node entry', async () => {
    expect(await manager.localLease()).toEqual({ node: 'node-a', subnets: ['10.244.1.0/24'], endpoints: { udp: '192.168.77.1:8285' }, transports: ['udp', 'ws'], publicKey: testPublicKey(0) });
  });

  it('emits the full set first, the local node included', () => {
    expect(batches).toHaveLength(1);
    expect(brief(batches[0] ?? [])).toEqual(['+node-a', '+node-b']);
    expect(batches[0]?.[1]).toEqual({
      type: 'added',
      lease: { node: 'node-b', subnets: ['10.244.2.0/24'], endpoints: { udp: '192.168.77.2:8285' }, transports: ['udp', 'ws'], publicKey: testPublicKey(1) },
    });
  });

  it('a peer\'s new public key (a key rotation) is a lease change', async () => {
    const next = nextBatch(batches);
    await writeFile(path, yamlFor([A, B]).replace(testPublicKey(1), testPublicKey(4)));
    const events = await next;
    expect(brief(events)).toEqual(['-node-b', '+node-b']);
    expect(events[1]?.lease.publicKey).toBe(testPublicKey(4));
    await writeFile(path, yamlFor([A, B]));
    await nextBatch(batches);
  });

  it('emits the diff when the file is edited in place', async () => {
    const next = nextBatch(batches);
    await writeFile(path, yamlFor([A, { ...B, endpoint: '192.168.77.9:8285' }, C]));
    expect(brief(await next)).toEqual(['-node-b', '+node-b', '+node-c']);
    expect(manager.current()).toHaveLength(3);
  });

  it('emits the diff when the file is replaced by rename (editors, ConfigMaps)', async () => {
    const next = nextBatch(batches);
    await writeFile(join(dir, 'node.yaml.tmp'), yamlFor([A]));
    await rename(join(dir, 'node.yaml.tmp'), path);
    expect(brief(await next)).toEqual(['-node-b']);
  });

  it('logs and ignores a bad edit, keeping the running config', async () => {
    const before = manager.current();
    await writeFile(path, yamlFor([A, { ...B, subnet: '10.244.1.0/25' }]));
    await sleep(400);
    expect(batches).toHaveLength(1);
    expect(manager.current()).toBe(before);
    const rejected = lines.find((l) => l.msg === 'config reload rejected; keeping the running config');
    expect(rejected?.level).toBe('warn');
    expect(rejected?.obj).toMatchObject({ reason: expect.stringMatching(/nodes\[1\]\.subnets\[0\]: "10\.244\.1\.0\/25" overlaps/) as unknown });

    // The next good edit is diffed against the config still running, not the rejected one.
    const next = nextBatch(batches);
    await writeFile(path, yamlFor([A, B, C]));
    expect(brief(await next)).toEqual(['+node-c']);
  });

  it('debounces a burst of writes into one reload', async () => {
    const next = nextBatch(batches);
    for (const nodes of [[A], [A, C], [A, B, C]]) await writeFile(path, yamlFor(nodes));
    expect(brief(await next)).toEqual(['+node-c']);
    await sleep(300);
    expect(batches).toHaveLength(2);
    expect(lines.filter((l) => l.msg === 'config reloaded')).toHaveLength(1);
  });

  it('reloads on request (SIGHUP) and says whether the new config was taken', async () => {
    abort.abort();
    await watching;
    const quiet = new StaticSubnetManager({ node: 'node-a', source: await fileLeases(path, undefined), log: memoryLogger(lines) });
    const seen: LeaseEvent[][] = [];
    const stop = new AbortController();
    const watchingQuiet = quiet.watchLeases(stop.signal, (events) => seen.push(events));
    await writeFile(path, 'nodeName: [');
    expect(await quiet.reload()).toBe(false);
    await writeFile(path, yamlFor([A, C]));
    expect(await quiet.reload()).toBe(true);
    expect(seen.map(brief)).toEqual([['+node-a', '+node-b'], ['-node-b', '+node-c']]);
    stop.abort();
    await watchingQuiet;
  });

  it('after close, a reload takes nothing and a new watch gets nothing', async () => {
    await manager.close();
    await manager.close();
    await writeFile(path, yamlFor([A, B, C]));
    expect(await manager.reload()).toBe(false);
    const stop = new AbortController();
    const seen: LeaseEvent[][] = [];
    await manager.watchLeases(stop.signal, (events) => seen.push(events));
    expect(seen).toEqual([]);
  });

  it('stops watching when the signal aborts, leaving no handle behind', async () => {
    abort.abort();
    await watching;
    await writeFile(path, yamlFor([A, B, C]));
    await sleep(300);
    expect(batches).toHaveLength(1);
  });
});
