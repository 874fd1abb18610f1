/**
 * `npm run bench`: podtun against the kernel, in one run, on the same machine.
 *
 * ```
 *   pod ns p1a --veth-- node ns n1 ==[ data path ]== node ns n2 --veth-- pod ns p2a
 *   10.244.1.10          (underlay ns, bridge ul0, 192.168.77.0/24)          10.244.2.10
 * ```
 *
 * Data paths, each a fresh 2-node cluster with one pod per node (lab/cluster.ts):
 *   kernel-routing (no tunnel, the upper bound), kernel-vxlan (flannel vxlan), podtun-udp
 *   (`transport: udp` on every peer, sealed: the default), podtun-udp-unsealed (the same with
 *   `encryption: none`), podtun-ws (`transport: ws`: WebSocket carries everything),
 *   and two encrypted anchors, WireGuard in userspace (lab/wireguard-go.ts: one `wireguard-go -f`
 *   per node namespace, keys from `wg genkey`, AllowedIPs = the peer's pod subnet, wg and pod MTU
 *   1440 = 1500 minus WireGuard's 60 bytes over IPv4; this kernel has no WireGuard module):
 *   wireguard-go-2022 (Debian's package wireguard-go 0.0.20220316, /usr/bin/wireguard-go; no
 *   offloads) and wireguard-go-current (the module golang.zx2c4.com/wireguard at the version
 *   bench/build-wireguard-go.sh pins, with TUN and UDP offloads, GSO/GRO, as podtun has). The
 *   current one is built once, when missing, by
 *     bash bench/build-wireguard-go.sh
 *   i.e. `go install -trimpath -ldflags='-s -w' golang.zx2c4.com/wireguard@VERSION` through the Go
 *   module proxy with /usr/local/go/bin/go, into
 *   /var/cache/podtun-test/wireguard-go-VERSION/wireguard-go (PODTUN_CACHE_DIR and
 *   PODTUN_WIREGUARD_GO_VERSION override; .ci/run does not build it: the bench is not in CI).
 * Figures per path:
 *   1. single-stream TCP pod -> pod: `iperf3 -t 8 -J`, median of 3 runs;
 *   2. ping RTT: `ping -c 50 -i 0.01`, average;
 *   3. small packets: `iperf3 -u -l 64 -b 0 -w 4M -t 3`, datagrams received per second (iperf3's
 *      one sending thread is often the limit: compare rows, not absolute numbers).
 * And podtun-fallback: 2 nodes in transport auto, `ping -D -i 0.01` pod -> pod running; UDP is
 * blocked on n1 (nftables) and the time until replies resume (over WebSocket) is taken, median of
 * 3; UDP is unblocked and both nodes are back on UDP before the next run.
 * Prints a markdown table (ratios vs kernel VXLAN, RTT added vs kernel routing) and writes it
 * to bench/results.md. The bars (DESIGN.md): podtun-udp >= 0.6x VXLAN TCP, podtun-ws >= 0.4x,
 * added RTT < 0.1 ms; sealed podtun-udp >= 0.75x podtun-udp-unsealed and >= 4x wireguard-go-2022
 * (aiming at wireguard-go-current).
 *
 * And cni (bench/cni-bench.ts): CNI ADD end to end (median, p99) beside the reference bridge +
 * host-local pair, and node start to ready.
 *
 * For the podtun and wireguard-go rows, the CPU both daemons (the two podtun or the two
 * wireguard-go processes, all threads) spent (/proc/PID/stat): per GB received over the TCP runs,
 * and per 64-byte packet received in the small-packet test.
 *
 * Flags: --modes a,b  --runs N  --seconds S  --out FILE  --podtun-root DIR (run another checkout's
 * built podtun, for an A/B against the same harness)
 */
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { PODTUN_POD_MTU, VXLAN_MTU, createCluster, findRepoRoot } from '../lab/cluster.js';
import type { Cluster, ClusterMode } from '../lab/cluster.js';
import { missingCommand, netnsSkipReason, podtunSkipReason } from '../lab/requirements.js';
import { waitPeers } from '../lab/podtun-status.js';
import { outcomeIn, pollUntil, runIn, sleep, stopChild } from '../lab/shell.js';
import { WIREGUARD_MTU, startWireguardGo } from '../lab/wireguard-go.js';
import type { WireguardGoMesh } from '../lab/wireguard-go.js';
import { cniTable, measureCni } from './cni-bench.js';
import { totalCpuSeconds } from './process-cpu.js';
import type { CniBenchResult } from './cni-bench.js';

