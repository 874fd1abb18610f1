/**
 * A real, throwaway Kubernetes control plane for tests, started the way controller-runtime's
 * envtest starts one, plus the controller manager's node IPAM so Nodes get real podCIDRs.
 *
 * 1. Generate all TLS material with the openssl CLI into `<dir>/pki`: a CA, the apiserver and
 *    controller-manager serving certs, an admin client cert (O=system:masters), a
 *    controller-manager client cert (CN=system:kube-controller-manager), a service-account key.
 * 2. etcd on the bind address, data in `<dir>/etcd`; ready when /health says so.
 * 3. kube-apiserver on https://bindAddress:port; ready when /readyz answers ok to the admin.
 * 4. kube-controller-manager with only `nodeipam` (unless allocateNodeCidrs is false), its user
 *    bound to the node controller's role first; ready when its /healthz answers ok.
 *
 * The binaries come from lab/kube/build-control-plane.sh. Every process is spawned through one
 * seam (so the netns harness can run them inside a namespace), logs to `<dir>/<name>.log`, and
 * is ended by its PID: SIGTERM, then SIGKILL after a bounded wait.
 */
import { execFile, spawn as spawnProcess } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeApi } from './kube-api.js';
import { sleep } from '../shell.js';

/** Keep in step with PODTUN_KUBE_VERSION's default in build-control-plane.sh. */
export const DEFAULT_KUBE_VERSION = 'v1.35.4';
export const BUILD_SCRIPT = 'lab/kube/build-control-plane.sh';
export const KUBE_BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubelet'] as const;
/** What the controller manager runs besides nodeipam when kubelets run pods (runsPods). */
const POD_CONTROLLERS = ['daemonset', 'serviceaccount', 'root-ca-cert-publisher'];

/** Services get ClusterIPs from here; outside the usual pod ranges so nodeipam never hands it out. */
const SERVICE_CIDR = '10.96.0.0/24';
/**
 * The `kubernetes` Service's ClusterIP (the range's first address), where a pod's in-cluster
 * config dials the API: in the serving certificate, as kubeadm puts it there.
 */
export const KUBERNETES_SERVICE_IP = '10.96.0.1';
/**
 * With --use-service-account-credentials=false every controller runs as the manager's own user,
 * whose bootstrap role cannot do their work (nodeipam: "cannot patch resource nodes"; daemonset:
 * "cannot create controllerrevisions"). Bind that user to the role each controller has under its
 * own ServiceAccount.
 */
const CONTROLLER_ROLES: Readonly<Record<string, string>> = {
  nodeipam: 'system:controller:node-controller',
  daemonset: 'system:controller:daemon-set-controller',
  serviceaccount: 'system:controller:service-account-controller',
  'root-ca-cert-publisher': 'system:controller:root-ca-cert-publisher',
};

function controllerRoleBinding(controller: string): string {
  const role = CONTROLLER_ROLES[controller];
  if (role === undefined) throw new Error(`no bootstrap role known for controller ${controller}`);
  return `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: podtun-test:kube-controller-manager:${controller}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: ${role}
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: system:kube-controller-manager
`;
}
const ETCD_READY_TIMEOUT_MS = 30_000;
/** The first start bootstraps RBAC and flow-control objects: tens of seconds on 2 cores. */
const APISERVER_READY_TIMEOUT_MS = 120_000;
const CONTROLLER_MANAGER_READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
const POLL_INTERVAL_MS = 250;
const PROBE_TIMEOUT_MS = 3_000;
const LOG_TAIL_LINES = 40;
const CERT_DAYS = 7;

export type SpawnFn = (argv: string[], opts: { logFile: string }) => ChildProcess;

