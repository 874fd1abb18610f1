/**
 * The `podtun` CNI plugin: `runCni(env, stdin)` behind the CNI executable (cni-entry.ts). podtun
 * does not make pod interfaces itself; it asks the local daemon for this node's lease and hands
 * the work to the reference `bridge` plugin with `podtun-ipam` as its IPAM:
 *
 *   runtime --ADD--> podtun --GET /cni--> podtun daemon   (subnets, MTU; not ready -> error 11)
 *                      |
 *                      +--ADD--> bridge (CNI_PATH) --ADD--> podtun-ipam (one range set per subnet)
 *                      |           veth into cni0, gateway .1 on cni0, default routes via it, MTU
 *                      +-- result converted to the runtime's cniVersion (+ interfaces[].mtu, 1.1.0)
 *
 * Per command:
 *  - ADD: lease from the daemon; bridge and podtun-ipam must be in CNI_PATH (else 50, see
 *    `pluginMissing`); the delegate's version negotiated with its VERSION (the highest both
 *    speak, at most the runtime's: Debian's bridge 1.1.1 stops at 1.0.0); its error passed on
 *    with code, msg and details unchanged; its result converted up and given the MTU.
 *  - DEL: never asks the daemon (a pod must be deletable while podtun is down). bridge DEL with
 *    an `ipam` section without ranges (podtun-ipam releases by container id); bridge itself
 *    copes with an empty or vanished netns and repeated DELs. Without a working bridge, podtun-ipam
 *    DEL is run directly so the address is still released; the veth goes with the netns. Without
 *    podtun-ipam nothing can release it: 50, and the runtime retries after a reinstall.
 *  - CHECK: daemon ready, then bridge CHECK with prevResult converted to the delegate's version
 *    (bridge runs podtun-ipam CHECK).
 *  - STATUS: bridge and podtun-ipam in CNI_PATH, daemon ready, podtun-ipam STATUS; else 50.
 *  - GC: podtun-ipam GC with the runtime's valid attachments (bridge 1.1.1 has no GC).
 *  - VERSION: the versions of cni-protocol.ts.
 *
 * A prevResult given to ADD (podtun chained after another interface plugin) is not merged: podtun
 * is meant to be the network's only plugin, as podtun-conflist.ts installs it.
 *
 * Bundled into the CNI executables: imports node builtins, its own folder and api/api-client.ts only.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { CniCode, CniError } from './cni-error.js';
import {
  GC_ATTACHMENTS_KEY_DRAFT,
  GC_VALID_ATTACHMENTS_KEY,
  SUPPORTED_CNI_VERSIONS,
  UNEXPECTED_ERROR_CODE,
  compareCniVersions,
  convertResult,
  emptyOutcome,
  errorOutcome,
  isSupportedCniVersion,
  parseCniRequest,
  successOutcome,
  versionOutcome,
} from './cni-protocol.js';
import type { CniOutcome, CniRequest } from './cni-protocol.js';
import { DEFAULT_API_SOCKET } from '../api/api-client.js';
import { fetchNodeLease } from './daemon-client.js';
import type { NodeLease } from './daemon-client.js';

/** The IPAM plugin podtun configures on its delegate; installed with podtun as the same binary. */
export const IPAM_PLUGIN = 'podtun-ipam';
export const DEFAULT_BRIDGE = 'cni0';
/** host-local's directory: podtun-ipam keeps reservations under `<dataDir>/<network name>/`. */
export const DEFAULT_IPAM_DATA_DIR = '/var/lib/cni/networks';
export const DEFAULT_DELEGATE = 'bridge';
export const DEFAULT_DAEMON_SOCKET = DEFAULT_API_SOCKET;
/** The first CNI version whose result interfaces carry `mtu`. */
const MTU_RESULT_VERSION = '1.1.0';
/** A delegate gets this long per call; bridge ADD takes well under a second. */
export const DELEGATE_TIMEOUT_MS = 60_000;
const MAX_DELEGATE_STDOUT_BYTES = 4 * 1024 * 1024;
const LINUX_IFNAME_MAX = 15;
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const PLUGIN_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Keys of the runtime's config passed to the delegate as they are. */
const FORWARDED_KEYS = ['args', 'runtimeConfig'] as const;
/** GC's list of attachments still in use, under both names libcni sends. */
const GC_ATTACHMENT_KEYS = [GC_VALID_ATTACHMENTS_KEY, GC_ATTACHMENTS_KEY_DRAFT] as const;

