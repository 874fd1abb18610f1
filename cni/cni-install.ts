/**
 * Installs podtun's CNI executables and network config on the host, and removes them.
 *
 * Install, each step atomic for a runtime that reads at any moment (kubelet/containerd may run a
 * plugin or re-read the config directory while we write):
 *  1. create binDir and confDir when missing;
 *  2. per executable: skip it when the installed file has the same size and sha256 (a restart
 *     costs a hash, not an 87 MB copy);
 *  3. otherwise copy it once to a temp name IN binDir (same filesystem, so rename is atomic),
 *     fsync, chmod 0755, hard-link the temp under a second temp name for the other executable
 *     built as the same file, then rename each over its final name;
 *  4. the conflist last — it names the binaries, which must exist first — through the same
 *     temp, fsync, chmod, rename (skipped when identical, so the runtime is not told of a change).
 * Uninstall is the reverse: the conflist FIRST (no runtime may pick a config whose plugin is
 * gone), then the binaries. Only the three names (and this module's own temp files, once their
 * process is gone) are ever removed; missing files are fine, so both operations are idempotent.
 * Concurrent calls are safe in the sense that each file is always whole; the last rename wins.
 *
 * Temp names are hidden and end in `.tmp`: libcni reads only *.conf, *.conflist and *.json, and
 * looks plugins up by exact name, so no runtime ever picks a temp file.
 */
import { processAlive } from './process-alive.js';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../core/logger.js';

/** The executables, one SEA under two names (cni/build-executables.mjs). */
export const CNI_EXECUTABLES = ['podtun', 'podtun-ipam'] as const;

const EXEC_MODE = 0o755;
const CONF_MODE = 0o644;

export interface CniInstallOptions {
  /** Where the built executables are (cniExecutablesDir()). */
  sourceDir: string;
  /** e.g. /opt/cni/bin */
  binDir: string;
  /** e.g. /etc/cni/net.d */
  confDir: string;
  /** e.g. 10-podtun.conflist */
  confFileName: string;
  /** Written as JSON. */
  conflist: Readonly<Record<string, unknown>>;
  log: Logger;
}

export interface CniInstallResult {
  /** Paths written by this call (binaries first, the conflist last). */
  installed: string[];
  /** Paths already identical, left untouched. */
  unchanged: string[];
}

export type CniUninstallOptions = Omit<CniInstallOptions, 'sourceDir' | 'conflist'>;

export class CniInstallError extends Error {
  readonly code = 'ERR_PODTUN_CNI_INSTALL';

  constructor(
    message: string,
    /** The file or directory that failed. */
    readonly path: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
    this.name = 'CniInstallError';
  }
}

/**
 * The dist/cni-bin of this package, whether this module runs compiled (dist/cni/) or
 * from source (cni/, under vitest): the nearest folder up with a package.json.
 */
export function cniExecutablesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new CniInstallError(`no package.json above ${fileURLToPath(import.meta.url)}`, dir);
    dir = parent;
  }
  return join(dir, 'dist', 'cni-bin');
}

export async function installCni(options: CniInstallOptions): Promise<CniInstallResult> {
  const { sourceDir, binDir, confDir, confFileName, log } = options;
  checkConfFileName(confDir, confFileName);
  await ensureDir(confDir);
  await removeStaleTemps(confDir, [confFileName]);
  const sources = Object.fromEntries(CNI_EXECUTABLES.map((name) => [name, join(sourceDir, name)]));
  const result = await installExecutables({ sources, binDir, log, missing: '(run `npm run build`)' });

  const confPath = join(confDir, confFileName);
  const text = `${JSON.stringify(options.conflist, null, 2)}\n`;
  if ((await readOptional(confPath)) === text) {
    result.unchanged.push(confPath);
  } else {
    const temp = tempPath(confDir, confFileName);
    try {
      await writeSynced(temp, text);
      await attempt(() => rename(temp, confPath), confPath, `failed to install CNI config ${confPath}`);
    } finally {
      await rm(temp, { force: true });
    }
    await syncDir(confDir);
    result.installed.push(confPath);
    log.info({ file: confPath }, 'cni config installed');
  }
  for (const path of result.unchanged) log.debug({ file: path }, 'cni file unchanged');
  return result;
}

