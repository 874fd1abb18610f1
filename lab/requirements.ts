/**
 * What the namespace tests, the demo and the benchmark need from the machine, as reasons to
 * print (naming the Debian package to install) rather than failures.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { findRepoRoot } from './cluster.js';

const DEBIAN_PACKAGE: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  bridge: 'iproute2',
  ss: 'iproute2',
  ping: 'iputils-ping',
  iperf3: 'iperf3',
  tcpdump: 'tcpdump',
  nft: 'nftables',
  prlimit: 'util-linux',
  etcd: 'etcd-server',
  go: 'golang-go',
  wg: 'wireguard-tools',
};

export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The first missing command of `commands`, as a sentence naming its Debian package. */
export function missingCommand(commands: readonly string[]): string | undefined {
  for (const cmd of commands) {
    if (!hasCommand(cmd)) return `\`${cmd}\` is missing (Debian package ${DEBIAN_PACKAGE[cmd] ?? cmd})`;
  }
  return undefined;
}

/** Why namespace work cannot run here (not Linux, not root, no `ip`...), or undefined. */
export function netnsSkipReason(needs: readonly string[] = []): string | undefined {
  if (process.platform !== 'linux') return 'network namespace tests need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root (CI runs these tests as root)';
  return missingCommand(['ip', 'ss', ...needs]);
}

/** Why podtun cannot be started, or undefined: `bin/podtun.js` runs the built CLI. */
export function podtunSkipReason(): string | undefined {
  const root = findRepoRoot();
  if (!existsSync(join(root, 'bin', 'podtun.js'))) return 'bin/podtun.js does not exist yet';
  if (!existsSync(join(root, 'dist', 'node-bootstrap', 'cli', 'cli.js'))) {
    return 'dist/node-bootstrap/cli/cli.js is missing: run `npm run build` first';
  }
  return undefined;
}
