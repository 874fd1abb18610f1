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
 * One module per layer (host-checks.ts ... mtu-check.ts); the host is reached through
 * doctor-probes.ts, the report rendered by doctor-report.ts, the command is cli/doctor-command.ts.
 * Exit code 0 when every check passed, 1 otherwise (2 for a usage error, from the command).
 */
import type { PeerEndpoints } from '../../core/transport.js';
import { errorMessage } from '../../core/config-check.js';
import { DEFAULT_TRANSPORTS } from '../../tunnel/transports.js';
import { loadConfig } from '../config/load-config.js';
import { ConfigError } from '../config/node-config.js';
import type { NodeConfig, NodeSpec } from '../config/node-config.js';
import { daemonChecks } from './daemon-checks.js';
import { doctorReport, fail, pass } from './doctor-check.js';
import type { DoctorCheck, DoctorReport } from './doctor-check.js';
import { defaultProbes } from './doctor-probes.js';
import type { DoctorProbes } from './doctor-probes.js';
import { forwardingCheck, hostChecks } from './host-checks.js';
import { peerChecks } from './peer-checks.js';
import { routeChecks } from './route-checks.js';
import { tunChecks } from './tun-checks.js';

export interface DoctorOptions {
  configPath: string;
  /** The daemon's status socket (`podtun run --status-socket`, by default DEFAULT_API_SOCKET). */
  socketPath: string;
  /** Host probes (tests); default the real ones. */
  probes?: DoctorProbes;
}

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
    return doctorReport(checks);
  }
  // Control-plane managers: the config names no nodes; check against the leases the daemon holds.
  const cfg = config.subnetManager.readsNodeList ? config : await withLeasesFromDaemon(probes, options.socketPath, config);

  // The daemon first: when it is not running, that is the one failure to report. Its TUN, routes
  // and sysctls go with it, and listing those as failures too would bury the cause.
  const daemon = await daemonChecks(probes, options.socketPath, cfg);
  if (daemon.status === undefined) return doctorReport([...checks, ...daemon.checks]);
  const [host, tun, routes] = await Promise.all([hostChecks(probes, cfg), tunChecks(probes, cfg), routeChecks(probes, cfg)]);
  checks.push(...daemon.checks, ...host, ...tun, ...routes);

  const peers = cfg.nodes.filter((n) => n.name !== cfg.nodeName);
  const status = daemon.status;
  const perPeer = await Promise.all(peers.map((peer) => peerChecks(probes, cfg, peer, status)));
  for (const list of perPeer) checks.push(...list);
  return doctorReport(checks);
}

/**
 * The config with `nodes` filled from the daemon's /status (this node's lease, each peer's
 * subnets and endpoints). No daemon: no nodes, and the daemon check says why.
 */
async function withLeasesFromDaemon(probes: DoctorProbes, socketPath: string, config: NodeConfig): Promise<NodeConfig> {
  const report = await probes.status(socketPath).catch(() => undefined);
  if (report === undefined) return { ...config, nodes: [] };
  const spec = (name: string, subnets: readonly string[], endpoints: PeerEndpoints): NodeSpec => ({
    name,
    subnets,
    endpoints,
    mtu: undefined,
    transports: DEFAULT_TRANSPORTS,
  });
  const nodes = [spec(config.nodeName, report.lease, {}), ...report.peers.map((p) => spec(p.node, p.subnets, p.endpoints))];
  return { ...config, nodes };
}
