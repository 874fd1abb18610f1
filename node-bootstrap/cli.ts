/**
 * The `podtun` command line. `main` parses and dispatches and returns the exit code (tests call
 * it); `runCli` is what bin/podtun.js runs. Commands load their modules lazily: `--help` and
 * `version` never touch the native addon, and `run` does not need the demo.
 *
 * Exit codes: 0 ok, 1 failure (bad config, startup or fatal error), 2 usage error.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { resolveConfigSources } from './config/load-config.js';
import { ConfigError } from './config/node-config.js';
import { DEFAULT_API_SOCKET } from '../api/api-client.js';

export const USAGE = `Usage:
  podtun run --config FILE [--log-level LEVEL] [--status-socket PATH]
  podtun status [--socket PATH] [--json]
  podtun routes [--socket PATH] [--json]
  podtun peers [--socket PATH] [--json] [--watch [--count N]]
  podtun demo [--mode podtun|kernel-routing]
  podtun doctor --config FILE [--socket PATH] [--json]
  podtun uninstall [--config FILE]
  podtun version
  podtun --help

Commands:
  run       Run this node's pod-network router (root: opens a TUN, sets routes and sysctls).
  status    This node, its lease, its peers (transport, state, endpoint, RTT, MTU, bytes), drops.
  routes    The route table: subnet -> node -> transport -> state.
  peers     The peer table; --watch redraws it every second until Ctrl-C (or N times: --count N).
  doctor    Check what breaks pod networking on this node (TUN, forwarding, routes, peers, MTU).
  uninstall Remove the CNI conflist and executables \`run\` installed (the config's cni block, or
            /etc/cni/net.d/10-podtun.conflist and /opt/cni/bin/podtun{,-ipam}); IPAM state stays.
  demo      Build a throwaway 3-node cluster in network namespaces and show podtun carrying it.
  version   Print the version.

Options for run:
  --config FILE          Node config, YAML or JSON (env PODTUN_CONFIG).
  --log-level LEVEL      trace|debug|info|warn|error; wins over the file (env PODTUN_LOG_LEVEL).
  --status-socket PATH   Serve the local API (GET /status, /healthz, /readyz, /metrics) on this
                         Unix socket (env PODTUN_STATUS_SOCKET; default ${DEFAULT_API_SOCKET}).

Options for status, routes, peers:
  --socket PATH          The daemon's socket (env PODTUN_STATUS_SOCKET; default ${DEFAULT_API_SOCKET}).
  --json                 The daemon's GET /status JSON instead of a table.

Signals (run): SIGTERM/SIGINT shut down cleanly (a second one exits at once); SIGHUP reloads
the config (also reloaded when the file changes).
`;

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** stdout is a terminal: `peers --watch` clears the screen between draws. Default false. */
  isTty?: boolean;
}

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  isTty: process.stdout.isTTY,
};

/** A command served by a module above this folder (the lab's `demo`), plugged in by bin/podtun.js. */
export type CliCommand = (args: readonly string[], env: Readonly<Record<string, string | undefined>>, io: CliIo) => Promise<number>;

export async function main(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: CliIo = processIo,
  plugged: Readonly<Record<string, CliCommand>> = {},
): Promise<number> {
  const [command, ...rest] = argv;
  const pluggedCommand = command === undefined ? undefined : plugged[command];
  if (pluggedCommand !== undefined) return pluggedCommand(rest, env, io);
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.out(USAGE);
    return command === undefined ? EXIT_USAGE : EXIT_OK;
  }
  switch (command) {
    case 'version':
    case '--version':
      if (rest.length > 0) return usageError(io, `unexpected argument "${rest[0] ?? ''}"`);
      io.out(`podtun ${packageVersion()}\n`);
      return EXIT_OK;
    case 'run':
      return runCommand(rest, env, io);
    case 'status':
    case 'routes':
    case 'peers': {
      const { viewCommand } = await import('./status-command.js');
      return viewCommand(command, rest, env, io);
    }
    case 'doctor':
      return (await import('./doctor.js')).doctorCommand(rest, env, io);
    case 'uninstall':
      return (await import('./uninstall-command.js')).uninstallCommand(rest, env, io);
    default:
      return usageError(io, `unknown command "${command}"`);
  }
}

async function runCommand(args: readonly string[], env: Readonly<Record<string, string | undefined>>, io: CliIo): Promise<number> {
  let values: { config?: string | undefined; 'log-level'?: string | undefined; 'status-socket'?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        config: { type: 'string', short: 'c' },
        'log-level': { type: 'string' },
        'status-socket': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err: unknown) {
    return usageError(io, errorMessage(err));
  }
  if (values.help === true) {
    io.out(USAGE);
    return EXIT_OK;
  }
  let sources;
  try {
    sources = resolveConfigSources({ config: values.config, logLevel: values['log-level'] }, env);
  } catch (err: unknown) {
    if (err instanceof ConfigError) return usageError(io, err.message);
    throw err;
  }
  const statusSocket = nonEmpty(values['status-socket']) ?? nonEmpty(env['PODTUN_STATUS_SOCKET']) ?? DEFAULT_API_SOCKET;
  const { runNode } = await import('./run-node.js');
  return runNode({ configPath: sources.path, overrides: sources.overrides, statusSocket }, async () => (await import('./node-deps.js')).defaultNodeDeps);
}

export function usageError(io: CliIo, reason: string): number {
  io.err(`podtun: ${reason}\n\n${USAGE}`);
  return EXIT_USAGE;
}

/** The version in the package.json above this file (node-bootstrap/ or dist/node-bootstrap/). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'podtun' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not here; look one level up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

/** bin/podtun.js: runs main on this process, with the commands it plugs in, and exits with its code. */
export async function runCli(plugged: Readonly<Record<string, CliCommand>> = {}): Promise<never> {
  let code: number;
  try {
    code = await main(process.argv.slice(2), process.env, processIo, plugged);
  } catch (err: unknown) {
    process.stderr.write(`podtun: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    code = EXIT_FAILURE;
  }
  process.exit(code);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
