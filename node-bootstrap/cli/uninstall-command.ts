/**
 * `podtun uninstall [--config FILE]`: removes what `podtun run` installed for CNI (the conflist
 * first, so a runtime never reads a config whose plugin is gone, then the two executables), from
 * the config's `cni` block or the default locations. IPAM state (podtun-ipam's dataDir) stays:
 * pods still running keep their addresses reserved. Idempotent.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load-config.js';
import { ConfigError, DEFAULT_CNI } from '../config/node-config.js';
import type { CniSettings } from '../config/node-config.js';
import { uninstallCni } from '../../cni/cni-install.js';
import { errorMessage } from '../../core/config-check.js';
import { cliLogger, EXIT_FAILURE, EXIT_OK, usageError } from './command.js';
import type { CliEnv, CliIo } from './command.js';

export async function uninstallCommand(args: readonly string[], env: CliEnv, io: CliIo): Promise<number> {
  let configPath: string | undefined;
  try {
    ({ values: { config: configPath } } = parseArgs({ args: [...args], options: { config: { type: 'string', short: 'c' } }, strict: true, allowPositionals: false }));
  } catch (err: unknown) {
    return usageError(io, errorMessage(err));
  }
  configPath ??= env['PODTUN_CONFIG'] === '' ? undefined : env['PODTUN_CONFIG'];
  let cni: CniSettings = DEFAULT_CNI;
  if (configPath !== undefined) {
    try {
      cni = (await loadConfig(configPath)).cni ?? DEFAULT_CNI;
    } catch (err: unknown) {
      io.err(`podtun: invalid config\n${err instanceof ConfigError ? err.message : String(err)}\n`);
      return EXIT_FAILURE;
    }
  }
  try {
    const { removed } = await uninstallCni({ binDir: cni.binDir, confDir: cni.confDir, confFileName: cni.confFileName, log: cliLogger(io) });
    io.out(removed.length === 0 ? 'nothing to remove\n' : removed.map((path) => `removed ${path}\n`).join(''));
    return EXIT_OK;
  } catch (err: unknown) {
    io.err(`podtun: uninstall failed: ${errorMessage(err)}\n`);
    return EXIT_FAILURE;
  }
}
