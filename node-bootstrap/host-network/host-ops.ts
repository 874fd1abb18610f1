/**
 * The seam between the host network set-up and the host: `ip` (iproute2) by execFile, never a
 * shell, with a bound on each run; sysctls through /proc/sys. Tests swap it for a fake or run
 * the real one inside a network namespace.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../../core/config-check.js';

/** The seam to the host: the real one runs `ip` and touches /proc/sys; tests may run in a netns. */
export interface HostOps {
  /** Runs `ip ARGS...`; resolves with stdout; rejects with HostNetworkError on failure. */
  ip(args: readonly string[]): Promise<string>;
  /** A sysctl by path segments (["net", "ipv4", "ip_forward"]); undefined when it does not exist. */
  readSysctl(path: readonly string[]): Promise<string | undefined>;
  writeSysctl(path: readonly string[], value: string): Promise<void>;
}

export type HostNetworkErrorCode = 'ERR_PODTUN_HOST_NETWORK' | 'ERR_PODTUN_IP_MISSING';

export class HostNetworkError extends Error {
  constructor(readonly code: HostNetworkErrorCode, message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'HostNetworkError';
  }
}

const IP_TIMEOUT_MS = 10_000;

/** The real host: `ip` from PATH (or `ipPath`), /proc/sys of the calling process's netns. */
export function systemHostOps(options: { ipPath?: string; procSys?: string } = {}): HostOps {
  const ipPath = options.ipPath ?? 'ip';
  const procSys = options.procSys ?? '/proc/sys';
  return {
    ip: (args) =>
      new Promise((resolve, reject) => {
        execFile(ipPath, [...args], { timeout: IP_TIMEOUT_MS, encoding: 'utf8' }, (err, stdout, stderr) => {
          if (err === null) return resolve(stdout);
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
            return reject(new HostNetworkError('ERR_PODTUN_IP_MISSING',
              `the "${ipPath}" command was not found; install iproute2 (Debian package "iproute2")`, { cause: err }));
          }
          const why = stderr.trim() || err.message;
          reject(new HostNetworkError('ERR_PODTUN_HOST_NETWORK', `ip ${args.join(' ')}: ${why}`, { cause: err }));
        });
      }),
    async readSysctl(path) {
      try {
        return (await readFile(join(procSys, ...path), 'utf8')).trim();
      } catch (err: unknown) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new HostNetworkError('ERR_PODTUN_HOST_NETWORK', `cannot read sysctl ${path.join('.')}: ${errorMessage(err)}`, { cause: err });
      }
    },
    async writeSysctl(path, value) {
      try {
        await writeFile(join(procSys, ...path), `${value}\n`);
      } catch (err: unknown) {
        throw new HostNetworkError('ERR_PODTUN_HOST_NETWORK', `cannot set sysctl ${path.join('.')}=${value}: ${errorMessage(err)}`, { cause: err });
      }
    },
  };
}
