/**
 * `podtun demo`: parses its flags and runs the demo (demo.ts). The lab sits above the daemon's
 * modules, so bin/podtun.js plugs this command into the CLI rather than the CLI importing it.
 */
import { parseArgs } from 'node:util';
import { EXIT_FAILURE, EXIT_OK, usageError } from '../node-bootstrap/cli/command.js';
import type { CliIo } from '../node-bootstrap/cli/command.js';

export const DEMO_USAGE = `Usage: podtun demo [--mode podtun|kernel-routing] [--keep]

Builds a throwaway cluster in network namespaces (3 nodes x 2 pods; n3's underlay drops UDP, so
it is reached over WebSocket), prints each node's \`podtun status\`, TCP round trips between
every pair of pods and one cross-node transfer, then removes it all (also on Ctrl-C). Needs
Linux, root, iproute2 and a build (npm run build); nftables for the blocked UDP.

  --mode podtun           podtun on every node (default)
  --mode kernel-routing   the same cluster with plain kernel routes, no podtun (a baseline)
  --keep                  leave the cluster running as the lab instead of removing it
                          (podtun mode; one lab per machine: \`podtun lab --help\`)
`;

export async function demoCommand(args: readonly string[], _env: unknown, io: CliIo): Promise<number> {
  let mode: string | undefined;
  let help: boolean | undefined;
  let keep: boolean | undefined;
  try {
    ({ values: { mode, help, keep } } = parseArgs({
      args: [...args],
      options: { mode: { type: 'string' }, help: { type: 'boolean', short: 'h' }, keep: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err: unknown) {
    return usageError(io, err instanceof Error ? err.message : String(err));
  }
  if (help === true) {
    io.out(DEMO_USAGE);
    return EXIT_OK;
  }
  if (mode !== undefined && mode !== 'podtun' && mode !== 'kernel-routing') {
    return usageError(io, `--mode: "${mode}" is not one of podtun|kernel-routing`);
  }
  if (keep === true && mode === 'kernel-routing') {
    return usageError(io, '--keep needs --mode podtun: the lab it leaves runs podtun');
  }
  const demo = await import('./demo.js');
  const { LabError } = await import('./lab-up.js');
  try {
    await demo.runDemo({ ...(mode === undefined ? {} : { mode }), keep: keep === true });
    return EXIT_OK;
  } catch (err: unknown) {
    if (err instanceof demo.DemoError) {
      io.err(`${err.message}\n`);
      return EXIT_FAILURE;
    }
    if (err instanceof LabError) {
      io.err(`podtun demo --keep: ${err.message}\n`);
      return EXIT_FAILURE;
    }
    throw err;
  }
}
