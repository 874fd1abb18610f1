/**
 * The CNI execution protocol (spec 1.1, section 2) for podtun's plugins, pure of process state:
 * the caller hands in the environment and stdin and prints the outcome.
 *
 * 1. readStdin: the network config, bounded in size.
 * 2. parseCniRequest: CNI_* variables checked per command, the config decoded, cniVersion and
 *    name/type checked, each failure a CniError with the spec's code.
 * 3. The plugin runs and returns a result object (or nothing, for DEL/CHECK/GC/STATUS).
 * 4. successOutcome / errorOutcome / versionOutcome: the JSON for stdout and the exit code.
 *
 * convertResult moves a result between the spec versions we speak (0.3.1 and 0.4.0 carry
 * `ips[].version`, 1.0.0 dropped it, 1.1.0 added interface mtu/socketPath/pciID and route
 * attributes), so an IPAM result can be answered in the caller's cniVersion.
 */
import { CniCode, CniError } from './cni-error.js';

export const SUPPORTED_CNI_VERSIONS = ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const CURRENT_CNI_VERSION = '1.1.0';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';

const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'];

export interface CniRequest {
  command: CniCommand;
  containerId: string | undefined;
  netns: string | undefined;
  ifName: string | undefined;
  /** CNI_ARGS parsed ("K=V;K=V"); K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID, K8S_POD_UID, IgnoreUnknown accepted. */
  args: ReadonlyMap<string, string>;
  /** CNI_PATH split on ':' (empty entries dropped). */
  path: readonly string[];
  /** The parsed stdin net config (for VERSION: {} when stdin is empty). */
  config: Readonly<Record<string, unknown>>;
  /** config.cniVersion, checked against SUPPORTED_CNI_VERSIONS. */
  cniVersion: string;
  /** stdin as received (to pass on to a delegate unchanged if wanted). */
  stdin: string;
}

export interface ParseCniRequestOptions {
  /** CNI_ARGS keys this plugin understands besides the Kubernetes ones and IgnoreUnknown. */
  knownArgs?: readonly string[];
}

/** CNI_ARGS keys every podtun plugin accepts: what kubelet's runtimes (containerd, CRI-O) send. */
export const KUBERNETES_CNI_ARGS: readonly string[] = [
  'K8S_POD_NAMESPACE',
  'K8S_POD_NAME',
  'K8S_POD_INFRA_CONTAINER_ID',
  'K8S_POD_UID',
];

export const MAX_STDIN_BYTES = 1024 * 1024;

/** The valid-attachments key of a GC request, and the spelling an earlier spec draft used (libcni sends both). */
export const GC_VALID_ATTACHMENTS_KEY = 'cni.dev/valid-attachments';
export const GC_ATTACHMENTS_KEY_DRAFT = 'cni.dev/attachments';

/** Container IDs and network names: an alphanumeric, then alphanumerics, '_', '.', '-' (spec, libcni). */
const CNI_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const NAME_CHARSET = 'allowed: a letter or digit, then letters, digits, "_", "." and "-"';
/** Linux IFNAMSIZ - 1. */
const MAX_IFNAME_BYTES = 15;

type EnvName = 'CNI_CONTAINERID' | 'CNI_NETNS' | 'CNI_IFNAME' | 'CNI_PATH';

/**
 * Required variables per command, as the spec's "Required environment parameters" lists them
 * (CNI_COMMAND aside). CNI_PATH is optional for ADD/CHECK/DEL in the spec: an IPAM plugin has
 * nothing to find; a delegating plugin checks it itself.
 */
const REQUIRED_ENV: Readonly<Record<CniCommand, readonly EnvName[]>> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  GC: ['CNI_PATH'],
  STATUS: [],
  VERSION: [],
};

/** The first spec version that defines each command (libcni's skel refuses older configs). */
const MIN_VERSION_FOR_COMMAND: Partial<Record<CniCommand, string>> = {
  CHECK: '0.4.0',
  GC: '1.1.0',
  STATUS: '1.1.0',
};