export interface ControlPlaneOptions {
  /** Run directory for certs, data and logs (created). */
  dir: string;
  /** Where build-control-plane.sh put the binaries. */
  binDir: string;
  /**
   * IP the apiserver, etcd and the controller manager listen on. The readiness probes and
   * `admin` connect from this process, so it must reach this IP (loopback in the root namespace).
   */
  bindAddress: string;
  /** Apiserver secure port; default 6443. */
  port?: number;
  /** The controller manager's --cluster-cidr, one per family. */
  clusterCidrs: string[];
  nodeMaskV4?: number;
  nodeMaskV6?: number;
  /** Default true; false starts without the controller manager so a test can start it later. */
  allocateNodeCidrs?: boolean;
  /** Seam: the netns harness passes one that runs `ip netns exec <ns> ...`. */
  spawn?: SpawnFn;
  /** Fixed ports instead of free ones probed here (a namespace of its own has every port free). */
  ports?: { etcdClient: number; etcdPeer: number; controllerManager: number; scheduler: number };
  /**
   * When this process cannot route to `bindAddress` (the plane runs in a network namespace): a
   * Unix socket leading to `bindAddress:port`, which the harness forwards. Probes and `admin` use it.
   */
  reach?: (port: number) => string;
  /**
   * Kubelets will run pods here (a DaemonSet, test pods): the ServiceAccount admission plugin
   * stays on, the controller manager also runs the daemonset, serviceaccount and
   * root-ca-cert-publisher controllers, and kube-scheduler places the pods. Default false: a
   * control plane for Node objects alone, as envtest's.
   */
  runsPods?: boolean;
}

export interface ControlPlane {
  /** https://bindAddress:port */
  readonly url: string;
  /** CA that signed the serving certs (and the client certs). */
  readonly caFile: string;
  /** A kubeconfig with the admin client cert (system:masters). */
  readonly adminKubeconfig: string;
  readonly admin: KubeApi;
  /** SIGTERM the apiserver only (for outage tests). */
  stopApiServer(): Promise<void>;
  /** Starts it again with the same flags and data; resolves when /readyz is ok. */
  startApiServer(): Promise<void>;
  startControllerManager(): Promise<void>;
  stopControllerManager(): Promise<void>;
  /** Stops everything by PID; safe twice; leaves no process behind. */
  close(): Promise<void>;
}

export type ControlPlaneErrorCode = 'KUBE_BINARIES_MISSING' | 'KUBE_PKI_FAILED' | 'KUBE_START_FAILED' | 'KUBE_STOP_FAILED';

export class ControlPlaneError extends Error {
  override readonly name = 'ControlPlaneError';
  constructor(
    readonly code: ControlPlaneErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The bin dir build-control-plane.sh fills, with the script's defaults. */
export function kubeControlPlaneBinDir(env: NodeJS.ProcessEnv = process.env): string {
  const cacheDir = env['PODTUN_CACHE_DIR'] ?? '/var/cache/podtun-test';
  const version = env['PODTUN_KUBE_VERSION'] ?? DEFAULT_KUBE_VERSION;
  return join(cacheDir, `kube-${version}`, 'bin');
}

/** The bin dir, or an error naming the build script when a binary is missing. */
export function requireKubeBinaries(binDir = kubeControlPlaneBinDir()): string {
  const missing = KUBE_BINARIES.filter((name) => !isExecutable(join(binDir, name)));
  if (missing.length > 0) {
    throw new ControlPlaneError(
      'KUBE_BINARIES_MISSING',
      `Kubernetes control plane binaries missing in ${binDir} (${missing.join(', ')}): ` +
        `run ${BUILD_SCRIPT} first (it builds them from Go modules; the first build takes about 17 minutes on 2 cores)`,
    );
  }
  return binDir;
}

/** Why the binaries cannot be used (naming the build script), or undefined: a test file's skip reason. */
export function kubeBinariesMissing(binDir = kubeControlPlaneBinDir()): string | undefined {
  try {
    requireKubeBinaries(binDir);
    return undefined;
  } catch (err: unknown) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** A TCP port that was free on `host` a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error(`no free port on ${host}`))));
    });
  });
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  requireKubeBinaries(opts.binDir);
  const plane = new LocalControlPlane(opts, await layout(opts));
  try {
    await plane.start();
  } catch (error: unknown) {
    await plane.close();
    throw error;
  }
  return plane;
}

