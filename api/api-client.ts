/**
 * The client side of the daemon's local API (node-bootstrap/local-api/): the default socket path,
 * plain GETs over the Unix socket, and GET /status read against its schema (status-schema.ts).
 * The CLI, the CNI plugin, the lab and the tests read through here.
 */
import { request } from 'node:http';
import { readStatusReport } from './status-schema.js';
import type { StatusReport } from './status-schema.js';

/** Where `podtun run` serves its local API unless told otherwise (--status-socket, PODTUN_STATUS_SOCKET). */
export const DEFAULT_API_SOCKET = '/run/podtun/podtun.sock';

export interface ApiReply {
  status: number;
  /** Parsed JSON when the reply says it is JSON, else the text. */
  body: unknown;
}

/** One GET on the local API; rejects when the socket cannot be reached or the reply is garbled. */
export function fetchApi(socketPath: string, path: string, timeoutMs = 2000): Promise<ApiReply> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          const body: unknown = res.headers['content-type']?.includes('json') ? JSON.parse(text) : text;
          resolve({ status: res.statusCode ?? 0, body });
        } catch (err: unknown) {
          reject(new Error(`bad reply from ${socketPath}${path}`, { cause: err }));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`request to ${socketPath}${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export const STATUS_PATH = '/status';

/** GET /status answered, but not 200: the daemon is starting or stopping (its router is not built). */
export class StatusUnavailableError extends Error {
  readonly code = 'ERR_PODTUN_STATUS_UNAVAILABLE';
  constructor(socketPath: string, reply: ApiReply) {
    super(`podtun at ${socketPath} is not serving status yet (HTTP ${reply.status}): ${JSON.stringify(reply.body)}`);
    this.name = 'StatusUnavailableError';
  }
}

/** The body of a GET /status reply; throws StatusUnavailableError unless it is a 200. */
export function statusBody(socketPath: string, reply: ApiReply): unknown {
  if (reply.status !== 200) throw new StatusUnavailableError(socketPath, reply);
  return reply.body;
}

/**
 * A running daemon's GET /status, checked against the schema. Rejects when the socket cannot be
 * reached, with StatusUnavailableError, or with StatusSchemaError naming the field that is wrong.
 */
export async function fetchStatusReport(socketPath: string, timeoutMs?: number): Promise<StatusReport> {
  return readStatusReport(statusBody(socketPath, await fetchApi(socketPath, STATUS_PATH, timeoutMs)));
}