/** The `podtun` entry of the conflist, validated, defaults filled in. */
export interface PodtunConfig {
  /** The network name; also podtun-ipam's key for reservations. */
  name: string;
  daemonSocket: string;
  bridge: string;
  dataDir: string;
  /** The interface plugin podtun delegates to: `bridge` or a plugin taking bridge's config. */
  delegate: string;
}

export interface PluginExecResult {
  stdout: string;
  exitCode: number;
}

/**
 * Runs the CNI plugin executable at `path` with `env` as its whole environment and `stdin` as
 * its input; resolves with its stdout and exit code whatever the code. Rejects (with a
 * CniError) only when it cannot be started or does not finish in time.
 */
export type ExecPlugin = (path: string, env: Readonly<Record<string, string>>, stdin: string) => Promise<PluginExecResult>;

export interface CniDeps {
  /** This node's lease from the daemon at `socketPath`; rejects with a CniError (11 when not ready). */
  fetchLease?: (socketPath: string) => Promise<NodeLease>;
  execPlugin?: ExecPlugin;
}

type Env = Readonly<Record<string, string | undefined>>;
type Json = Record<string, unknown>;

interface Context {
  request: CniRequest;
  conf: PodtunConfig;
  env: Env;
  fetchLease: (socketPath: string) => Promise<NodeLease>;
  exec: ExecPlugin;
}

/**
 * The podtun plugin for one invocation: `env` holds CNI_COMMAND and friends (and whatever else
 * delegates should inherit, such as PATH), `stdin` the network config. Never rejects: every
 * failure is an outcome carrying a CNI error.
 */
export async function runCni(env: Env, stdin: string, deps: CniDeps = {}): Promise<CniOutcome> {
  let request: CniRequest;
  try {
    request = parseCniRequest(env, stdin);
  } catch (err: unknown) {
    return errorOutcome(err, cniVersionOf(stdin));
  }
  try {
    if (request.command === 'VERSION') return versionOutcome(request.cniVersion);
    const ctx: Context = {
      request,
      conf: parsePodtunConfig(request.config),
      env,
      fetchLease: deps.fetchLease ?? ((socketPath) => fetchNodeLease(socketPath)),
      exec: deps.execPlugin ?? execPluginProcess,
    };
    switch (request.command) {
      case 'ADD':
        return await add(ctx);
      case 'DEL':
        return await del(ctx);
      case 'CHECK':
        return await check(ctx);
      case 'STATUS':
        return await status(ctx);
      case 'GC':
        return await gc(ctx);
    }
  } catch (err: unknown) {
    return errorOutcome(err, request.cniVersion);
  }
}

async function add(ctx: Context): Promise<CniOutcome> {
  const { request, conf } = ctx;
  const lease = await ctx.fetchLease(conf.daemonSocket);
  const { delegatePath } = requirePlugins(ctx);
  const version = await negotiateVersion(ctx, delegatePath);
  const out = await ctx.exec(delegatePath, delegateEnv(ctx.env, 'ADD'), JSON.stringify(delegateConfig(ctx, version, lease)));
  if (out.exitCode !== 0) return delegateFailure(ctx, conf.delegate, out);
  const result = convertResult(parseResult(out.stdout, conf.delegate), request.cniVersion);
  if (compareCniVersions(request.cniVersion, MTU_RESULT_VERSION) >= 0) setInterfaceMtu(result, lease.mtu);
  return successOutcome(result, request.cniVersion);
}