interface Layout {
  dir: string;
  pki: Pki;
  etcdUrl: string;
  etcdPeerUrl: string;
  apiserverPort: number;
  controllerManagerPort: number;
  schedulerPort: number;
  adminKubeconfig: string;
  controllerManagerKubeconfig: string;
}

interface Pki {
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  adminCert: string;
  adminKey: string;
  controllerManagerCert: string;
  controllerManagerKey: string;
  controllerManagerServingCert: string;
  controllerManagerServingKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

async function layout(opts: ControlPlaneOptions): Promise<Layout> {
  await mkdir(join(opts.dir, 'etcd'), { recursive: true, mode: 0o700 });
  const pki = await generatePki(join(opts.dir, 'pki'), opts.bindAddress);
  const apiserverPort = opts.port ?? 6443;
  const url = `https://${hostPort(opts.bindAddress, apiserverPort)}`;
  // Ports probed on loopback, unless fixed (a fresh network namespace has every port free).
  const [etcdPort, etcdPeerPort, controllerManagerPort, schedulerPort] = opts.ports === undefined
    ? [await freePort(), await freePort(), await freePort(), await freePort()]
    : [opts.ports.etcdClient, opts.ports.etcdPeer, opts.ports.controllerManager, opts.ports.scheduler];
  const adminKubeconfig = join(opts.dir, 'admin.kubeconfig');
  const controllerManagerKubeconfig = join(opts.dir, 'kube-controller-manager.kubeconfig');
  await writeFile(adminKubeconfig, kubeconfig(url, pki.caCert, 'admin', pki.adminCert, pki.adminKey));
  await writeFile(
    controllerManagerKubeconfig,
    kubeconfig(url, pki.caCert, 'system:kube-controller-manager', pki.controllerManagerCert, pki.controllerManagerKey),
  );
  return {
    dir: opts.dir,
    pki,
    etcdUrl: `http://${hostPort(opts.bindAddress, etcdPort)}`,
    etcdPeerUrl: `http://${hostPort(opts.bindAddress, etcdPeerPort)}`,
    apiserverPort,
    controllerManagerPort,
    schedulerPort,
    adminKubeconfig,
    controllerManagerKubeconfig,
  };
}

class LocalControlPlane implements ControlPlane {
  readonly url: string;
  readonly caFile: string;
  readonly adminKubeconfig: string;
  readonly admin: KubeApi;
  private readonly etcd: Component;
  private readonly apiserver: Component;
  private readonly controllerManager: Component;
  private readonly scheduler: Component | undefined;
  private closed = false;

  constructor(
    private readonly opts: ControlPlaneOptions,
    private readonly paths: Layout,
  ) {
    this.url = `https://${hostPort(opts.bindAddress, paths.apiserverPort)}`;
    this.caFile = paths.pki.caCert;
    this.adminKubeconfig = paths.adminKubeconfig;
    this.admin = new KubeApi({
      server: this.url,
      caFile: paths.pki.caCert,
      auth: { certFile: paths.pki.adminCert, keyFile: paths.pki.adminKey },
      ...(opts.reach === undefined ? {} : { socketPath: opts.reach(paths.apiserverPort) }),
    });
    const spawnFn = opts.spawn ?? defaultSpawn;
    const component = (name: string, args: string[]) =>
      new Component(name, [join(opts.binDir, name), ...args], join(paths.dir, `${name}.log`), spawnFn);
    this.etcd = component('etcd', etcdArgs(paths));
    this.apiserver = component('kube-apiserver', apiserverArgs(opts, paths));
    this.controllerManager = component('kube-controller-manager', controllerManagerArgs(opts, paths));
    this.scheduler = opts.runsPods === true ? component('kube-scheduler', schedulerArgs(opts, paths)) : undefined;
  }

