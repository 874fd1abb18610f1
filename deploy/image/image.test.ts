/**
 * podtun's container image builds here, with no container registry, and the podtun in it starts,
 * run the way a kubelet runs it: by containerd.
 *
 *   make-base-image.sh   Debian bookworm + this host's Node 20 -> localhost/podtun-base:bookworm-node20
 *         |              (skipped when its stamp matches: about 1 min the first time)
 *   build-image.sh       podman build -f deploy/Containerfile -> localhost/podtun:dev
 *         |              (layer cache: minutes the first time, seconds when nothing changed)
 *   podman save  ->  ctr -n podtun-test images import   (a throwaway containerd: its own root,
 *         |                                              state and socket under a temp dir)
 *   ctr run --rm  ...  the checks below, each in a fresh container (its own empty network
 *                      namespace: nothing is added to this host's)
 *
 * `podman run` cannot be used here: runc cannot raise RLIMIT_NOFILE to podman's default without
 * CAP_SYS_RESOURCE. containerd keeps the limit, as it does under a kubelet.
 *
 * Needs root, podman, mmdebstrap, containerd (ctr), runc, the Debian mirror and the npm registry;
 * fails naming the Debian packages when a tool is missing. PODTUN_IMAGE_CONTEXT builds from
 * another tree than this repository's (e.g. a `git archive` export plus deploy/). Left behind on
 * purpose, as the next run's cache: the two podman images and their build layers.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pidAlive, pidsWhere, sleep } from '../../lab/shell.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
const context = process.env['PODTUN_IMAGE_CONTEXT'] ?? repoRoot;
const packageVersion = (JSON.parse(readFileSync(join(context, 'package.json'), 'utf8')) as { version: string }).version;

const IMAGE = 'localhost/podtun:dev';
const NAMESPACE = 'podtun-test';
const ENTRYPOINT = ['node', '/opt/podtun/bin/podtun.js'];
const CNI_EXECUTABLES = ['podtun', 'podtun-ipam'];
const REFERENCE_PLUGINS_DIR = '/usr/lib/cni';
const REFERENCE_PLUGINS = ['bridge', 'host-local', 'loopback', 'portmap'];
const VERSION_STDIN = JSON.stringify({ cniVersion: '1.0.0' });

const BASE_TIMEOUT_MS = 15 * 60_000;
const BUILD_TIMEOUT_MS = 20 * 60_000;
const SAVE_IMPORT_TIMEOUT_MS = 5 * 60_000;
const CONTAINER_TIMEOUT_MS = 30_000;
/** A check runs at most a few containers. */
const CHECK_TIMEOUT_MS = 6 * CONTAINER_TIMEOUT_MS;
const CTR_TIMEOUT_MS = 30_000;
const CONTAINERD_READY_TRIES = 50;
const CONTAINERD_READY_INTERVAL_MS = 200;
const CONTAINERD_STOP_WAIT_MS = 10_000;
const SETUP_TIMEOUT_MS = BASE_TIMEOUT_MS + BUILD_TIMEOUT_MS + SAVE_IMPORT_TIMEOUT_MS + 60_000;
/** Output kept per process: a build log is long, and only its end explains a failure. */
const OUTPUT_LIMIT_CHARS = 1_000_000;

/** Command -> Debian package. */
const REQUIRED_COMMANDS: ReadonlyArray<readonly [string, string]> = [
  ['podman', 'podman'],
  ['mmdebstrap', 'mmdebstrap'],
  ['containerd', 'containerd'],
  ['ctr', 'containerd'],
  ['runc', 'runc'],
  ['timeout', 'coreutils'],
];

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

interface RunOptions {
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

function keepTail(text: string): string {
  return text.length > OUTPUT_LIMIT_CHARS ? text.slice(text.length - OUTPUT_LIMIT_CHARS) : text;
}

/**
 * Runs a command in its own process group; past timeoutMs the whole group (the command and what
 * it started) is killed by its PID.
 */
function run(file: string, args: readonly string[], options: RunOptions): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout = keepTail(stdout + chunk)));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = keepTail(stderr + chunk)));
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid);
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started, timedOut });
    });
  });
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}

