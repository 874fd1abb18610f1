/**
 * `podtun demo`: a throwaway 3-node cluster in network namespaces on this machine, with podtun
 * carrying pod traffic between nodes; n3's underlay drops all UDP, so n3 is reached over
 * WebSocket without any setting (transport auto). Prints each node's `podtun status`, who reaches
 * whom (TCP round trips) and a transfer rate, then removes everything, also on Ctrl-C; with
 * `keep`, leaves the cluster running as the lab instead (lab-up.ts, `podtun lab down` ends it).
 *
 * ```
 *                  underlay ns (bridge ul0, 192.168.77.0/24)
 *               /               |                \
 *    n1: podtun run        n2: podtun run        n3: podtun run      n1 <-> n2: UDP :8285
 *                                                [UDP dropped]       n3 <-> n1/n2: WebSocket :8443
 *     p1a   p1b             p2a   p2b             p3a   p3b          (10.244.N.10/.11)
 * ```
 *
 * Flow: 1. check root and `ip`; (keep: claim the lab); 2. build the cluster (demo-cluster.ts:
 * n3's UDP blocked, podtun started everywhere); 3. wait until n3's peers show transport 'ws'
 * (bounded), print each node's `podtun status`; 4. an echo server per pod, then TCP round trips
 * from every pod to every other; 5. one cross-node transfer with its SHA-256 checked at the sink;
 * 6. tear down, or (keep) record the cluster as the lab and print how to use it.
 */
import type { Cluster, PodInfo } from './cluster.js';
import { findRepoRoot } from './cluster.js';
import { WS_ONLY_NODE, createDemoCluster, demoHostProblem } from './demo-cluster.js';
import type { DemoCluster, DemoMode } from './demo-cluster.js';
import { ensureProbeAgent, probe, startProbe } from './probe.js';
import type { ProbeServer, RttResult, SendResult, SinkResult } from './probe.js';
import { waitPeers } from './podtun-status.js';
import type { BuildingLab } from './lab-state.js';
import { LAB_RUN_ID, LAB_STATE_FILE } from './lab-state.js';
import { claimLab, keepLab } from './lab-up.js';
import { removeLab } from './lab-down.js';
import { labGuide, podtunInvocation } from './lab-guide.js';
import { viewCommand } from '../node-bootstrap/cli/view-command.js';

const ECHO_PORT = 7000;
const SINK_PORT = 7001;
const TRANSFER_BYTES = 256 * 1024 * 1024;
const RTT_COUNT = 10;
const WS_WAIT_MS = 30_000;

/** Why the demo cannot run; `code` is stable for the CLI. */
export class DemoError extends Error {
  readonly code = 'ERR_PODTUN_DEMO';
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'DemoError';
  }
}

function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : ' '.repeat(width - text.length) + text;
}

async function rttMatrix(cluster: Cluster, pods: readonly PodInfo[]): Promise<Map<string, string>> {
  const cells = new Map<string, string>();
  for (const from of pods) {
    const targets = pods.filter((to) => to !== from);
    const results = await Promise.allSettled(
      targets.map((to) =>
        probe<RttResult>(cluster, from.ns, 'tcp-rtt', {
          to: to.ipv4,
          port: ECHO_PORT,
          count: RTT_COUNT,
          'timeout-ms': 10_000,
        }),
      ),
    );
    results.forEach((result, idx) => {
      const to = targets[idx];
      if (to === undefined) return;
      cells.set(
        `${from.name}>${to.name}`,
        result.status === 'fulfilled' ? result.value.rttMs.median.toFixed(3) : 'FAIL',
      );
    });
  }
  return cells;
}

function printMatrix(pods: readonly PodInfo[], cells: ReadonlyMap<string, string>): void {
  const width = 9;
  out(`${pad('from \\ to', 11)}${pods.map((p) => pad(p.name, width)).join('')}`);
  for (const from of pods) {
    const row = pods.map((to) => pad(to === from ? '-' : (cells.get(`${from.name}>${to.name}`) ?? '?'), width));
    out(`${pad(`${from.name} (n${from.node})`, 11)}${row.join('')}`);
  }
}

/** Per node: what `podtun status` prints for it (the CLI's own command, on the node's socket). */
async function printNodeStatus(cluster: Cluster): Promise<void> {
  const io = { out: (text: string) => void process.stdout.write(indent(text)), err: (text: string) => void process.stdout.write(indent(text)) };
  for (const node of cluster.nodes()) {
    out(`  ${node.name}${node.index === WS_ONLY_NODE ? ' (UDP blocked)' : ''}: podtun status --socket ${node.statusSocket}`);
    await viewCommand('status', ['--socket', node.statusSocket], {}, io);
  }
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '    ');
}

export interface DemoOptions {
  /** The data path between nodes; 'podtun' unless trying the demo itself against the kernel. */
  mode?: DemoMode;
  /** Leave the cluster running as the lab (podtun mode only; `podtun lab down` removes it). */
  keep?: boolean;
}

