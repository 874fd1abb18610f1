/**
 * The CNI executable: `podtun` (the interface plugin, podtun-cni-plugin.ts) and `podtun-ipam`
 * (its IPAM plugin, cni/ipam/podtun-ipam-plugin.ts) in one program.
 *
 * 1. Which plugin: the executable's own name when it is `podtun` or `podtun-ipam` (the
 *    single-executable build installs one binary under both names, build-executables.mjs), else
 *    the first argument (`node dist/cni/cni-entry.js podtun-ipam`), else a usage
 *    line on stderr and exit 2.
 * 2. Without CNI_COMMAND (someone ran it by hand): what it is, on stderr, exit 0, as libcni's
 *    skel does. stdin is not read.
 * 3. stdin read (bounded), the plugin run, its outcome written to stdout, process.exitCode set.
 *
 * Nothing escapes main: every failure is a CNI error on stdout. Logs go to stderr only; stdout
 * is the protocol. Bundled by esbuild into one CommonJS file: no top-level await, no
 * import.meta, imports node builtins and its own folder only.
 */
import { basename } from 'node:path';
import { SUPPORTED_CNI_VERSIONS, errorOutcome, readStdin } from './cni-protocol.js';
import type { CniOutcome } from './cni-protocol.js';
import { podtunIpamMain } from './ipam/podtun-ipam-main.js';
import { fetchNodeLease } from './daemon-client.js';
import { DEFAULT_DAEMON_SOCKET, IPAM_PLUGIN, runCni } from './podtun-cni-plugin.js';

const INTERFACE_PLUGIN = 'podtun';
type PluginName = typeof INTERFACE_PLUGIN | typeof IPAM_PLUGIN;
const USAGE_EXIT_CODE = 2;

function pluginName(execPath: string, argv: readonly string[]): PluginName | undefined {
  for (const candidate of [basename(execPath), argv[2]]) {
    if (candidate === INTERFACE_PLUGIN || candidate === IPAM_PLUGIN) return candidate;
  }
  return undefined;
}

/** podtun-ipam asks the daemon (at its config's ipam.daemonSocket) when the config has no ranges. */
function runIpam(env: Readonly<Record<string, string | undefined>>, stdin: string): Promise<CniOutcome> {
  return podtunIpamMain(env, stdin, { daemonLease: (socketPath) => fetchNodeLease(socketPath ?? DEFAULT_DAEMON_SOCKET) });
}

async function main(): Promise<void> {
  const plugin = pluginName(process.execPath, process.argv);
  if (plugin === undefined) {
    process.stderr.write(
      `usage: run as ${INTERFACE_PLUGIN} or ${IPAM_PLUGIN} (the CNI plugins a container runtime executes), ` +
        `or: node cni-entry.js ${INTERFACE_PLUGIN}|${IPAM_PLUGIN}\n`,
    );
    process.exitCode = USAGE_EXIT_CODE;
    return;
  }
  const env = process.env;
  if (env['CNI_COMMAND'] === undefined || env['CNI_COMMAND'] === '') {
    const role = plugin === INTERFACE_PLUGIN ? 'the podtun pod network' : 'pod addresses from the podtun node lease';
    process.stderr.write(`CNI ${plugin} plugin: ${role}\nCNI protocol versions supported: ${SUPPORTED_CNI_VERSIONS.join(', ')}\n`);
    return;
  }
  let outcome: CniOutcome;
  try {
    const stdin = await readStdin(process.stdin);
    outcome = plugin === INTERFACE_PLUGIN ? await runCni(env, stdin) : await runIpam(env, stdin);
  } catch (err: unknown) {
    outcome = errorOutcome(err, undefined);
  }
  process.stdout.write(outcome.stdout);
  process.exitCode = outcome.exitCode;
}

main().catch((err: unknown) => {
  // Only a failing write to stdout/stderr gets here; there is nobody left to tell but stderr.
  try {
    process.stderr.write(`${INTERFACE_PLUGIN}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  } finally {
    process.exitCode = 1;
  }
});
