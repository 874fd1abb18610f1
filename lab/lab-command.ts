/**
 * `podtun lab up|down|status`: parses the subcommand and its flags and runs it (lab-up.ts,
 * lab-down.ts, lab-status.ts, loaded only when asked for: `--help` builds and reads nothing).
 * Plugged into the CLI by bin/podtun.js, like `demo`.
 */
import { parseArgs } from 'node:util';
import { EXIT_OK, EXIT_USAGE } from '../node-bootstrap/cli/command.js';
import type { CliIo } from '../node-bootstrap/cli/command.js';

export type LabSubcommand = 'up' | 'down' | 'status';

const ABOUT = `A cluster you can keep: the demo's 3 nodes x 2 pods in network namespaces (n3's underlay
drops UDP, so it is reached over WebSocket), left running after the command exits; one per
machine, in namespaces ptlab-*, its state in /run/podtun-lab/state.json. \`podtun demo --keep\`
leaves the demo's cluster up as the lab. Needs Linux, root, iproute2 and a build (npm run
build); nftables for the blocked UDP.
`;

const DESCRIBE: Readonly<Record<LabSubcommand, string>> = {
  up: `Builds the lab and leaves it running: each node's \`podtun run\` in a process group of its own,
logging to /run/podtun-lab/run/<node>.log, serving its status socket and its dashboard
(127.0.0.1:9403 inside the node's namespace). Waits until every peer is up, then prints the
nodes, the pods and commands to try. Refused while a lab is up; clears what a \`lab up\` that
crashed midway left.
`,
  status: `Whether the lab is up: per node, whether its daemon runs (the recorded PID with its recorded
start time) and its \`podtun status\`. Exit 0 when up with every daemon answering, 1 otherwise.
`,
  down: `Stops the daemons (by recorded PID, only while it has the recorded start time; SIGTERM, then
SIGKILL after 5 s), deletes the namespaces ptlab-* and /run/podtun-lab. Idempotent: nothing up
is a clean no-op; also removes what a \`lab up\` that crashed midway left.
`,
};

export const LAB_USAGE = `Usage: podtun lab up|down|status [--help]

${ABOUT}
${(Object.keys(DESCRIBE) as LabSubcommand[]).map((sub) => `podtun lab ${sub}\n${indent(DESCRIBE[sub])}`).join('\n')}`;

/** `podtun lab <sub> --help`. */
export function labSubcommandUsage(sub: LabSubcommand): string {
  return `Usage: podtun lab ${sub}\n\n${DESCRIBE[sub]}`;
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '  ');
}

function isSubcommand(word: string | undefined): word is LabSubcommand {
  return word === 'up' || word === 'down' || word === 'status';
}

function labUsageError(io: CliIo, reason: string): number {
  io.err(`podtun lab: ${reason}\n\n${LAB_USAGE}`);
  return EXIT_USAGE;
}

export async function labCommand(args: readonly string[], _env: unknown, io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    io.out(LAB_USAGE);
    return EXIT_OK;
  }
  if (!isSubcommand(sub)) {
    return labUsageError(io, sub === undefined ? 'missing subcommand: up, down or status' : `unknown subcommand "${sub}" (up, down or status)`);
  }
  let help: boolean | undefined;
  try {
    ({ values: { help } } = parseArgs({
      args: rest,
      options: { help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err: unknown) {
    return labUsageError(io, `${sub}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (help === true) {
    io.out(labSubcommandUsage(sub));
    return EXIT_OK;
  }
  switch (sub) {
    case 'up':
      return (await import('./lab-up.js')).labUp(io);
    case 'down':
      return (await import('./lab-down.js')).labDown(io);
    case 'status':
      return (await import('./lab-status.js')).labStatus(io);
  }
}