  async start(): Promise<void> {
    this.etcd.start();
    await this.etcd.waitReady(() => etcdHealthy(this.paths.etcdUrl, this.socketFor(this.paths.etcdUrl)), ETCD_READY_TIMEOUT_MS);
    await this.startApiServer();
    if (this.opts.allocateNodeCidrs ?? true) await this.startControllerManager();
    if (this.scheduler !== undefined) {
      this.scheduler.start();
      const healthz = `https://${hostPort(this.opts.bindAddress, this.paths.schedulerPort)}/healthz`;
      await this.scheduler.waitReady(() => httpsOk(healthz, this.paths.pki.caCert, this.socketFor(healthz)), CONTROLLER_MANAGER_READY_TIMEOUT_MS);
    }
  }

  async startApiServer(): Promise<void> {
    this.apiserver.start();
    await this.apiserver.waitReady(() => this.apiserverReady(), APISERVER_READY_TIMEOUT_MS);
  }

  stopApiServer(): Promise<void> {
    return this.apiserver.stop();
  }

  async startControllerManager(): Promise<void> {
    for (const controller of controllersOf(this.opts)) await this.admin.applyManifests(controllerRoleBinding(controller));
    this.controllerManager.start();
    const healthz = `https://${hostPort(this.opts.bindAddress, this.paths.controllerManagerPort)}/healthz`;
    await this.controllerManager.waitReady(() => httpsOk(healthz, this.paths.pki.caCert, this.socketFor(healthz)), CONTROLLER_MANAGER_READY_TIMEOUT_MS);
  }

  stopControllerManager(): Promise<void> {
    return this.controllerManager.stop();
  }

  /** Dependents first, so none of them logs errors about a store that went away. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const failures: unknown[] = [];
    for (const component of [this.scheduler, this.controllerManager, this.apiserver, this.etcd]) {
      if (component === undefined) continue;
      await component.stop().catch((error: unknown) => failures.push(error));
    }
    if (failures.length > 0) {
      throw new ControlPlaneError('KUBE_STOP_FAILED', 'failed to stop the control plane', { cause: failures[0] });
    }
  }

  /** The forwarded Unix socket for a URL's port, when the harness forwards. */
  private socketFor(url: string): string | undefined {
    return this.opts.reach?.(Number(new URL(url).port));
  }

  private async apiserverReady(): Promise<boolean> {
    try {
      return (await this.admin.get('/readyz'))['text'] === 'ok';
    } catch {
      return false;
    }
  }
}

/** One process of the control plane: started, probed and stopped by its PID. */
class Component {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private exitCode: string | undefined;

  constructor(
    readonly name: string,
    private readonly argv: string[],
    private readonly logFile: string,
    private readonly spawnFn: SpawnFn,
  ) {}

