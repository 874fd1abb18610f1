/**
 * The client side of the daemon's local API (local-api.ts): the default socket path and plain
 * GETs over the Unix socket. The CLI and the tests read through here.
 */
import { request } from 'node:http';

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

/** Reads the status JSON of a running daemon (CLI and tests): the body, whatever the status code. */
export async function fetchStatus(socketPath: string, path = '/status'): Promise<unknown> {
  return (await fetchApi(socketPath, path)).body;
}
