/**
 * podtun-ipam as real processes sharing one data directory: concurrent ADDs, ADDs killed with
 * SIGKILL at random moments, then GC; DEL, round-robin, and the error codes on stdout.
 */
import { readFileSync, watch } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cniEnv, preparePodtunIpam, runPlugin } from '../../test/cni-process.js';
import type { PluginRun } from '../../test/cni-process.js';

let command: string[];
let dataDir: string;
const NETWORK = 'podnet';

beforeAll(() => {
  command = preparePodtunIpam();
}, 120_000);

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'podtun-ipam-proc-'));
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

function netConf(ipam: Record<string, unknown>, extra: Record<string, unknown> = {}, cniVersion = '1.0.0'): string {
  return JSON.stringify({ cniVersion, name: NETWORK, type: 'bridge', bridge: 'cni0', ipam: { type: 'podtun-ipam', dataDir, ...ipam }, ...extra });
}

function add(id: string, stdin: string, options: { killAfterMs?: number } = {}): Promise<PluginRun> {
  return runPlugin(command, cniEnv('ADD', { containerId: id, netns: `/run/netns/${id}`, ifName: 'eth0', path: '/usr/lib/cni' }), stdin, options);
}

function del(id: string, stdin: string): Promise<PluginRun> {
  return runPlugin(command, cniEnv('DEL', { containerId: id, ifName: 'eth0', path: '/usr/lib/cni' }), stdin);
}

function gc(valid: readonly string[], ipam: Record<string, unknown>): Promise<PluginRun> {
  const attachments = valid.map((id) => ({ containerID: id, ifname: 'eth0' }));
  return runPlugin(command, cniEnv('GC', { path: '/usr/lib/cni' }), netConf(ipam, { 'cni.dev/valid-attachments': attachments }, '1.1.0'));
}

/** The network directory: every file with its content. */
async function snapshot(): Promise<Record<string, string>> {
  const dir = join(dataDir, NETWORK);
  const out: Record<string, string> = {};
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    return out;
  }
  for (const name of names.sort()) out[name] = await readFile(join(dir, name), 'utf8');
  return out;
}

/** Reservation files only (no hints), address -> owner container ID. */
async function reservations(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [name, content] of Object.entries(await snapshot())) {
    if (/^[0-9a-f.:]+$/.test(name)) out.set(name, content);
  }
  return out;
}

function addressOf(run: PluginRun): string {
  const json = run.json as { ips?: { address?: string }[] } | undefined;
  const address = json?.ips?.[0]?.address;
  if (run.exitCode !== 0 || address === undefined) throw new Error(`ADD failed: ${run.stdout}${run.stderr}`);
  return address.split('/')[0] ?? '';
}

/** Runs `count` tasks with at most `limit` at once (bounds the load on a shared 2-core machine). */
async function pooled<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  });
  await Promise.all(workers);
  return results;
}

const RANGE = { subnet: '10.244.1.0/24' };