  start(): void {
    if (this.child !== undefined && this.exitCode === undefined) throw new ControlPlaneError('KUBE_START_FAILED', `${this.name} is already running`);
    const child = this.spawnFn(this.argv, { logFile: this.logFile });
    this.child = child;
    this.exitCode = undefined;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitCode = signal ?? String(code);
        resolve();
      });
      // A spawn failure (ENOENT, EACCES) emits 'error' and possibly no 'exit'.
      child.once('error', (error) => {
        this.exitCode = `spawn error: ${error.message}`;
        resolve();
      });
    });
  }

  /** Polls `probe` until true, bounded in time and count; fails early when the process exits. */
  async waitReady(probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const maxAttempts = Math.ceil(timeoutMs / POLL_INTERVAL_MS) + 1;
    for (let attempt = 0; attempt < maxAttempts && Date.now() < deadline; attempt++) {
      if (this.exitCode !== undefined) throw this.startFailed(`exited (${this.exitCode}) before it was ready`);
      if (await probe()) return;
      await sleep(POLL_INTERVAL_MS);
    }
    throw this.startFailed(`not ready within ${timeoutMs} ms`);
  }

  /** SIGTERM, then SIGKILL after a bounded wait. Safe when not running. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    if (this.exitCode === undefined && child.pid !== undefined) {
      signal(child.pid, 'SIGTERM');
      if (!(await settlesWithin(this.exited, STOP_TIMEOUT_MS))) {
        signal(child.pid, 'SIGKILL');
        if (!(await settlesWithin(this.exited, STOP_TIMEOUT_MS))) {
          throw new ControlPlaneError('KUBE_STOP_FAILED', `${this.name} (pid ${child.pid}) did not exit after SIGKILL`);
        }
      }
    }
    this.child = undefined;
  }

  private startFailed(what: string): ControlPlaneError {
    return new ControlPlaneError(
      'KUBE_START_FAILED',
      `${this.name} ${what}; last lines of ${this.logFile}:\n${logTail(this.logFile)}`,
    );
  }
}

function etcdArgs(paths: Layout): string[] {
  return [
    '--name=podtun-test',
    `--data-dir=${join(paths.dir, 'etcd')}`,
    `--listen-client-urls=${paths.etcdUrl}`,
    `--advertise-client-urls=${paths.etcdUrl}`,
    `--listen-peer-urls=${paths.etcdPeerUrl}`,
    `--initial-advertise-peer-urls=${paths.etcdPeerUrl}`,
    `--initial-cluster=podtun-test=${paths.etcdPeerUrl}`,
    // As envtest: durability is worthless for throwaway data, and fsync is slow on CI disks.
    '--unsafe-no-fsync=true',
    '--listen-metrics-urls=',
  ];
}

function apiserverArgs(opts: ControlPlaneOptions, paths: Layout): string[] {
  const { pki } = paths;
  const url = `https://${hostPort(opts.bindAddress, paths.apiserverPort)}`;
  return [
    `--etcd-servers=${paths.etcdUrl}`,
    `--bind-address=${opts.bindAddress}`,
    `--advertise-address=${opts.bindAddress}`,
    `--secure-port=${paths.apiserverPort}`,
    `--tls-cert-file=${pki.apiserverCert}`,
    `--tls-private-key-file=${pki.apiserverKey}`,
    `--client-ca-file=${pki.caCert}`,
    '--authorization-mode=Node,RBAC',
    `--service-account-issuer=${url}`,
    `--service-account-key-file=${pki.serviceAccountPub}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--allow-privileged=true',
    // As envtest: without the serviceaccount controller no namespace has a default
    // ServiceAccount, and this plugin would then refuse every pod. With it, it gives each pod
    // its projected token (what podtun's in-cluster config reads).
    ...(opts.runsPods === true ? [] : ['--disable-admission-plugins=ServiceAccount']),
    `--cert-dir=${join(paths.dir, 'apiserver-certs')}`,
    // Without it a SIGTERM'd apiserver waits up to a minute for open watches (the controller
    // manager's, podtun's) before it exits; with it, it closes them after 2 s and exits.
    '--shutdown-watch-termination-grace-period=2s',
    '--profiling=false',
    // Endpoints may not hold a loopback IP: on 127.x the reconciler of the `kubernetes`
    // Service would log a validation error every 10 s, for a Service no test can reach.
    ...(isLoopback(opts.bindAddress) ? ['--endpoint-reconciler-type=none'] : []),
  ];
}

function controllersOf(opts: ControlPlaneOptions): string[] {
  return ['nodeipam', ...(opts.runsPods === true ? POD_CONTROLLERS : [])];
}

function controllerManagerArgs(opts: ControlPlaneOptions, paths: Layout): string[] {
  const { pki } = paths;
  return [
    `--kubeconfig=${paths.controllerManagerKubeconfig}`,
    `--controllers=${controllersOf(opts).join(',')}`,
    // What root-ca-cert-publisher puts into every namespace's kube-root-ca.crt, which each pod's
    // projected token volume mounts.
    `--root-ca-file=${pki.caCert}`,
    '--allocate-node-cidrs=true',
    `--cluster-cidr=${opts.clusterCidrs.join(',')}`,
    // The manager refuses a mask flag for a family that no cluster CIDR has.
    ...(opts.clusterCidrs.some((c) => !c.includes(':')) ? [`--node-cidr-mask-size-ipv4=${opts.nodeMaskV4 ?? 24}`] : []),
    ...(opts.clusterCidrs.some((c) => c.includes(':')) ? [`--node-cidr-mask-size-ipv6=${opts.nodeMaskV6 ?? 64}`] : []),
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--leader-elect=false',
    '--use-service-account-credentials=false',
    `--bind-address=${opts.bindAddress}`,
    `--secure-port=${paths.controllerManagerPort}`,
    `--tls-cert-file=${pki.controllerManagerServingCert}`,
    `--tls-private-key-file=${pki.controllerManagerServingKey}`,
    '--profiling=false',
  ];
}

/** The scheduler as system:masters (a test's), serving its health on the controller manager's certificate. */
function schedulerArgs(opts: ControlPlaneOptions, paths: Layout): string[] {
  const { pki } = paths;
  return [
    `--kubeconfig=${paths.adminKubeconfig}`,
    `--authentication-kubeconfig=${paths.adminKubeconfig}`,
    `--authorization-kubeconfig=${paths.adminKubeconfig}`,
    '--leader-elect=false',
    `--bind-address=${opts.bindAddress}`,
    `--secure-port=${paths.schedulerPort}`,
    `--tls-cert-file=${pki.controllerManagerServingCert}`,
    `--tls-private-key-file=${pki.controllerManagerServingKey}`,
    '--profiling=false',
  ];
}

