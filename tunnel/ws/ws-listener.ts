/**
 * Where peers connect to us: an HTTP or HTTPS server on `listen` that accepts only authenticated
 * WebSocket upgrades.
 *
 *   1. a plain request: 426 (this endpoint only upgrades)
 *   2. an upgrade: subprotocol WS_SUBPROTOCOL (else 400), then the client hello checked by
 *      ws-handshake.ts (400 malformed, 401 not authenticated, 503 replay cache full), and the
 *      node must be a peer (else 401); a refusal is counted (authRejected), logged at warn at most
 *      once a second (the rest at debug), answered and the socket closed
 *   3. accepted: 101 with our proof (the client's nonce tagged), handed to the owner as an open
 *      connection of that peer.
 */
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { LogFields } from '../../core/log-fields.js';
import { formatEndpoint } from '../../core/endpoint.js';
import type { Endpoint } from '../../core/endpoint.js';
import { errorReason } from '../../core/error-reason.js';
import { TransportError } from '../transport-error.js';
import { WS_SUBPROTOCOL } from './ws-framing.js';
import { HandshakeVerifier, serverProofLines } from './ws-handshake.js';
import { UpgradeCompleter } from './ws-connection.js';
import type { ConnectionOwner, WsConnection } from './ws-connection.js';
import type { WsPeer } from './ws-peer.js';
import { readPem } from './pem-file.js';

/** Plain HTTP requests to the listener (not upgrades) must complete within this. */
const HTTP_REQUEST_TIMEOUT_MS = 10_000;
/** Refused connections are logged at warn at most this often; the rest at debug. */
const REFUSAL_LOG_INTERVAL_MS = 1000;

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  503: 'Service Unavailable',
};

/** What the listener asks of the transport. */
export interface ListenerHost {
  /** The peer `node` names, if it is one. */
  peerOf(node: string): WsPeer | undefined;
  /** An authenticated connection from one of its peers, open. */
  accepted(conn: WsConnection): void;
}

export class WsListener {
  private readonly completer: UpgradeCompleter;
  private readonly verifier: HandshakeVerifier;
  /** Sockets being refused (an HTTP error is being written): destroyed on close. */
  private readonly refusing = new Set<Duplex>();
  private server: HttpServer | undefined;
  private boundPort = -1;
  private lastRefusalLogMs = Number.NEGATIVE_INFINITY;
  private closed = false;

  constructor(
    private readonly owner: ConnectionOwner,
    private readonly host: ListenerHost,
    private readonly listen: Endpoint,
  ) {
    const config = owner.config;
    this.completer = new UpgradeCompleter(owner);
    this.verifier = new HandshakeVerifier(config.secret, config.localNode, (node) => host.peerOf(node) !== undefined);
  }

  /** The bound port; -1 until listening. */
  get port(): number {
    return this.boundPort;
  }

  /** Reads the TLS files, if any, and listens. Throws TransportError (LISTEN, TLS, CLOSED); may be retried after a failure. */
  async start(): Promise<void> {
    try {
      await this.serve();
    } catch (err: unknown) {
      this.server = undefined;
      throw err;
    }
  }

  /** Refuses what is being refused, stops listening, closes every connection still in HTTP. Safe twice. */
  close(): Promise<void> {
    this.closed = true;
    for (const socket of this.refusing) socket.destroy();
    this.refusing.clear();
    this.completer.close();
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return Promise.resolve();
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    return serverClosed;
  }

  private async serve(): Promise<void> {
    const server = await this.createServer();
    if (this.closed) throw closedError();
    this.server = server;
    try {
      await listenOn(server, this.listen);
    } catch (err: unknown) {
      throw new TransportError('ERR_PODTUN_WS_LISTEN',
        `cannot listen on ${this.owner.config.listenText ?? ''}: ${errorReason(err)}`, { cause: err });
    }
    const address = server.address();
    this.boundPort = typeof address === 'object' && address !== null ? address.port : this.listen.port;
    if (this.closed) {
      server.close();
      throw closedError();
    }
    this.owner.log.info({ listen: formatEndpoint(this.listen.host, this.boundPort), tls: this.owner.config.tls !== undefined },
      'ws transport listening');
  }

  private async createServer(): Promise<HttpServer> {
    const tls = this.owner.config.tls;
    let server: HttpServer;
    if (tls !== undefined) {
      const cert = await readPem(tls.certFile, 'TLS certificate');
      const key = await readPem(tls.keyFile, 'TLS key');
      try {
        server = createHttpsServer({ cert, key });
      } catch (err: unknown) {
        throw new TransportError('ERR_PODTUN_WS_TLS',
          `cannot use TLS certificate ${tls.certFile} with key ${tls.keyFile}: ${errorReason(err)}`,
          { cause: err });
      }
    } else {
      server = createHttpServer();
    }
    server.requestTimeout = HTTP_REQUEST_TIMEOUT_MS;
    server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      res.end('podtun WebSocket tunnel endpoint: upgrade required\n');
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    server.on('tlsClientError', (err: Error, socket: Duplex) => {
      this.owner.log.debug({ remote: remoteOf(socket), err }, 'tls handshake failed');
    });
    return server;
  }

  /** An upgrade request: authenticate, then complete it or refuse it. */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    if (this.closed) {
      socket.destroy();
      return;
    }
    const remote = remoteOf(socket);
    const protocols = req.headers['sec-websocket-protocol'];
    if (typeof protocols !== 'string' || !protocols.split(',').some((p) => p.trim() === WS_SUBPROTOCOL)) {
      this.refuse(socket, remote, undefined, 400, `not a ${WS_SUBPROTOCOL} client`, `expected subprotocol ${WS_SUBPROTOCOL}`);
      return;
    }
    const verdict = this.verifier.verify(req.headers, Date.now());
    if (!verdict.ok) {
      this.refuse(socket, remote, verdict.node, verdict.status, verdict.reason, verdict.body);
      return;
    }
    const peer = this.host.peerOf(verdict.node);
    if (peer === undefined) {
      this.refuse(socket, remote, verdict.node, 401, 'unknown node', 'authentication failed');
      return;
    }
    const config = this.owner.config;
    const proof = serverProofLines(config.secret, config.localNode, verdict.nonce);
    this.completer.complete(req, socket, head, proof, peer, remote, (conn) => this.host.accepted(conn));
  }

  private refuse(
    socket: Duplex, remote: string, node: string | undefined, status: number, reason: string, body: string,
  ): void {
    this.owner.counters.authRejected++;
    const nowMs = this.owner.nowMs();
    const fields: LogFields = { peer: node, remote, reason };
    if (nowMs - this.lastRefusalLogMs >= REFUSAL_LOG_INTERVAL_MS) {
      this.lastRefusalLogMs = nowMs;
      this.owner.log.warn(fields, 'connection refused');
    } else {
      this.owner.log.debug(fields, 'connection refused');
    }
    const text = `${body}\n`;
    this.refusing.add(socket);
    socket.once('close', () => this.refusing.delete(socket));
    socket.once('finish', () => socket.destroy());
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
        'Connection: close\r\nContent-Type: text/plain\r\n' +
        `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
    );
  }
}

function closedError(): TransportError {
  return new TransportError('ERR_PODTUN_WS_CLOSED', 'the WebSocket transport is closed');
}

function listenOn(server: HttpServer, listen: Endpoint): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(listen.port, listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function remoteOf(socket: Duplex): string {
  const s = socket as Partial<Socket>;
  const host = s.remoteAddress;
  return host === undefined ? 'unknown' : formatEndpoint(host, s.remotePort ?? 0);
}
