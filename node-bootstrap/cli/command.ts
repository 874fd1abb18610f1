/**
 * What every `podtun` command shares: its input and output, the exit codes, the usage text and
 * how a usage error is reported. Command modules (and the lab's `demo`) import this, not cli.ts.
 *
 * Exit codes: 0 ok, 1 failure (bad config, startup or fatal error), 2 usage error.
 */
import { DEFAULT_API_SOCKET } from '../../api/api-client.js';
import type { Logger } from '../../core/logger.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The process environment as commands read it (PODTUN_* fallbacks). */
export type CliEnv = Readonly<Record<string, string | undefined>>;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** stdout is a terminal: `peers --watch` clears the screen between draws. Default false. */
  isTty?: boolean;
}

/** A command: its arguments (after its name) to an exit code. */
export type CliCommand = (args: readonly string[], env: CliEnv, io: CliIo) => Promise<number>;

export const USAGE = `Usage:
  podtun run --config FILE [--log-level LEVEL] [--status-socket PATH]
  podtun status [--socket PATH] [--json]
  podtun routes [--socket PATH] [--json]
  podtun peers [--socket PATH] [--json] [--watch [--count N]]
  podtun demo [--mode podtun|kernel-routing] [--keep]
  podtun lab up|down|status
  podtun doctor --config FILE [--socket PATH] [--json]
  podtun uninstall [--config FILE]
  podtun install-cni [--bin-dir DIR] [--plugin-dir DIR] [--plugins a,b,...]
  podtun key public [--config FILE | --key-file PATH]
  podtun key generate
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
  install-cni Put podtun, podtun-ipam and the reference plugins it delegates to (default bridge,
            host-local, loopback, portmap from /usr/lib/cni) into --bin-dir (default /opt/cni/bin),
            each by temp file + rename; the DaemonSet's init step. No conflist (run writes it).
  key       public: print this node's public key (the nodeKeyFile's, made on first use; default
            /var/lib/podtun/node.key), for the other nodes' nodes[].publicKey. generate: print a
            new private key.
  demo      Build a throwaway 3-node cluster in network namespaces and show podtun carrying it;
            --keep leaves it running as the lab.
  lab       up: build the demo's cluster and leave it running; status: is it up, each node's
            \`podtun status\`; down: stop and remove it all (\`podtun lab --help\`).
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

export function usageError(io: CliIo, reason: string): number {
  io.err(`podtun: ${reason}\n\n${USAGE}`);
  return EXIT_USAGE;
}

/** A flag or environment value, trimmed; undefined when absent or blank. */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** The CLI prints results itself; warnings from the installer go to stderr as plain lines. */
export function cliLogger(io: CliIo): Logger {
  const warn = (objOrMsg: object | string, msg?: string): void => {
    io.err(typeof objOrMsg === 'string' ? `podtun: ${objOrMsg}\n` : `podtun: ${msg ?? ''} ${JSON.stringify(objOrMsg)}\n`);
  };
  const quiet = (): void => undefined;
  const log: Logger = { debug: quiet, info: quiet, warn, error: warn, child: () => log, isLevelEnabled: (level) => level === 'warn' || level === 'error' };
  return log;
}