/** Every key and certificate the control plane needs, each made by the openssl CLI. */
async function generatePki(dir: string, bindAddress: string): Promise<Pki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = (name: string) => join(dir, name);
  await makeCa(dir);
  const ipSans = [...new Set([bindAddress, '127.0.0.1'])].map((ip) => `IP:${ip}`);
  await issueCert(dir, 'apiserver', '/CN=kube-apiserver', 'serverAuth', [
    ...ipSans,
    `IP:${KUBERNETES_SERVICE_IP}`,
    'DNS:kubernetes',
    'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc',
    'DNS:localhost',
  ]);
  await issueCert(dir, 'kube-controller-manager-serving', '/CN=kube-controller-manager', 'serverAuth', [
    ...ipSans,
    'DNS:localhost',
  ]);
  await issueCert(dir, 'admin', '/O=system:masters/CN=podtun-test-admin', 'clientAuth', []);
  await issueCert(dir, 'kube-controller-manager', '/CN=system:kube-controller-manager', 'clientAuth', []);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file('sa.key')]);
  await openssl(['pkey', '-in', file('sa.key'), '-pubout', '-out', file('sa.pub')]);
  return {
    caCert: file('ca.crt'),
    caKey: file('ca.key'),
    apiserverCert: file('apiserver.crt'),
    apiserverKey: file('apiserver.key'),
    adminCert: file('admin.crt'),
    adminKey: file('admin.key'),
    controllerManagerCert: file('kube-controller-manager.crt'),
    controllerManagerKey: file('kube-controller-manager.key'),
    controllerManagerServingCert: file('kube-controller-manager-serving.crt'),
    controllerManagerServingKey: file('kube-controller-manager-serving.key'),
    serviceAccountKey: file('sa.key'),
    serviceAccountPub: file('sa.pub'),
  };
}

