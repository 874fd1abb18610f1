import { rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PodAddressStore, isAddressFileName, parseOwner } from './pod-address-store.js';

let dataDir: string;
let store: PodAddressStore;
const OWNER = { containerId: 'c1', ifName: 'eth0' };

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'podtun-store-'));
  store = new PodAddressStore(dataDir, 'podnet');
  await store.ensureDir();
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function names(): Promise<string[]> {
  return (await readdir(store.dir)).sort();
}

describe('PodAddressStore reservations', () => {
  it('reserves the first free candidate in host-local format and leaves no temp file', async () => {
    await writeFile(join(store.dir, '10.0.0.2'), 'other\r\neth0');
    expect(await store.reserveFirstFree(['10.0.0.2', '10.0.0.3', '10.0.0.4'], OWNER)).toBe('10.0.0.3');
    expect(await readFile(join(store.dir, '10.0.0.3'), 'utf8')).toBe('c1\r\neth0');
    expect(await names()).toEqual(['10.0.0.2', '10.0.0.3']);
  });

  it('skips a candidate another process reserved after the listing (link EEXIST)', async () => {
    const dir = store.dir;
    function* racing(): Generator<string> {
      // Runs after the directory was listed: as if a concurrent ADD had just linked .2.
      writeFileSync(join(dir, '10.0.0.2'), 'racer\r\neth0');
      yield '10.0.0.2';
      yield '10.0.0.3';
    }
    expect(await store.reserveFirstFree(racing(), OWNER)).toBe('10.0.0.3');
    expect(await readFile(join(dir, '10.0.0.2'), 'utf8')).toBe('racer\r\neth0');
    expect(await readFile(join(dir, '10.0.0.3'), 'utf8')).toBe('c1\r\neth0');
    expect(await names()).toEqual(['10.0.0.2', '10.0.0.3']);
  });

  it('returns undefined when every candidate is taken, and changes nothing', async () => {
    await writeFile(join(store.dir, '10.0.0.2'), 'a\r\neth0');
    expect(await store.reserveFirstFree(['10.0.0.2'], OWNER)).toBeUndefined();
    expect(await names()).toEqual(['10.0.0.2']);
  });

  it('finds and releases by owner; a legacy ID-only file matches any ifname', async () => {
    await writeFile(join(store.dir, '10.0.0.2'), 'c1\r\neth0');
    await writeFile(join(store.dir, '10.0.0.3'), 'c1\r\nnet1');
    await writeFile(join(store.dir, '10.0.0.4'), 'c2\r\neth0');
    await writeFile(join(store.dir, '10.0.0.5'), 'c1');
    await writeFile(join(store.dir, 'fd00::2'), 'c1\r\neth0\n');
    expect((await store.findByOwner('c1', 'eth0')).sort()).toEqual(['10.0.0.2', '10.0.0.5', 'fd00::2']);
    expect((await store.releaseOwner('c1', 'eth0')).sort()).toEqual(['10.0.0.2', '10.0.0.5', 'fd00::2']);
    expect(await names()).toEqual(['10.0.0.3', '10.0.0.4']);
    expect(await store.releaseOwner('c1', 'eth0')).toEqual([]);
  });

  it('releaseIf: kept when the owner does not match, missing when gone', async () => {
    await writeFile(join(store.dir, '10.0.0.2'), 'c2\r\neth0');
    expect(await store.releaseIf('10.0.0.2', (owner) => owner?.containerId === 'c1')).toBe('kept');
    expect(await store.releaseIf('10.0.0.9', () => true)).toBe('missing');
    expect(await names()).toEqual(['10.0.0.2']);
  });

  it('releaseIf does not delete a reservation made after the one it read', async () => {
    const path = join(store.dir, '10.0.0.2');
    await writeFile(path, 'stale\r\neth0');
    const outcome = await store.releaseIf('10.0.0.2', (owner) => {
      // Between the read and the release, another process releases the stale file and a third
      // reserves the address anew (a new inode).
      expect(owner).toEqual({ containerId: 'stale', ifName: 'eth0' });
      rmSync(path);
      writeFileSync(path, 'fresh\r\neth0');
      return true;
    });
    expect(outcome).toBe('kept');
    expect(await readFile(path, 'utf8')).toBe('fresh\r\neth0');
    expect(await names()).toEqual(['10.0.0.2']);
    expect(await store.releaseIf('10.0.0.2', () => true)).toBe('released');
    expect(await names()).toEqual([]);
  });

  it('lists every reservation with its owner; empty files have none', async () => {
    await writeFile(join(store.dir, '10.0.0.2'), 'c1\r\neth0');
    await writeFile(join(store.dir, '10.0.0.3'), '');
    await writeFile(join(store.dir, 'last_reserved_ip.0'), '10.0.0.3');
    await writeFile(join(store.dir, 'lock'), '');
    await writeFile(join(store.dir, '010.0.0.4'), 'not canonical');
    const listed = (await store.list()).sort((a, b) => a.address.localeCompare(b.address));
    expect(listed).toEqual([
      { address: '10.0.0.2', owner: { containerId: 'c1', ifName: 'eth0' } },
      { address: '10.0.0.3', owner: undefined },
    ]);
  });
});