async function del(ctx: Context): Promise<CniOutcome> {
  const { request, conf } = ctx;
  // Without podtun-ipam nothing can release the address, bridge DEL included: say so plainly.
  const ipamPath = findPluginInPath(IPAM_PLUGIN, request.path);
  const delegatePath = findPluginInPath(conf.delegate, request.path);
  if (ipamPath === undefined) throw pluginMissing([...(delegatePath === undefined ? [conf.delegate] : []), IPAM_PLUGIN], request.path);
  let version: string | undefined;
  if (delegatePath !== undefined) {
    try {
      version = await negotiateVersion(ctx, delegatePath);
    } catch {
      // A delegate that cannot tell its version cannot DEL either: release the address below.
    }
  }
  if (delegatePath !== undefined && version !== undefined) {
    const out = await ctx.exec(delegatePath, delegateEnv(ctx.env, 'DEL'), JSON.stringify(delegateConfig(ctx, version)));
    return out.exitCode === 0 ? emptyOutcome() : delegateFailure(ctx, conf.delegate, out);
  }
  const out = await ctx.exec(ipamPath, delegateEnv(ctx.env, 'DEL'), JSON.stringify(delegateConfig(ctx, request.cniVersion)));
  return out.exitCode === 0 ? emptyOutcome() : delegateFailure(ctx, IPAM_PLUGIN, out);
}

async function check(ctx: Context): Promise<CniOutcome> {
  const { conf } = ctx;
  if (prevResultOf(ctx.request) === undefined) {
    throw new CniError(CniCode.InvalidConfig, 'CHECK needs prevResult: the result of the ADD being checked');
  }
  const lease = await ctx.fetchLease(conf.daemonSocket);
  const { delegatePath } = requirePlugins(ctx);
  const version = await negotiateVersion(ctx, delegatePath);
  const out = await ctx.exec(delegatePath, delegateEnv(ctx.env, 'CHECK'), JSON.stringify(delegateConfig(ctx, version, lease)));
  return out.exitCode === 0 ? emptyOutcome() : delegateFailure(ctx, conf.delegate, out);
}

async function status(ctx: Context): Promise<CniOutcome> {
  const { request, conf } = ctx;
  const { ipamPath } = requirePlugins(ctx);
  let lease: NodeLease;
  try {
    lease = await ctx.fetchLease(conf.daemonSocket);
  } catch (err: unknown) {
    // The daemon client's message says it all (and a cause would repeat it as details).
    if (err instanceof CniError) throw new CniError(CniCode.NotAvailable, err.message, err.details);
    throw new CniError(CniCode.NotAvailable, `podtun daemon not ready: ${errorText(err)}`, undefined, { cause: err });
  }
  const out = await ctx.exec(ipamPath, delegateEnv(ctx.env, 'STATUS'), JSON.stringify(delegateConfig(ctx, request.cniVersion, lease)));
  return out.exitCode === 0 ? emptyOutcome() : delegateFailure(ctx, IPAM_PLUGIN, out);
}

async function gc(ctx: Context): Promise<CniOutcome> {
  const { request } = ctx;
  const ipamPath = findPluginInPath(IPAM_PLUGIN, request.path);
  if (ipamPath === undefined) throw pluginMissing([IPAM_PLUGIN], request.path);
  const config = delegateConfig(ctx, request.cniVersion);
  for (const key of GC_ATTACHMENT_KEYS) {
    if (request.config[key] !== undefined) config[key] = request.config[key];
  }
  const out = await ctx.exec(ipamPath, delegateEnv(ctx.env, 'GC'), JSON.stringify(config));
  return out.exitCode === 0 ? emptyOutcome() : delegateFailure(ctx, IPAM_PLUGIN, out);
}

