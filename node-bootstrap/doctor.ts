/**
 * `podtun doctor`: checks a node layer by layer and says what to fix. Each check names its layer
 * (host, tun, routes, daemon, peer:<name>, mtu:<name>), whether it passed, what it saw, and a
 * hint. Run on the node (inside its network namespace), as root for the pings and sysctls.
 *
 *   host     config loads; ip_forward (and IPv6 forwarding with an IPv6 cluster CIDR); rp_filter
 *   tun      the TUN exists and is up, with the node subnet's network address and the TUN MTU
 *   routes   each cluster CIDR routed to the TUN; each peer subnet's gateway resolves out the TUN
 *   daemon   GET /status answers on the status socket; every configured peer is listed
 *   peer:N   state, transport, UDP (from /status), WebSocket (TCP connect to wsEndpoint)
 *   mtu:N    largest DF ping through the tunnel to the peer's pod bridge gateway vs the TUN MTU
 *
 * Exit code 0 when every check passed, 1 otherwise (2 for a usage error, from the command).
 */
import { parseArgs } from 'node:util';
import { addressInCidr, formatAddress, parseCidr } from '../core/cidr.js';
import { parseHostPort } from '../core/config-check.js';
import { DEFAULT_TRANSPORTS } from '../tunnel/transports.js';
import { loadConfig } from './config/load-config.js';
import { ConfigError, transportChoice, tunMtuOf } from './config/node-config.js';
import type { NodeConfig, NodeSpec } from './config/node-config.js';
import { defaultProbes, parseStatus } from './doctor-probes.js';
import type { DoctorProbes, StatusPeer, StatusView } from './doctor-probes.js';

export interface DoctorCheck {
  /** host | tun | routes | daemon | peer:<name> | mtu:<name> */
  readonly layer: string;
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  /** What to do about it ('' when there is nothing to do). */
  readonly hint: string;
}

export interface DoctorReport {
  readonly checks: readonly DoctorCheck[];
  /** 0 when every check passed, 1 otherwise. */
  readonly exitCode: 0 | 1;
}

export interface DoctorOptions {
  configPath: string;
  /** The daemon's status socket (`podtun run --status-socket`); undefined: the daemon check fails. */
  socketPath: string | undefined;
  /** Only for callers that render: see formatDoctorReport. */
  json?: boolean;
  /** Host probes (tests); default the real ones. */
  probes?: DoctorProbes;
}

const IP_TIMEOUT_MS = 3_000;
const PING_TIMEOUT_MS = 4_000;
const WS_CONNECT_TIMEOUT_MS = 1_500;
/** Underlay sizes tried (the brief's 1500/1450/1400/1280), plus the TUN MTU and the peer's tunnel MTU. */
const PMTU_SIZES = [1500, 1450, 1400, 1280] as const;
/** IPv4 header + ICMP echo header. */
const PING_HEADERS_V4 = 28;

export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const probes = options.probes ?? defaultProbes;
  const checks: DoctorCheck[] = [];

  let config: NodeConfig | undefined;
  try {
    config = await loadConfig(options.configPath);
    const peers = config.subnetManager.readsNodeList ? `${config.nodes.length - 1} peers` : `leases from ${config.subnetManager.type}`;
    checks.push(pass('host', 'config', `${options.configPath}: node ${config.nodeName}, ${peers}, TUN ${config.tunName}`));
  } catch (err: unknown) {
    const detail = err instanceof ConfigError ? err.message.split('\n').join('; ') : errorMessage(err);
    checks.push(fail('host', 'config', detail, 'fix the config file (podtun run refuses it the same way)'));
  }

  if (config === undefined) {
    checks.push(await forwardingCheck(probes, 4));
    const daemon = await daemonChecks(probes, options.socketPath, undefined);
    checks.push(...daemon.checks);
    return report(checks);
  }
  // Control-plane managers: the config names no nodes; check against the leases the daemon holds.
  const cfg = config.subnetManager.readsNodeList ? config : await withLeasesFromDaemon(probes, options.socketPath, config);

  const [host, tun, routes, daemon] = await Promise.all([
    hostChecks(probes, cfg),
    tunChecks(probes, cfg),
    routeChecks(probes, cfg),
    daemonChecks(probes, options.socketPath, cfg),
  ]);
  checks.push(...host, ...tun, ...routes, ...daemon.checks);

  const peers = cfg.nodes.filter((n) => n.name !== cfg.nodeName);
  const perPeer = await Promise.all(peers.map((peer) => peerChecks(probes, cfg, peer, daemon.status)));
  for (const list of perPeer) checks.push(...list);
  return report(checks);
}