describe('PodAddressStore hints and leftovers', () => {
  it('writes and reads the round-robin hint per range set; garbage reads as none', async () => {
    expect(await store.readLastReserved(0)).toBeUndefined();
    await store.writeLastReserved(0, '10.0.0.7');
    await store.writeLastReserved(1, 'fd00::9');
    expect(await store.readLastReserved(0)).toBe('10.0.0.7');
    expect(await store.readLastReserved(1)).toBe('fd00::9');
    await writeFile(join(store.dir, 'last_reserved_ip.2'), 'garbage');
    expect(await store.readLastReserved(2)).toBeUndefined();
    expect(await names()).toEqual(['last_reserved_ip.0', 'last_reserved_ip.1', 'last_reserved_ip.2']);
  });

  it('sweeps temp and release files of dead processes and old ones, keeps live ones', async () => {
    const now = Date.now();
    const alive = new Set([111]);
    const sweeper = new PodAddressStore(dataDir, 'podnet', { isProcessAlive: (pid) => alive.has(pid), now: () => now, staleTempMs: 60_000 });
    await writeFile(join(store.dir, '.podtun-tmp.111.aa'), 'c\r\neth0');
    await writeFile(join(store.dir, '.podtun-tmp.222.bb'), 'c\r\neth0');
    await writeFile(join(store.dir, '.podtun-release.222.cc'), 'c\r\neth0');
    await writeFile(join(store.dir, '.podtun-tmp.111.old'), 'c\r\neth0');
    const old = new Date(now - 120_000);
    await utimes(join(store.dir, '.podtun-tmp.111.old'), old, old);
    await writeFile(join(store.dir, '10.0.0.2'), 'c\r\neth0');
    expect((await sweeper.sweepStale()).sort()).toEqual(['.podtun-release.222.cc', '.podtun-tmp.111.old', '.podtun-tmp.222.bb']);
    expect(await names()).toEqual(['.podtun-tmp.111.aa', '10.0.0.2']);
  });

  it('survives a missing directory: nothing listed, nothing swept', async () => {
    const absent = new PodAddressStore(dataDir, 'absent');
    expect(await absent.list()).toEqual([]);
    expect(await absent.sweepStale()).toEqual([]);
    expect(await absent.releaseOwner('c1', 'eth0')).toEqual([]);
    await expect(stat(absent.dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('file names and owners', () => {
  it.each([
    ['10.0.0.2', true],
    ['fd00:10:244:1::2', true],
    ['FD00::2', false],
    ['010.0.0.2', false],
    ['last_reserved_ip.0', false],
    ['.podtun-tmp.1.ab', false],
  ])('%s is an address file name: %s', (name, expected) => {
    expect(isAddressFileName(name)).toBe(expected);
  });

  it('parses host-local owners', () => {
    expect(parseOwner('c1\r\neth0')).toEqual({ containerId: 'c1', ifName: 'eth0' });
    expect(parseOwner('c1\n')).toEqual({ containerId: 'c1', ifName: undefined });
    expect(parseOwner('')).toBeUndefined();
  });
});