/**
 * The delegate's network config. With a lease (ADD, CHECK, STATUS): the MTU and one podtun-ipam
 * range set per node subnet. Without (DEL, GC): no ranges, which podtun-ipam needs only to
 * allocate. prevResult (DEL, CHECK) is converted to `version`, which the delegate speaks.
 */
function delegateConfig(ctx: Context, version: string, lease?: NodeLease): Json {
  const { request, conf } = ctx;
  const ipam: Json = { type: IPAM_PLUGIN, dataDir: conf.dataDir, daemonSocket: conf.daemonSocket };
  if (lease !== undefined) ipam['ranges'] = lease.subnets.map((subnet) => [{ subnet }]);
  const config: Json = {
    cniVersion: version,
    name: conf.name,
    type: conf.delegate,
    bridge: conf.bridge,
    isGateway: true,
    isDefaultGateway: true,
    ipMasq: false,
    hairpinMode: true,
    ...(lease === undefined ? {} : { mtu: lease.mtu }),
    ipam,
  };
  for (const key of FORWARDED_KEYS) {
    if (request.config[key] !== undefined) config[key] = request.config[key];
  }
  const prev = prevResultOf(request);
  if (prev !== undefined && (request.command === 'DEL' || request.command === 'CHECK')) {
    config['prevResult'] = convertResult({ cniVersion: request.cniVersion, ...prev }, version);
  }
  return config;
}

/** The config's cniVersion for an error about a request that did not parse, when it has a usable one. */
function cniVersionOf(stdin: string): string | undefined {
  try {
    const version: unknown = (JSON.parse(stdin) as Json)['cniVersion'];
    return typeof version === 'string' && isSupportedCniVersion(version) ? version : undefined;
  } catch {
    return undefined;
  }
}

function prevResultOf(request: CniRequest): Json | undefined {
  const prev = request.config['prevResult'];
  return isObject(prev) ? prev : undefined;
}

/**
 * The environment of a delegate: ours, with CNI_COMMAND set and `IgnoreUnknown=1` added to
 * CNI_ARGS. Runtimes pass K8S_POD_NAMESPACE, K8S_POD_NAME... there, and Go plugins reject
 * unknown CNI_ARGS keys unless told to ignore them (bridge 1.1.1: "ARGS: unknown args").
 */
function delegateEnv(env: Env, command: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value;
  out['CNI_COMMAND'] = command;
  const args = env['CNI_ARGS'];
  if (args !== undefined && args !== '' && !args.split(';').some((kv) => kv.split('=')[0] === 'IgnoreUnknown')) {
    out['CNI_ARGS'] = `IgnoreUnknown=1;${args}`;
  }
  return out;
}

/**
 * The CNI version to speak with the delegate: the highest it reports (VERSION) that podtun can
 * convert and that is not newer than the runtime's. Asking costs one exec of a small Go binary;
 * a fixed cap would break the day the delegate is upgraded past it or drops old versions.
 */
async function negotiateVersion(ctx: Context, delegatePath: string): Promise<string> {
  const { request, conf } = ctx;
  const out = await ctx.exec(delegatePath, delegateEnv(ctx.env, 'VERSION'), JSON.stringify({ cniVersion: request.cniVersion }));
  let supported: unknown;
  try {
    supported = out.exitCode === 0 ? (JSON.parse(out.stdout) as Json)['supportedVersions'] : undefined;
  } catch {
    supported = undefined;
  }
  if (!Array.isArray(supported)) {
    throw new CniError(
      CniCode.IncompatibleVersion,
      `${delegatePath} VERSION did not list its supported CNI versions (exit code ${out.exitCode})`,
      out.stdout.slice(0, 1000),
    );
  }
  const candidates = SUPPORTED_CNI_VERSIONS.filter(
    (v) => supported.includes(v) && compareCniVersions(v, request.cniVersion) <= 0,
  ).sort(compareCniVersions);
  const best = candidates[candidates.length - 1];
  if (best === undefined) {
    throw new CniError(
      CniCode.IncompatibleVersion,
      `${conf.delegate} supports CNI ${supported.join(', ')}; podtun needs one of ${SUPPORTED_CNI_VERSIONS.join(', ')} not newer than ${request.cniVersion}`,
    );
  }
  return best;
}

