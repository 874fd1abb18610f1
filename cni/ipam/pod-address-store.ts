/**
 * Pod address reservations on disk, shared by concurrent plugin processes without a lock.
 *
 * Layout (host-local's, so the usual tools and habits carry over):
 *   <dataDir>/<network>/10.244.1.2          one file per reserved address, "containerID\r\nifname"
 *   <dataDir>/<network>/last_reserved_ip.0  the round-robin hint of range set 0
 *   <dataDir>/<network>/.podtun-tmp.<pid>.<rand>      a reservation being written
 *   <dataDir>/<network>/.podtun-release.<pid>.<rand>  a reservation being released
 *
 * Reserving: the owner is written to a private temp file, then `link(temp, <address>)`. link
 * creates the name atomically or fails with EEXIST (someone else holds it: try the next
 * candidate), so a reservation file is complete from the instant it exists. A kill -9 at any
 * point leaves either no reservation or a complete one, plus perhaps a temp file; temp files
 * whose process is gone (or that are older than staleTempMs) are swept by later ADDs and GC.
 *
 * Releasing: read the owner and the inode, rename the file aside, and unlink it only if the file
 * moved is the one read (same inode, same owner); otherwise (it was released and re-reserved
 * meanwhile) link it back. Without this, a DEL racing a GC could delete a reservation made in
 * between by a third process for another container.
 *
 * Not compatible with host-local's flock-based locking: one network dir, one IPAM plugin.
 */
import { processAlive } from '../process-alive.js';
import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseBigint, formatBigint } from './pod-address-allocator.js';

export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';
/** host-local's separator between container ID and interface name. */
const OWNER_SEPARATOR = '\r\n';
const TEMP_PREFIX = '.podtun-tmp.';
const RELEASE_PREFIX = '.podtun-release.';
const HINT_PREFIX = 'last_reserved_ip.';
/** A temp file older than this is stale even if its PID is alive again (PID reuse). */
export const DEFAULT_STALE_TEMP_MS = 10 * 60_000;

export interface AddressOwner {
  readonly containerId: string;
  /** undefined for a legacy file that holds only the container ID. */
  readonly ifName: string | undefined;
}

export interface StoredReservation {
  /** Canonical address text, the file name. */
  readonly address: string;
  /** undefined when the file is empty or garbled (no one can claim it; GC frees it). */
  readonly owner: AddressOwner | undefined;
}

export interface PodAddressStoreOptions {
  /** This process's PID, stamped into temp file names. */
  pid?: number;
  /** Whether a PID still runs; default: signal 0. */
  isProcessAlive?: (pid: number) => boolean;
  now?: () => number;
  staleTempMs?: number;
}

export type ReleaseOutcome = 'released' | 'kept' | 'missing';

export class PodAddressStore {
  readonly dir: string;
  readonly #pid: number;
  readonly #isProcessAlive: (pid: number) => boolean;
  readonly #now: () => number;
  readonly #staleTempMs: number;

  /** `network` must already be a safe file name (parseCniRequest checks the network name). */
  constructor(dataDir: string, network: string, options: PodAddressStoreOptions = {}) {
    this.dir = join(dataDir, network);
    this.#pid = options.pid ?? process.pid;
    this.#isProcessAlive = options.isProcessAlive ?? processAlive;
    this.#now = options.now ?? Date.now;
    this.#staleTempMs = options.staleTempMs ?? DEFAULT_STALE_TEMP_MS;
  }

  async ensureDir(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
  }

  /** Every reservation with its owner; a file released while being read is left out. */
  async list(): Promise<StoredReservation[]> {
    const out: StoredReservation[] = [];
    for (const address of await this.#addressNames()) {
      const content = await readIfExists(join(this.dir, address));
      if (content !== undefined) out.push({ address, owner: parseOwner(content) });
    }
    return out;
  }

  /** Addresses reserved by (containerId, ifName); a legacy ID-only file matches any ifName. */
  async findByOwner(containerId: string, ifName: string): Promise<string[]> {
    const found: string[] = [];
    for (const { address, owner } of await this.list()) {
      if (owner !== undefined && ownerMatches(owner, containerId, ifName)) found.push(address);
    }
    return found;
  }