/** Our own openssl config per certificate, so the system openssl.cnf adds no extensions. */
function opensslConfig(extensions: string[]): string {
  return ['[req]', 'distinguished_name = dn', 'prompt = no', '[dn]', 'CN = unused', '[ext]', ...extensions, ''].join('\n');
}

async function makeCa(dir: string): Promise<void> {
  const config = join(dir, 'ca.cnf');
  await writeFile(
    config,
    opensslConfig([
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign,digitalSignature',
      'subjectKeyIdentifier = hash',
    ]),
  );
  await openssl([
    'req', '-x509', '-new', '-nodes', ...EC_KEY,
    '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'),
    '-days', String(CERT_DAYS), '-subj', '/CN=podtun-test-ca', '-config', config, '-extensions', 'ext',
  ]);
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];

async function issueCert(dir: string, name: string, subject: string, usage: 'serverAuth' | 'clientAuth', sans: string[]): Promise<void> {
  const config = join(dir, `${name}.cnf`);
  const extensions = [
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage = ${usage}`,
    'authorityKeyIdentifier = keyid',
  ];
  if (sans.length > 0) extensions.push(`subjectAltName = ${sans.join(',')}`);
  await writeFile(config, opensslConfig(extensions));
  const csr = join(dir, `${name}.csr`);
  await openssl(['req', '-new', '-nodes', ...EC_KEY, '-keyout', join(dir, `${name}.key`), '-out', csr, '-subj', subject, '-config', config]);
  await openssl([
    'x509', '-req', '-in', csr, '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'),
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', String(CERT_DAYS),
    '-out', join(dir, `${name}.crt`), '-extfile', config, '-extensions', 'ext',
  ]);
}

const execFileAsync = promisify(execFile);

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { timeout: 30_000 });
  } catch (error: unknown) {
    const stderr = (error as { stderr?: unknown }).stderr;
    throw new ControlPlaneError('KUBE_PKI_FAILED', `openssl ${args[0] ?? ''} failed: ${String(stderr ?? error)}`, {
      cause: error,
    });
  }
}

function kubeconfig(server: string, caFile: string, user: string, certFile: string, keyFile: string): string {
  // JSON is YAML; every kubeconfig reader accepts it.
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'podtun-test', cluster: { server, 'certificate-authority': caFile } }],
      users: [{ name: user, user: { 'client-certificate': certFile, 'client-key': keyFile } }],
      contexts: [{ name: 'podtun-test', context: { cluster: 'podtun-test', user } }],
      'current-context': 'podtun-test',
    },
    null,
    2,
  );
}

/** child_process.spawn with stdout and stderr appended to the log file. */
function defaultSpawn(argv: string[], opts: { logFile: string }): ChildProcess {
  const [command, ...args] = argv;
  if (command === undefined) throw new ControlPlaneError('KUBE_START_FAILED', 'empty command line');
  const fd = openSync(opts.logFile, 'a');
  try {
    return spawnProcess(command, args, { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
}

function etcdHealthy(etcdUrl: string, socketPath: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${etcdUrl}/health`, { timeout: PROBE_TIMEOUT_MS, ...(socketPath === undefined ? {} : { socketPath }) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** An unauthenticated GET that expects 200 "ok" (the controller manager allows /healthz to all). */
function httpsOk(url: string, caFile: string, socketPath: string | undefined): Promise<boolean> {
  const ca = readFileSync(caFile);
  return new Promise((resolve) => {
    const req = httpsRequest(url, { ca, timeout: PROBE_TIMEOUT_MS, agent: false, ...(socketPath === undefined ? {} : { socketPath }) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(res.statusCode === 200 && body.trim() === 'ok'));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error: unknown) {
    // Already gone between the check and the signal: that is what we wanted.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function logTail(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    return lines.slice(-LOG_TAIL_LINES).join('\n');
  } catch (error: unknown) {
    return `(no log: ${error instanceof Error ? error.message : String(error)})`;
  }
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
