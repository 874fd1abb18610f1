/**
 * A small Kubernetes REST client for tests only, on node:https: paths in, parsed JSON out. It
 * knows just enough of the API to seed a cluster the way real components would (server-side
 * apply of manifests, a Node registered like a kubelet does, a ServiceAccount token), so tests
 * need no Kubernetes client library. Every request and every wait is bounded in time.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { parseYamlDocuments } from '../../core/yaml-text.js';
import { sleep } from '../shell.js';

/** A Kubernetes object as JSON; tests read the fields they need. */
export type KubeObject = Record<string, unknown>;

export type KubeAuth = { certFile: string; keyFile: string } | { token: string };

export interface KubeApiOptions {
  /** "https://host:port". */
  server: string;
  /** CA that signed the apiserver's serving certificate. */
  caFile: string;
  auth: KubeAuth;
  /** Per request; default 10 s. */
  requestTimeoutMs?: number;
  /**
   * A Unix socket that leads to the server (the netns harness forwards one to an apiserver in a
   * namespace this process cannot route to); the TLS check still names `server`'s host.
   */
  socketPath?: string;
}

export type PatchType = 'strategic' | 'merge' | 'json' | 'apply';

export type KubeApiErrorCode = 'KUBE_HTTP_STATUS' | 'KUBE_REQUEST_FAILED' | 'KUBE_WAIT_TIMEOUT' | 'KUBE_BAD_MANIFEST';

