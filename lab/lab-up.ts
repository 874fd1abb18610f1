/**
 * `podtun lab up`, and what `podtun demo --keep` shares with it: claiming the lab (one per
 * machine: its namespaces have fixed names) and keeping a built cluster after the command exits.
 *
 * Flow of `lab up`: 1. check the host; 2. claim the lab: refuse while one is up or building,
 * clear what a crashed build left, write the `building` state naming this process (lab-state.ts);
 * 3. build the demo's cluster (demo-cluster.ts) as run `lab` in /run/podtun-lab/run; 4. wait,
 * bounded, until every node reports its peers up; 5. keep it: write the `up` state with each
 * daemon's PID and start time, then detach the cluster, whose daemons run in process groups of
 * their own and log to files; 6. print how to use it (lab-guide.ts). A failure removes
 * everything it made.
 */
import { existsSync } from 'node:fs';
import { namespacesOfRun } from './cluster.js';
import type { Cluster } from './cluster.js';
import { DEMO_DASHBOARD_LISTEN, WS_ONLY_NODE, createDemoCluster, demoHostProblem } from './demo-cluster.js';
import type { DemoCluster } from './demo-cluster.js';
import { labGuide, podtunInvocation } from './lab-guide.js';
import { removeLab } from './lab-down.js';
import { LAB_DIR, LAB_RUN_DIR, LAB_RUN_ID, LAB_STATE_FILE, LabStateError, buildingState, readLabState, writeLabState } from './lab-state.js';
import type { BuildingLab, LabNode, LabState, UpLab } from './lab-state.js';
import { identify, isRunning } from './process-start.js';
import { peersOf, waitPeers } from './podtun-status.js';
import { EXIT_FAILURE, EXIT_OK } from '../node-bootstrap/cli/command.js';
import type { CliIo } from '../node-bootstrap/cli/command.js';

/** How long `lab up` waits for every peer to be up (n3's move to WebSocket included). */
const PEERS_UP_WAIT_MS = 30_000;

/** Why the lab cannot be claimed or kept; `code` is stable for the CLI. */
export class LabError extends Error {
  readonly code = 'ERR_PODTUN_LAB';
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'LabError';
  }
}

/**
 * Makes this process the lab's builder: refuses while a lab is up, being built, or has left
 * namespaces without a state; removes what a builder that died (crash, Ctrl-C) left.
 */
export async function claimLab(command: string, say: (line: string) => void): Promise<BuildingLab> {
  let state: LabState | undefined;
  try {
    state = readLabState();
  } catch (err: unknown) {
    if (!(err instanceof LabStateError)) throw err;
    throw new LabError(`${err.message}: \`podtun lab down\` removes the lab by name`, { cause: err });
  }
  if (state?.phase === 'up') {
    throw new LabError(
      `a lab is already up (since ${state.upAt}, made by \`${state.command}\`; namespaces pt${LAB_RUN_ID}-*): ` +
        'use it (`podtun lab status`) or remove it first (`podtun lab down`)',
    );
  }
  if (state?.phase === 'building') {
    if (isRunning(state.owner)) {
      throw new LabError(`\`${state.command}\` (pid ${state.owner.pid}) is building a lab right now`);
    }
    say(`a previous \`${state.command}\` (pid ${state.owner.pid}) stopped before it finished: removing what it left`);
    const { left } = await removeLab(state);
    if (left.length > 0) throw new LabError(`could not remove ${left.join(', ')}: run \`podtun lab down\``);
  } else if (namespacesOfRun(LAB_RUN_ID).length > 0 || existsSync(LAB_DIR)) {
    throw new LabError(
      `namespaces pt${LAB_RUN_ID}-* or ${LAB_DIR} exist without a lab state: \`podtun lab down\` removes them`,
    );
  }
  const self = identify(process.pid);
  if (self === undefined) throw new LabError('cannot read this process\'s start time from /proc');
  const building = buildingState(self, command, LAB_RUN_DIR);
  writeLabState(building);
  return building;
}

/**
 * Records the running cluster as the lab (`up`) and hands it over: from here on it outlives this
 * process, and `podtun lab down` ends it.
 */
export function keepLab(built: DemoCluster, building: BuildingLab): UpLab {
  const { cluster } = built;
  const nodes: LabNode[] = cluster.nodes().map((node) => {
    const pid = cluster.nodePid(node.index);
    const daemon = pid === undefined ? undefined : identify(pid);
    if (daemon === undefined) throw new LabError(`podtun on ${node.name} is not running (log ${node.logFile})`);
    return {
      name: node.name,
      ns: node.ns,
      underlayIp: node.underlayIp,
      daemon,
      socket: node.statusSocket,
      config: node.configFile,
      log: node.logFile,
      dashboard: DEMO_DASHBOARD_LISTEN,
      udpBlocked: built.udpBlocked && node.index === WS_ONLY_NODE,
    };
  });
  const state: UpLab = {
    ...building,
    phase: 'up',
    upAt: new Date().toISOString(),
    namespaces: namespacesOfRun(LAB_RUN_ID),
    underlayNs: cluster.underlayNs,
    nodes,
    pods: cluster.pods().map((p) => ({ name: p.name, ns: p.ns, node: `n${p.node}`, ipv4: p.ipv4, ipv6: p.ipv6 })),
  };
  writeLabState(state);
  cluster.detach();
  return state;
}

/** Bounded: waits until every node reports all its peers up; says which did not. */
async function waitAllPeersUp(cluster: Cluster, say: (line: string) => void): Promise<void> {
  try {
    await Promise.all(cluster.nodes().map((n) => waitPeers(cluster, n.index, peersOf(cluster, n.index), {}, PEERS_UP_WAIT_MS)));
  } catch (err: unknown) {
    say(`not every peer is up after ${PEERS_UP_WAIT_MS / 1000} s (the lab stays up; \`podtun lab status\` shows them): ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The command: exit 0 with the lab up and its guide printed, 1 when it could not be built. */
export async function labUp(io: CliIo): Promise<number> {
  const command = 'podtun lab up';
  const problem = demoHostProblem(command, 'podtun');
  if (problem !== undefined) {
    io.err(`${problem}\n`);
    return EXIT_FAILURE;
  }
  const say = (line: string): void => io.out(`${line}\n`);
  let building: BuildingLab;
  try {
    building = await claimLab(command, say);
  } catch (err: unknown) {
    if (!(err instanceof LabError)) throw err;
    io.err(`${command}: ${err.message}\n`);
    return EXIT_FAILURE;
  }
  say(`${command}: 3 nodes x 2 pods in network namespaces pt${LAB_RUN_ID}-*, kept until \`podtun lab down\`...`);
  const t0 = Date.now();
  let built: DemoCluster | undefined;
  try {
    built = await createDemoCluster({ mode: 'podtun', runId: LAB_RUN_ID, dir: building.dir, note: say });
    await waitAllPeersUp(built.cluster, say);
    const state = keepLab(built, building);
    say(`lab up in ${((Date.now() - t0) / 1000).toFixed(1)} s; state in ${LAB_STATE_FILE}\n`);
    io.out(labGuide(state, podtunInvocation()));
    return EXIT_OK;
  } catch (err: unknown) {
    await built?.cluster.destroy();
    const { left } = await removeLab(undefined);
    io.err(
      `${command} failed: ${err instanceof Error ? err.message : String(err)}\n` +
        (left.length === 0 ? 'nothing of it is left\n' : `could not remove ${left.join(', ')}: run \`podtun lab down\`\n`),
    );
    return EXIT_FAILURE;
  }
}