/** Throws CniError: 4 (missing/invalid env per command), 6 (stdin not a JSON object), 1 (cniVersion missing/unsupported, message lists supported), 7 (name/type missing or not strings). */
export function parseCniRequest(
  env: Readonly<Record<string, string | undefined>>,
  stdin: string,
  options: ParseCniRequestOptions = {},
): CniRequest {
  const command = parseCommand(env['CNI_COMMAND']);
  const value = (name: EnvName): string | undefined => {
    const text = env[name];
    return text === undefined || text === '' ? undefined : text;
  };
  const missing = REQUIRED_ENV[command].filter((name) => value(name) === undefined);
  if (missing.length > 0) {
    throw new CniError(CniCode.InvalidEnv, `required env variables [${missing.join(',')}] missing for ${command}`);
  }
  const containerId = value('CNI_CONTAINERID');
  const ifName = value('CNI_IFNAME');
  if (command === 'ADD' || command === 'CHECK' || command === 'DEL') {
    if (containerId !== undefined) validateContainerId(containerId);
    if (ifName !== undefined) validateInterfaceName(ifName);
  }
  const args = parseCniArgs(env['CNI_ARGS'] ?? '', options.knownArgs ?? []);
  const path = (value('CNI_PATH') ?? '').split(':').filter((dir) => dir !== '');

  if (command === 'VERSION') {
    const config = tryParseObject(stdin) ?? {};
    const requested = config['cniVersion'];
    const cniVersion = typeof requested === 'string' && isSupportedCniVersion(requested) ? requested : CURRENT_CNI_VERSION;
    return { command, containerId, netns: value('CNI_NETNS'), ifName, args, path, config, cniVersion, stdin };
  }

  const config = decodeConfig(stdin);
  const cniVersion = checkCniVersion(config['cniVersion'], command);
  const name = config['name'];
  if (typeof name !== 'string' || name === '') {
    throw new CniError(CniCode.InvalidConfig, 'network config has no "name" (a non-empty string)');
  }
  if (!CNI_NAME_PATTERN.test(name)) {
    throw new CniError(CniCode.InvalidConfig, `invalid characters in network name "${name}"`, NAME_CHARSET);
  }
  const type = config['type'];
  if (typeof type !== 'string' || type === '') {
    throw new CniError(CniCode.InvalidConfig, 'network config has no "type" (a non-empty string)');
  }
  return { command, containerId, netns: value('CNI_NETNS'), ifName, args, path, config, cniVersion, stdin };
}

function parseCommand(text: string | undefined): CniCommand {
  if (text === undefined || text === '') {
    throw new CniError(CniCode.InvalidEnv, 'required env variables [CNI_COMMAND] missing');
  }
  const command = COMMANDS.find((known) => known === text);
  if (command === undefined) {
    throw new CniError(CniCode.InvalidEnv, `unknown CNI_COMMAND "${text}"`, `known: ${COMMANDS.join(', ')}`);
  }
  return command;
}

function validateContainerId(containerId: string): void {
  if (!CNI_NAME_PATTERN.test(containerId)) {
    throw new CniError(CniCode.InvalidEnv, `invalid characters in CNI_CONTAINERID "${containerId}"`, NAME_CHARSET);
  }
}

function validateInterfaceName(ifName: string): void {
  if (Buffer.byteLength(ifName, 'utf8') > MAX_IFNAME_BYTES) {
    throw new CniError(CniCode.InvalidEnv, `CNI_IFNAME "${ifName}" is too long`, `interface names have at most ${MAX_IFNAME_BYTES} bytes`);
  }
  if (ifName === '.' || ifName === '..') {
    throw new CniError(CniCode.InvalidEnv, `CNI_IFNAME "${ifName}" is not a valid interface name`);
  }
  if (/[/:\s]/u.test(ifName)) {
    throw new CniError(CniCode.InvalidEnv, `CNI_IFNAME "${ifName}" contains "/", ":" or whitespace`);
  }
}

/**
 * "K=V;K=V". Like libcni's LoadArgs: a pair without "=" is an error, and so is an unknown key
 * unless IgnoreUnknown is true (kubelet's runtimes always send IgnoreUnknown=1).
 */
