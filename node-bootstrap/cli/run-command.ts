/**
 * `podtun run --config FILE [--log-level LEVEL] [--status-socket PATH]`: resolves where the config
 * and the socket come from (flags, then PODTUN_* env) and hands over to the daemon
 * (daemon/run-node.ts), whose modules, the native addon among them, load only now.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_API_SOCKET } from '../../api/api-client.js';
import { errorMessage } from '../../core/config-check.js';
import { resolveConfigSources } from '../config/load-config.js';
import { ConfigError } from '../config/node-config.js';
import { EXIT_OK, USAGE, nonEmpty, usageError } from './command.js';
import type { CliEnv, CliIo } from './command.js';

export async function runCommand(args: readonly string[], env: CliEnv, io: CliIo): Promise<number> {
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
  const { runNode } = await import('../daemon/run-node.js');
  return runNode({ configPath: sources.path, overrides: sources.overrides, statusSocket }, async () => (await import('../daemon/node-deps.js')).defaultNodeDeps);
}