export interface ExecutablesInstallOptions {
  /** Name in binDir -> the file to install under it. */
  sources: Readonly<Record<string, string>>;
  binDir: string;
  log: Logger;
  /** Added to the error when a source is missing ("(run `npm run build`)"). */
  missing: string;
}

/**
 * Installs executables into `binDir`, each as a temp file in binDir renamed over the target, so a
 * runtime executing the old one never sees a half-written file nor gets "text file busy". A target
 * with the same content is left alone; sources that are one file (hard links) stay one copy.
 */
export async function installExecutables(options: ExecutablesInstallOptions): Promise<CniInstallResult> {
  const { binDir, log } = options;
  const result: CniInstallResult = { installed: [], unchanged: [] };
  const names = Object.keys(options.sources);
  await ensureDir(binDir);
  await removeStaleTemps(binDir, names);

  const digests = new DigestCache();
  const groups = new Map<string, { source: string; names: string[] }>();
  for (const name of names) {
    const source = options.sources[name] ?? '';
    const sourceStats = await statOr(source, `CNI executable ${source} is missing ${options.missing}`);
    const target = join(binDir, name);
    if (await sameContent(digests, source, sourceStats, target)) {
      result.unchanged.push(target);
      continue;
    }
    const key = `${sourceStats.dev}:${sourceStats.ino}`;
    const group = groups.get(key) ?? { source, names: [] };
    group.names.push(name);
    groups.set(key, group);
  }

  for (const { source, names: group } of groups.values()) {
    const staged: { temp: string; target: string }[] = [];
    try {
      for (const name of group) {
        const temp = tempPath(binDir, name);
        const first = staged[0];
        if (first === undefined) await stageCopy(source, temp);
        else await attempt(() => link(first.temp, temp), temp, `failed to link ${first.temp} to ${temp}`);
        staged.push({ temp, target: join(binDir, name) });
      }
      for (const { temp, target } of staged) {
        await attempt(() => rename(temp, target), target, `failed to install CNI executable ${target}`);
        result.installed.push(target);
        log.info({ file: target }, 'cni executable installed');
      }
    } finally {
      await Promise.all(staged.map(({ temp }) => rm(temp, { force: true })));
    }
  }
  if (result.installed.length > 0) await syncDir(binDir);
  return result;
}

export async function uninstallCni(options: CniUninstallOptions): Promise<{ removed: string[] }> {
  const { binDir, confDir, confFileName, log } = options;
  checkConfFileName(confDir, confFileName);
  const removed: string[] = [];
  const remove = async (path: string): Promise<void> => {
    try {
      const stats = await lstat(path);
      if (stats.isDirectory()) throw new CniInstallError(`failed to remove ${path}: it is a directory`, path);
      await rm(path);
      removed.push(path);
      log.info({ file: path }, 'cni file removed');
    } catch (err: unknown) {
      if (errnoOf(err) === 'ENOENT') return;
      if (err instanceof CniInstallError) throw err;
      throw new CniInstallError(`failed to remove ${path}: ${reasonOf(err)}`, path, { cause: err });
    }
  };
  await remove(join(confDir, confFileName));
  if (removed.length > 0) await syncDir(confDir);
  for (const name of CNI_EXECUTABLES) await remove(join(binDir, name));
  await removeStaleTemps(binDir, CNI_EXECUTABLES);
  await removeStaleTemps(confDir, [confFileName]);
  return { removed };
}

/**
 * A plain file name ending in .conflist: what libcni reads as a list, and never a path that
 * could make uninstall remove something outside confDir.
 */
function checkConfFileName(confDir: string, confFileName: string): void {
  if (!/^[\w.-]+\.conflist$/.test(confFileName) || confFileName.startsWith('.')) {
    throw new CniInstallError(`invalid CNI config file name "${confFileName}": not a file name ending in .conflist`, join(confDir, confFileName));
  }
}

