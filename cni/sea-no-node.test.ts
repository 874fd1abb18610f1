/**
 * The CNI executables run where there is no Node: a root filesystem made of the executable, the
 * shared libraries `ldd` lists for it and the dynamic loader — nothing else, no node, no shell —
 * entered with chroot. In it, podtun and podtun-ipam answer VERSION, and podtun-ipam reserves an
 * address on ADD (writing its reservation file inside the chroot) and releases it on DEL.
 *
 *   <tmp>/root/
 *     lib/x86_64-linux-gnu/libc.so.6 ...   (what ldd lists, copied)
 *     lib64/ld-linux-x86-64.so.2           (the loader, PT_INTERP)
 *     opt/cni/bin/podtun-ipam              (the SEA; podtun is a hard link to it)
 *     var/lib/cni/networks/                (podtun-ipam's dataDir, created by the plugin)
 *
 * Needs root (chroot) and `ldd`; skipped with the reason otherwise (failed in CI).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, link, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipUnlessMet } from '../test/requirement.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = '/opt/cni/bin';
const NETWORK = 'seatest';
const SUBNET = '10.244.7.0/24';

function commandPath(name: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

const chroot = commandPath('chroot');
const skipReason =
  process.platform !== 'linux'
    ? 'needs Linux'
    : process.getuid?.() !== 0
      ? 'chroot needs root (CI runs as root)'
      : chroot === undefined
        ? '`chroot` is missing (Debian package coreutils)'
        : commandPath('ldd') === undefined
          ? '`ldd` is missing (Debian package libc-bin)'
          : undefined;
const skip = skipUnlessMet('cni/sea-no-node.test.ts', skipReason);

/** The absolute paths `ldd` resolves for an executable, the loader included. */
function sharedLibraries(executable: string): string[] {
  const out = execFileSync('ldd', [executable], { encoding: 'utf8' });
  const paths = new Set<string>();
  for (const line of out.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (match?.[1] !== undefined) paths.add(match[1]);
    else if (/not found/.test(line)) throw new Error(`ldd ${executable}: ${line.trim()}`);
  }
  return [...paths];
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => !e.isDirectory()).map((e) => `/${relative(dir, join(e.parentPath, e.name))}`).sort();
}

describe.skipIf(skip)('CNI executables without Node (chroot)', () => {
  let scratch: string;
  let rootfs: string;
  let expectedFiles: string[];

  /** Runs BIN/name inside the chroot with exactly this environment (no PATH, no NODE_*). */
  function inChroot(name: string, env: Record<string, string>, stdin: string): { status: number | null; stdout: string; stderr: string } {
    const run = spawnSync(chroot!, [rootfs, `${BIN}/${name}`], { env, input: stdin, encoding: 'utf8', timeout: 15_000 });
    if (run.error !== undefined) throw run.error;
    return { status: run.status, stdout: run.stdout, stderr: run.stderr };
  }

  beforeAll(async () => {
    execFileSync(process.execPath, [join(root, 'cni/build-executables.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const built = join(root, 'dist/cni-bin/podtun-ipam');
    scratch = await mkdtemp(join(tmpdir(), 'podtun-sea-'));
    rootfs = join(scratch, 'root');
    await mkdir(join(rootfs, BIN), { recursive: true });
    await copyFile(built, join(rootfs, BIN, 'podtun-ipam'));
    await link(join(rootfs, BIN, 'podtun-ipam'), join(rootfs, BIN, 'podtun'));
    const libraries = sharedLibraries(built);
    for (const lib of libraries) {
      await mkdir(join(rootfs, dirname(lib)), { recursive: true });
      await copyFile(lib, join(rootfs, lib)); // follows symlinks: the real library under the listed name
    }
    expectedFiles = [`${BIN}/podtun`, `${BIN}/podtun-ipam`, ...libraries].sort();
  });

  afterAll(async () => {
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  });

  it('the root filesystem holds the executable, its libraries and the loader, and no node', async () => {
    const files = await listFiles(rootfs);
    expect(files).toEqual(expectedFiles);
    expect(files.some((file) => /(^|\/)(node|nodejs)$/.test(file))).toBe(false);
    expect(existsSync(join(rootfs, 'usr/bin/node'))).toBe(false);
    expect(existsSync(join(rootfs, 'bin/sh'))).toBe(false);
    // Sanity: the libraries alone are small; the runtime is inside the executable.
    expect(files.filter((f) => f.includes('ld-linux')).length).toBe(1);
  });

  it('podtun and podtun-ipam answer VERSION', () => {
    for (const name of ['podtun', 'podtun-ipam']) {
      const run = inChroot(name, { CNI_COMMAND: 'VERSION' }, '');
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ cniVersion: '1.1.0', supportedVersions: expect.arrayContaining(['1.0.0', '1.1.0']) as unknown });
    }
  });

  it('podtun-ipam ADD reserves an address in the chroot; DEL releases it', async () => {
    const config = JSON.stringify({
      cniVersion: '1.1.0',
      name: NETWORK,
      type: 'bridge',
      ipam: { type: 'podtun-ipam', ranges: [[{ subnet: SUBNET }]], dataDir: '/var/lib/cni/networks' },
    });
    // CNI_NETNS must be set for ADD; an IPAM plugin does not enter it.
    const env = { CNI_CONTAINERID: 'sea-ctr-1', CNI_NETNS: '/var/run/netns/sea-test', CNI_IFNAME: 'eth0', CNI_PATH: BIN };

    const add = inChroot('podtun-ipam', { ...env, CNI_COMMAND: 'ADD' }, config);
    expect(add.stderr).toBe('');
    expect(add.status).toBe(0);
    const result = JSON.parse(add.stdout) as { cniVersion: string; ips: { address: string; gateway?: string }[] };
    expect(result.cniVersion).toBe('1.1.0');
    expect(result.ips).toHaveLength(1);
    const address = result.ips[0]!.address;
    expect(address).toMatch(/^10\.244\.7\.\d+\/24$/);
    const reservation = join(rootfs, 'var/lib/cni/networks', NETWORK, address.split('/')[0]!);
    expect(await readFile(reservation, 'utf8')).toBe('sea-ctr-1\r\neth0');

    const del = inChroot('podtun-ipam', { ...env, CNI_COMMAND: 'DEL' }, config);
    expect(del.stderr).toBe('');
    expect(del.status).toBe(0);
    expect(del.stdout).toBe('');
    expect(existsSync(reservation)).toBe(false);
  });
});