type WireguardPath = 'wireguard-go-2022' | 'wireguard-go-current';
type DataPath = 'kernel-routing' | 'kernel-vxlan' | 'podtun-udp' | 'podtun-udp-unsealed' | 'podtun-ws' | WireguardPath;
type BenchMode = DataPath | 'podtun-fallback' | 'cni';

const ALL_MODES: readonly BenchMode[] = [
  'kernel-routing', 'kernel-vxlan', 'podtun-udp', 'podtun-udp-unsealed', 'podtun-ws', 'wireguard-go-2022', 'wireguard-go-current', 'podtun-fallback', 'cni',
];
const CLUSTER_MODE: Readonly<Record<DataPath, ClusterMode>> = {
  'kernel-routing': 'kernel-routing',
  'kernel-vxlan': 'kernel-vxlan',
  'podtun-udp': 'podtun',
  'podtun-udp-unsealed': 'podtun',
  'podtun-ws': 'podtun',
  // Pods and nodes only; lab/wireguard-go.ts adds the data path.
  'wireguard-go-2022': 'none',
  'wireguard-go-current': 'none',
};
/** Every node's eth0 on the underlay bridge (lab/cluster.ts). */
const UNDERLAY_MTU = 1500;
/** Pod MTU per data path (what lab/cluster.ts gives each mode; the wg interfaces too). */
const POD_MTU: Readonly<Record<DataPath, number>> = {
  'kernel-routing': UNDERLAY_MTU,
  'kernel-vxlan': VXLAN_MTU,
  'podtun-udp': PODTUN_POD_MTU,
  'podtun-udp-unsealed': PODTUN_POD_MTU,
  'podtun-ws': PODTUN_POD_MTU,
  'wireguard-go-2022': WIREGUARD_MTU,
  'wireguard-go-current': WIREGUARD_MTU,
};
/** Debian's package (wireguard-go 0.0.20220316). */
const WIREGUARD_GO_2022 = '/usr/bin/wireguard-go';
const LABEL: Readonly<Record<BenchMode, string>> = {
  'kernel-routing': 'kernel routing, no tunnel (upper bound)',
  'kernel-vxlan': 'kernel VXLAN (flannel vxlan)',
  'podtun-udp': 'podtun over UDP, sealed (the default)',
  'podtun-udp-unsealed': 'podtun over UDP, encryption: none',
  'podtun-ws': 'podtun over WebSocket (transport: ws)',
  'wireguard-go-2022': 'wireguard-go 2022 (Debian 0.0.20220316, encrypted, userspace)',
  'wireguard-go-current': 'wireguard-go current (encrypted, userspace, GSO/GRO)',
  'podtun-fallback': 'podtun fallback switch time (auto, UDP blocked)',
  cni: 'CNI ADD time and node start to ready (etcd leases)',
};
const IPERF_PORT = 5201;
const SMALL_PACKET_BYTES = 64;
const BAR_TCP_VS_VXLAN = 0.6;
const BAR_WS_TCP_VS_VXLAN = 0.4;
const FALLBACK_RUNS = 3;
/** Longest wait for pings to resume after UDP is blocked, ms. */
const FALLBACK_LIMIT_MS = 30_000;
const BAR_ADDED_RTT_MS = 0.1;
/** DESIGN.md: sealed UDP keeps 0.75x of unsealed podtun and beats Debian's 2022 wireguard-go 4x. */
const BAR_SEALED_VS_UNSEALED = 0.75;
const BAR_SEALED_VS_WIREGUARD_2022 = 4;
/** Longest wait for the first reply across a freshly started cluster, ms. */
const PEER_UP_TIMEOUT_MS = 20_000;

