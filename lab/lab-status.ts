/**
 * `podtun lab status`: whether the lab is up, and per node whether its daemon still runs (its
 * recorded PID with the recorded start time) and what `podtun status` prints for it (the CLI's
 * own command, on the node's socket), then how to use it (lab-guide.ts).
 *
 * Exit 0 when the lab is up with every daemon running and answering; 1 otherwise (not up, being
 * built, left over from a crashed build, or a daemon gone).
 */
import { existsSync } from 'node:fs';
import { namespacesOfRun } from './cluster.js';
import { labGuide, podtunInvocation } from './lab-guide.js';
import { LAB_DIR, LAB_RUN_ID, LabStateError, readLabState } from './lab-state.js';
import type { LabState } from './lab-state.js';
import { isRunning } from './process-start.js';
import { EXIT_FAILURE, EXIT_OK } from '../node-bootstrap/cli/command.js';
import type { CliIo } from '../node-bootstrap/cli/command.js';
import { viewCommand } from '../node-bootstrap/cli/view-command.js';

export async function labStatus(io: CliIo): Promise<number> {
  let state: LabState | undefined;
  try {
    state = readLabState();
  } catch (err: unknown) {
    if (!(err instanceof LabStateError)) throw err;
    io.out(`not up: ${err.message}; \`podtun lab down\` removes the lab by name\n`);
    return EXIT_FAILURE;
  }
  if (state === undefined) {
    const left = namespacesOfRun(LAB_RUN_ID);
    io.out(
      left.length === 0 && !existsSync(LAB_DIR)
        ? 'no lab is up (`podtun lab up` makes one)\n'
        : `not up, but ${left.length > 0 ? `namespaces ${left.join(' ')}` : LAB_DIR} exist without a state: \`podtun lab down\` removes them\n`,
    );
    return EXIT_FAILURE;
  }
  if (state.phase === 'building') {
    io.out(
      isRunning(state.owner)
        ? `being built by \`${state.command}\` (pid ${state.owner.pid}) since ${state.startedAt}\n`
        : `not up: \`${state.command}\` (pid ${state.owner.pid}) stopped before it finished; \`podtun lab down\` removes what it left\n`,
    );
    return EXIT_FAILURE;
  }

  const present = new Set(namespacesOfRun(LAB_RUN_ID));
  let healthy = true;
  io.out(`lab up since ${state.upAt} (made by \`${state.command}\`), files in ${state.dir}\n`);
  for (const node of state.nodes) {
    const running = isRunning(node.daemon);
    const nsThere = present.has(node.ns);
    io.out(
      `\n${node.name}${node.udpBlocked ? ' (UDP blocked)' : ''}: namespace ${node.ns}${nsThere ? '' : ' MISSING'}, ` +
        `daemon pid ${node.daemon.pid} ${running ? 'running' : 'NOT RUNNING'}, log ${node.log}\n`,
    );
    if (!running || !nsThere) {
      healthy = false;
      continue;
    }
    if ((await viewCommand('status', ['--socket', node.socket], {}, io)) !== EXIT_OK) healthy = false;
  }
  io.out(`\n${labGuide(state, podtunInvocation())}`);
  return healthy ? EXIT_OK : EXIT_FAILURE;
}
