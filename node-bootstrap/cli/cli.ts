/**
 * The `podtun` command line. `main` parses and dispatches and returns the exit code (tests call
 * it); `runCli` is what bin/podtun.js runs. Each command is a module of this folder, loaded only
 * when asked for: `--help` and `version` never touch the native addon, and `run` does not load
 * doctor. What the commands share (io, exit codes, usage) is command.ts.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, USAGE, usageError } from './command.js';
import type { CliCommand, CliEnv, CliIo } from './command.js';

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  isTty: process.stdout.isTTY,
};

/** `plugged`: commands served by modules above this folder (the lab's `demo` and `lab`), given by bin/podtun.js. */
export async function main(
  argv: readonly string[],
  env: CliEnv,
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
      return (await import('./run-command.js')).runCommand(rest, env, io);
    case 'status':
    case 'routes':
    case 'peers':
      return (await import('./view-command.js')).viewCommand(command, rest, env, io);
    case 'doctor':
      return (await import('./doctor-command.js')).doctorCommand(rest, env, io);
    case 'uninstall':
      return (await import('./uninstall-command.js')).uninstallCommand(rest, env, io);
    case 'key':
      return (await import('./key-command.js')).keyCommand(rest, env, io);
    case 'install-cni':
      return (await import('./install-cni-command.js')).installCniCommand(rest, env, io);
    default:
      return usageError(io, `unknown command "${command}"`);
  }
}

/** The version in the package.json above this file (node-bootstrap/cli/ or dist/node-bootstrap/cli/). */
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