interface BenchOptions {
  modes: BenchMode[];
  runs: number;
  seconds: number;
  out: string;
  /** The checkout whose bin/podtun.js the podtun rows run (default this one). */
  podtunRoot: string | undefined;
}

interface ModeResult {
  mode: DataPath;
  tcpGbps: number[];
  tcpMedianGbps: number | undefined;
  rttAvgMs: number | undefined;
  udpSmallPps: number | undefined;
  /** Both daemons' CPU seconds per GB received over the TCP runs (podtun and wireguard-go rows). */
  cpuSecondsPerGb: number | undefined;
  /** Both daemons' CPU microseconds per 64-byte packet received (podtun and wireguard-go rows). */
  cpuUsPerSmallPacket: number | undefined;
  /** What the row ran, when it is not plain from the label (the wireguard-go version, checks). */
  notes: string[];
  error: string | undefined;
}

function parseArgs(argv: readonly string[], root: string): BenchOptions {
  const options: BenchOptions = {
    modes: [...ALL_MODES],
    runs: 3,
    seconds: 8,
    out: join(root, 'bench', 'results.md'),
    podtunRoot: undefined,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`bench: ${flag ?? ''} needs a value`);
    if (flag === '--modes') {
      const modes = value.split(',');
      for (const m of modes) {
        if (!(ALL_MODES as readonly string[]).includes(m)) {
          throw new Error(`bench: --modes: unknown mode ${m} (known: ${ALL_MODES.join(', ')})`);
        }
      }
      options.modes = modes as BenchMode[];
    } else if (flag === '--runs') {
      options.runs = Math.max(1, Math.min(10, Number.parseInt(value, 10) || 3));
    } else if (flag === '--seconds') {
      options.seconds = Math.max(1, Math.min(60, Number.parseInt(value, 10) || 8));
    } else if (flag === '--out') {
      options.out = value;
    } else if (flag === '--podtun-root') {
      options.podtunRoot = value;
    } else {
      throw new Error(`bench: unknown flag ${flag ?? ''} (known: --modes, --runs, --seconds, --out, --podtun-root)`);
    }
  }
  return options;
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

interface IperfJson {
  error?: string;
  end?: {
    sum_received?: { bits_per_second?: number; bytes?: number; seconds?: number };
    sum?: { packets?: number; lost_packets?: number; seconds?: number };
  };
}

async function iperfClient(cluster: Cluster, args: readonly string[], seconds: number): Promise<IperfJson> {
  const from = cluster.pod(1, 0);
  const to = cluster.pod(2, 0);
  const out = await outcomeIn(
    from.ns,
    ['iperf3', '-c', to.ipv4, '-p', String(IPERF_PORT), '-J', '-t', String(seconds), ...args],
    { timeoutMs: (seconds + 20) * 1000 },
  );
  let parsed: IperfJson;
  try {
    parsed = JSON.parse(out.stdout) as IperfJson;
  } catch {
    throw new Error(`iperf3 gave no JSON (exit ${out.exitCode}): ${out.stderr || out.stdout.slice(0, 300)}`);
  }
  if (parsed.error !== undefined) throw new Error(`iperf3: ${parsed.error}`);
  return parsed;
}