describe('podtun-ipam processes', () => {
  it('100 concurrent ADDs get 100 distinct addresses, each file naming its owner', async () => {
    const stdin = netConf(RANGE);
    const runs = await Promise.all(Array.from({ length: 100 }, (_, i) => add(`pod-${i}`, stdin)));
    const given = runs.map(addressOf);
    expect(new Set(given).size).toBe(100);
    for (const address of given) expect(address).toMatch(/^10\.244\.1\.([2-9]|[1-9]\d|1\d\d|2[0-4]\d|25[0-4])$/);
    const held = await reservations();
    expect(held.size).toBe(100);
    runs.forEach((_, i) => expect(held.get(given[i] ?? '')).toBe(`pod-${i}\r\neth0`));
    const names = Object.keys(await snapshot());
    expect(names.filter((name) => name.startsWith('.podtun-'))).toEqual([]);
    expect(names).toContain('last_reserved_ip.0');
  }, 120_000);

  it('ADDs killed at random moments, then GC: no leaked and no doubly-assigned address', async () => {
    const stdin = netConf(RANGE);
    // How long one ADD lives under this load decides when the timed kills land.
    const probeStart = Date.now();
    await Promise.all(Array.from({ length: 8 }, (_, i) => add(`probe-${i}`, stdin)));
    const lifetimeMs = Math.max(50, Date.now() - probeStart);
    expect((await gc([], RANGE)).exitCode).toBe(0);

    // Three ways to die: after a random delay; the instant the plugin's temp file appears
    // (between writing the owner and linking it); the instant its reservation appears (between
    // link and answering). The directory watch finds the last two moments.
    const netDir = join(dataDir, NETWORK);
    const killOnTemp = new Map<number, () => void>();
    const killOnReserve = new Map<string, () => void>();
    const watcher = watch(netDir, (_event, name) => {
      if (name === null) return;
      const temp = /^\.podtun-tmp\.(\d+)\./.exec(name);
      if (temp !== null) {
        killOnTemp.get(Number(temp[1]))?.();
        return;
      }
      if (!/^[0-9.]+$/.test(name)) return;
      try {
        killOnReserve.get(readFileSync(join(netDir, name), 'utf8').split('\r\n')[0] ?? '')?.();
      } catch {
        // released again meanwhile
      }
    });
    const valid = new Map<string, string>();
    let leftovers = 0;
    try {
      for (let round = 0; round < 3; round++) {
        const runs = await pooled(45, 15, async (i) => {
          const id = `r${round}-pod-${i}`;
          const mode = i % 3;
          const options =
            mode === 0
              ? { killAfterMs: Math.floor(Math.random() * lifetimeMs * 1.5) }
              : { onSpawn: (pid: number, kill: () => void) => (mode === 1 ? killOnTemp.set(pid, kill) : killOnReserve.set(id, kill)) };
          // Every third plugin of modes 1 and 2 is spared, so some survive under load too.
          if (mode !== 0 && i % 9 < 3) return { id, run: await add(id, stdin) };
          return { id, run: await add(id, stdin, options) };
        });
        for (const { id, run } of runs) if (run.exitCode === 0) valid.set(id, addressOf(run));
        const before = await snapshot();
        leftovers += Object.entries(before).filter(
          ([name, content]) => name.startsWith('.podtun-') || (/^[0-9.]+$/.test(name) && !valid.has(content.split('\r\n')[0] ?? '')),
        ).length;

        const collected = await gc([...valid.keys()], RANGE);
        expect(collected.exitCode, collected.stdout).toBe(0);
        // Every remaining reservation belongs to a valid attachment, each valid attachment holds
        // exactly the address it was given, and no temp file is left.
        const held = await reservations();
        expect(held.size).toBe(valid.size);
        for (const [id, address] of valid) expect(held.get(address)).toBe(`${id}\r\neth0`);
        expect(Object.keys(await snapshot()).filter((name) => name.startsWith('.podtun-'))).toEqual([]);
      }
    } finally {
      watcher.close();
    }
    // The kills did land mid-ADD (a temp file or an unanswered reservation was left): GC had work.
    expect(leftovers).toBeGreaterThan(0);
    expect(new Set(valid.values()).size).toBe(valid.size);
    expect(valid.size).toBeGreaterThan(0);
  }, 240_000);

  it('DEL twice succeeds; GC frees exactly the stale; DEL then ADD does not reuse the freed address', async () => {
    const stdin = netConf(RANGE);
    expect(addressOf(await add('a', stdin))).toBe('10.244.1.2');
    expect(addressOf(await add('b', stdin))).toBe('10.244.1.3');
    expect(addressOf(await add('c', stdin))).toBe('10.244.1.4');

    for (let i = 0; i < 2; i++) {
      const run = await del('b', stdin);
      expect({ exitCode: run.exitCode, stdout: run.stdout }).toEqual({ exitCode: 0, stdout: '' });
    }
    expect(addressOf(await add('d', stdin))).toBe('10.244.1.5');

    const collected = await gc(['a', 'd'], RANGE);
    expect({ exitCode: collected.exitCode, stdout: collected.stdout }).toEqual({ exitCode: 0, stdout: '' });
    expect(await reservations()).toEqual(
      new Map([
        ['10.244.1.2', 'a\r\neth0'],
        ['10.244.1.5', 'd\r\neth0'],
      ]),
    );
    expect(addressOf(await add('e', stdin))).toBe('10.244.1.6');
  }, 60_000);

  it.each<[string, () => Promise<PluginRun>, number, RegExp]>([
    ['malformed stdin', () => add('x', '{"cniVersion": "1.0.0", "name": '), 6, /not valid JSON/],
    ['stdin not an object', () => add('x', '["podnet"]'), 6, /not a JSON object/],
    ['an unknown cniVersion', () => add('x', netConf(RANGE, {}, '9.9.9')), 1, /unsupported cniVersion "9\.9\.9"; supported versions: 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0/],
    ['no CNI_CONTAINERID', () => runPlugin(command, cniEnv('ADD', { netns: '/n', ifName: 'eth0' }), netConf(RANGE)), 4, /\[CNI_CONTAINERID\] missing/],
    ['an unknown CNI_COMMAND', () => runPlugin(command, { CNI_COMMAND: 'ATTACH' }, netConf(RANGE)), 4, /CNI_COMMAND/],
    ['an exhausted range', () => add('x', netConf({ subnet: '10.99.0.0/29' })), 100, /^no free address in 10\.99\.0\.0\/29$/],
  ])('%s: the code and message on stdout, exit 1, the data dir unchanged', async (_what, invoke, code, msg) => {
    const small = netConf({ subnet: '10.99.0.0/29' });
    for (let i = 0; i < 5; i++) addressOf(await add(`fill-${i}`, small));
    const before = await snapshot();
    const run = await invoke();
    expect(run.exitCode).toBe(1);
    expect(run.json).toMatchObject({ code, msg: expect.stringMatching(msg) });
    expect(await snapshot()).toEqual(before);
  }, 60_000);

  it('without CNI_COMMAND (run by hand) says what it is on stderr, like the reference plugins, and touches nothing', async () => {
    const before = await snapshot();
    const run = await runPlugin(command, {}, netConf(RANGE));
    expect({ exitCode: run.exitCode, stdout: run.stdout }).toEqual({ exitCode: 0, stdout: '' });
    expect(run.stderr).toMatch(/^CNI podtun-ipam plugin: .*\nCNI protocol versions supported: 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0\n$/);
    expect(await snapshot()).toEqual(before);
  });
});
