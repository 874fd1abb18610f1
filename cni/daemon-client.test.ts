/**
 * fetchNodeLease against a real HTTP server on a Unix socket in a temp dir, answering GET /cni
 * the way the daemon's local API does (and the ways a broken or absent daemon does).
 */
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CniCode, CniError } from './cni-error.js';
import { fetchNodeLease, isCidr } from './daemon-client.js';

const LEASE = { node: 'n1', subnets: ['10.244.1.0/24', 'fd00:10:244:1::/64'], mtu: 1460, clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/48'] };

type Handler = (res: ServerResponse, path: string) => void;

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

describe('fetchNodeLease', () => {
  let dir = '';
  let server: Server | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podtun-cni-client-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    server = undefined;
  });

  let socketCount = 0;
  async function serve(handler: Handler): Promise<string> {
    const socketPath = join(dir, `d${socketCount++}.sock`);
    server = createServer((req, res) => handler(res, req.url ?? ''));
    await new Promise<void>((resolve) => server?.listen(socketPath, resolve));
    return socketPath;
  }

  async function failure(promise: Promise<unknown>): Promise<CniError> {
    const err: unknown = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CniError);
    return err as CniError;
  }

  it('returns the lease of a ready daemon, asking GET /cni', async () => {
    const paths: string[] = [];
    const socket = await serve((res, path) => {
      paths.push(path);
      json(res, 200, { ready: true, ...LEASE });
    });
    expect(await fetchNodeLease(socket, 1000)).toEqual(LEASE);
    expect(paths).toEqual(['/cni']);
  });

  it('accepts a JSON body served as text/plain', async () => {
    const socket = await serve((res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(JSON.stringify({ ready: true, ...LEASE }));
    });
    expect((await fetchNodeLease(socket, 1000)).mtu).toBe(1460);
  });

  it('503: try again later with the daemon reason and the socket', async () => {
    const socket = await serve((res) => json(res, 503, { ready: false, reason: 'lease not up' }));
    const err = await failure(fetchNodeLease(socket, 1000));
    expect(err.code).toBe(CniCode.TryAgainLater);
    expect(err.message).toBe(`podtun daemon not ready: lease not up (${socket})`);
  });

  it('no socket file: try again later naming the socket and ENOENT', async () => {
    const socket = join(dir, 'absent.sock');
    const err = await failure(fetchNodeLease(socket, 1000));
    expect(err.code).toBe(CniCode.TryAgainLater);
    expect(err.message).toContain(`podtun daemon not ready: cannot reach ${socket} (ENOENT)`);
  });

  it('a socket path nobody listens on: try again later with ECONNREFUSED', async () => {
    // A plain file where the socket should be: connect() is refused, as for a stale socket.
    const socket = join(dir, 'stale.sock');
    await writeFile(socket, '');
    const err = await failure(fetchNodeLease(socket, 1000));
    expect(err.code).toBe(CniCode.TryAgainLater);
    expect(err.message).toContain(`cannot reach ${socket} (ECONNREFUSED)`);
  });

  it('a daemon that does not answer within the timeout: try again later', async () => {
    const socket = await serve(() => {
      // never answers
    });
    const started = performance.now();
    const err = await failure(fetchNodeLease(socket, 200));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(err.code).toBe(CniCode.TryAgainLater);
    expect(err.message).toContain('timed out after 200 ms');
  });

  it('404 (a daemon without /cni): not available, asking for an upgrade', async () => {
    const socket = await serve((res) => {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    });
    const err = await failure(fetchNodeLease(socket, 1000));
    expect(err.code).toBe(CniCode.NotAvailable);
    expect(err.message).toContain('upgrade podtun');
  });

  it('500: try again later with the status', async () => {
    const socket = await serve((res) => json(res, 500, { error: 'boom' }));
    const err = await failure(fetchNodeLease(socket, 1000));
    expect(err.code).toBe(CniCode.TryAgainLater);
    expect(err.message).toContain('answered 500');
  });

  it.each([
    ['not JSON', 'application/json', '{nope'],
    ['not ready', 'application/json', JSON.stringify({ ...LEASE, ready: false })],
    ['no node', 'application/json', JSON.stringify({ ...LEASE, ready: true, node: '' })],
    ['no subnets', 'application/json', JSON.stringify({ ...LEASE, ready: true, subnets: [] })],
    ['a bad subnet', 'application/json', JSON.stringify({ ...LEASE, ready: true, subnets: ['10.244.1.0/33'] })],
    ['a fractional mtu', 'application/json', JSON.stringify({ ...LEASE, ready: true, mtu: 1400.5 })],
    ['a tiny mtu', 'application/json', JSON.stringify({ ...LEASE, ready: true, mtu: 10 })],
    ['clusterCidrs not a list', 'application/json', JSON.stringify({ ...LEASE, ready: true, clusterCidrs: '10.0.0.0/8' })],
    ['an array', 'application/json', '[]'],
  ])('a 200 reply with %s: decode failure', async (_what, contentType, body) => {
    const socket = await serve((res) => {
      res.writeHead(200, { 'content-type': contentType });
      res.end(body);
    });
    const err = await failure(fetchNodeLease(socket, 1000));
    expect(err.code).toBe(CniCode.DecodeFailure);
    expect(err.message).toContain(socket);
  });
});

describe('isCidr', () => {
  it.each([
    ['10.244.1.0/24', true],
    ['fd00:10:244:1::/64', true],
    ['0.0.0.0/0', true],
    ['::/128', true],
    ['10.244.1.0', false],
    ['10.244.1.0/33', false],
    ['fd00::/129', false],
    ['10.244.1.0/-1', false],
    ['10.244.1/24', false],
    ['x/24', false],
  ])('%s -> %s', (text, expected) => {
    expect(isCidr(text)).toBe(expected);
  });
});
