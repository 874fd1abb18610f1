/**
 * `podtun key public [--config FILE | --key-file PATH]`: prints this node's public key, creating
 * the key file on first use as `podtun run` would (the value for this node's `publicKey` in the
 * other nodes' static `nodes` lists).
 * `podtun key generate`: prints a fresh private key (base64), for tools that provision key files.
 */
import { parseArgs } from 'node:util';
import { errorMessage } from '../../core/config-check.js';
import { publicKeyText } from '../../core/public-key.js';
import { generateNodeKeyText, loadOrCreateNodeKey } from '../../tunnel/seal/node-key.js';
import { loadConfig } from '../config/load-config.js';
import { ConfigError } from '../config/node-config.js';
import { DEFAULT_NODE_KEY_FILE } from '../config/fields/encryption.js';
import { EXIT_FAILURE, EXIT_OK, usageError } from './command.js';
import type { CliEnv, CliIo } from './command.js';

export async function keyCommand(args: readonly string[], env: CliEnv, io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === 'generate') {
    if (rest.length > 0) return usageError(io, `unexpected argument "${rest[0] ?? ''}"`);
    io.out(`${generateNodeKeyText()}\n`);
    return EXIT_OK;
  }
  if (verb !== 'public') return usageError(io, verb === undefined ? 'key: say public or generate' : `key: unknown verb "${verb}"`);
  let values: { config?: string | undefined; 'key-file'?: string | undefined };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { config: { type: 'string', short: 'c' }, 'key-file': { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err: unknown) {
    return usageError(io, errorMessage(err));
  }
  if (values.config !== undefined && values['key-file'] !== undefined) return usageError(io, 'give --config or --key-file, not both');
  let keyFile = values['key-file'] ?? DEFAULT_NODE_KEY_FILE;
  const configPath = values.config ?? (env['PODTUN_CONFIG'] === '' ? undefined : env['PODTUN_CONFIG']);
  if (values['key-file'] === undefined && configPath !== undefined) {
    try {
      keyFile = (await loadConfig(configPath)).nodeKeyFile;
    } catch (err: unknown) {
      io.err(`podtun: invalid config\n${err instanceof ConfigError ? err.message : String(err)}\n`);
      return EXIT_FAILURE;
    }
  }
  try {
    const key = await loadOrCreateNodeKey(keyFile);
    io.out(`${publicKeyText(key.publicKey)}\n`);
    return EXIT_OK;
  } catch (err: unknown) {
    io.err(`podtun: ${errorMessage(err)}\n`);
    return EXIT_FAILURE;
  }
}