/** Runs the demo; throws a DemoError when the machine cannot host it (a LabError when keep cannot claim the lab). */
export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const mode = options.mode ?? 'podtun';
  const keep = options.keep === true;
  if (keep && mode !== 'podtun') throw new DemoError('podtun demo: --keep needs --mode podtun (the lab runs podtun)');
  const problem = demoHostProblem('podtun demo', mode);
  if (problem !== undefined) throw new DemoError(problem);
  await ensureProbeAgent(findRepoRoot());
  const building: BuildingLab | undefined = keep ? await claimLab('podtun demo --keep', out) : undefined;

  const onInterrupt = (): void => {
    out('\ninterrupted: removing the demo namespaces...');
  };
  process.once('SIGINT', onInterrupt);
  let built: DemoCluster | undefined;
  let kept = false;
  const servers: ProbeServer<unknown>[] = [];
  try {
    out(
      mode === 'podtun'
        ? 'podtun demo: 3 nodes x 2 pods in network namespaces, pods talk through podtun (UDP, or WebSocket where UDP is blocked)'
        : `podtun demo (${mode}, no podtun): 3 nodes x 2 pods in network namespaces`,
    );
    const t0 = Date.now();
    built = await createDemoCluster({
      mode,
      note: (line) => out(`  ${line}`),
      ...(building === undefined ? {} : { runId: LAB_RUN_ID, dir: building.dir }),
    });
    const cluster = built.cluster;
    out(`cluster up in ${((Date.now() - t0) / 1000).toFixed(1)} s (namespaces pt${cluster.id}-*)`);
    for (const node of cluster.nodes()) {
      const pods = cluster.pods().filter((p) => p.node === node.index);
      out(
        `  ${node.name}: underlay ${node.underlayIp}, pods ${node.subnetV4} ${node.subnetV6 ?? ''}: ` +
          pods.map((p) => `${p.name} ${p.ipv4}`).join(', '),
      );
    }

    if (mode === 'podtun') {
      const n3 = cluster.node(WS_ONLY_NODE).name;
      const others = cluster.nodes().filter((n) => n.index !== WS_ONLY_NODE);
      out();
      out(`${n3}'s underlay drops all UDP; waiting for its peers to move to WebSocket...`);
      const w0 = Date.now();
      try {
        await Promise.all([
          waitPeers(cluster, WS_ONLY_NODE, others.map((n) => n.name), { transport: 'ws' }, WS_WAIT_MS),
          ...others.map((n) => waitPeers(cluster, n.index, [n3], { transport: 'ws' }, WS_WAIT_MS)),
        ]);
        out(`  after ${((Date.now() - w0) / 1000).toFixed(1)} s: ${n3} is reached over WebSocket, without any setting (transport auto)`);
      } catch (error: unknown) {
        out(`  ${n3}'s peers did not all reach 'ws' in ${WS_WAIT_MS / 1000} s: ${error instanceof Error ? error.message : String(error)}`);
      }
      out('each node as `podtun status` shows it:');
      await printNodeStatus(cluster);
    }

    const pods = cluster.pods();
    for (const pod of pods) {
      servers.push(await startProbe(cluster, pod.ns, 'echo-server', { port: ECHO_PORT, 'timeout-ms': 120_000 }));
    }
    out();
    out(`TCP round trip, median of ${RTT_COUNT}, ms (same node: via cni0; other nodes: via ${mode === 'podtun' ? 'podtun' : 'kernel routes'}):`);
    const cells = await rttMatrix(cluster, pods);
    printMatrix(pods, cells);
    const failed = [...cells.values()].filter((v) => v === 'FAIL').length;
    out(failed === 0 ? 'every pod reaches every other pod' : `${failed} pairs FAILED`);

    const from = cluster.pod(1, 0);
    const to = cluster.pod(2, 0);
    out();
    out(`TCP transfer ${from.name} (${from.ipv4}) -> ${to.name} (${to.ipv4}), ${TRANSFER_BYTES / 1024 / 1024} MiB...`);
    const sink = await startProbe<SinkResult>(cluster, to.ns, 'tcp-sink', { port: SINK_PORT, 'timeout-ms': 120_000 });
    const sent = await probe<SendResult>(cluster, from.ns, 'tcp-send', {
      to: to.ipv4,
      port: SINK_PORT,
      bytes: TRANSFER_BYTES,
      seed: 42,
      'timeout-ms': 120_000,
    });
    const got = await sink.result;
    const gbps = (sent.bytes * 8) / sent.seconds / 1e9;
    out(
      `  ${sent.seconds.toFixed(2)} s, ${gbps.toFixed(2)} Gbit/s; SHA-256 ${got.sha256 === sent.sha256 ? 'matches' : 'DIFFERS'}; ` +
        `sink saw source ${got.peerAddress} (${got.peerAddress === from.ipv4 ? 'no NAT' : 'NAT?'})`,
    );
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    if (building !== undefined) {
      const state = keepLab(built, building);
      kept = true;
      out();
      out(`cluster kept as the lab (state in ${LAB_STATE_FILE})\n`);
      out(labGuide(state, podtunInvocation()));
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    if (built !== undefined && !kept) {
      out();
      out('removing the demo namespaces...');
      await built.cluster.destroy();
      out('done');
    }
    // A kept demo that failed leaves no lab behind.
    if (building !== undefined && !kept) await removeLab(undefined);
    process.off('SIGINT', onInterrupt);
  }
}