export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    readonly code: KubeApiErrorCode,
    message: string,
    /** HTTP status; 0 when no response arrived. */
    readonly status = 0,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface NodeRegistration {
  internalIP: string;
  internalIPv6?: string;
  labels?: Record<string, string>;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const WAIT_INTERVAL_MS = 200;
const FIELD_MANAGER = 'podtun-test';
/** TokenRequest refuses less than 10 minutes. */
const DEFAULT_TOKEN_SECONDS = 3600;

const CONTENT_TYPES: Record<PatchType, string> = {
  strategic: 'application/strategic-merge-patch+json',
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

/** Where each kind that tests apply lives: its plural and whether it sits in a namespace. */
const KINDS: Record<string, { plural: string; namespaced: boolean }> = {
  Namespace: { plural: 'namespaces', namespaced: false },
  Node: { plural: 'nodes', namespaced: false },
  ServiceAccount: { plural: 'serviceaccounts', namespaced: true },
  ConfigMap: { plural: 'configmaps', namespaced: true },
  Secret: { plural: 'secrets', namespaced: true },
  ClusterRole: { plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { plural: 'clusterrolebindings', namespaced: false },
  Role: { plural: 'roles', namespaced: true },
  RoleBinding: { plural: 'rolebindings', namespaced: true },
  DaemonSet: { plural: 'daemonsets', namespaced: true },
};

export class KubeApi {
  private readonly agent: Agent;
  private readonly headers: Record<string, string>;
  private readonly requestTimeoutMs: number;
  private readonly server: URL;

  constructor(private readonly options: KubeApiOptions) {
    this.server = new URL(options.server);
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const ca = readFileSync(options.caFile);
    // No keep-alive: a test that ends leaves no socket open behind it.
    if ('token' in options.auth) {
      this.agent = new Agent({ ca, keepAlive: false });
      this.headers = { authorization: `Bearer ${options.auth.token}` };
    } else {
      const cert = readFileSync(options.auth.certFile);
      const key = readFileSync(options.auth.keyFile);
      this.agent = new Agent({ ca, cert, key, keepAlive: false });
      this.headers = {};
    }
  }

  /** The same server and CA with another identity. */
  withToken(token: string): KubeApi {
    return new KubeApi({ ...this.options, auth: { token } });
  }

  async get(path: string): Promise<KubeObject> {
    return this.send('GET', path);
  }

  /** The `items` of a list. */
  async list(path: string): Promise<KubeObject[]> {
    const items = (await this.send('GET', path))['items'];
    return Array.isArray(items) ? (items as KubeObject[]) : [];
  }

  async create(path: string, body: KubeObject): Promise<KubeObject> {
    return this.send('POST', path, JSON.stringify(body), 'application/json');
  }

  /** A JSON patch is an array of operations; the other types take an object. */
  async patch(path: string, body: KubeObject | KubeObject[], type: PatchType = 'strategic'): Promise<KubeObject> {
    const query = type === 'apply' ? `fieldManager=${FIELD_MANAGER}&force=true` : '';
    return this.send('PATCH', withQuery(path, query), JSON.stringify(body), CONTENT_TYPES[type]);
  }

  async delete(path: string): Promise<KubeObject> {
    return this.send('DELETE', path);
  }

  /** Server-side applies every document of a multi-document YAML, in order. */
  async applyManifests(yamlText: string): Promise<KubeObject[]> {
    const applied: KubeObject[] = [];
    for (const doc of parseYamlDocuments(yamlText)) {
      if (doc.errors.length > 0) {
        throw new KubeApiError('KUBE_BAD_MANIFEST', `invalid YAML: ${doc.errors[0] ?? ''}`);
      }
      const object: unknown = doc.value;
      if (object === null || object === undefined) continue;
      if (!isObject(object)) throw new KubeApiError('KUBE_BAD_MANIFEST', 'a manifest document is not an object');
      // JSON is YAML, so the apply-patch+yaml body can be the object as JSON.
      applied.push(await this.patch(objectPath(object), object, 'apply'));
    }
    return applied;
  }

  /**
   * Creates a Node as a kubelet registers itself: name, the labels a kubelet sets, and its
   * InternalIP addresses in `status` (the apiserver keeps a Node's status on create).
   */
  async registerNode(name: string, node: NodeRegistration): Promise<KubeObject> {
    const addresses = [{ type: 'InternalIP', address: node.internalIP }];
    if (node.internalIPv6 !== undefined) addresses.push({ type: 'InternalIP', address: node.internalIPv6 });
    addresses.push({ type: 'Hostname', address: name });
    return this.create('/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        labels: {
          'kubernetes.io/hostname': name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          ...node.labels,
        },
      },
      status: { addresses },
    });
  }

  async deleteNode(name: string): Promise<void> {
    await this.delete(`/api/v1/nodes/${encodeURIComponent(name)}`);
  }

  /** A bound token for a ServiceAccount through the TokenRequest API. */
  async serviceAccountToken(namespace: string, name: string, expirationSeconds = DEFAULT_TOKEN_SECONDS): Promise<string> {
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(name)}/token`;
    const response = await this.create(path, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds },
    });
    const token = field(response, 'status', 'token');
    if (typeof token !== 'string' || token === '') {
      throw new KubeApiError('KUBE_HTTP_STATUS', `TokenRequest for ${namespace}/${name} returned no token`);
    }
    return token;
  }

  /**
   * Polls `path` until `predicate` holds, at most `timeoutMs`. A missing object (404) or a
   * failed request counts as "not yet"; the timeout error names the last object or error seen.
   */
  async waitFor(path: string, predicate: (object: KubeObject) => boolean, timeoutMs: number): Promise<KubeObject> {
    const deadline = Date.now() + timeoutMs;
    const maxAttempts = Math.ceil(timeoutMs / WAIT_INTERVAL_MS) + 1;
    let last = 'no response yet';
    for (let attempt = 0; attempt < maxAttempts && Date.now() <= deadline; attempt++) {
      try {
        const object = await this.get(path);
        if (predicate(object)) return object;
        last = JSON.stringify(object).slice(0, 2000);
      } catch (error: unknown) {
        last = error instanceof Error ? error.message : String(error);
      }
      await sleep(Math.min(WAIT_INTERVAL_MS, Math.max(0, deadline - Date.now())));
    }
    throw new KubeApiError('KUBE_WAIT_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${path}; last: ${last}`);
  }

  private send(method: string, path: string, body?: string, contentType?: string): Promise<KubeObject> {
    const headers: Record<string, string> = { ...this.headers, accept: 'application/json' };
    if (body !== undefined && contentType !== undefined) headers['content-type'] = contentType;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.server.hostname.replace(/^\[|\]$/g, ''),
          port: this.server.port === '' ? 443 : Number(this.server.port),
          ...(this.options.socketPath === undefined ? {} : { socketPath: this.options.socketPath }),
          path,
          method,
          headers,
          agent: this.agent,
          timeout: this.requestTimeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (error) => reject(requestFailed(method, path, error)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(parseBody(text));
            else reject(new KubeApiError('KUBE_HTTP_STATUS', `${method} ${path}: ${status} ${apiMessage(text)}`, status));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no response within ${this.requestTimeoutMs} ms`)));
      req.on('error', (error) => reject(requestFailed(method, path, error)));
      req.end(body);
    });
  }
}

/** `spec.podCIDRs` of a Node, or [] before the controller manager assigned them. */
export function podCidrsOf(node: KubeObject): string[] {
  const cidrs = field(node, 'spec', 'podCIDRs');
  return Array.isArray(cidrs) ? cidrs.filter((c): c is string => typeof c === 'string') : [];
}

/** The REST path of an object from its apiVersion, kind, namespace and name. */
export function objectPath(object: KubeObject): string {
  const apiVersion = object['apiVersion'];
  const kind = object['kind'];
  const name = field(object, 'metadata', 'name');
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || typeof name !== 'string') {
    throw new KubeApiError('KUBE_BAD_MANIFEST', 'a manifest needs apiVersion, kind and metadata.name');
  }
  const info = KINDS[kind];
  if (info === undefined) {
    throw new KubeApiError('KUBE_BAD_MANIFEST', `kind ${kind} of ${name} is not known (known: ${Object.keys(KINDS).join(', ')})`);
  }
  const group = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const namespace = field(object, 'metadata', 'namespace');
  const scope = info.namespaced ? `/namespaces/${encodeURIComponent(typeof namespace === 'string' ? namespace : 'default')}` : '';
  return `${group}${scope}/${info.plural}/${encodeURIComponent(name)}`;
}

function field(object: KubeObject, ...keys: string[]): unknown {
  let value: unknown = object;
  for (const key of keys) {
    if (!isObject(value)) return undefined;
    value = value[key];
  }
  return value;
}

function isObject(value: unknown): value is KubeObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseBody(text: string): KubeObject {
  if (text === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    return isObject(parsed) ? parsed : { value: parsed };
  } catch {
    // /readyz and /healthz answer plain text.
    return { text };
  }
}

/** The apiserver's own words: the `message` of a Status object, else the raw body. */
function apiMessage(text: string): string {
  const body = parseBody(text);
  const message = body['message'];
  return typeof message === 'string' ? message : text.slice(0, 500);
}

function requestFailed(method: string, path: string, cause: Error): KubeApiError {
  return new KubeApiError('KUBE_REQUEST_FAILED', `${method} ${path} failed: ${cause.message}`, 0, { cause });
}

function withQuery(path: string, query: string): string {
  if (query === '') return path;
  return `${path}${path.includes('?') ? '&' : '?'}${query}`;
}
