/**
 * The few calls the Kubernetes subnet manager makes, on node:https: GET, PATCH (merge or
 * strategic merge) and a streaming WATCH. A small client rather than @kubernetes/client-node:
 * its 2.x needs Node 22, its 1.x informer stops on any watch error but 410, and podtun needs four
 * verbs on one resource with its own relist and backoff (ipam/lease-watch-loop.ts). Every request
 * has a deadline; a watch ends on the signal, on the server's timeout, or on an error.
 */
import { Agent, request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { KubeConnection } from './kube-connection.js';

/** A Kubernetes object as JSON; callers read and check the fields they need. */
export type KubeObject = Readonly<Record<string, unknown>>;

export type PatchType = 'merge' | 'strategic';

const CONTENT_TYPES: Readonly<Record<PatchType, string>> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** A watch event larger than this is refused (a Node object is a few KiB). */
const MAX_WATCH_LINE_BYTES = 4 * 1024 * 1024;
const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** A failed call: `status` is the HTTP status (0: no response), `reason` the API's (e.g. "Expired"). */
export class KubeError extends Error {
  readonly code = 'ERR_PODTUN_KUBE';
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
    this.name = 'KubeError';
  }
}

export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  readonly object: KubeObject;
}

/** Why a watch ended without an error: the server closed it (timeoutSeconds), or the signal aborted. */
export type WatchEnd = 'closed' | 'aborted';

export interface WatchOptions {
  /** Changes after this version. */
  resourceVersion: string;
  /** The server ends the watch after this long (it is then resumed); bounds a silent stream. */
  timeoutSeconds: number;
  signal: AbortSignal;
}

export class KubeClient {
  private readonly agent: Agent;