/**
 * The config with `nodes` filled from the daemon's /status (this node's lease, each peer's
 * subnets and endpoints). No daemon: no nodes, and the daemon check says why.
 */
async function withLeasesFromDaemon(probes: DoctorProbes, socketPath: string | undefined, config: NodeConfig): Promise<NodeConfig> {
  const raw = socketPath === undefined ? undefined : await probes.status(socketPath).catch(() => undefined);
  const report = raw as { lease?: unknown; peers?: unknown } | undefined;
  const nodes: NodeSpec[] = [];
  const spec = (name: string, subnets: unknown, endpoints: unknown): NodeSpec => ({
    name,
    subnets: Array.isArray(subnets) ? subnets.filter((x): x is string => typeof x === 'string') : [],
    endpoints: typeof endpoints === 'object' && endpoints !== null
      ? Object.fromEntries(Object.entries(endpoints).filter((e): e is [string, string] => typeof e[1] === 'string'))
      : {},
    mtu: undefined,
    transports: DEFAULT_TRANSPORTS,
  });
  if (report !== undefined && Array.isArray(report.lease)) nodes.push(spec(config.nodeName, report.lease, undefined));
  if (report !== undefined && Array.isArray(report.peers)) {
    for (const peer of report.peers as unknown[]) {
      const p = peer as { node?: unknown; subnets?: unknown; endpoints?: unknown };
      if (typeof p.node === 'string') nodes.push(spec(p.node, p.subnets, p.endpoints));
    }
  }
  return { ...config, nodes };
}

function report(checks: DoctorCheck[]): DoctorReport {
  return { checks, exitCode: checks.every((c) => c.ok) ? 0 : 1 };
}

// --- host ---

async function hostChecks(probes: DoctorProbes, config: NodeConfig): Promise<DoctorCheck[]> {
  const out: DoctorCheck[] = [await forwardingCheck(probes, 4)];
  if (config.clusterCidrs.some((c) => parseCidr(c).family === 6)) out.push(await forwardingCheck(probes, 6));
  const tun = config.tunName;
  const [onTun, onAll] = await Promise.all([probes.sysctl(`net/ipv4/conf/${tun}/rp_filter`), probes.sysctl('net/ipv4/conf/all/rp_filter')]);
  if (onTun === undefined) {
    out.push(fail('host', 'rp_filter', `net.ipv4.conf.${tun}.rp_filter unreadable (no ${tun}?)`, `see the tun checks; podtun sets it to 0 at start`));
  } else {
    const effective = Math.max(Number(onTun), Number(onAll ?? '0'));
    const detail = `${tun} ${onTun}, all ${onAll ?? '?'}: effective ${effective}`;
    if (effective === 1) {
      const fix = Number(onAll ?? '0') === 1 ? 'sysctl -w net.ipv4.conf.all.rp_filter=0 (or 2)' : `sysctl -w net.ipv4.conf.${tun}.rp_filter=0`;
      out.push(fail('host', 'rp_filter', `${detail} (strict: replies from peer pods may be dropped)`, fix));
    } else {
      out.push(pass('host', 'rp_filter', detail));
    }
  }
  return out;
}