  /**
   * Reserves the first free address of `candidates` (canonical texts, in order) for `owner`;
   * undefined when none is free. Names present at the start are skipped without a syscall; a
   * candidate taken meanwhile by another process fails its link with EEXIST and is skipped.
   */
  async reserveFirstFree(candidates: Iterable<string>, owner: { containerId: string; ifName: string }): Promise<string | undefined> {
    const taken = new Set(await this.#addressNames());
    const content = `${owner.containerId}${OWNER_SEPARATOR}${owner.ifName}`;
    const temp = this.#privateName(TEMP_PREFIX);
    try {
      await writeFile(temp, content, { mode: 0o644 });
      for (const address of candidates) {
        if (taken.has(address)) continue;
        for (let attempt = 0; ; attempt++) {
          try {
            await link(temp, join(this.dir, address));
            return address;
          } catch (err: unknown) {
            if (errnoCode(err) === 'EEXIST') break;
            // Our temp file was swept by a process that judged us dead (another PID namespace):
            // write it again, once.
            if (errnoCode(err) === 'ENOENT' && attempt === 0) {
              await writeFile(temp, content, { mode: 0o644 });
              continue;
            }
            throw err;
          }
        }
      }
      return undefined;
    } finally {
      await unlinkIfExists(temp);
    }
  }

  /** Releases `address` if its current owner satisfies `shouldRelease` (see the file comment). */
  async releaseIf(address: string, shouldRelease: (owner: AddressOwner | undefined) => boolean): Promise<ReleaseOutcome> {
    const path = join(this.dir, address);
    let read: { content: string; ino: number };
    try {
      const handle = await open(path, 'r');
      try {
        const [content, info] = await Promise.all([handle.readFile('utf8'), handle.stat()]);
        read = { content, ino: info.ino };
      } finally {
        await handle.close();
      }
    } catch (err: unknown) {
      if (errnoCode(err) === 'ENOENT') return 'missing';
      throw err;
    }
    if (!shouldRelease(parseOwner(read.content))) return 'kept';
    const aside = this.#privateName(RELEASE_PREFIX);
    try {
      await rename(path, aside);
    } catch (err: unknown) {
      if (errnoCode(err) === 'ENOENT') return 'missing';
      throw err;
    }
    // The file moved is the one read if inode and owner match. (The inode alone is not enough:
    // the kernel hands a freed inode number straight to the next file created.)
    const [moved, movedContent] = await Promise.all([lstat(aside), readFile(aside, 'utf8')]);
    if (moved.ino === read.ino && movedContent === read.content) {
      await unlink(aside);
      return 'released';
    }
    // We moved a reservation made after the one we read: put it back where it was. (Should a
    // fourth process have taken the name in the instant it was free, there is no right answer
    // left; the newer reservation stays.)
    try {
      await link(aside, path);
    } catch (err: unknown) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    } finally {
      await unlinkIfExists(aside);
    }
    return 'kept';
  }

  /** Releases everything (containerId, ifName) holds; returns the released addresses. */
  async releaseOwner(containerId: string, ifName: string): Promise<string[]> {
    const released: string[] = [];
    for (const address of await this.#addressNames()) {
      const outcome = await this.releaseIf(address, (owner) => owner !== undefined && ownerMatches(owner, containerId, ifName));
      if (outcome === 'released') released.push(address);
    }
    return released;
  }

  /** The round-robin hint of range set `index`, if present and an address. */
  async readLastReserved(index: number): Promise<string | undefined> {
    const text = (await readIfExists(join(this.dir, `${HINT_PREFIX}${index}`)))?.trim();
    if (text === undefined) return undefined;
    const parsed = parseBigint(text);
    return parsed === undefined ? undefined : formatBigint(parsed.family, parsed.value);
  }

  /** Replaces the hint atomically (temp + rename); concurrent writers: the last one wins. */
  async writeLastReserved(index: number, address: string): Promise<void> {
    const temp = this.#privateName(TEMP_PREFIX);
    try {
      await writeFile(temp, address, { mode: 0o644 });
      await rename(temp, join(this.dir, `${HINT_PREFIX}${index}`));
    } finally {
      await unlinkIfExists(temp);
    }
  }

  /**
   * Removes temp and release-aside files left by processes that are gone (or older than
   * staleTempMs); returns their names. A vanished file is skipped, not an error.
   */
  async sweepStale(): Promise<string[]> {
    const swept: string[] = [];
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err: unknown) {
      if (errnoCode(err) === 'ENOENT') return swept;
      throw err;
    }
    for (const name of names) {
      const prefix = name.startsWith(TEMP_PREFIX) ? TEMP_PREFIX : name.startsWith(RELEASE_PREFIX) ? RELEASE_PREFIX : undefined;
      if (prefix === undefined) continue;
      const pid = Number(name.slice(prefix.length).split('.')[0]);
      const path = join(this.dir, name);
      let stale = !Number.isSafeInteger(pid) || pid <= 0 || !this.#isProcessAlive(pid);
      if (!stale) {
        try {
          stale = this.#now() - (await stat(path)).mtimeMs > this.#staleTempMs;
        } catch (err: unknown) {
          if (errnoCode(err) === 'ENOENT') continue;
          throw err;
        }
      }
      if (stale && (await unlinkIfExists(path))) swept.push(name);
    }
    return swept;
  }

  /** Canonical names of the reservation files (not hints, temps or anything else). */
  async #addressNames(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err: unknown) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
    return names.filter(isAddressFileName);
  }

  #privateName(prefix: string): string {
    return join(this.dir, `${prefix}${this.#pid}.${randomBytes(6).toString('hex')}`);
  }
}

/** A file name that is an address in the canonical text this store writes. */
export function isAddressFileName(name: string): boolean {
  const parsed = parseBigint(name);
  return parsed !== undefined && formatBigint(parsed.family, parsed.value) === name;
}

export function parseOwner(content: string): AddressOwner | undefined {
  const [containerId, ifName] = content.split(OWNER_SEPARATOR).map((part) => part.trim());
  if (containerId === undefined || containerId === '') return undefined;
  return { containerId, ifName: ifName === undefined || ifName === '' ? undefined : ifName };
}

function ownerMatches(owner: AddressOwner, containerId: string, ifName: string): boolean {
  return owner.containerId === containerId && (owner.ifName === undefined || owner.ifName === ifName);
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err: unknown) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err: unknown) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
}