/** Where the delegate and podtun-ipam are; throws `pluginMissing` unless both are in CNI_PATH. */
function requirePlugins(ctx: Context): { delegatePath: string; ipamPath: string } {
  const { request, conf } = ctx;
  const delegatePath = findPluginInPath(conf.delegate, request.path);
  const ipamPath = findPluginInPath(IPAM_PLUGIN, request.path);
  if (delegatePath !== undefined && ipamPath !== undefined) return { delegatePath, ipamPath };
  throw pluginMissing([...(delegatePath === undefined ? [conf.delegate] : []), ...(ipamPath === undefined ? [IPAM_PLUGIN] : [])], request.path);
}

/**
 * Code 50 (not available): the node cannot serve ADD until someone installs the plugins, which
 * is what STATUS reports for the same condition. Not 11: waiting will not install them; not 7:
 * the network config is fine, the node is not.
 */
function pluginMissing(names: readonly string[], path: readonly string[]): CniError {
  const what = names.map((name) => (name === DEFAULT_DELEGATE ? `the reference '${name}' plugin` : `'${name}'`)).join(' and ');
  const hints = names.map((name) =>
    name === DEFAULT_DELEGATE
      ? 'install the standard CNI plugins (containernetworking-plugins)'
      : name === IPAM_PLUGIN
        ? 'reinstall podtun, whose install puts podtun and podtun-ipam there'
        : `install '${name}' or set "delegate" to "${DEFAULT_DELEGATE}"`,
  );
  const where = path.length === 0 ? 'CNI_PATH is empty' : path.join(':');
  return new CniError(CniCode.NotAvailable, `${what} ${names.length === 1 ? 'is' : 'are'} not in CNI_PATH (${where}): ${hints.join('; ')}`);
}

/**
 * A failed delegate, passed on: its code, msg and details unchanged, in the runtime's cniVersion
 * (the delegate's error carries the delegate's version, or none). Output that is not a CNI error
 * becomes code 999 (libcni's ErrInternal) with the exit code and the start of stdout.
 */
function delegateFailure(ctx: Context, name: string, out: PluginExecResult): CniOutcome {
  let parsed: unknown;
  try {
    parsed = JSON.parse(out.stdout);
  } catch {
    parsed = undefined;
  }
  if (isObject(parsed) && typeof parsed['code'] === 'number' && typeof parsed['msg'] === 'string') {
    const details = typeof parsed['details'] === 'string' ? parsed['details'] : undefined;
    return errorOutcome(new CniError(parsed['code'], parsed['msg'], details), ctx.request.cniVersion);
  }
  return errorOutcome(
    new CniError(UNEXPECTED_ERROR_CODE, `${name} ${ctx.request.command} failed with exit code ${out.exitCode} and no CNI error on stdout`, out.stdout.slice(0, 1000)),
    ctx.request.cniVersion,
  );
}

function parseResult(stdout: string, name: string): Json {
  try {
    const parsed: unknown = JSON.parse(stdout);
    if (isObject(parsed)) return parsed;
  } catch {
    // reported below
  }
  throw new CniError(CniCode.DecodeFailure, `${name} ADD succeeded but its stdout is not a CNI result`, stdout.slice(0, 1000));
}

/** CNI 1.1 results carry each interface's MTU: bridge gives the bridge, the veth and eth0 `mtu`. */
function setInterfaceMtu(result: Json, mtu: number): void {
  const interfaces = result['interfaces'];
  if (!Array.isArray(interfaces)) return;
  result['interfaces'] = interfaces.map((ifc: unknown) => (isObject(ifc) ? { ...ifc, mtu } : ifc));
}