function parseCniArgs(text: string, knownArgs: readonly string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CniCode.InvalidEnv, `CNI_ARGS: invalid pair "${pair}" (expected KEY=VALUE)`);
    args.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  const ignoreText = args.get('IgnoreUnknown');
  let ignoreUnknown = false;
  if (ignoreText !== undefined) {
    const lower = ignoreText.toLowerCase();
    if (lower === '1' || lower === 'true') ignoreUnknown = true;
    else if (lower !== '0' && lower !== 'false') {
      throw new CniError(CniCode.InvalidEnv, `CNI_ARGS: IgnoreUnknown="${ignoreText}" is not a boolean (1, true, 0, false)`);
    }
  }
  if (!ignoreUnknown) {
    for (const key of args.keys()) {
      if (key !== 'IgnoreUnknown' && !KUBERNETES_CNI_ARGS.includes(key) && !knownArgs.includes(key)) {
        throw new CniError(CniCode.InvalidEnv, `CNI_ARGS: unknown key "${key}"`, 'set IgnoreUnknown=1 to pass keys this plugin does not use');
      }
    }
  }
  return args;
}

function tryParseObject(text: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return isPlainObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function decodeConfig(stdin: string): Record<string, unknown> {
  if (stdin.trim() === '') throw new CniError(CniCode.DecodeFailure, 'no network config on stdin');
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin);
  } catch (err: unknown) {
    throw new CniError(CniCode.DecodeFailure, 'network config on stdin is not valid JSON', errorMessage(err), { cause: err });
  }
  if (!isPlainObject(parsed)) {
    throw new CniError(CniCode.DecodeFailure, `network config on stdin is not a JSON object (got ${describeJson(parsed)})`);
  }
  return parsed;
}

function checkCniVersion(value: unknown, command: CniCommand): string {
  const supported = SUPPORTED_CNI_VERSIONS.join(', ');
  if (value === undefined) {
    throw new CniError(CniCode.IncompatibleVersion, `network config has no cniVersion; supported versions: ${supported}`);
  }
  if (typeof value !== 'string' || !isSupportedCniVersion(value)) {
    throw new CniError(CniCode.IncompatibleVersion, `unsupported cniVersion ${JSON.stringify(value)}; supported versions: ${supported}`);
  }
  const minimum = MIN_VERSION_FOR_COMMAND[command];
  if (minimum !== undefined && compareCniVersions(value, minimum) < 0) {
    throw new CniError(CniCode.IncompatibleVersion, `cniVersion ${value} does not allow ${command}; it needs ${minimum} or later`);
  }
  return value;
}

export function isSupportedCniVersion(version: string): boolean {
  return (SUPPORTED_CNI_VERSIONS as readonly string[]).includes(version);
}

export interface CniOutcome {
  stdout: string;
  exitCode: number;
}

/** Success without output: DEL, CHECK, GC and STATUS print nothing. */
export function emptyOutcome(): CniOutcome {
  return { stdout: '', exitCode: 0 };
}

/** JSON of `result` with cniVersion set, exit 0. */
export function successOutcome(result: Readonly<Record<string, unknown>>, cniVersion: string): CniOutcome {
  const { cniVersion: _ignored, ...rest } = result;
  return { stdout: `${JSON.stringify({ cniVersion, ...rest })}\n`, exitCode: 0 };
}

/** The error code for anything that is not a CniError and not an I/O error. */
export const UNEXPECTED_ERROR_CODE = 999;

/**
 * Spec error JSON {cniVersion, code, msg, details?} on stdout, exit 1. A CniError keeps its
 * code; a Node system error (fs, net: it has a string `code` and a `syscall`) is IoFailure (5);
 * anything else is 999 "unexpected error". Without details, the cause's message is the details.
 */
export function errorOutcome(err: unknown, cniVersion: string | undefined): CniOutcome {
  let code: number;
  let msg: string;
  let details: string | undefined;
  if (err instanceof CniError) {
    code = err.code;
    msg = err.message;
    details = err.details ?? (err.cause === undefined ? undefined : errorMessage(err.cause));
  } else if (isSystemError(err)) {
    code = CniCode.IoFailure;
    msg = err.message;
  } else {
    code = UNEXPECTED_ERROR_CODE;
    msg = `unexpected error: ${errorMessage(err)}`;
  }
  const body: Record<string, unknown> = { cniVersion: cniVersion ?? CURRENT_CNI_VERSION, code, msg };
  if (details !== undefined && details !== '') body['details'] = details;
  return { stdout: `${JSON.stringify(body)}\n`, exitCode: 1 };
}

