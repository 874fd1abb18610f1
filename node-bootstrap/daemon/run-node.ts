/**
 * `podtun run`: one node, wired. Flow:
 *
 *  1. config (already validated) -> root logger -> a child per component. The soft open-files
 *     limit is raised to the hard one (listeners size their connection caps from it). The local API
 *     (status socket, optional TCP `api.listen`) starts first, so /readyz answers 503 while the rest comes up.
 *  1b. sealed tunnels: this node's key pair (made on first start, node-key-check.ts); its public
 *     half goes into the lease. The lease source (static list or etcd, lease-source.ts) gives
 *     this node's subnets; with etcd this waits until a subnet is acquired.
 *  2. open the TUN (PacketDevice); create every registered transport from its settings and the
 *     per-peer TransportSelector over them (they bind when the router starts). The TUN MTU fits
 *     whichever transport carries a peer (tunnel/tunnel-mtu.ts).
 *  3. host network: addresses, MTU (underlay MTU - tunnel overhead), link up, routes, sysctls.
 *  4. Router, started; the SubnetManager's first batch (every node, this one included) goes
 *     through router.applyLeaseEvents before `node ready` is logged; then, with a `cni` block,
 *     the CNI executables and conflist are installed (only now can pods be attached).
 *  4b. the subnet manager is told the node forwards (Kubernetes: the Node's NetworkUnavailable
 *     condition goes False).
 *  5. Lease changes (static: file edits, SIGHUP; etcd, Kubernetes: the watch) reach the router as diffs.
 *  6. SIGTERM/SIGINT: stop watching, router.close (transport, then device), undo the host
 *     network, exit 0. A second signal exits at once. A fatal error is logged, the host
 *     network undone, exit 1.
 *
 * `startNode` does 1-5 with its collaborators injected (tests use fakes); `runNode` adds the
 * process: signals, uncaught errors, exit codes.
 */
import { OwnershipClaims } from '../../core/ownership-claims.js';
import type { ConfigOverrides, LogLevel, NodeConfig } from '../config/node-config.js';
import { ConfigError, tunMtuOf } from '../config/node-config.js';
import { loadConfig } from '../config/load-config.js';
import { cniExecutablesDir, installCni } from '../../cni/cni-install.js';
import { buildConflist } from '../../cni/podtun-conflist.js';
import { setupHostNetwork } from '../host-network/host-network.js';
import type { HostNetwork } from '../host-network/host-network.js';
import type { HostOps } from '../host-network/host-ops.js';
import { netAdminMissing } from '../host-network/net-admin.js';
import { openLeaseSource } from './lease-source.js';
import { componentLogger, createRootLogger } from '../logging/logger.js';
import type { LogDestination, RootLogger, RootLoggerOptions } from '../logging/logger.js';
import { startDropLog } from './drop-log.js';
import { startLocalApi } from '../local-api/local-api.js';
import type { PodNetworkInfo } from '../local-api/local-api.js';
import { Readiness } from '../local-api/readiness.js';
import { createMetrics } from '../local-api/metrics.js';
import { buildStatusReport, emptyStatusReport } from '../local-api/status-report.js';
import type { LeaseEvent } from '../../core/lease.js';
import type { Logger } from '../../core/logger.js';
import { startDashboard } from '../local-api/dashboard/dashboard-server.js';
import type { PacketDevice } from '../../core/packet-device.js';
import type { RouterOptions, RouterStats } from '../../router/router.js';
import type { Transport } from '../../core/transport.js';
import { TransportSelector } from '../../tunnel/transport-selector.js';
import type { TransportChoice, TransportContext } from '../../tunnel/transport-type.js';
import { DEFAULT_TRANSPORTS } from '../../tunnel/transports.js';
import { tunnelOverheadBytes } from '../../tunnel/tunnel-mtu.js';
import { DEFAULT_API_SOCKET } from '../../api/api-client.js';
import { proxyResolver } from './ws-proxy.js';
import { loadNodeKey } from './node-key-check.js';
import { publicKeyText } from '../../core/public-key.js';

/** The router as run-node uses it (router/router.ts's Router). */
export interface NodeRouter {
  start(): Promise<void>;
  applyLeaseEvents(events: LeaseEvent[]): void;
  stats(): RouterStats;
  dropCounts(): Record<string, number>;
  lastDropped(reason: string): { readonly src: string; readonly dst: string } | undefined;
  close(): Promise<void>;
}