async function measure(mode: DataPath, options: BenchOptions, log: (line: string) => void): Promise<ModeResult> {
  const result: ModeResult = {
    mode,
    tcpGbps: [],
    tcpMedianGbps: undefined,
    rttAvgMs: undefined,
    udpSmallPps: undefined,
    cpuSecondsPerGb: undefined,
    cpuUsPerSmallPacket: undefined,
    notes: [],
    error: undefined,
  };
  if (mode === 'podtun-udp' || mode === 'podtun-udp-unsealed' || mode === 'podtun-ws') {
    const reason = podtunSkipReason();
    if (reason !== undefined) {
      result.error = `not run: ${reason}`;
      return result;
    }
  }
  let wireguardBinary: string | undefined;
  if (isWireguard(mode)) {
    try {
      wireguardBinary = await findWireguardGo(mode, log);
    } catch (error: unknown) {
      result.error = `not run: ${error instanceof Error ? error.message.split('\n')[0] ?? 'failed' : String(error)}`;
      log(`  ${mode}: ${result.error}`);
      return result;
    }
  }
  let cluster: Cluster | undefined;
  let mesh: WireguardGoMesh | undefined;
  try {
    cluster = await createCluster({
      nodes: 2,
      podsPerNode: 1,
      ipv6: false,
      mode: CLUSTER_MODE[mode],
      podMtu: POD_MTU[mode],
      // Each podtun row pins its transport: auto could carry the first seconds over the other one.
      ...(mode === 'podtun-ws' ? { podtun: { transport: 'ws' as const } } : {}),
      ...(mode === 'podtun-udp' ? { podtun: { transport: 'udp' as const } } : {}),
      ...(mode === 'podtun-udp-unsealed' ? { podtun: { transport: 'udp' as const, config: { encryption: 'none' } } } : {}),
      ...(options.podtunRoot === undefined ? {} : { podtunRoot: options.podtunRoot }),
    });
    if (wireguardBinary !== undefined) {
      mesh = await startWireguardGo(cluster, { binary: wireguardBinary, mtu: POD_MTU[mode] });
      result.notes.push(...mesh.facts);
      for (const fact of mesh.facts) log(`  ${mode}: ${fact}`);
    }
    const from = cluster.pod(1, 0);
    const to = cluster.pod(2, 0);
    // Ready when a pod answers across: with the transport pinned, that reply came over it. Asked
    // of the data path, not of GET /status, so that --podtun-root may run a daemon whose status
    // schema is older than this harness's.
    const c = cluster;
    await pollUntil(
      `${mode}: ${from.ns} reaches ${to.ipv4}`,
      async () => ((await c.outcome(from.ns, ['ping', '-c', '1', '-W', '1', to.ipv4])).exitCode === 0 ? true : undefined),
      PEER_UP_TIMEOUT_MS,
      200,
    );
    const server = cluster.spawnIn(to.ns, ['iperf3', '-s', '-p', String(IPERF_PORT)], {
      stdio: 'ignore',
    });
    await pollUntil(
      'iperf3 server',
      async () => {
        const ss = await outcomeIn(to.ns, ['ss', '-Hltn', 'sport', '=', `:${IPERF_PORT}`]);
        return ss.stdout.trim() === '' ? undefined : true;
      },
      5_000,
    );
    // Warm up: neighbour entries, podtun peer state.
    await c.outcome(from.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', to.ipv4]);

    const daemons =
      mesh !== undefined
        ? [...mesh.pids]
        : CLUSTER_MODE[mode] === 'podtun'
          ? [1, 2].map((i) => c.nodePid(i)).filter((p): p is number => p !== undefined)
          : [];
    const cpuNow = (): number => totalCpuSeconds(daemons);
    const nodeNs = [c.node(1).ns, c.node(2).ns];
    const udpBefore = await udpCounters(nodeNs);
    let cpuBefore = cpuNow();
    let bytes = 0;
    for (let run = 0; run < options.runs; run++) {
      const json = await iperfClient(c, [], options.seconds);
      const bps = json.end?.sum_received?.bits_per_second ?? 0;
      bytes += json.end?.sum_received?.bytes ?? 0;
      result.tcpGbps.push(bps / 1e9);
      log(`  ${mode}: TCP run ${run + 1}/${options.runs}: ${(bps / 1e9).toFixed(2)} Gbit/s`);
    }
    result.tcpMedianGbps = median(result.tcpGbps);
    // A tunnel daemon that reads its UDP socket slower than the peer sends loses datagrams there,
    // and TCP inside backs off: say so, since it explains a low figure (wireguard-go 2022 keeps
    // the namespace's default 208 KiB receive buffer; the current one asks for 7 MiB).
    const udpAfter = await udpCounters(nodeNs);
    const dropped = udpAfter.rcvbufErrors - udpBefore.rcvbufErrors;
    if (dropped > 0) {
      const received = udpAfter.inDatagrams - udpBefore.inDatagrams;
      const note = `UDP datagrams dropped at full socket receive buffers in the node namespaces over the TCP runs: ${dropped} (received ${received})`;
      result.notes.push(note);
      log(`  ${mode}: ${note}`);
    }
    if (daemons.length > 0 && bytes > 0) {
      result.cpuSecondsPerGb = (cpuNow() - cpuBefore) / (bytes / 1e9);
      log(`  ${mode}: daemons' CPU ${result.cpuSecondsPerGb.toFixed(2)} s per GB`);
    }

    const ping = await c.outcome(from.ns, ['ping', '-c', '50', '-i', '0.01', '-q', '-W', '2', to.ipv4], {
      timeoutMs: 30_000,
    });
    const avg = /= [\d.]+\/([\d.]+)\//.exec(ping.stdout)?.[1];
    result.rttAvgMs = avg === undefined ? undefined : Number(avg);
    log(`  ${mode}: ping avg ${avg ?? '?'} ms`);

    // -w 4M: the receiving socket buffer should not be what drops packets.
    cpuBefore = cpuNow();
    const udp = await iperfClient(c, ['-u', '-l', String(SMALL_PACKET_BYTES), '-b', '0', '-w', '4M'], 3);
    const udpCpu = cpuNow() - cpuBefore;
    const received = udp.end?.sum_received;
    const sum = udp.end?.sum;
    if (received?.bytes !== undefined && received.seconds !== undefined && received.seconds > 0) {
      result.udpSmallPps = received.bytes / SMALL_PACKET_BYTES / received.seconds;
    } else if (sum?.packets !== undefined && sum.seconds !== undefined && sum.seconds > 0) {
      result.udpSmallPps = (sum.packets - (sum.lost_packets ?? 0)) / sum.seconds;
    }
    if (result.udpSmallPps !== undefined) {
      log(`  ${mode}: ${SMALL_PACKET_BYTES}-byte UDP received ${(result.udpSmallPps / 1000).toFixed(0)} kpps`);
      const packets = result.udpSmallPps * (received?.seconds ?? sum?.seconds ?? 0);
      if (daemons.length > 0 && packets > 0) {
        result.cpuUsPerSmallPacket = (udpCpu * 1e6) / packets;
        log(`  ${mode}: daemons' CPU ${result.cpuUsPerSmallPacket.toFixed(2)} us per packet`);
      }
    }
    await stopChild(server, 2_000);
  } catch (error: unknown) {
    result.error = error instanceof Error ? error.message.split('\n')[0] ?? 'failed' : String(error);
    log(`  ${mode}: failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await mesh?.close();
    await cluster?.destroy({ keepLogs: result.error !== undefined });
  }
  return result;
}

interface UdpCounters {
  inDatagrams: number;
  rcvbufErrors: number;
}

/** UDP InDatagrams and RcvbufErrors summed over namespaces (/proc/net/snmp is per namespace). */
async function udpCounters(namespaces: readonly string[]): Promise<UdpCounters> {
  const sum: UdpCounters = { inDatagrams: 0, rcvbufErrors: 0 };
  for (const ns of namespaces) {
    const snmp = await outcomeIn(ns, ['cat', '/proc/net/snmp']);
    const [names, values] = snmp.stdout.split('\n').filter((line) => line.startsWith('Udp: '));
    if (names === undefined || values === undefined) continue;
    const keys = names.split(/\s+/);
    const numbers = values.split(/\s+/).map(Number);
    sum.inDatagrams += numbers[keys.indexOf('InDatagrams')] ?? 0;
    sum.rcvbufErrors += numbers[keys.indexOf('RcvbufErrors')] ?? 0;
  }
  return sum;
}

function isWireguard(mode: DataPath): mode is WireguardPath {
  return mode === 'wireguard-go-2022' || mode === 'wireguard-go-current';
}

/**
 * The wireguard-go a row runs: Debian's for the 2022 row; for the current row, what
 * bench/build-wireguard-go.sh built (it builds when the cached binary is missing, else only
 * prints its path). Throws why the row cannot run.
 */
async function findWireguardGo(mode: WireguardPath, log: (line: string) => void): Promise<string> {
  const missing = missingCommand(['wg']);
  if (missing !== undefined) throw new Error(missing);
  if (mode === 'wireguard-go-2022') {
    if (!existsSync(WIREGUARD_GO_2022)) throw new Error(`${WIREGUARD_GO_2022} is missing (Debian package wireguard-go)`);
    return WIREGUARD_GO_2022;
  }
  const script = join(findRepoRoot(), 'bench', 'build-wireguard-go.sh');
  log(`  ${mode}: bash bench/build-wireguard-go.sh (builds only when the cached binary is missing)`);
  const built = await runIn(null, ['bash', script], { timeoutMs: 15 * 60_000 });
  const binary = built.stdout.trim().split('\n').pop() ?? '';
  if (binary === '' || !existsSync(binary)) throw new Error(`bench/build-wireguard-go.sh named no binary: ${built.stderr.slice(-300)}`);
  return binary;
}

interface FallbackResult {
  switchMs: number[];
  medianMs: number | undefined;
  error: string | undefined;
}

/** Reply timestamps (s, from `ping -D`) of the lines seen so far. */
function replyTimes(pingOut: string): number[] {
  const times: number[] = [];
  for (const m of pingOut.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from /gm)) times.push(Number(m[1]));
  return times;
}

async function measureFallback(log: (line: string) => void): Promise<FallbackResult> {
  const result: FallbackResult = { switchMs: [], medianMs: undefined, error: undefined };
  const reason = podtunSkipReason() ?? missingCommand(['nft']);
  if (reason !== undefined) {
    result.error = `not run: ${reason}`;
    return result;
  }
  let cluster: Cluster | undefined;
  try {
    const c = await createCluster({ nodes: 2, podsPerNode: 1, ipv6: false, mode: 'podtun' });
    cluster = c;
    const from = c.pod(1, 0);
    const to = c.pod(2, 0);
    const onUdp = async (): Promise<void> => {
      await waitPeers(c, 1, ['n2'], { transport: 'udp' }, 30_000);
      await waitPeers(c, 2, ['n1'], { transport: 'udp' }, 30_000);
    };
    await onUdp();
    const ping = c.spawnIn(from.ns, ['ping', '-D', '-n', '-i', '0.01', '-W', '1', to.ipv4]);
    let pingOut = '';
    ping.stdout?.setEncoding('utf8');
    ping.stdout?.on('data', (d: string) => {
      pingOut += d;
      if (pingOut.length > 4_000_000) pingOut = pingOut.slice(-1_000_000);
    });
    for (let run = 0; run < FALLBACK_RUNS; run++) {
      await sleep(1_000);
      await c.blockUdp(1);
      const t0 = Date.now() / 1000;
      // Replies in flight at t0 take well under 50 ms; a later one came over WebSocket.
      const resumed = await pollUntil(
        'ping replies after UDP was blocked',
        async () => replyTimes(pingOut).find((t) => t > t0 + 0.05),
        FALLBACK_LIMIT_MS,
        20,
      );
      const ms = (resumed - t0) * 1000;
      result.switchMs.push(ms);
      log(`  podtun-fallback: run ${run + 1}/${FALLBACK_RUNS}: pings resumed ${ms.toFixed(0)} ms after the UDP block`);
      await c.blockUdp(1, false);
      await onUdp();
    }
    await stopChild(ping, 1_000);
    result.medianMs = median(result.switchMs);
  } catch (error: unknown) {
    result.error = error instanceof Error ? error.message.split('\n')[0] ?? 'failed' : String(error);
    log(`  podtun-fallback: failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await cluster?.destroy({ keepLogs: result.error !== undefined });
  }
  return result;
}

function fmt(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits);
}

function table(results: readonly ModeResult[], options: BenchOptions): string {
  const vxlan = results.find((r) => r.mode === 'kernel-vxlan')?.tcpMedianGbps;
  const routingRtt = results.find((r) => r.mode === 'kernel-routing')?.rttAvgMs;
  const lines = [
    `| data path | pod MTU | TCP Gbit/s (median of ${options.runs} x ${options.seconds} s) | runs | x kernel VXLAN | ping RTT ms | added RTT ms vs routing | 64 B UDP kpps received | daemons' CPU s/GB (TCP) | daemons' CPU us/packet (64 B) |`,
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    if (r.error !== undefined && r.tcpMedianGbps === undefined) {
      lines.push(`| ${LABEL[r.mode]} | ${POD_MTU[r.mode]} | ${r.error.replace(/\|/g, '/')} | | | | | | | |`);
      continue;
    }
    const ratio = vxlan === undefined || r.tcpMedianGbps === undefined ? undefined : r.tcpMedianGbps / vxlan;
    const added = routingRtt === undefined || r.rttAvgMs === undefined ? undefined : r.rttAvgMs - routingRtt;
    lines.push(
      `| ${LABEL[r.mode]} | ${POD_MTU[r.mode]} | ${fmt(r.tcpMedianGbps, 2)} | ${r.tcpGbps.map((g) => g.toFixed(2)).join(', ')} | ${fmt(ratio, 2)} | ${fmt(r.rttAvgMs, 3)} | ${fmt(added, 3)} | ${fmt(r.udpSmallPps === undefined ? undefined : r.udpSmallPps / 1000, 0)} | ${fmt(r.cpuSecondsPerGb, 2)} | ${fmt(r.cpuUsPerSmallPacket, 2)} |`,
    );
  }
  return lines.join('\n');
}

/** Per-row notes (what a wireguard-go row ran and checked), one bullet each. */
function notes(results: readonly ModeResult[]): string[] {
  return results.flatMap((r) => r.notes.map((note) => `- ${r.mode}: ${note}.`));
}

function verdict(results: readonly ModeResult[], fallback: FallbackResult | undefined): string[] {
  const get = (mode: DataPath): ModeResult | undefined => results.find((r) => r.mode === mode);
  const podtun = get('podtun-udp');
  const unsealed = get('podtun-udp-unsealed');
  const ws = get('podtun-ws');
  const vxlan = get('kernel-vxlan');
  const routing = get('kernel-routing');
  const out: string[] = [];
  if (podtun?.tcpMedianGbps === undefined) {
    out.push('- Bar: not checked (podtun-udp was not measured).');
  } else {
    if (vxlan?.tcpMedianGbps !== undefined) {
      const ratio = podtun.tcpMedianGbps / vxlan.tcpMedianGbps;
      out.push(
        `- Bar, TCP >= ${BAR_TCP_VS_VXLAN}x kernel VXLAN: ${ratio.toFixed(2)}x — ${ratio >= BAR_TCP_VS_VXLAN ? 'met' : 'NOT met'}.`,
      );
    }
    if (routing?.rttAvgMs !== undefined && podtun.rttAvgMs !== undefined) {
      const added = podtun.rttAvgMs - routing.rttAvgMs;
      out.push(
        `- Bar, added RTT < ${BAR_ADDED_RTT_MS} ms: ${added.toFixed(3)} ms — ${added < BAR_ADDED_RTT_MS ? 'met' : 'NOT met'}.`,
      );
    }
  }
  if (ws?.tcpMedianGbps !== undefined && vxlan?.tcpMedianGbps !== undefined) {
    const ratio = ws.tcpMedianGbps / vxlan.tcpMedianGbps;
    out.push(
      `- Bar, WebSocket TCP >= ${BAR_WS_TCP_VS_VXLAN}x kernel VXLAN: ${ratio.toFixed(2)}x — ${ratio >= BAR_WS_TCP_VS_VXLAN ? 'met' : 'NOT met'}.`,
    );
  }
  // Sealed UDP (podtun-udp) against unsealed podtun and the encrypted anchors (DESIGN.md's bars).
  if (podtun?.tcpMedianGbps !== undefined && unsealed?.tcpMedianGbps !== undefined && unsealed.tcpMedianGbps > 0) {
    const ratio = podtun.tcpMedianGbps / unsealed.tcpMedianGbps;
    out.push(`- Bar, sealed UDP >= ${BAR_SEALED_VS_UNSEALED}x unsealed podtun: ${ratio.toFixed(2)}x — ${ratio >= BAR_SEALED_VS_UNSEALED ? 'met' : 'NOT met'}.`);
  }
  for (const [mode, bar] of [['wireguard-go-2022', BAR_SEALED_VS_WIREGUARD_2022], ['wireguard-go-current', 1]] as const) {
    const anchor = get(mode);
    if (podtun?.tcpMedianGbps === undefined || anchor?.tcpMedianGbps === undefined || anchor.tcpMedianGbps <= 0) continue;
    const ratio = podtun.tcpMedianGbps / anchor.tcpMedianGbps;
    const what = mode === 'wireguard-go-2022' ? 'Bar' : 'Aim';
    out.push(`- ${what}, sealed UDP >= ${bar}x ${mode}: ${ratio.toFixed(2)}x — ${ratio >= bar ? 'met' : 'NOT met'}.`);
  }
  if (fallback !== undefined) {
    out.push(
      fallback.medianMs === undefined
        ? `- Fallback switch time: ${fallback.error ?? 'not measured'}.`
        : `- Fallback switch time (auto; UDP blocked on n1 under \`ping -i 0.01\`, until replies resume over WebSocket): ` +
            `median ${fallback.medianMs.toFixed(0)} ms of ${fallback.switchMs.map((m) => m.toFixed(0)).join(', ')} ms.`,
    );
  }
  return out;
}

async function main(): Promise<void> {
  const root = findRepoRoot();
  const options = parseArgs(process.argv.slice(2), root);
  const problem = netnsSkipReason(['bridge']) ?? missingCommand(['iperf3', 'ping']);
  if (problem !== undefined) {
    process.stderr.write(`podtun bench: ${problem}\n`);
    process.exitCode = 1;
    return;
  }
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const cpu = cpus();
  log(`podtun bench: ${options.modes.join(', ')}; ${cpu.length} CPUs (${cpu[0]?.model ?? '?'}), Linux ${release()}` +
    (options.podtunRoot === undefined ? '' : `; podtun from ${options.podtunRoot}`));
  const results: ModeResult[] = [];
  let fallback: FallbackResult | undefined;
  let cni: CniBenchResult | undefined;
  for (const mode of options.modes) {
    log(`${LABEL[mode]}:`);
    if (mode === 'podtun-fallback') fallback = await measureFallback(log);
    else if (mode === 'cni') cni = await measureCni(log);
    else results.push(await measure(mode, options, log));
  }
  const body = [
    '# podtun benchmark results',
    '',
    `Run ${new Date().toISOString()} by \`npm run bench\` (bench/run.ts): 2 nodes, 1 pod each, pod -> pod over IPv4;`,
    `${cpu.length} CPUs (${cpu[0]?.model ?? '?'}), Linux ${release()}, Node ${process.version}.`,
    'TCP: iperf3 single stream; RTT: ping -c 50 -i 0.01 (avg); small packets: iperf3 -u -l 64 -b 0 -w 4M -t 3 (sender-bound on small machines).',
    '',
    table(results, options),
    '',
    `Pod MTU: the ${UNDERLAY_MTU}-byte underlay minus each tunnel's overhead over IPv4 (VXLAN ${UNDERLAY_MTU - VXLAN_MTU}, podtun ${UNDERLAY_MTU - PODTUN_POD_MTU}, ` +
      `WireGuard ${UNDERLAY_MTU - WIREGUARD_MTU}); the wg interfaces have the same MTU. Daemons' CPU: both podtun processes, or both ` +
      'wireguard-go processes (all threads), from /proc/PID/stat.',
    ...notes(results),
    '',
    ...verdict(results, fallback),
    '',
    ...(cni === undefined ? [] : [...cniTable(cni), '']),
  ].join('\n');
  log('');
  log(body);
  writeFileSync(options.out, body);
  log(`written to ${options.out}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`podtun bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
