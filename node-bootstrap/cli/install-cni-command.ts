/**
 * `podtun install-cni [--bin-dir DIR] [--plugin-dir DIR] [--plugins a,b]`: puts podtun's CNI
 * executables and the reference plugins it delegates to into the node's CNI bin dir, each by
 * temp file + rename (cni/cni-install.ts installExecutables). The DaemonSet's init step runs it:
 * kind's node image has no `bridge`. No conflist: the daemon writes that once it forwards.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cniExecutablesDir, CNI_EXECUTABLES, installExecutables } from '../../cni/cni-install.js';
import { errorMessage } from '../../core/config-check.js';
import { DEFAULT_CNI } from '../config/node-config.js';
import { cliLogger, EXIT_FAILURE, EXIT_OK, usageError } from './command.js';
import type { CliEnv, CliIo } from './command.js';

/** Debian's containernetworking-plugins, in the image and on most hosts. */
export const DEFAULT_PLUGIN_DIR = '/usr/lib/cni';
/** What podtun's plugin delegates to (bridge with podtun-ipam) and what pod runtimes expect beside it. */
export const DEFAULT_PLUGINS = ['bridge', 'host-local', 'loopback', 'portmap'] as const;

export async function installCniCommand(args: readonly string[], _env: CliEnv, io: CliIo): Promise<number> {
  let values: { 'bin-dir'?: string | undefined; 'plugin-dir'?: string | undefined; plugins?: string | undefined };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: { 'bin-dir': { type: 'string' }, 'plugin-dir': { type: 'string' }, plugins: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err: unknown) {
    return usageError(io, errorMessage(err));
  }
  const pluginDir = values['plugin-dir'] ?? DEFAULT_PLUGIN_DIR;
  const plugins = values.plugins === undefined ? [...DEFAULT_PLUGINS] : values.plugins.split(',').map((p) => p.trim()).filter((p) => p !== '');
  const bad = plugins.find((p) => !/^[\w.-]+$/.test(p));
  if (bad !== undefined) return usageError(io, `--plugins: "${bad}" is not a plugin name`);
  const sources: Record<string, string> = {};
  for (const name of CNI_EXECUTABLES) sources[name] = join(cniExecutablesDir(), name);
  for (const name of plugins) sources[name] = join(pluginDir, name);
  const binDir = values['bin-dir'] ?? DEFAULT_CNI.binDir;
  try {
    const { installed, unchanged } = await installExecutables({ sources, binDir, log: cliLogger(io), missing: `(Debian package containernetworking-plugins, or --plugin-dir)` });
    io.out([...installed.map((p) => `installed ${p}\n`), ...unchanged.map((p) => `unchanged ${p}\n`)].join(''));
    return EXIT_OK;
  } catch (err: unknown) {
    io.err(`podtun: install-cni failed: ${errorMessage(err)}\n`);
    return EXIT_FAILURE;
  }
}