/** The collaborators, injectable: node-deps.ts has the real ones (TUN addon, the transports, Router). */
export interface NodeDeps {
  openDevice(options: { name: string; log: Logger }): PacketDevice | Promise<PacketDevice>;
  /** Makes one configured transport (the real one: `choice.create(ctx)`). */
  createTransport(choice: TransportChoice, ctx: TransportContext): Transport | Promise<Transport>;
  createRouter(options: RouterOptions): NodeRouter;
  /** Default: the real host (`ip`, /proc/sys). */
  hostOps?: HostOps;
  /** Where the CNI executables to install are; default dist/cni-bin. */
  cniExecutablesDir?: string;
  /** Raises the soft RLIMIT_NOFILE to the hard limit (the real one: the addon's); absent: left as it is. */
  raiseNofileLimit?: () => { soft: number; hard: number };
}

export interface StartNodeOptions {
  config: NodeConfig;
  /** Re-reads the config on reload (file edit, SIGHUP); default loadConfig(config.source). */
  loadConfig?: () => Promise<NodeConfig>;
  /** Watch the config file for edits (default true). */
  watchConfig?: boolean;
  /** Serve the local API (local-api/local-api.ts) on this Unix socket; the CLI defaults it to DEFAULT_API_SOCKET. */
  statusSocket?: string | undefined;
  /** Default process metrics in /metrics (default true; tests running several nodes in one process turn them off). */
  processMetrics?: boolean;
  log: Logger;
  /** A reload changed the log level. */
  onLogLevel?: (level: LogLevel) => void;
  /** The node cannot go on (its etcd lease went to another node); default: logged. */
  onFatal?: (err: unknown) => void;
  /** The process environment (in-cluster API discovery); default none. */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface RunningNode {
  readonly config: NodeConfig;
  readonly tunName: string;
  readonly tunnelMtu: number;
  readonly hostNetwork: HostNetwork;
  stats(): RouterStats;
  /** Reloads the config now (SIGHUP); true when a new config was taken. */
  reload(): Promise<boolean>;
  /** Stops watching, closes the router (transport, device), undoes the host network. Safe twice. */
  close(): Promise<void>;
}

/** Brings one node up; on failure, what was already set up is torn down before the error. */
export async function startNode(options: StartNodeOptions, deps: NodeDeps): Promise<RunningNode> {
  const { config, log } = options;
  const undo: (() => Promise<void> | void)[] = [];
  const unwind = async (): Promise<void> => {
    for (const step of undo.splice(0).reverse()) {
      try {
        await step();
      } catch (err: unknown) {
        log.error({ err }, 'shutdown step failed');
      }
    }
  };

  let router: NodeRouter | undefined;
  let podNetwork: PodNetworkInfo | undefined;
  const readiness = new Readiness();

  try {
    raiseOpenFilesLimit(deps, log);
    if (options.statusSocket !== undefined || config.api.listen !== undefined) {
      const statsNow = (): RouterStats | undefined => router?.stats();
      const api = await startLocalApi({
        socketPath: options.statusSocket,
        tcp: config.api.listen,
        stats: statsNow,
        readiness,
        metrics: createMetrics({ stats: statsNow, ...(options.processMetrics === undefined ? {} : { processMetrics: options.processMetrics }) }),
        podNetwork: () => podNetwork,
        log: componentLogger(log, 'api'),
      });
      undo.push(() => api.close());
    }
    if (config.dashboard.listen !== undefined) {
      const dashboard = await startDashboard({
        listen: config.dashboard.listen.text,
        getStatus: () => (router === undefined ? emptyStatusReport(config.nodeName) : buildStatusReport(router.stats())),
        log: componentLogger(log, 'dashboard'),
        sampleIntervalMs: config.dashboard.sampleIntervalMs,
        peerPort: config.dashboard.peerPort,
      });
      undo.push(() => dashboard.close());
    }

    const nodeKey = await loadNodeKey(config, log);
    const ipamLog = componentLogger(log, 'ipam');
    const leases = await openLeaseSource({
      config,
      publicKey: nodeKey === undefined ? undefined : publicKeyText(nodeKey.publicKey),
      load: options.loadConfig ?? (() => loadConfig(config.source)),
      watchConfig: options.watchConfig !== false,
      log: ipamLog,
      onLogLevel: (level) => options.onLogLevel?.(level),
      onLeaseLost: (reason) => {
        const err = new Error(`lost the lease on this node's subnet: ${reason}; restart to acquire a new one`);
        if (options.onFatal !== undefined) options.onFatal(err);
        else log.error({ err }, 'lease lost');
      },
      env: options.env ?? {},
    });
    undo.push(() => leases.close());
    readiness.waitingFor = () => leases.manager.waitingFor?.();
    const local = await leases.manager.localLease();

    const device = await deps.openDevice({ name: config.tunName, log: componentLogger(log, 'tun') });
    let deviceOwned = true;
    undo.push(() => {
      if (deviceOwned) device.close();
    });
    // Until the router takes them over, `owned` are what to close on failure: each transport as
    // it is made, then the selector (which closes them all).
    const owned: Transport[] = [];
    undo.push(async () => {
      for (const t of owned.splice(0).reverse()) await t.close();
    });
    const proxyFor = proxyResolver(config.proxy);
    const ownership = new OwnershipClaims(componentLogger(log, 'router'));
    const transports: Transport[] = [];
    for (const choice of config.transports) {
      const made = await deps.createTransport(choice, {
        localNode: config.nodeName,
        clusterSecret: config.clusterSecret.bytes(),
        nodeKey,
        proxyFor,
        resolveIntervalMs: config.resolveSeconds * 1000,
        ownership,
        log: componentLogger(log, 'transport', { transport: choice.kind }),
      });
      owned.push(made);
      transports.push(made);
    }
    const transport = new TransportSelector(transports, componentLogger(log, 'transport', { transport: 'selector' }));
    owned.splice(0, owned.length, transport);
    const tunnelMtu = tunMtuOf(config);

    const hostNetwork = await setupHostNetwork({
      tunName: device.name,
      localSubnets: local.subnets,
      clusterCidrs: config.clusterCidrs,
      mtu: tunnelMtu,
      log: componentLogger(log, 'host-network'),
      ...(deps.hostOps === undefined ? {} : { ops: deps.hostOps }),
    });
    undo.push(() => hostNetwork.undo());

    readiness.checks.tun = true;
    podNetwork = { node: config.nodeName, subnets: [...local.subnets], mtu: tunnelMtu, clusterCidrs: [...config.clusterCidrs] };

    const created = deps.createRouter({
      device,
      transport,
      localNode: config.nodeName,
      localSubnets: [...local.subnets],
      icmpSourceV4: undefined,
      icmpSourceV6: undefined,
      tunnelMtu,
      overheadBytes: tunnelOverheadBytes(config.underlayFamily),
      defaultTransports: DEFAULT_TRANSPORTS,
      clusterCidrs: [...config.clusterCidrs],
      ownership,
      log: componentLogger(log, 'router'),
    });
    // From here the router owns the device and the transport (router.close closes both).
    router = created;
    deviceOwned = false;
    owned.length = 0;
    undo.push(() => created.close());
    await created.start();
    readiness.checks.transports = true;
    const dropLog = startDropLog({
      drops: () => router?.dropCounts(),
      lastDropped: (reason) => router?.lastDropped(reason),
      log: componentLogger(log, 'router'),
    });
    undo.push(() => dropLog.close());

    const watchAbort = new AbortController();
    // Ready only with the first batch (the full set) applied: the static manager delivers it at
    // once, etcd after its first list.
    let firstBatch: () => void = () => undefined;
    const gotFirstBatch = new Promise<void>((resolve) => {
      firstBatch = resolve;
    });
    const watching = leases.manager.watchLeases(watchAbort.signal, (events) => {
      ipamLog.debug({ added: count(events, 'added'), removed: count(events, 'removed') }, 'lease events');
      created.applyLeaseEvents(events);
      readiness.checks.routes = true;
      readiness.checks.lease = created.stats().localSubnets.length > 0;
      firstBatch();
    });
    undo.push(async () => {
      watchAbort.abort();
      await watching;
    });
    await Promise.race([gotFirstBatch, watching]);

    log.info(
      {
        node: config.nodeName,
        subnets: local.subnets,
        tun: device.name,
        mtu: tunnelMtu,
        listen: Object.fromEntries(config.transports.map((t) => [t.kind, t.listenAddress?.text ?? 'dial-out only'])),
      },
      'node ready',
    );
    if (config.cni !== undefined) {
      const cni = config.cni;
      const { installed } = await installCni({
        sourceDir: deps.cniExecutablesDir ?? cniExecutablesDir(),
        binDir: cni.binDir,
        confDir: cni.confDir,
        confFileName: cni.confFileName,
        conflist: buildConflist({
          networkName: cni.networkName,
          daemonSocket: options.statusSocket ?? DEFAULT_API_SOCKET,
          bridge: cni.bridge,
          dataDir: cni.dataDir,
        }),
        log: componentLogger(log, 'cni'),
      });
      log.info({ dir: cni.binDir, conf: `${cni.confDir}/${cni.confFileName}`, count: installed.length }, 'cni installed');
    }
    // The control plane may be told the node forwards now (Kubernetes: NetworkUnavailable=False).
    await leases.manager.forwarding?.();

    let closing: Promise<void> | undefined;
    return {
      config,
      tunName: device.name,
      tunnelMtu,
      hostNetwork,
      stats: () => created.stats(),
      reload: () => leases.reload(),
      close() {
        readiness.stopping = true;
        closing ??= unwind();
        return closing;
      },
    };
  } catch (err: unknown) {
    await unwind();
    throw err;
  }
}

export interface RunNodeOptions {
  configPath: string;
  overrides: ConfigOverrides;
  statusSocket: string | undefined;
  /** Where logs go; default stderr. */
  logDestination?: LogDestination;
  /** A stream instead (tests). */
  logStream?: RootLoggerOptions['stream'];
}

/** How long a graceful shutdown may take before the process exits anyway. */
export const SHUTDOWN_TIMEOUT_MS = 8_000;

/**
 * The `podtun run` process: returns the exit code (0 after a signal-driven shutdown, 1 on a
 * startup or fatal error). Installs and removes its own signal and error handlers. `loadDeps` runs
 * after the config is valid, so a bad config is reported even where the native addon is missing.
 */
export async function runNode(options: RunNodeOptions, loadDeps: () => Promise<NodeDeps>): Promise<number> {
  let config: NodeConfig;
  try {
    config = await loadConfig(options.configPath, options.overrides);
  } catch (err: unknown) {
    process.stderr.write(`podtun: invalid config\n${err instanceof ConfigError ? err.message : String(err)}\n`);
    return 1;
  }
  // After the config (whose errors need no root), before anything on the host is touched.
  const unprivileged = netAdminMissing();
  if (unprivileged !== undefined) {
    process.stderr.write(`${unprivileged}\n`);
    return 1;
  }

  const root: RootLogger = createRootLogger({
    level: config.logLevel,
    ...(options.logDestination === undefined ? {} : { destination: options.logDestination }),
    ...(options.logStream === undefined ? {} : { stream: options.logStream }),
  });
  const log = root.log;

  let node: RunningNode | undefined;
  let settle: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => {
    settle = resolve;
  });
  let stopping = false;
  let failed = false;