/** The outcome, or an error naming the command, how it ended and the end of its output. */
function expectSuccess(what: string, outcome: Outcome): Outcome {
  if (outcome.code === 0) return outcome;
  const how = outcome.timedOut ? 'ran over its time limit' : outcome.signal !== null ? `was killed by ${outcome.signal}` : `exited with ${outcome.code}`;
  throw new Error(`${what} ${how}\n--- stdout (end) ---\n${lastLines(outcome.stdout, 20)}\n--- stderr (end) ---\n${lastLines(outcome.stderr, 40)}`);
}

function commandExists(name: string): boolean {
  const path = process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return path.split(':').some((dir) => dir !== '' && existsSync(join(dir, name)));
}

/** Why this test cannot run here, naming what to install, or undefined. */
function missingRequirements(): string | undefined {
  if (process.platform !== 'linux') return 'the image test needs Linux';
  const missing = REQUIRED_COMMANDS.filter(([command]) => !commandExists(command));
  const packages = [...new Set(REQUIRED_COMMANDS.map(([, pkg]) => pkg))].filter((pkg) => pkg !== 'coreutils');
  const install = `apt-get install ${packages.join(' ')}`;
  if (missing.length > 0) {
    return `the image test needs ${missing.map(([command, pkg]) => `\`${command}\` (Debian package ${pkg})`).join(', ')}: ${install}`;
  }
  if (process.getuid?.() !== 0) return `the image test needs root (podman's root storage, mmdebstrap, containerd); it also needs: ${install}`;
  return undefined;
}

/** A throwaway containerd: root, state, sockets, runc state and FIFOs all under `dir`. */
class Containerd {
  readonly socket: string;
  private pid: number | undefined;
  private readonly runDirsBefore: ReadonlySet<string>;

  constructor(private readonly dir: string) {
    this.socket = join(dir, 'containerd.sock');
    // containerd 1.6 keeps shim sockets in /run/containerd/s whatever its config says.
    this.runDirsBefore = new Set(SHARED_RUN_DIRS.filter((d) => existsSync(d)));
  }

  async start(): Promise<void> {
    const config = [
      'version = 2',
      `root = "${join(this.dir, 'root')}"`,
      `state = "${join(this.dir, 'state')}"`,
      // The CRI plugin would look for CNI configs and a pause image: this containerd runs ctr only.
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${this.socket}"`,
      '[ttrpc]',
      `  address = "${this.socket}.ttrpc"`,
      '',
    ].join('\n');
    const configPath = join(this.dir, 'config.toml');
    await writeFile(configPath, config);
    const log = openSync(join(this.dir, 'containerd.log'), 'a');
    try {
      const child = spawn('containerd', ['--config', configPath], { detached: true, stdio: ['ignore', log, log] });
      this.pid = child.pid;
      child.unref();
    } finally {
      closeSync(log);
    }
    for (let attempt = 0; attempt < CONTAINERD_READY_TRIES; attempt++) {
      const probe = await run('ctr', ['--address', this.socket, 'version'], { timeoutMs: CTR_TIMEOUT_MS });
      if (probe.code === 0) return;
      if (this.pid === undefined || !pidAlive(this.pid)) break;
      await sleep(CONTAINERD_READY_INTERVAL_MS);
    }
    const log2 = await readFile(join(this.dir, 'containerd.log'), 'utf8').catch(() => '');
    throw new Error(`containerd did not start (socket ${this.socket})\n${lastLines(log2, 30)}`);
  }

  ctr(args: readonly string[], timeoutMs = CTR_TIMEOUT_MS): Promise<Outcome> {
    return run('ctr', ['--address', this.socket, '--namespace', NAMESPACE, ...args], { timeoutMs });
  }