async function forwardingCheck(probes: DoctorProbes, family: 4 | 6): Promise<DoctorCheck> {
  const [key, path] = family === 4 ? ['net.ipv4.ip_forward', 'net/ipv4/ip_forward'] : ['net.ipv6.conf.all.forwarding', 'net/ipv6/conf/all/forwarding'];
  const name = family === 4 ? 'ip_forward' : 'ipv6 forwarding';
  const value = await probes.sysctl(path);
  if (value === '1') return pass('host', name, `${key} = 1`);
  return fail('host', name, `${key} = ${value ?? 'unreadable'}: pods' packets are not forwarded to or from the TUN`, `sysctl -w ${key}=1 (podtun run sets it at start; something reset it)`);
}

// --- tun ---

interface IpLink {
  ifname?: string;
  flags?: string[];
  mtu?: number;
  operstate?: string;
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

async function tunChecks(probes: DoctorProbes, config: NodeConfig): Promise<DoctorCheck[]> {
  const tun = config.tunName;
  const restart = `start podtun on this node (podtun run --config ${config.source}); it creates ${tun}`;
  const r = await probes.exec(['ip', '-j', 'addr', 'show', 'dev', tun], IP_TIMEOUT_MS);
  const link = r.code === 0 ? parseJsonArray<IpLink>(r.stdout)[0] : undefined;
  if (link === undefined) {
    return [fail('tun', 'link', `${tun}: ${firstLine(r.stderr) || 'not found'}`, restart)];
  }
  const out: DoctorCheck[] = [];
  const flags = link.flags ?? [];
  if (flags.includes('UP')) out.push(pass('tun', 'link', `${tun} up (${link.operstate ?? '?'})`));
  else out.push(fail('tun', 'link', `${tun} is down (flags ${flags.join(',')})`, `ip link set ${tun} up (or restart podtun)`));

  const wantMtu = tunMtuOf(config);
  if (link.mtu === wantMtu) out.push(pass('tun', 'mtu', `${link.mtu} (underlayMtu ${config.underlayMtu} - tunnel overhead)`));
  else out.push(fail('tun', 'mtu', `${link.mtu ?? '?'}, expected ${wantMtu} (underlayMtu ${config.underlayMtu} - tunnel overhead)`, `ip link set ${tun} mtu ${wantMtu} (or restart podtun)`));

  const local = config.nodes.find((n) => n.name === config.nodeName) ?? { subnets: [] };
  const have = new Set((link.addr_info ?? []).map((a) => `${a.local ?? ''}/${a.prefixlen ?? ''}`));
  for (const subnet of local.subnets) {
    const cidr = parseCidr(subnet);
    const want = `${formatAddress({ family: cidr.family, bytes: cidr.bytes })}/${cidr.family === 4 ? 32 : 128}`;
    const name = cidr.family === 4 ? 'address' : 'address v6';
    if (have.has(want)) out.push(pass('tun', name, `${want} (network address of ${subnet})`));
    else out.push(fail('tun', name, `${want} missing (has ${[...have].join(', ') || 'none'})`, `ip addr add ${want} dev ${tun} (or restart podtun)`));
  }
  return out;
}

// --- routes ---

interface IpRoute {
  dst?: string;
  dev?: string;
}

async function routeChecks(probes: DoctorProbes, config: NodeConfig): Promise<DoctorCheck[]> {
  const tun = config.tunName;
  const restart = 'podtun run adds it at start: restart podtun';
  const clusterChecks = config.clusterCidrs.map(async (text): Promise<DoctorCheck> => {
    const six = parseCidr(text).family === 6 ? ['-6'] : [];
    const r = await probes.exec(['ip', '-j', ...six, 'route', 'show', 'exact', text], IP_TIMEOUT_MS);
    const routes = r.code === 0 ? parseJsonArray<IpRoute>(r.stdout) : [];
    const viaTun = routes.some((rt) => rt.dev === tun);
    if (viaTun) return pass('routes', `cluster ${text}`, `dev ${tun}`);
    const seen = routes.map((rt) => `dev ${rt.dev ?? '?'}`).join(', ');
    return fail('routes', `cluster ${text}`, seen === '' ? `no route for ${text}` : `${text} goes ${seen}, not ${tun}`, `ip ${six.join('')}${six.length > 0 ? ' ' : ''}route replace ${text} dev ${tun} (${restart})`);
  });
  const peerChecksList = config.nodes
    .filter((n) => n.name !== config.nodeName)
    .flatMap((peer) =>
      peer.subnets.map(async (subnet): Promise<DoctorCheck> => {
        const cidr = parseCidr(subnet);
        const gw = formatAddress(addressInCidr(cidr, 1));
        const six = cidr.family === 6 ? ['-6'] : [];
        const name = `to ${peer.name} ${gw}`;
        const r = await probes.exec(['ip', '-j', ...six, 'route', 'get', gw], IP_TIMEOUT_MS);
        const route = r.code === 0 ? parseJsonArray<IpRoute>(r.stdout)[0] : undefined;
        if (route === undefined) return fail('routes', name, `ip route get ${gw}: ${firstLine(r.stderr) || 'no route'}`, `the cluster route is missing: ${restart}`);
        if (route.dev === tun) return pass('routes', name, `out ${tun}`);
        return fail('routes', name, `goes out ${route.dev ?? '?'}, not ${tun} (${peer.name}'s subnet ${subnet})`, `a more specific route shadows the cluster route, or it is missing: ip route show ${subnet}; ${restart}`);
      }),
    );
  return Promise.all([...clusterChecks, ...peerChecksList]);
}

// --- daemon ---

async function daemonChecks(
  probes: DoctorProbes,
  socketPath: string | undefined,
  config: NodeConfig | undefined,
): Promise<{ checks: DoctorCheck[]; status: StatusView | undefined }> {
  if (socketPath === undefined) {
    return {
      checks: [fail('daemon', 'status', 'no status socket given', 'pass --socket PATH (the --status-socket / PODTUN_STATUS_SOCKET of podtun run)')],
      status: undefined,
    };
  }
  let status: StatusView | undefined;
  try {
    status = parseStatus(await probes.status(socketPath));
  } catch (err: unknown) {
    return {
      checks: [fail('daemon', 'status', `${socketPath}: ${errorMessage(err)}`, 'is podtun run running on this node with --status-socket at this path?')],
      status: undefined,
    };
  }
  if (status === undefined) {
    return { checks: [fail('daemon', 'status', `${socketPath}: not a podtun status reply`, 'is this the socket of podtun run?')], status: undefined };
  }
  const checks = [pass('daemon', 'status', `${socketPath}: node ${status.node ?? '?'}, ${status.peers.length} peers`)];
  if (config !== undefined) {
    const listed = new Set(status.peers.map((p) => p.node));
    const missing = config.nodes.filter((n) => n.name !== config.nodeName && !listed.has(n.name)).map((n) => n.name);
    if (missing.length === 0) checks.push(pass('daemon', 'peers', `${listed.size} listed: ${[...listed].join(', ') || 'none'}`));
    else checks.push(fail('daemon', 'peers', `in the config but not in /status: ${missing.join(', ')}`, 'the daemon runs another config: check --config, or send SIGHUP to reload'));
    if (status.node !== undefined && status.node !== config.nodeName) {
      checks.push(fail('daemon', 'node', `the daemon is ${status.node}, the config says ${config.nodeName}`, 'point --config and --socket at the same node'));
    }
  }
  return { checks, status };
}

// --- peers ---

async function peerChecks(probes: DoctorProbes, config: NodeConfig, peer: NodeSpec, status: StatusView | undefined): Promise<DoctorCheck[]> {
  const layer = `peer:${peer.name}`;
  const seen = status?.peers.find((p) => p.node === peer.name);
  const out: DoctorCheck[] = [];
  const reach = describeReach(peer);
  if (status === undefined) {
    out.push(fail(layer, 'state', 'unknown: no status from the daemon', 'see the daemon check'));
  } else if (seen === undefined) {
    out.push(fail(layer, 'state', 'not in /status', 'see the daemon peers check'));
  } else if (seen.state === 'up') {
    out.push(pass(layer, 'state', `up${seen.rttMs === undefined ? '' : `, rtt ${seen.rttMs.toFixed(1)} ms`}`));
  } else {
    out.push(fail(layer, 'state', `${seen.state ?? 'unknown'}: answers on no transport`, `is podtun running on ${peer.name}? can this node reach it (${reach})?`));
  }
  if (seen !== undefined) out.push(transportCheck(layer, peer, seen));
  out.push(udpCheck(layer, config, peer, seen));
  out.push(await wsCheck(probes, layer, config, peer));
  out.push(await mtuCheck(probes, config, peer, seen));
  return out;
}

function transportCheck(layer: string, peer: NodeSpec, seen: StatusPeer): DoctorCheck {
  const on = seen.transport ?? 'none';
  const since = seen.lastSwitch === undefined ? '' : `, since ${ago(seen.lastSwitch.atMs)} (${seen.lastSwitch.reason || `${seen.lastSwitch.from} -> ${seen.lastSwitch.to}`})`;
  const mode = preferenceText(peer);
  const first = peer.transports[0];
  if (peer.transports.length > 1 && on !== first && peer.transports.includes(on)) {
    return pass(layer, 'transport', `${on} (preference ${mode}: ${first ?? '?'} is not answering, firewall?${since})`);
  }
  if (seen.transport !== undefined && !peer.transports.includes(seen.transport)) {
    return fail(layer, 'transport', `${on}, but the config says ${mode}`, 'the daemon runs another config: send SIGHUP to reload');
  }
  return pass(layer, 'transport', `${on} (mode ${mode}${since})`);
}

function udpCheck(layer: string, config: NodeConfig, peer: NodeSpec, seen: StatusPeer | undefined): DoctorCheck {
  if (!peer.transports.includes('udp')) return pass(layer, 'udp', `not used (transport: ${preferenceText(peer)})`);
  const configured = peer.endpoints['udp'];
  const where = (seen?.transport === 'udp' ? seen.endpoint : undefined) ?? configured;
  const listen = transportChoice(config, 'udp')?.listenAddress;
  const port = configured === undefined ? listen?.port : parseHostPort(configured).port;
  const firewall = `allow UDP ${port ?? '?'} both ways between this node (${listen?.text ?? '?'}) and ${peer.name} (${where ?? 'no endpoint'}): firewall?`;
  if (seen === undefined) return fail(layer, 'udp', 'unknown: the peer is not in /status', firewall);
  if (seen.udp !== undefined) {
    const last = seen.udp.lastSeenMs === undefined ? 'never heard' : `last heard ${ago(seen.udp.lastSeenMs)}`;
    if (seen.udp.state === 'up') return pass(layer, 'udp', `up (${where ?? '?'})`);
    return fail(layer, 'udp', `${seen.udp.state ?? 'unknown'}, ${last} (${where ?? '?'})`, firewall);
  }
  if (seen.transport === 'udp' && seen.state === 'up') return pass(layer, 'udp', `up on ${where ?? '?'}${seen.rttMs === undefined ? '' : `, rtt ${seen.rttMs.toFixed(1)} ms`}`);
  if (seen.transport === 'ws') {
    const since = seen.lastSwitch === undefined ? '' : ` since ${ago(seen.lastSwitch.atMs)}`;
    return fail(layer, 'udp', `UDP not answering (${where ?? 'no endpoint'}): traffic carried over WebSocket${since}`, firewall);
  }
  if (where === undefined) return fail(layer, 'udp', `${seen.state ?? 'unknown'}: no endpoint, waiting for ${peer.name}'s probes`, `set nodes[${peer.name}].endpoint, or check that ${peer.name} can reach ${listen?.text ?? 'our UDP port'}`);
  return fail(layer, 'udp', `${seen.state ?? 'unknown'}: no probe answered on ${where}`, firewall);
}

async function wsCheck(probes: DoctorProbes, layer: string, config: NodeConfig, peer: NodeSpec): Promise<DoctorCheck> {
  if (!peer.transports.includes('ws')) return pass(layer, 'websocket', `not used (transport: ${preferenceText(peer)})`);
  const wsEndpoint = peer.endpoints['ws'];
  if (wsEndpoint === undefined) {
    const listen = transportChoice(config, 'ws')?.listenAddress;
    return listen === undefined
      ? pass(layer, 'websocket', 'no wsEndpoint and no ws.listen here: not available')
      : pass(layer, 'websocket', `no wsEndpoint: ${peer.name} dials our ${listen.text}`);
  }
  let url: URL;
  try {
    url = new URL(wsEndpoint);
  } catch {
    return fail(layer, 'websocket', `bad wsEndpoint ${wsEndpoint}`, 'fix the config');
  }
  const port = url.port === '' ? (url.protocol === 'wss:' ? 443 : 80) : Number(url.port);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const proxy = config.proxy ?? undefined;
  if (proxy !== undefined) {
    const p = new URL(proxy);
    const why = await probes.tcpConnect(p.hostname, p.port === '' ? 80 : Number(p.port), WS_CONNECT_TIMEOUT_MS);
    if (why === undefined) return pass(layer, 'websocket', `proxy ${p.host} accepts TCP (dials ${wsEndpoint} through it)`);
    return fail(layer, 'websocket', `proxy ${p.host}: ${why}`, 'check the proxy setting and that the proxy runs');
  }
  const why = await probes.tcpConnect(host, port, WS_CONNECT_TIMEOUT_MS);
  if (why === undefined) return pass(layer, 'websocket', `TCP connect to ${host}:${port} ok (${wsEndpoint})`);
  return fail(layer, 'websocket', `TCP connect to ${host}:${port}: ${why}`, `is podtun on ${peer.name} listening (ws.listen)? allow TCP ${port} to it (firewall?)`);
}

/** The config's word for a preference: auto for the default order, else the kinds. */
function preferenceText(peer: NodeSpec): string {
  const isDefault = peer.transports.length === DEFAULT_TRANSPORTS.length && peer.transports.every((k, i) => k === DEFAULT_TRANSPORTS[i]);
  return isDefault ? 'auto' : peer.transports.join(',');
}

// --- path MTU ---

async function mtuCheck(probes: DoctorProbes, config: NodeConfig, peer: NodeSpec, seen: StatusPeer | undefined): Promise<DoctorCheck> {
  const layer = `mtu:${peer.name}`;
  const subnet = peer.subnets.map(parseCidr).find((c) => c.family === 4);
  if (subnet === undefined) return pass(layer, 'path', 'no IPv4 subnet (IPv6 path MTU not measured)');
  const target = formatAddress(addressInCidr(subnet, 1));
  if (seen !== undefined && seen.state !== 'up') {
    return fail(layer, 'path', `not measured: ${peer.name} is ${seen.state ?? 'unknown'}`, `see peer:${peer.name}`);
  }
  const tunMtu = tunMtuOf(config);
  const want = Math.min(tunMtu, seen?.tunnelMtu ?? tunMtu);
  const sizes = [...new Set([tunMtu, want, ...PMTU_SIZES])].filter((s) => s <= tunMtu).sort((a, b) => b - a);
  const results = await Promise.all(
    sizes.map(async (size) => {
      const r = await probes.exec(['ping', '-n', '-M', 'do', '-s', String(size - PING_HEADERS_V4), '-c', '1', '-W', '1', target], PING_TIMEOUT_MS);
      return { size, ok: r.code === 0 };
    }),
  );
  const best = results.find((r) => r.ok)?.size;
  const tried = sizes.join('/');
  if (best === undefined) {
    return fail(layer, 'path', `no DF ping to ${target} (${peer.name}'s pod bridge gateway) got through at ${tried} bytes`, `the tunnel does not carry traffic to ${peer.name}: see routes and peer:${peer.name}; is ${target} up on ${peer.name}?`);
  }
  const detail = `largest DF packet to ${target}: ${best} bytes (tried ${tried}; TUN MTU ${tunMtu}${want < tunMtu ? `, ${peer.name}'s tunnel MTU ${want}` : ''})`;
  if (best >= want) return pass(layer, 'path', detail);
  return fail(layer, 'path', detail, `the underlay path to ${peer.name} is smaller than underlayMtu ${config.underlayMtu}: set mtu: ${best + (tunMtu === config.underlayMtu ? 0 : config.underlayMtu - tunMtu)} on ${peer.name}'s entry, or fix the underlay MTU`);
}

// --- rendering ---

export interface RenderOptions {
  json?: boolean;
  /** ✔/✖ when true (a terminal), OK/FAIL otherwise. */
  symbols?: boolean;
}

export function formatDoctorReport(result: DoctorReport, options: RenderOptions = {}): string {
  if (options.json === true) return `${JSON.stringify({ ok: result.exitCode === 0, checks: result.checks }, null, 2)}\n`;
  const [good, bad] = options.symbols === true ? ['✔', '✖'] : ['OK', 'FAIL'];
  const lines = result.checks.map((c) => {
    const hint = !c.ok && c.hint !== '' ? ` (${c.hint})` : '';
    return `${c.ok ? good : bad} ${c.layer} ${c.name}: ${c.detail}${hint}`;
  });
  const failed = result.checks.filter((c) => !c.ok).length;
  lines.push(failed === 0 ? `all ${result.checks.length} checks passed` : `${failed} of ${result.checks.length} checks failed`);
  return `${lines.join('\n')}\n`;
}

// --- the command ---

export interface DoctorIo {
  out(text: string): void;
  err(text: string): void;
}

export const DOCTOR_USAGE = `Usage: podtun doctor --config FILE [--socket PATH] [--json]

Checks this node layer by layer (config, sysctls, TUN, routes, daemon, each peer's transports and
path MTU) and prints one line per check with a hint for each failure. Exit 0 when all pass, 1 otherwise.

  --config FILE   Node config (env PODTUN_CONFIG).
  --socket PATH   The daemon's status socket (alias --status-socket; env PODTUN_STATUS_SOCKET).
  --json          Print the checks as JSON.
`;

/** `podtun doctor ...` (args after the command); returns the exit code (2: usage error). */
export async function doctorCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: DoctorIo,
  symbols: boolean = process.stdout.isTTY === true,
): Promise<number> {
  let values: { config?: string | undefined; socket?: string | undefined; 'status-socket'?: string | undefined; json?: boolean | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        config: { type: 'string', short: 'c' },
        socket: { type: 'string' },
        'status-socket': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err: unknown) {
    io.err(`podtun doctor: ${errorMessage(err)}\n\n${DOCTOR_USAGE}`);
    return 2;
  }
  if (values.help === true) {
    io.out(DOCTOR_USAGE);
    return 0;
  }
  const configPath = nonEmpty(values.config) ?? nonEmpty(env['PODTUN_CONFIG']);
  if (configPath === undefined) {
    io.err(`podtun doctor: --config is required (or set PODTUN_CONFIG)\n\n${DOCTOR_USAGE}`);
    return 2;
  }
  const socketPath = nonEmpty(values.socket) ?? nonEmpty(values['status-socket']) ?? nonEmpty(env['PODTUN_STATUS_SOCKET']);
  const json = values.json === true;
  const result = await runDoctor({ configPath, socketPath, json });
  io.out(formatDoctorReport(result, { json, symbols }));
  return result.exitCode;
}

// --- helpers ---

function pass(layer: string, name: string, detail: string): DoctorCheck {
  return { layer, name, ok: true, detail, hint: '' };
}

function fail(layer: string, name: string, detail: string, hint: string): DoctorCheck {
  return { layer, name, ok: false, detail, hint };
}

function describeReach(peer: NodeSpec): string {
  const known = Object.entries(peer.endpoints).map(([kind, text]) => `${kind} ${text}`);
  return known.length === 0 ? 'no endpoint: it dials us' : known.join(', ');
}

function parseJsonArray<T>(text: string): T[] {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? (value as T[]) : [];
  } catch {
    return [];
  }
}

function ago(atMs: number): string {
  const s = Math.max(0, (Date.now() - atMs) / 1000);
  return `${s.toFixed(s < 10 ? 1 : 0)} s ago`;
}

function firstLine(text: string): string {
  return (text.trim().split('\n')[0] ?? '').trim();
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