  let timer: NodeJS.Timeout | undefined;
  const shutdown = async (code: number): Promise<void> => {
    timer = setTimeout(() => {
      log.error({ reason: `still closing after ${SHUTDOWN_TIMEOUT_MS} ms` }, 'shutdown timed out');
      settle(1);
    }, SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    try {
      await node?.close();
    } catch (err: unknown) {
      log.error({ err }, 'shutdown failed');
      code = 1;
    }
    clearTimeout(timer);
    settle(code);
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without cleanup');
      settle(signal === 'SIGINT' ? 130 : 143);
      return;
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    // During startup there is nothing to close yet: startNode's return checks `stopping`.
    if (node !== undefined) void shutdown(0);
  };
  const onHup = (): void => {
    log.info({ signal: 'SIGHUP' }, 'reloading config');
    void node?.reload();
  };
  const onFatal = (err: unknown): void => {
    log.error({ err }, 'fatal error');
    if (stopping) {
      settle(1);
      return;
    }
    stopping = true;
    failed = true;
    if (node !== undefined) void shutdown(1);
  };

  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onHup);
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  try {
    try {
      const starting = loadDeps().then((deps) =>
        startNode(
          {
            config,
            statusSocket: options.statusSocket,
            log,
            onLogLevel: (level) => root.setLevel(level),
            onFatal,
            loadConfig: () => loadConfig(options.configPath, options.overrides),
            env: process.env,
          },
          deps,
        ),
      );
      // A second signal during a stuck startup exits without waiting for it.
      const first = await Promise.race([starting, exited]);
      if (typeof first === 'number') return first;
      node = first;
    } catch (err: unknown) {
      log.error({ err, node: config.nodeName }, 'failed to start');
      return 1;
    }
    if (stopping) void shutdown(failed ? 1 : 0);
    return await exited;
  } finally {
    clearTimeout(timer);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('SIGHUP', onHup);
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
    root.flush();
  }
}

/** Before any listener: the WebSocket listener sizes its cap on unauthenticated connections from the limit. */
function raiseOpenFilesLimit(deps: NodeDeps, log: Logger): void {
  if (deps.raiseNofileLimit === undefined) return;
  try {
    log.info({ count: deps.raiseNofileLimit().soft }, 'open-files limit');
  } catch (err: unknown) {
    log.warn({ err }, 'cannot raise the open-files limit; keeping the current one');
  }
}

function count(events: readonly LeaseEvent[], type: LeaseEvent['type']): number {
  return events.filter((e) => e.type === type).length;
}
