/**
 * installCni / uninstallCni on real files in temp dirs, with the real SEA executables
 * (cni/build-executables.mjs, built here when missing or stale) and small stand-in
 * executables where only the file handling matters (the concurrent-reader test).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, link, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CNI_EXECUTABLES, cniExecutablesDir, installCni, installExecutables, uninstallCni } from './cni-install.js';
import type { CniInstallOptions } from './cni-install.js';
import { quietLogger } from '../test/recording-logger.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CONF = '10-podtun.conflist';
const conflist = (marker: string): Record<string, unknown> => ({
  cniVersion: '1.0.0',
  name: 'podtun',
  plugins: [{ type: 'podtun', marker, padding: 'x'.repeat(64 * 1024) }],
});

let scratch: string;
let dirCount = 0;

/** Fresh binDir/confDir paths (not created: installCni creates them). */
function targetDirs(): { binDir: string; confDir: string } {
  const base = join(scratch, `t${++dirCount}`);
  return { binDir: join(base, 'opt/cni/bin'), confDir: join(base, 'etc/cni/net.d') };
}

function options(sourceDir: string, dirs: { binDir: string; confDir: string }, marker = 'a'): CniInstallOptions {
  return { sourceDir, ...dirs, confFileName: CONF, conflist: conflist(marker), log: quietLogger };
}

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function runVersion(executable: string): unknown {
  const out = execFileSync(executable, [], { env: { CNI_COMMAND: 'VERSION' }, input: '', timeout: 10_000 });
  return JSON.parse(out.toString());
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'podtun-cni-install-'));
  // Up to date: ~0.3 s; otherwise a few seconds (see build-executables.mjs).
  execFileSync(process.execPath, [join(root, 'cni/build-executables.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('cniExecutablesDir', () => {
  it('is dist/cni-bin of this package and holds both names as one file', async () => {
    expect(cniExecutablesDir()).toBe(join(root, 'dist', 'cni-bin'));
    const [a, b] = await Promise.all(CNI_EXECUTABLES.map((name) => stat(join(cniExecutablesDir(), name))));
    expect(a?.ino).toBe(b?.ino);
  });
});

describe('installCni with the real executables', () => {
  it('installs into missing dirs; both executables answer VERSION from binDir; one copy on disk', async () => {
    const dirs = targetDirs();
    const { installed, unchanged } = await installCni(options(cniExecutablesDir(), dirs));
    const bin = CNI_EXECUTABLES.map((name) => join(dirs.binDir, name));
    expect(installed).toEqual([...bin, join(dirs.confDir, CONF)]);
    expect(unchanged).toEqual([]);

    for (const path of bin) {
      expect((await stat(path)).mode & 0o777).toBe(0o755);
      expect(runVersion(path)).toMatchObject({ supportedVersions: expect.arrayContaining(['1.0.0', '1.1.0']) as unknown });
    }
    const [p, ipam] = await Promise.all(bin.map((path) => stat(path)));
    expect(p?.ino).toBe(ipam?.ino);
    const conf = join(dirs.confDir, CONF);
    expect((await stat(conf)).mode & 0o777).toBe(0o644);
    expect(JSON.parse(await readFile(conf, 'utf8'))).toEqual(conflist('a'));
    // No temp file left behind.
    expect((await readdir(dirs.binDir)).sort()).toEqual([...CNI_EXECUTABLES].sort());
    expect(await readdir(dirs.confDir)).toEqual([CONF]);
  });

  it('reinstall skips identical files and replaces changed ones, compared by content', async () => {
    const dirs = targetDirs();
    const source = cniExecutablesDir();
    await installCni(options(source, dirs));
    const podtun = join(dirs.binDir, 'podtun');
    const ipam = join(dirs.binDir, 'podtun-ipam');
    const conf = join(dirs.confDir, CONF);
    const inode = (await stat(podtun)).ino;

    const again = await installCni(options(source, dirs));
    expect(again.installed).toEqual([]);
    expect(again.unchanged.sort()).toEqual([podtun, ipam, conf].sort());
    expect((await stat(podtun)).ino).toBe(inode);

    // A new conflist only.
    expect((await installCni(options(source, dirs, 'b'))).installed).toEqual([conf]);
    expect(JSON.parse(await readFile(conf, 'utf8'))).toMatchObject({ plugins: [{ marker: 'b' }] });

    // Same size and mode, other content (zeros): only the hash tells, and it is replaced.
    const size = (await stat(source + '/podtun')).size;
    await rm(podtun);
    await writeFile(podtun, '');
    await truncate(podtun, size);
    await chmod(podtun, 0o755);
    // A temp file of ours whose process is gone (pid beyond pid_max) goes; one of this process
    // (a concurrent call in flight) and a stranger's file that looks alike stay.
    const inFlight = `.podtun.${process.pid}-0123456789ab.tmp`;
    await writeFile(join(dirs.binDir, '.podtun-ipam.999999999-0123456789ab.tmp'), 'partial');
    await writeFile(join(dirs.binDir, inFlight), 'in flight');
    await writeFile(join(dirs.binDir, '.other.999999999-0123456789ab.tmp'), 'not ours');
    const repaired = await installCni(options(source, dirs, 'b'));
    expect(repaired.installed).toEqual([podtun]);
    expect(runVersion(podtun)).toMatchObject({ supportedVersions: expect.arrayContaining(['1.1.0']) as unknown });
    expect((await readdir(dirs.binDir)).sort()).toEqual(['.other.999999999-0123456789ab.tmp', inFlight, 'podtun', 'podtun-ipam'].sort());
  });
});

describe('installCni file handling', () => {
  /** Two different "builds": each a 4 MiB file under both names (hard links, like the real one). */
  async function fakeBuild(name: string, fill: number): Promise<{ dir: string; sha: string }> {
    const dir = join(scratch, name);
    await mkdir(dir, { recursive: true });
    const content = Buffer.alloc(4 * 1024 * 1024, fill);
    await writeFile(join(dir, 'podtun'), content, { mode: 0o755 });
    await link(join(dir, 'podtun'), join(dir, 'podtun-ipam'));
    return { dir, sha: createHash('sha256').update(content).digest('hex') };
  }

  it('a concurrent reader sees only whole old or whole new files while installing 20 times', async () => {
    const builds = [await fakeBuild('build-a', 0x61), await fakeBuild('build-b', 0x62)];
    const markers = ['m0', 'm1', 'm2'];
    const valid = [
      ...builds.map((b) => b.sha),
      ...markers.map((m) => createHash('sha256').update(`${JSON.stringify(conflist(m), null, 2)}\n`).digest('hex')),
    ];
    const dirs = targetDirs();
    await installCni(options(builds[0]!.dir, dirs, 'm0'));
    const stopFile = join(scratch, `stop-${dirCount}`);
    const files = [join(dirs.binDir, 'podtun'), join(dirs.binDir, 'podtun-ipam'), join(dirs.confDir, CONF)];

    // A separate process, so reads really run while installCni writes; at most 30 s.
    const reader = spawn(process.execPath, ['-e', READER, stopFile, JSON.stringify(files), JSON.stringify(valid)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    reader.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => reader.on('exit', resolve));
    // Let the reader start before the writes begin.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (let i = 1; i <= 20; i++) {
      const written = await installCni(options(builds[i % 2]!.dir, dirs, markers[i % 3]!));
      expect(written.installed).toHaveLength(3);
    }
    await writeFile(stopFile, '');
    expect(await exited).toBe(0);
    const report = JSON.parse(out) as { reads: number; bad: string[]; missing: number };
    expect(report.bad).toEqual([]);
    expect(report.missing).toBe(0);
    expect(report.reads).toBeGreaterThan(20);
  });

  it('uninstall removes the conflist, then the executables, and nothing else; twice is fine', async () => {
    const { dir } = await fakeBuild('build-u', 0x75);
    const dirs = targetDirs();
    await mkdir(dirs.binDir, { recursive: true });
    await mkdir(dirs.confDir, { recursive: true });
    await writeFile(join(dirs.binDir, 'bridge'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(dirs.confDir, '05-other.conflist'), '{}\n');
    await installCni(options(dir, dirs));
    await writeFile(join(dirs.binDir, '.podtun.999999999-0123456789ab.tmp'), 'left by a killed install');

    const { binDir, confDir } = dirs;
    const first = await uninstallCni({ binDir, confDir, confFileName: CONF, log: quietLogger });
    expect(first.removed).toEqual([join(confDir, CONF), join(binDir, 'podtun'), join(binDir, 'podtun-ipam')]);
    expect(await readdir(binDir)).toEqual(['bridge']);
    expect(await readdir(confDir)).toEqual(['05-other.conflist']);

    const second = await uninstallCni({ binDir, confDir, confFileName: CONF, log: quietLogger });
    expect(second.removed).toEqual([]);
    // Directories that never existed: nothing to do either.
    const none = targetDirs();
    expect((await uninstallCni({ ...none, confFileName: CONF, log: quietLogger })).removed).toEqual([]);
    expect(existsSync(none.binDir)).toBe(false);
  });

  it('errors name the path and the reason, with code ERR_PODTUN_CNI_INSTALL', async () => {
    const dirs = targetDirs();
    const missing = join(scratch, 'no-build');
    await expect(installCni(options(missing, dirs))).rejects.toMatchObject({
      code: 'ERR_PODTUN_CNI_INSTALL',
      path: join(missing, 'podtun'),
      message: expect.stringContaining(`${join(missing, 'podtun')} is missing`) as unknown,
    });
    // The conflist was not written: a config never names executables that are not there.
    expect(existsSync(join(dirs.confDir, CONF))).toBe(false);

    for (const confFileName of ['../../etc/passwd.conflist', '10-podtun.conf', '.hidden.conflist']) {
      await expect(installCni({ ...options(missing, dirs), confFileName })).rejects.toMatchObject({
        code: 'ERR_PODTUN_CNI_INSTALL',
        message: expect.stringContaining(`invalid CNI config file name "${confFileName}"`) as unknown,
      });
      await expect(uninstallCni({ ...dirs, confFileName, log: quietLogger })).rejects.toMatchObject({ code: 'ERR_PODTUN_CNI_INSTALL' });
    }

    const { dir } = await fakeBuild('build-e', 0x65);
    const blocked = targetDirs();
    await mkdir(dirname(blocked.binDir), { recursive: true });
    await writeFile(blocked.binDir, 'a file where binDir should be');
    await expect(installCni(options(dir, blocked))).rejects.toMatchObject({
      code: 'ERR_PODTUN_CNI_INSTALL',
      path: blocked.binDir,
      message: expect.stringMatching(new RegExp(`^failed to create directory ${blocked.binDir}: (EEXIST|ENOTDIR)`)) as unknown,
    });
  });
});

describe('installExecutables: the reference plugins beside podtun (what the DaemonSet\'s init step does)', () => {
  const REFERENCE = '/usr/lib/cni';
  const PLUGINS = ['bridge', 'host-local', 'loopback', 'portmap'];

  it('installs them by rename, runnable from binDir, and leaves a running one alone when its file is replaced', async () => {
    for (const name of PLUGINS) expect(existsSync(join(REFERENCE, name)), `${REFERENCE}/${name} (containernetworking-plugins)`).toBe(true);
    const { binDir } = targetDirs();
    const sources = Object.fromEntries([
      ...CNI_EXECUTABLES.map((name) => [name, join(cniExecutablesDir(), name)]),
      ...PLUGINS.map((name) => [name, join(REFERENCE, name)]),
    ]);
    const first = await installExecutables({ sources, binDir, log: quietLogger, missing: '' });
    expect(first.installed.map((p) => p.slice(binDir.length + 1)).sort()).toEqual([...CNI_EXECUTABLES, ...PLUGINS].sort());
    for (const name of [...PLUGINS, ...CNI_EXECUTABLES]) {
      expect(runVersion(join(binDir, name)), name).toMatchObject({ supportedVersions: expect.arrayContaining(['1.0.0']) as unknown });
    }
    expect((await installExecutables({ sources, binDir, log: quietLogger, missing: '' })).installed).toEqual([]);

    // An executable that is running while a new one is installed under its name: a write into it
    // would fail with ETXTBSY ("text file busy"); the rename replaces it, the old process runs on.
    const sleeper = join(scratch, 'sleep-elf');
    await writeFile(sleeper, await readFile('/bin/sleep'));
    await chmod(sleeper, 0o755);
    await installExecutables({ sources: { blocker: sleeper }, binDir, log: quietLogger, missing: '' });
    const running = spawn(join(binDir, 'blocker'), ['30'], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const again = await installExecutables({ sources: { blocker: '/bin/true' }, binDir, log: quietLogger, missing: '' });
      expect(again.installed).toEqual([join(binDir, 'blocker')]);
      expect(running.exitCode).toBeNull();
      expect(sha(await readFile(join(binDir, 'blocker')))).toBe(sha(await readFile('/bin/true')));
    } finally {
      running.kill('SIGKILL');
    }
    expect((await readdir(binDir)).filter((n) => n.includes('.tmp'))).toEqual([]);
  });
});

/**
 * The reader: argv = stopFile, files (JSON), valid sha256s (JSON). Reads every file in a loop
 * until the stop file appears (at most 30 s) and prints { reads, bad, missing }.
 */
const READER = `
const fs = require('node:fs'), crypto = require('node:crypto');
const [stop, files, valid] = [process.argv[1], JSON.parse(process.argv[2]), new Set(JSON.parse(process.argv[3]))];
const deadline = Date.now() + 30000;
let reads = 0, missing = 0; const bad = [];
while (!fs.existsSync(stop) && Date.now() < deadline) {
  for (const file of files) {
    let data;
    try { data = fs.readFileSync(file); } catch (err) { if (err.code === 'ENOENT') { missing++; continue; } throw err; }
    reads++;
    const sha = crypto.createHash('sha256').update(data).digest('hex');
    if (!valid.has(sha) && bad.length < 5) bad.push(file + ': ' + data.length + ' bytes, sha ' + sha.slice(0, 12));
  }
}
process.stdout.write(JSON.stringify({ reads, bad, missing }));
`;
