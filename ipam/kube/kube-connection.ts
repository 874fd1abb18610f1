/**
 * How podtun reaches the Kubernetes API server: from inside the cluster (the pod's service
 * account: KUBERNETES_SERVICE_HOST/PORT, its token, re-read as the kubelet rotates it, and the
 * cluster CA) or from a kubeconfig file (the current context's server, CA and credentials: a
 * token, a token file, or a client certificate). Read once at start, except the token file.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseYaml } from '../../core/yaml-text.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** A bearer token read from a file, re-read when the file changes (rotation) or on request. */
export class TokenFile {
  private token = '';
  private mtimeMs = -1;

  constructor(readonly path: string) {}

  /** The current token; throws KubeConnectionError when the file cannot be read. */
  current(): string {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.path).mtimeMs;
    } catch (err: unknown) {
      throw new KubeConnectionError(`cannot read the token file ${this.path}: ${reason(err)}`, { cause: err });
    }
    if (mtimeMs !== this.mtimeMs) {
      this.token = readFileSync(this.path, 'utf8').trim();
      this.mtimeMs = mtimeMs;
    }
    return this.token;
  }
}

export type KubeCredentials =
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'token-file'; readonly file: TokenFile }
  | { readonly kind: 'client-certificate'; readonly cert: Buffer; readonly key: Buffer }
  | { readonly kind: 'none' };

export interface KubeConnection {
  /** "https://host:port" (a path prefix is kept). */
  readonly server: URL;
  /** CAs trusted for the server's certificate; undefined: the system's. */
  readonly ca: Buffer | undefined;
  readonly credentials: KubeCredentials;
  /** For messages: "in-cluster service account" or "kubeconfig /path (context x)". */
  readonly describe: string;
}

/** The connection could not be set up; the message names the file or variable and why. */
export class KubeConnectionError extends Error {
  readonly code = 'ERR_PODTUN_KUBE_CONNECTION';
}

/** The pod's own service account; `env` is the process environment (read by node-bootstrap). */
export function inClusterConnection(env: Readonly<Record<string, string | undefined>>, dir = SERVICE_ACCOUNT_DIR): KubeConnection {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'] ?? '443';
  if (host === undefined || host === '') {
    throw new KubeConnectionError('not in a cluster (KUBERNETES_SERVICE_HOST is not set): set subnetManager.kubeconfig to run outside one');
  }
  const server = new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`);
  return {
    server,
    ca: readFile(`${dir}/ca.crt`, 'the cluster CA'),
    credentials: { kind: 'token-file', file: new TokenFile(`${dir}/token`) },
    describe: 'in-cluster service account',
  };
}

/** The current context of a kubeconfig file (YAML or JSON), as kubectl reads it. */
export function kubeconfigConnection(path: string): KubeConnection {
  const text = readFile(path, 'the kubeconfig').toString('utf8');
  const parsed = parseYaml(text);
  if (parsed.errors.length > 0) throw new KubeConnectionError(`${path}: not valid YAML: ${(parsed.errors[0] ?? '').split('\n')[0] ?? ''}`);
  const doc = record(parsed.value, `${path}`);
  const base = dirname(path);
  const contextName = str(doc['current-context'], `${path}: current-context`);
  const context = record(named(doc['contexts'], contextName, `${path}: contexts`)['context'], `${path}: context ${contextName}`);
  const clusterName = str(context['cluster'], `${path}: context ${contextName}: cluster`);
  const userName = str(context['user'], `${path}: context ${contextName}: user`);
  const cluster = record(named(doc['clusters'], clusterName, `${path}: clusters`)['cluster'], `${path}: cluster ${clusterName}`);
  const user = record(named(doc['users'], userName, `${path}: users`)['user'] ?? {}, `${path}: user ${userName}`);

  let server: URL;
  try {
    server = new URL(str(cluster['server'], `${path}: cluster ${clusterName}: server`));
  } catch (err: unknown) {
    throw new KubeConnectionError(`${path}: cluster ${clusterName}: server: ${reason(err)}`, { cause: err });
  }
  if (server.protocol !== 'https:') throw new KubeConnectionError(`${path}: cluster ${clusterName}: server ${server.href}: only https is supported`);
  const ca = bytes(cluster, 'certificate-authority', base, `${path}: cluster ${clusterName}`);
  return { server, ca, credentials: credentialsOf(user, base, `${path}: user ${userName}`), describe: `kubeconfig ${path} (context ${contextName})` };
}

function credentialsOf(user: Record<string, unknown>, base: string, where: string): KubeCredentials {
  if (typeof user['token'] === 'string' && user['token'] !== '') return { kind: 'token', token: user['token'] };
  if (typeof user['tokenFile'] === 'string') return { kind: 'token-file', file: new TokenFile(resolve(base, user['tokenFile'])) };
  const cert = bytes(user, 'client-certificate', base, where);
  const key = bytes(user, 'client-key', base, where);
  if (cert !== undefined && key !== undefined) return { kind: 'client-certificate', cert, key };
  if (cert !== undefined || key !== undefined) throw new KubeConnectionError(`${where}: client-certificate and client-key go together`);
  if (user['exec'] !== undefined || user['auth-provider'] !== undefined) {
    throw new KubeConnectionError(`${where}: exec and auth-provider credentials are not supported; use a token, a token file or a client certificate`);
  }
  return { kind: 'none' };
}

/** `<key>-data` (base64) or `<key>` (a file path, relative to the kubeconfig). */
function bytes(entry: Record<string, unknown>, key: string, base: string, where: string): Buffer | undefined {
  const data = entry[`${key}-data`];
  if (typeof data === 'string') return Buffer.from(data, 'base64');
  const file = entry[key];
  if (typeof file === 'string') return readFile(resolve(base, file), `${where}: ${key}`);
  return undefined;
}

function named(list: unknown, name: string, where: string): Record<string, unknown> {
  if (!Array.isArray(list)) throw new KubeConnectionError(`${where}: expected a list`);
  const entry = (list as unknown[]).find((e) => typeof e === 'object' && e !== null && (e as Record<string, unknown>)['name'] === name);
  if (entry === undefined) throw new KubeConnectionError(`${where}: no entry named "${name}"`);
  return entry as Record<string, unknown>;
}

function record(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new KubeConnectionError(`${where}: expected a mapping`);
  return value as Record<string, unknown>;
}

function str(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '') throw new KubeConnectionError(`${where}: expected a non-empty string`);
  return value;
}

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err: unknown) {
    throw new KubeConnectionError(`cannot read ${what} ${path}: ${reason(err)}`, { cause: err });
  }
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