  constructor(
    private readonly connection: KubeConnection,
    private readonly requestTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
  ) {
    const creds = connection.credentials;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 4,
      ...(connection.ca === undefined ? {} : { ca: connection.ca }),
      ...(creds.kind === 'client-certificate' ? { cert: creds.cert, key: creds.key } : {}),
    });
  }

  get(path: string): Promise<KubeObject> {
    return this.call('GET', path, undefined, undefined);
  }

  patch(path: string, body: object, type: PatchType): Promise<KubeObject> {
    return this.call('PATCH', path, JSON.stringify(body), CONTENT_TYPES[type]);
  }

  /**
   * Streams the changes of a list path (`/api/v1/nodes`) after `resourceVersion`, bookmarks
   * included, to `onEvent` in order. Throws KubeError for an error status or an ERROR event
   * (410 Gone: the version expired, relist); resolves when the server ends the stream or the
   * signal aborts.
   */
  watch(path: string, options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<WatchEnd> {
    const query = `watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(options.resourceVersion)}&timeoutSeconds=${options.timeoutSeconds}`;
    const full = `${path}${path.includes('?') ? '&' : '?'}${query}`;
    return new Promise<WatchEnd>((resolve, reject) => {
      if (options.signal.aborted) {
        resolve('aborted');
        return;
      }
      let settled = false;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        options.signal.removeEventListener('abort', onAbort);
        fn();
      };
      const req = this.open('GET', full, undefined, (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          readBody(res).then(
            (text) => settle(() => reject(statusError('GET', path, res.statusCode ?? 0, text))),
            (err: unknown) => settle(() => reject(failed('GET', path, err))),
          );
          return;
        }
        // The first bytes mean the watch is established: its deadline is the server's now.
        req.setTimeout(0);
        let pending = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          pending += chunk;
          if (pending.length > MAX_WATCH_LINE_BYTES) {
            req.destroy(new Error(`a watch event of more than ${MAX_WATCH_LINE_BYTES} bytes`));
            return;
          }
          let nl = pending.indexOf('\n');
          while (nl >= 0 && !settled) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (line !== '') {
              const error = this.deliver(path, line, onEvent);
              if (error !== undefined) {
                settle(() => reject(error));
                req.destroy();
                return;
              }
            }
            nl = pending.indexOf('\n');
          }
        });
        res.on('end', () => settle(() => resolve('closed')));
        res.on('error', (err: unknown) => settle(() => reject(failed('GET', path, err))));
      });
      const onAbort = (): void => {
        settle(() => resolve('aborted'));
        req.destroy();
      };
      options.signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err: unknown) => settle(() => (options.signal.aborted ? resolve('aborted') : reject(failed('GET', path, err)))));
      req.end();
    });
  }

  /** Closes idle keep-alive sockets; open watches end with their signals. */
  close(): void {
    this.agent.destroy();
  }

  /** Parses and hands on one watch line; returns the error an ERROR event or a bad line means. */
  private deliver(path: string, line: string, onEvent: (event: WatchEvent) => void): KubeError | undefined {
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch (err: unknown) {
      return new KubeError(`watch ${path}: a line that is not JSON`, 0, 'BadWatchLine', { cause: err });
    }
    const type = (event as { type?: unknown }).type;
    const object = (event as { object?: unknown }).object;
    if (typeof object !== 'object' || object === null) return new KubeError(`watch ${path}: an event without an object`, 0, 'BadWatchLine');
    if (type === 'ERROR') {
      const status = object as { code?: unknown; reason?: unknown; message?: unknown };
      return new KubeError(`watch ${path}: ${String(status.message ?? 'error')}`, Number(status.code ?? 0), String(status.reason ?? ''));
    }
    if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED' && type !== 'BOOKMARK') {
      return new KubeError(`watch ${path}: unknown event type ${String(type)}`, 0, 'BadWatchLine');
    }
    onEvent({ type, object: object as KubeObject });
    return undefined;
  }

  private call(method: string, path: string, body: string | undefined, contentType: string | undefined): Promise<KubeObject> {
    return new Promise((resolve, reject) => {
      const req = this.open(method, path, contentType, (res) => {
        readBody(res).then(
          (text) => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(parseObject(text));
            else reject(statusError(method, path, status, text));
          },
          (err: unknown) => reject(failed(method, path, err)),
        );
      });
      req.on('error', (err: unknown) => reject(failed(method, path, err)));
      req.end(body);
    });
  }

  private open(method: string, path: string, contentType: string | undefined, onResponse: (res: IncomingMessage) => void) {
    const server = this.connection.server;
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'podtun' };
    if (contentType !== undefined) headers['content-type'] = contentType;
    const creds = this.connection.credentials;
    if (creds.kind === 'token') headers['authorization'] = `Bearer ${creds.token}`;
    else if (creds.kind === 'token-file') headers['authorization'] = `Bearer ${creds.file.current()}`;
    const prefix = server.pathname.replace(/\/$/, '');
    const req = request(
      {
        host: server.hostname.replace(/^\[|\]$/g, ''),
        port: server.port === '' ? 443 : Number(server.port),
        path: `${prefix}${path}`,
        method,
        headers,
        agent: this.agent,
      },
      onResponse,
    );
    req.setTimeout(this.requestTimeoutMs, () => req.destroy(new Error(`no answer within ${this.requestTimeoutMs} ms`)));
    return req;
  }
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) res.destroy(new Error(`a reply of more than ${MAX_BODY_BYTES} bytes`));
      else chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function parseObject(text: string): KubeObject {
  if (text === '') return {};
  const parsed: unknown = JSON.parse(text);
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as KubeObject) : {};
}

/** The API's Status object says why; else the body's first bytes. */
function statusError(method: string, path: string, status: number, text: string): KubeError {
  let message = text.slice(0, 300);
  let reason = '';
  try {
    const body = JSON.parse(text) as { message?: unknown; reason?: unknown };
    if (typeof body.message === 'string') message = body.message;
    if (typeof body.reason === 'string') reason = body.reason;
  } catch {
    // not a Status object: keep the text
  }
  return new KubeError(`${method} ${path}: ${status} ${message}`, status, reason);
}

function failed(method: string, path: string, err: unknown): KubeError {
  return new KubeError(`${method} ${path}: ${err instanceof Error ? err.message : String(err)}`, 0, 'Unreachable', { cause: err });
}