/** {"cniVersion":..,"supportedVersions":[...]}, exit 0. */
export function versionOutcome(cniVersion: string = CURRENT_CNI_VERSION): CniOutcome {
  return successOutcome({ supportedVersions: [...SUPPORTED_CNI_VERSIONS] }, cniVersion);
}

/** Reads all of stdin as UTF-8; more than maxBytes (default 1 MiB) or invalid UTF-8 is CniError 6. */
export function readStdin(stream: NodeJS.ReadableStream, maxBytes: number = MAX_STDIN_BYTES): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    const finish = (error: Error | undefined, text?: string): void => {
      if (settled) return;
      settled = true;
      stream.removeListener('data', onData);
      stream.removeListener('end', onEnd);
      stream.removeListener('error', onError);
      if (error !== undefined) {
        stream.pause();
        reject(error);
      } else resolve(text ?? '');
    };
    const onData = (chunk: Buffer | string): void => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      total += bytes.length;
      if (total > maxBytes) {
        finish(new CniError(CniCode.DecodeFailure, `network config on stdin is larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(bytes);
    };
    const onEnd = (): void => {
      try {
        finish(undefined, new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)));
      } catch (err: unknown) {
        finish(new CniError(CniCode.DecodeFailure, 'network config on stdin is not valid UTF-8', undefined, { cause: err }));
      }
    };
    const onError = (err: Error): void => {
      finish(new CniError(CniCode.IoFailure, `failed to read stdin: ${err.message}`, undefined, { cause: err }));
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.resume();
  });
}

/** Interface fields that appeared in 1.1.0. */
const INTERFACE_FIELDS_1_1 = ['mtu', 'socketPath', 'pciID'];
/** Route fields that appeared in 1.1.0. */
const ROUTE_FIELDS_1_1 = ['mtu', 'advmss', 'priority', 'table', 'scope'];

/** Converts an IPAM/plugin result object between versions we support (0.3.1/0.4.0 have ips[].version; 1.0.0+ do not; 1.1.0 interfaces may carry mtu). */
export function convertResult(result: Readonly<Record<string, unknown>>, toVersion: string): Record<string, unknown> {
  if (!isSupportedCniVersion(toVersion)) {
    const supported = SUPPORTED_CNI_VERSIONS.join(', ');
    throw new CniError(CniCode.IncompatibleVersion, `cannot convert a result to cniVersion ${toVersion}; supported versions: ${supported}`);
  }
  const legacy = compareCniVersions(toVersion, '1.0.0') < 0;
  const before11 = compareCniVersions(toVersion, '1.1.0') < 0;
  const { cniVersion: _from, ...rest } = result;
  const out: Record<string, unknown> = { cniVersion: toVersion, ...rest };
  if (Array.isArray(result['ips'])) {
    out['ips'] = result['ips'].map((ip: unknown) => (isPlainObject(ip) ? convertIp(ip, legacy) : ip));
  }
  if (before11) {
    if (Array.isArray(result['interfaces'])) out['interfaces'] = result['interfaces'].map((i: unknown) => withoutFields(i, INTERFACE_FIELDS_1_1));
    if (Array.isArray(result['routes'])) out['routes'] = result['routes'].map((r: unknown) => withoutFields(r, ROUTE_FIELDS_1_1));
  }
  return out;
}

function convertIp(ip: Record<string, unknown>, legacy: boolean): Record<string, unknown> {
  const { version: _version, ...rest } = ip;
  if (!legacy) return rest;
  const address = ip['address'];
  if (typeof address !== 'string') return { ...ip };
  const ipText = address.split('/')[0] ?? '';
  return { version: ipText.includes(':') ? '6' : '4', ...rest };
}

function withoutFields(value: unknown, fields: readonly string[]): unknown {
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) if (!fields.includes(key)) out[key] = item;
  return out;
}

/** Compares "x.y.z" versions numerically (missing parts are 0); a malformed version is CniError 1. */
export function compareCniVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  for (let i = 0; i < 3; i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff < 0 ? -1 : 1;
  }
  return 0;
}

function parseVersion(text: string): number[] {
  if (!/^\d{1,9}(\.\d{1,9}){0,2}$/.test(text)) {
    throw new CniError(CniCode.IncompatibleVersion, `"${text}" is not a CNI version (expected x.y.z)`);
  }
  return text.split('.').map(Number);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