  /** Runs `args` (the whole process: ctr 1.6 replaces the image's ENTRYPOINT too), or the image's default process when empty. */
  runContainer(id: string, args: readonly string[], extra: { env?: readonly string[]; mounts?: readonly string[] } = {}): Promise<Outcome> {
    return this.ctr(
      [
        'run',
        '--rm',
        '--runc-root',
        join(this.dir, 'runc'),
        '--fifo-dir',
        join(this.dir, 'fifo'),
        ...(extra.env ?? []).flatMap((e) => ['--env', e]),
        ...(extra.mounts ?? []).flatMap((m) => ['--mount', m]),
        IMAGE,
        id,
        ...args,
      ],
      CONTAINER_TIMEOUT_MS,
    );
  }

  /** Removes what this test made in the namespace, stops containerd and its shims by PID, unmounts leftovers. */
  async stop(): Promise<void> {
    if (this.pid !== undefined && pidAlive(this.pid)) {
      const tasks = await this.ctr(['tasks', 'ls', '--quiet']);
      for (const id of tasks.stdout.split('\n').filter((line) => line !== '')) {
        await this.ctr(['tasks', 'kill', '--signal', 'SIGKILL', id]);
        await this.ctr(['tasks', 'rm', '--force', id]);
      }
      const containers = await this.ctr(['containers', 'ls', '--quiet']);
      for (const id of containers.stdout.split('\n').filter((line) => line !== '')) await this.ctr(['containers', 'rm', id]);
      await this.ctr(['images', 'rm', '--sync', IMAGE]);
      await run('ctr', ['--address', this.socket, 'namespaces', 'rm', NAMESPACE], { timeoutMs: CTR_TIMEOUT_MS });
      process.kill(this.pid, 'SIGTERM');
      const deadline = Date.now() + CONTAINERD_STOP_WAIT_MS;
      while (pidAlive(this.pid) && Date.now() < deadline) await sleep(100);
      if (pidAlive(this.pid)) process.kill(this.pid, 'SIGKILL');
    }
    // A shim left by a killed run names this containerd's socket on its command line.
    for (const pid of processesNaming(this.socket)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    for (const mount of mountsUnder(this.dir).reverse()) await run('umount', ['--lazy', mount], { timeoutMs: CTR_TIMEOUT_MS });
    for (const dir of [...SHARED_RUN_DIRS].reverse()) {
      if (!this.runDirsBefore.has(dir)) await rmdir(dir).catch(() => undefined); // only when empty
    }
  }
}

/** Folders containerd 1.6 creates outside its configured dirs (removed after, when we made them and they are empty). */
const SHARED_RUN_DIRS = ['/run/containerd', '/run/containerd/s'];

function processesNaming(text: string): number[] {
  return pidsWhere((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.includes(text)));
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((target) => target.startsWith(`${dir}/`));
}

interface ImageConfig {
  Size: number;
  Config: { Entrypoint?: string[] | null; Cmd?: string[] | null; Labels?: Record<string, string> | null };
}

let containerCount = 0;
function containerId(): string {
  containerCount += 1;
  return `podtun-image-test-${process.pid}-${containerCount}`;
}

describe('the container image (deploy/Containerfile), run by containerd', () => {
  let scratch: string | undefined;
  let containerd: Containerd | undefined;
  let imageConfig: ImageConfig | undefined;
  let setupError: unknown;
  const timings: string[] = [];

  /** A failed set-up fails every check with its reason: a missing tool is a failure here, never a skip. */
  function ready(): { ctd: Containerd; image: ImageConfig } {
    if (setupError !== undefined) throw setupError;
    if (containerd === undefined || imageConfig === undefined) throw new Error('the set-up did not finish');
    return { ctd: containerd, image: imageConfig };
  }
  function ctd(): Containerd {
    return ready().ctd;
  }

  beforeAll(async () => {
    try {
      await setUp();
    } catch (err: unknown) {
      setupError = err;
    }
  }, SETUP_TIMEOUT_MS);

  async function setUp(): Promise<void> {
    const missing = missingRequirements();
    if (missing !== undefined) throw new Error(missing);
    scratch = await mkdtemp('/tmp/podtun-image-');

    const base = expectSuccess('deploy/image/make-base-image.sh', await run(join(here, 'make-base-image.sh'), [], { timeoutMs: BASE_TIMEOUT_MS }));
    timings.push(`base image ${(base.ms / 1000).toFixed(0)} s (${lastLines(base.stderr, 1)})`);

    const build = expectSuccess('deploy/image/build-image.sh', await run(join(here, 'build-image.sh'), [context], { timeoutMs: BUILD_TIMEOUT_MS }));
    timings.push(`image build ${(build.ms / 1000).toFixed(0)} s (${lastLines(build.stderr, 1)})`);

    const inspect = expectSuccess('podman image inspect', await run('podman', ['image', 'inspect', '--format', 'json', IMAGE], { timeoutMs: CTR_TIMEOUT_MS }));
    const [config] = JSON.parse(inspect.stdout) as ImageConfig[];
    if (config === undefined) throw new Error(`podman image inspect ${IMAGE} printed no image`);

    const started = new Containerd(scratch);
    containerd = started;
    await started.start();
    const archive = join(scratch, 'podtun-image.tar');
    const save = expectSuccess('podman save', await run('podman', ['save', '--output', archive, IMAGE], { timeoutMs: SAVE_IMPORT_TIMEOUT_MS }));
    const load = expectSuccess('ctr images import', await started.ctr(['images', 'import', archive], SAVE_IMPORT_TIMEOUT_MS));
    await rm(archive, { force: true });
    timings.push(`podman save ${(save.ms / 1000).toFixed(0)} s, ctr import ${(load.ms / 1000).toFixed(0)} s`);
    console.log(`image test set-up: ${timings.join('; ')}`);
    imageConfig = config;
  }

  afterAll(async () => {
    await containerd?.stop();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  it('runs `podtun run` by default, labelled, and reports its size', async () => {
    const { image } = ready();
    expect(image.Config.Entrypoint).toEqual(ENTRYPOINT);
    expect(image.Config.Cmd).toEqual(['run']);
    expect(image.Config.Labels?.['org.opencontainers.image.title']).toBe('podtun');
    expect(image.Config.Labels?.['org.opencontainers.image.version']).toBe(packageVersion);
    expect(image.Size).toBeGreaterThan(0);
    const listed = await ctd().ctr(['images', 'ls']);
    const line = listed.stdout.split('\n').find((l) => l.startsWith(`${IMAGE} `)) ?? '';
    const contentSize = /(\d+(?:\.\d+)?\s*[KMG]iB)/.exec(line)?.[1];
    expect(contentSize, `ctr images ls lists ${IMAGE} with its size:\n${listed.stdout}`).toBeDefined();
    console.log(`image size: ${(image.Size / 1e6).toFixed(0)} MB unpacked (podman), ${contentSize ?? '?'} of layers (containerd)`);
  }, CHECK_TIMEOUT_MS);

  it('podtun --version and --help', async () => {
    const version = expectSuccess('podtun --version', await ctd().runContainer(containerId(), [...ENTRYPOINT, '--version']));
    expect(version.stdout).toBe(`podtun ${packageVersion}\n`);
    const help = expectSuccess('podtun --help', await ctd().runContainer(containerId(), [...ENTRYPOINT, '--help']));
    expect(help.stdout).toContain('Usage:');
    expect(help.stdout).toContain('podtun run --config FILE');
  }, CHECK_TIMEOUT_MS);

  it('the default process, podtun run, loads a mounted config and names the bad field', async () => {
    const dir = scratch ?? '';
    const configFile = join(dir, 'node.yaml');
    await writeFile(
      configFile,
      ['nodeName: node-a', 'clusterCidrs: [10.244.0.0/16]', 'clusterSecret: "0123456789abcdef0123"', 'nodes:', '  - name: node-a', '    subnets: [10.244.1.5/24]', ''].join('\n'),
    );
    const outcome = await ctd().runContainer(containerId(), [], {
      env: ['PODTUN_CONFIG=/etc/podtun/node.yaml'],
      mounts: [`type=bind,src=${configFile},dst=/etc/podtun/node.yaml,options=rbind:ro`],
    });
    expect(outcome.timedOut).toBe(false);
    expect(outcome.code, outcome.stderr).toBe(1);
    expect(outcome.stderr).toContain('/etc/podtun/node.yaml: nodes[0].subnets[0]: "10.244.1.5/24" has host bits set');
  }, CHECK_TIMEOUT_MS);

  /**
   * Runs a CNI plugin as a runtime does: CNI_COMMAND in the environment, the network config on
   * stdin, closed. (ctr does not close a container's stdin, and a plugin reads it to the end.)
   */
  function cniVersion(path: string): Promise<Outcome> {
    return ctd().runContainer(containerId(), ['sh', '-c', 'printf %s "$1" | "$0"', path, VERSION_STDIN], { env: ['CNI_COMMAND=VERSION'] });
  }

  it('the CNI executables answer VERSION', async () => {
    for (const name of CNI_EXECUTABLES) {
      const outcome = expectSuccess(`CNI_COMMAND=VERSION ${name}`, await cniVersion(`/opt/podtun/dist/cni-bin/${name}`));
      const answer = JSON.parse(outcome.stdout) as { cniVersion?: unknown; supportedVersions?: unknown };
      expect(answer.cniVersion).toBe('1.0.0'); // the request's version, echoed as the spec asks
      expect(answer.supportedVersions).toEqual(expect.arrayContaining(['0.3.1', '1.0.0', '1.1.0']));
    }
  }, CHECK_TIMEOUT_MS);

  it(`the reference plugins podtun delegates to are in ${REFERENCE_PLUGINS_DIR} and answer VERSION`, async () => {
    for (const name of REFERENCE_PLUGINS) {
      const outcome = expectSuccess(`CNI_COMMAND=VERSION ${name}`, await cniVersion(`${REFERENCE_PLUGINS_DIR}/${name}`));
      const answer = JSON.parse(outcome.stdout) as { supportedVersions?: unknown };
      expect(answer.supportedVersions, name).toEqual(expect.arrayContaining(['0.3.1', '1.0.0']));
    }
  }, CHECK_TIMEOUT_MS);

  it('the DaemonSet\'s init step, podtun install-cni, fills a host bin dir with podtun and the reference plugins', async () => {
    const hostBin = await mkdtemp(join(scratch ?? '', 'host-cni-bin-'));
    const outcome = expectSuccess('podtun install-cni', await ctd().runContainer(containerId(), [...ENTRYPOINT, 'install-cni', '--bin-dir', '/host/opt/cni/bin'], {
      mounts: [`type=bind,src=${hostBin},dst=/host/opt/cni/bin,options=rbind:rw`],
    }));
    expect(outcome.stdout).toContain('installed /host/opt/cni/bin/bridge');
    expect(readdirSync(hostBin).sort()).toEqual([...CNI_EXECUTABLES, ...REFERENCE_PLUGINS].sort());
  }, CHECK_TIMEOUT_MS);

  it('has `ip`, and none of podtun\'s tests, test helpers, TypeScript sources or source maps', async () => {
    const ip = expectSuccess('ip -V', await ctd().runContainer(containerId(), ['ip', '-V']));
    expect(ip.stdout).toContain('iproute2');
    const find = expectSuccess(
      'find /opt/podtun',
      await ctd().runContainer(containerId(), [
        'find', '/opt/podtun', '-path', '/opt/podtun/node_modules', '-prune', '-o',
        '(', '-name', '*.test.js', '-o', '-name', '*.map', '-o', '-name', '*.ts', '-o', '-path', '/opt/podtun/dist/test', ')', '-print',
      ]),
    );
    expect(find.stdout).toBe('');
    const listing = expectSuccess('ls /opt/podtun', await ctd().runContainer(containerId(), ['ls', '/opt/podtun']));
    expect(listing.stdout.split('\n').filter((l) => l !== '').sort()).toEqual(['bin', 'build', 'dist', 'node_modules', 'package.json']);
  }, CHECK_TIMEOUT_MS);
});