/** Validates the plugin's entry of the conflist (CNI error 7 naming the field), filling in defaults. */
export function parsePodtunConfig(config: Readonly<Record<string, unknown>>): PodtunConfig {
  const name = config['name'];
  if (typeof name !== 'string' || !NETWORK_NAME.test(name)) {
    throw invalid('name', name, 'a network name (letters, digits, "_", ".", "-"; not starting with a symbol)');
  }
  const daemonSocket = optionalString(config, 'daemonSocket', DEFAULT_DAEMON_SOCKET);
  if (!daemonSocket.startsWith('/')) throw invalid('daemonSocket', daemonSocket, 'an absolute path');
  const bridge = optionalString(config, 'bridge', DEFAULT_BRIDGE);
  if (!isInterfaceName(bridge)) throw invalid('bridge', bridge, `an interface name of 1-${LINUX_IFNAME_MAX} characters without "/", ":" or spaces`);
  const dataDir = optionalString(config, 'dataDir', DEFAULT_IPAM_DATA_DIR);
  if (!dataDir.startsWith('/')) throw invalid('dataDir', dataDir, 'an absolute path');
  const delegate = optionalString(config, 'delegate', DEFAULT_DELEGATE);
  if (!PLUGIN_NAME.test(delegate)) throw invalid('delegate', delegate, 'a plugin file name in CNI_PATH, such as "bridge"');
  return { name, daemonSocket, bridge, dataDir, delegate };
}

function optionalString(config: Readonly<Record<string, unknown>>, key: string, fallback: string): string {
  const value = config[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw invalid(key, value, 'a string');
  return value;
}

function invalid(key: string, value: unknown, expected: string): CniError {
  return new CniError(CniCode.InvalidConfig, `podtun config: "${key}" must be ${expected}, got ${JSON.stringify(value) ?? 'nothing'}`);
}

function isInterfaceName(name: string): boolean {
  return name.length > 0 && name.length <= LINUX_IFNAME_MAX && name !== '.' && name !== '..' && !/[/:\s]/.test(name);
}

/** The first executable regular file `name` in `dirs` (CNI_PATH order), or undefined. */
export function findPluginInPath(name: string, dirs: readonly string[]): string | undefined {
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * An ExecPlugin that spawns the plugin with no arguments, writes stdin, collects stdout (at most
 * 4 MiB) and lets its stderr through to ours, where the runtime logs it with ours. A plugin
 * still running after `timeoutMs` is killed (SIGKILL) and the call fails with error 11.
 */
export function createExecPlugin(timeoutMs: number = DELEGATE_TIMEOUT_MS): ExecPlugin {
  return (path, env, stdin) =>
    new Promise((resolve, reject) => {
      const child = spawn(path, [], { env, stdio: ['pipe', 'pipe', 'inherit'] });
      const chunks: Buffer[] = [];
      let bytes = 0;
      let settled = false;
      const fail = (err: CniError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        fail(new CniError(CniCode.TryAgainLater, `${path} did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      child.on('error', (err) => {
        fail(new CniError(CniCode.IoFailure, `cannot run ${path}: ${errorText(err)}`, undefined, { cause: err }));
      });
      child.stdout.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes <= MAX_DELEGATE_STDOUT_BYTES) chunks.push(chunk);
      });
      // A plugin may exit without reading its input (VERSION): EPIPE here is not a failure.
      child.stdin.on('error', () => undefined);
      child.stdin.end(stdin);
      child.on('close', (code, signal) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const stdout = Buffer.concat(chunks).toString('utf8');
        resolve({ stdout, exitCode: code ?? 128 + (signal === null ? 0 : osConstants.signals[signal]) });
      });
    });
}

/** The ExecPlugin runCni uses unless told otherwise. */
export const execPluginProcess: ExecPlugin = createExecPlugin();

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
