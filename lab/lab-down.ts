/**
 * `podtun lab down`: removes the lab, whatever state it is in. Idempotent: with nothing up it
 * says so and succeeds; after a `lab up` that crashed midway it finds what that left by name.
 *
 * Flow: 1. read the state (a broken file is reported, removal goes on by name); 2. refuse while
 * a `lab up` still builds (it owns what it is making); 3. SIGTERM each recorded daemon's process
 * group, only while its PID still has the recorded start time, SIGKILL after STOP_GRACE_MS;
 * 4. delete every `ptlab-*` namespace (what still runs inside one is the lab's: a namespace
 * member cannot be a stranger whose PID was recycled); 5. remove the harness's run record and
 * the lab's folder, state file included, last.
 */
import { existsSync, rmSync } from 'node:fs';
import { removeNamespaceSync, removeRecord } from './cleanup.js';
import { namespacesOfRun } from './cluster.js';
import { LAB_DIR, LAB_RUN_ID, LabStateError, readLabState } from './lab-state.js';
import type { LabState, UpLab } from './lab-state.js';
import { isRunning, signalVerified } from './process-start.js';
import type { ProcessIdentity } from './process-start.js';
import { pollUntil } from './shell.js';
import { EXIT_FAILURE, EXIT_OK } from '../node-bootstrap/cli/command.js';
import type { CliIo } from '../node-bootstrap/cli/command.js';

/** How long a daemon gets to remove its TUN and routes after SIGTERM. */
const STOP_GRACE_MS = 5_000;
const KILL_WAIT_MS = 2_000;
const NAMESPACE_DELETE_ATTEMPTS = 3;

export interface LabRemoval {
  /** Daemons that were running and were stopped, by node name. */
  stopped: string[];
  /** Namespaces deleted. */
  namespaces: string[];
  /** Whether the lab's folder existed and was removed. */
  files: boolean;
  /** What could not be removed: namespaces, or daemons that outlived SIGKILL. */
  left: string[];
}

/** Stops the daemons `state` names and removes every namespace and file of the lab. */
export async function removeLab(state: LabState | undefined): Promise<LabRemoval> {
  const removal: LabRemoval = { stopped: [], namespaces: [], files: false, left: [] };
  if (state?.phase === 'up') await stopDaemons(state, removal);
  for (const ns of namespacesOfRun(LAB_RUN_ID)) {
    let gone = false;
    for (let attempt = 0; attempt < NAMESPACE_DELETE_ATTEMPTS && !gone; attempt++) gone = removeNamespaceSync(ns);
    if (gone) removal.namespaces.push(ns);
    else removal.left.push(`namespace ${ns}`);
  }
  removeRecord(LAB_RUN_ID);
  if (removal.left.length === 0) {
    removal.files = existsSync(LAB_DIR);
    rmSync(LAB_DIR, { recursive: true, force: true });
  }
  return removal;
}

async function stopDaemons(state: UpLab, removal: LabRemoval): Promise<void> {
  const running = state.nodes.filter((node) => isRunning(node.daemon));
  // A daemon stopped with SIGSTOP could not act on SIGTERM.
  for (const node of running) signalVerified(node.daemon, 'SIGCONT');
  for (const node of running) signalVerified(node.daemon, 'SIGTERM');
  if (!(await allExited(running.map((n) => n.daemon), STOP_GRACE_MS))) {
    for (const node of running) signalVerified(node.daemon, 'SIGKILL');
    await allExited(running.map((n) => n.daemon), KILL_WAIT_MS);
  }
  for (const node of running) {
    if (isRunning(node.daemon)) removal.left.push(`${node.name}'s daemon (pid ${node.daemon.pid})`);
    else removal.stopped.push(node.name);
  }
}

async function allExited(daemons: readonly ProcessIdentity[], timeoutMs: number): Promise<boolean> {
  try {
    await pollUntil('daemons to exit', async () => (daemons.some(isRunning) ? undefined : true), timeoutMs, 100);
    return true;
  } catch {
    return false;
  }
}

/** The command: exit 0 once nothing of the lab is left (also when there was nothing), else 1. */
export async function labDown(io: CliIo): Promise<number> {
  let state: LabState | undefined;
  try {
    state = readLabState();
  } catch (err: unknown) {
    if (!(err instanceof LabStateError)) throw err;
    io.err(`podtun lab down: ${err.message}; removing the lab by name\n`);
  }
  if (state?.phase === 'building' && isRunning(state.owner)) {
    io.err(
      `podtun lab down: \`${state.command}\` (pid ${state.owner.pid}) is still building the lab; ` +
        'let it finish or stop it (Ctrl-C), then run `podtun lab down`\n',
    );
    return EXIT_FAILURE;
  }
  const removal = await removeLab(state);
  if (removal.stopped.length === 0 && removal.namespaces.length === 0 && !removal.files && removal.left.length === 0) {
    io.out('no lab is up: nothing to remove\n');
    return EXIT_OK;
  }
  if (removal.stopped.length > 0) io.out(`stopped the daemons of ${removal.stopped.join(', ')}\n`);
  if (removal.namespaces.length > 0) io.out(`deleted ${removal.namespaces.length} namespaces: ${removal.namespaces.join(' ')}\n`);
  if (removal.files) io.out(`removed ${LAB_DIR} (state, configs, keys, logs, sockets)\n`);
  if (removal.left.length > 0) {
    io.err(`podtun lab down: could not remove ${removal.left.join(', ')}; its state stays in ${LAB_DIR}, run it again\n`);
    return EXIT_FAILURE;
  }
  io.out('lab down\n');
  return EXIT_OK;
}
