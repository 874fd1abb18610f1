/**
 * `podtun demo`: parses its flags and runs the demo (demo.ts). The lab sits above the daemon's
 * modules, so bin/podtun.js plugs this command into the CLI rather than the CLI importing it.
 */
import { parseArgs } from 'node:util';
import { EXIT_FAILURE, EXIT_OK, usageError } from '../node-bootstrap/cli/command.js';
import type { CliIo } from '../node-bootstrap/cli/command.js';

export async function demoCommand(args: readonly string[], _env: unknown, io: CliIo): Promise<number> {
  let mode: string | undefined;
  try {
    ({ values: { mode } } = parseArgs({ args: [...args], options: { mode: { type: 'string' } }, strict: true, allowPositionals: false }));
  } catch (err: unknown) {
    return usageError(io, err instanceof Error ? err.message : String(err));
  }
  if (mode !== undefined && mode !== 'podtun' && mode !== 'kernel-routing') {
    return usageError(io, `--mode: "${mode}" is not one of podtun|kernel-routing`);
  }
  const demo = await import('./demo.js');
  try {
    await demo.runDemo(mode === undefined ? {} : { mode });
    return EXIT_OK;
  } catch (err: unknown) {
    if (err instanceof demo.DemoError) {
      io.err(`${err.message}\n`);
      return EXIT_FAILURE;
    }
    throw err;
  }
}
