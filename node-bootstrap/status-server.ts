/**
 * The daemon's local API on a Unix socket: `GET /status` (router stats as JSON) and
 * `GET /healthz`. Tests and the CLI read counters here; nothing on it changes state.
 */
import { createServer, type Server } from 'node:http';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../router/logger.js';

export interface StatusServerOptions {
  socketPath: string;
  getStatus: () => unknown;
  log: Logger;
}

export interface StatusServer {
  close(): Promise<void>;
}

export async function startStatusServer(options: StatusServerOptions): Promise<StatusServer> {
  const { socketPath, getStatus, log } = options;
  await mkdir(dirname(socketPath), { recursive: true });
  // A socket file left by a killed daemon would make listen() fail with EADDRINUSE.
  await rm(socketPath, { force: true });
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(getStatus()));
    } else if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
  await listen(server, socketPath);
  log.info({ socket: socketPath }, 'status endpoint listening');
  let closed = false;
  return {
    async close() {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(socketPath, { force: true });
    },
  };
}

function listen(server: Server, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new Error(`cannot serve status on ${socketPath}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(socketPath, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Reads the status JSON of a running daemon (CLI and tests). */
export async function fetchStatus(socketPath: string, path = '/status'): Promise<unknown> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', timeout: 2000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve(res.headers['content-type']?.includes('json') ? JSON.parse(text) : text);
        } catch (err: unknown) {
          reject(new Error(`bad status reply from ${socketPath}`, { cause: err }));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`status request to ${socketPath} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