/** `.NAME.<pid>-<12 hex>.tmp`: hidden, not an extension libcni reads, and says whose it is. */
function tempPath(dir: string, name: string): string {
  return join(dir, `.${name}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
}

const TEMP_PATTERN = /^\.(.+)\.(\d+)-[0-9a-f]{12}\.tmp$/;

/**
 * Temp files a killed installer left behind (up to 87 MB each): ours by name, and their process
 * is gone. This process's own (a concurrent call's, in flight) and a live one's are kept.
 */
async function removeStaleTemps(dir: string, names: readonly string[]): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err: unknown) {
    if (errnoOf(err) === 'ENOENT') return;
    throw new CniInstallError(`failed to list ${dir}: ${reasonOf(err)}`, dir, { cause: err });
  }
  for (const entry of entries) {
    const match = TEMP_PATTERN.exec(entry);
    if (match?.[1] === undefined || !names.includes(match[1])) continue;
    const pid = Number(match[2]);
    if (pid !== process.pid && !processAlive(pid)) await rm(join(dir, entry), { force: true });
  }
}

async function stageCopy(source: string, temp: string): Promise<void> {
  await attempt(() => copyFile(source, temp), temp, `failed to copy ${source} to ${temp}`);
  await attempt(
    async () => {
      const handle = await open(temp, 'r+');
      try {
        await handle.chmod(EXEC_MODE);
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
    temp,
    `failed to sync ${temp}`,
  );
}

async function writeSynced(path: string, text: string): Promise<void> {
  await attempt(
    async () => {
      const handle = await open(path, 'wx', CONF_MODE);
      try {
        await handle.writeFile(text);
        await handle.chmod(CONF_MODE);
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
    path,
    `failed to write ${path}`,
  );
}

/** Whether target is a regular executable file with source's size and sha256. */
async function sameContent(digests: DigestCache, source: string, sourceStats: Stats, target: string): Promise<boolean> {
  let targetStats: Stats;
  try {
    targetStats = await lstat(target);
  } catch (err: unknown) {
    if (errnoOf(err) === 'ENOENT') return false;
    throw new CniInstallError(`failed to stat ${target}: ${reasonOf(err)}`, target, { cause: err });
  }
  if (!targetStats.isFile() || targetStats.size !== sourceStats.size || (targetStats.mode & 0o777) !== EXEC_MODE) return false;
  if (targetStats.dev === sourceStats.dev && targetStats.ino === sourceStats.ino) return true;
  const [a, b] = await Promise.all([digests.of(source, sourceStats), digests.of(target, targetStats)]);
  return a === b;
}

/** sha256 per inode, so two names of one file are hashed once. */
class DigestCache {
  readonly #byInode = new Map<string, Promise<string>>();

  of(path: string, stats: Stats): Promise<string> {
    const key = `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}`;
    let digest = this.#byInode.get(key);
    if (digest === undefined) {
      digest = attempt(() => sha256(path), path, `failed to read ${path}`);
      this.#byInode.set(key, digest);
    }
    return digest;
  }
}

function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

async function ensureDir(dir: string): Promise<void> {
  await attempt(() => mkdir(dir, { recursive: true, mode: 0o755 }), dir, `failed to create directory ${dir}`);
}

/** A rename is durable once its directory is synced. */
async function syncDir(dir: string): Promise<void> {
  await attempt(
    async () => {
      const handle = await open(dir, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
    dir,
    `failed to sync directory ${dir}`,
  );
}

async function statOr(path: string, missing: string): Promise<Stats> {
  try {
    return await stat(path);
  } catch (err: unknown) {
    if (errnoOf(err) === 'ENOENT') throw new CniInstallError(missing, path, { cause: err });
    throw new CniInstallError(`failed to stat ${path}: ${reasonOf(err)}`, path, { cause: err });
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err: unknown) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'EISDIR') return undefined;
    throw new CniInstallError(`failed to read ${path}: ${reasonOf(err)}`, path, { cause: err });
  }
}

/** Runs one filesystem step; a failure becomes a CniInstallError naming the path and the reason. */
async function attempt<T>(step: () => Promise<T>, path: string, what: string): Promise<T> {
  try {
    return await step();
  } catch (err: unknown) {
    if (err instanceof CniInstallError) throw err;
    throw new CniInstallError(`${what}: ${reasonOf(err)}`, path, { cause: err });
  }
}

function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
