/**
 * `podtun demo`: a throwaway 3-node cluster in network namespaces on this machine, with podtun
 * carrying pod traffic between nodes; n3's underlay drops all UDP, so n3 is reached over
 * WebSocket without any setting (transport auto). Prints each node's peers (transport, state),
 * who reaches whom (TCP round trips) and a transfer rate, then removes everything, also on Ctrl-C.
 *
 * ```
 *                  underlay ns (bridge ul0, 192.168.77.0/24)
 *               /               |                \
 *    n1: podtun run        n2: podtun run        n3: podtun run      n1 <-> n2: UDP :8285
 *                                                [UDP dropped]       n3 <-> n1/n2: WebSocket :8443
 *     p1a   p1b             p2a   p2b             p3a   p3b          (10.244.N.10/.11)
 * ```
 *
 * Flow: 1. check root and `ip`; 2. build the cluster (lab/cluster.ts), block UDP on n3
 * (nftables), start podtun everywhere; 3. wait until n3's peers show transport 'ws' (bounded),
 * print the peer tables; 4. an echo server per pod, then TCP round trips from every pod to every
 * other; 5. one cross-node transfer with its SHA-256 checked at the sink; 6. tear down.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createCluster, findRepoRoot } from './cluster.js';
import type { Cluster, PodInfo } from './cluster.js';
import { ensureProbeAgent, probe, startProbe } from './probe.js';
import type { ProbeServer, RttResult, SendResult, SinkResult } from './probe.js';
import { missingCommand } from './requirements.js';
import { readStatus, waitPeers } from './podtun-status.js';

const ECHO_PORT = 7000;
const SINK_PORT = 7001;
const TRANSFER_BYTES = 256 * 1024 * 1024;
const RTT_COUNT = 10;
/** The node whose underlay drops UDP. */
const WS_ONLY_NODE = 3;
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

/** Per node: its peers with the transport and state /status reports. */
async function printPeerTables(cluster: Cluster): Promise<void> {
  for (const node of cluster.nodes()) {
    let rows: string[];
    try {
      const status = await readStatus(cluster, node.index);
      rows = status.peers.map(
        (p) =>
          `    ${p.node.padEnd(6)}${(p.transport ?? '?').padEnd(11)}${p.state.padEnd(9)}` +
          (p.lastSwitch === undefined ? '' : `switched ${p.lastSwitch.from} -> ${p.lastSwitch.to}: ${p.lastSwitch.reason}`),
      );
    } catch (error: unknown) {
      rows = [`    (no status: ${error instanceof Error ? error.message : String(error)})`];
    }
    out(`  ${node.name}${node.index === WS_ONLY_NODE ? ' (UDP blocked)' : ''}:`);
    out(`    ${'peer'.padEnd(6)}${'transport'.padEnd(11)}${'state'.padEnd(9)}`);
    for (const row of rows) out(row);
  }
}

export interface DemoOptions {
  /** The data path between nodes; 'podtun' unless trying the demo itself against the kernel. */
  mode?: 'podtun' | 'kernel-routing';
}

/** Runs the demo; throws a DemoError when the machine cannot host it. */
export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const mode = options.mode ?? 'podtun';
  if (process.platform !== 'linux') throw new DemoError('podtun demo needs Linux (network namespaces)');
  if (process.getuid?.() !== 0) {
    throw new DemoError('podtun demo needs root: it creates network namespaces (try: sudo podtun demo)');
  }
  const missing = missingCommand(['ip', 'bridge', 'ss']);
  if (missing !== undefined) throw new DemoError(`podtun demo: ${missing}`);
  const root = findRepoRoot();
  if (mode === 'podtun' && !existsSync(join(root, 'dist', 'node-bootstrap', 'cli', 'cli.js'))) {
    throw new DemoError('podtun demo: dist/ is missing, run `npm run build` first');
  }
  await ensureProbeAgent(root);

  const onInterrupt = (): void => {
    out('\ninterrupted: removing the demo namespaces...');
  };
  process.once('SIGINT', onInterrupt);
  let cluster: Cluster | undefined;
  const servers: ProbeServer<unknown>[] = [];
  try {
    out(
      mode === 'podtun'
        ? 'podtun demo: 3 nodes x 2 pods in network namespaces, pods talk through podtun (UDP, or WebSocket where UDP is blocked)'
        : `podtun demo (${mode}, no podtun): 3 nodes x 2 pods in network namespaces`,
    );
    const t0 = Date.now();
    cluster = await createCluster({ nodes: 3, podsPerNode: 2, ipv6: true, mode, startNodes: false });
    if (mode === 'podtun') {
      if (missingCommand(['nft']) === undefined) {
        await cluster.blockUdp(WS_ONLY_NODE);
      } else {
        out(`  (${missingCommand(['nft']) ?? ''}: n3's UDP is not blocked, every peer stays on UDP)`);
      }
      const c = cluster;
      await Promise.all(c.nodes().map((node) => c.startNode(node.index)));
    }
    out(`cluster ${cluster.id} up in ${((Date.now() - t0) / 1000).toFixed(1)} s (namespaces pt${cluster.id}-*)`);
    for (const node of cluster.nodes()) {
      const pods = cluster.pods().filter((p) => p.node === node.index);
      out(
        `  ${node.name}: underlay ${node.underlayIp}, pods ${node.subnetV4} ${node.subnetV6 ?? ''}: ` +
          pods.map((p) => `${p.name} ${p.ipv4}`).join(', '),
      );
    }

    if (mode === 'podtun') {
      const c = cluster;
      const n3 = c.node(WS_ONLY_NODE).name;
      const others = c.nodes().filter((n) => n.index !== WS_ONLY_NODE);
      out();
      out(`${n3}'s underlay drops all UDP; waiting for its peers to move to WebSocket...`);
      const w0 = Date.now();
      try {
        await Promise.all([
          waitPeers(c, WS_ONLY_NODE, others.map((n) => n.name), { transport: 'ws' }, WS_WAIT_MS),
          ...others.map((n) => waitPeers(c, n.index, [n3], { transport: 'ws' }, WS_WAIT_MS)),
        ]);
        out(`  after ${((Date.now() - w0) / 1000).toFixed(1)} s: ${n3} is reached over WebSocket, without any setting (transport auto)`);
      } catch (error: unknown) {
        out(`  ${n3}'s peers did not all reach 'ws' in ${WS_WAIT_MS / 1000} s: ${error instanceof Error ? error.message : String(error)}`);
      }
      out('peers as each node reports them (GET /status):');
      await printPeerTables(c);
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
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    if (cluster !== undefined) {
      out();
      out('removing the demo namespaces...');
      await cluster.destroy();
      out('done');
    }
    process.off('SIGINT', onInterrupt);
  }
}
