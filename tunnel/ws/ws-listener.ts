/**
 * Where peers connect to us: a TCP listener on `listen` whose connections, once admitted, are
 * served by an HTTP or HTTPS server that accepts only authenticated WebSocket upgrades.
 *
 *   1. accepted: the raw net.Server's 'connection', before TLS or HTTP makes anything for it;
 *      admission (ws-admission.ts) resets it at once over the per-source or global cap on
 *      unauthenticated connections, else times it (first byte, authentication) until it proves
 *      itself; then it is handed to the HTTP(S) server (which never listens itself)
 *   2. a plain request: 426 (this endpoint only upgrades)
 *   3. an upgrade: subprotocol WS_SUBPROTOCOL (else 400), then the client hello checked by
 *      ws-handshake.ts (400 malformed, 401 not authenticated, 503 replay cache full), and the
 *      node must be a peer (else 401); a refusal is counted (authRejected), logged at warn at most
 *      once a second (the rest at debug), answered and the socket closed
 *   4. hello accepted: 101 with our challenge (our proof of the client's nonce, a fresh server
 *      nonce); the connection is not the peer's yet
 *   5. the client's first message verified as its proof over our nonce: authenticated, it leaves
 *      admission and is handed to the owner (where it may replace the peer's previous one). A
 *      wrong proof (proofFailures) or anything else first (preProofMessages) closes it, logged
 *      like a refusal.
 */
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { LogFields } from '../../core/log-fields.js';
import { formatEndpoint } from '../../core/endpoint.js';
import type { Endpoint } from '../../core/endpoint.js';
import { errorReason } from '../../core/error-reason.js';
import { TransportError } from '../transport-error.js';
import { WS_SUBPROTOCOL } from './ws-framing.js';
import { HandshakeVerifier, serverChallenge } from './ws-handshake.js';
import { Admission, REFUSAL_LOG_INTERVAL_MS } from './ws-admission.js';
import type { Admitted } from './ws-admission.js';
import { UpgradeCompleter } from './ws-connection.js';
import type { ConnectionOwner, ProofGate, WsConnection } from './ws-connection.js';
import type { WsPeer } from './ws-peer.js';
import { readPem } from './pem-file.js';

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  503: 'Service Unavailable',
};

/** What the listener asks of the transport. */
export interface ListenerHost {
  /** The peer `node` names, if it is one. */
  peerOf(node: string): WsPeer | undefined;
  /** Whether `address` is a host of some peer's endpoints (admission keeps room for those). */
  isPeerAddress(address: string): boolean;
  /** An authenticated connection from one of its peers (its proof verified), not marked open yet. */
  accepted(conn: WsConnection): void;
}

export class WsListener {
  private readonly completer: UpgradeCompleter;
  private readonly verifier: HandshakeVerifier;
  private admission: Admission | undefined;
  /** Accepts TCP; admitted connections go on to an HTTP(S) server that never listens itself. */
  private server: NetServer | undefined;
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

  /** Connections admitted and not authenticated yet, and the cap on them (0 before start). */
  get unauthenticated(): { count: number; max: number } {
    return { count: this.admission?.size ?? 0, max: this.admission?.maxTotal ?? 0 };
  }

  /** Reads the TLS files, if any, and listens. Throws TransportError (LISTEN, TLS, CLOSED); may be retried after a failure. */
  async start(): Promise<void> {
    try {
      await this.serve();
    } catch (err: unknown) {
      this.server = undefined;
      this.admission?.close();
      this.admission = undefined;
      throw err;
    }
  }

  /** Stops listening, destroys every connection not authenticated yet. Safe twice. */
  close(): Promise<void> {
    this.closed = true;
    this.admission?.close();
    this.completer.close();
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return Promise.resolve();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async serve(): Promise<void> {
    const http = await this.createHttpServer();
    if (this.closed) throw closedError();
    // Sized now, not at construction: the daemon may have raised the open-files limit since.
    const admission = new Admission(this.owner, (address) => this.host.isPeerAddress(address));
    const server = createNetServer({ allowHalfOpen: true, noDelay: true });
    server.on('connection', (socket: Socket) => {
      if (admission.admit(socket)) http.emit('connection', socket);
    });
    this.admission = admission;
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

  private async createHttpServer(): Promise<HttpServer> {
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

  /** An upgrade request: check the hello, then challenge the client or refuse it. */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    const entry = this.admission?.entryOf(socket);
    if (this.closed || entry === undefined) {
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
    const challenge = serverChallenge(config.secret, config.localNode, verdict.node, verdict.nonce);
    this.completer.complete(req, socket, head, challenge.lines, peer, remote, this.gateFor(entry, challenge.expectedProof),
      (conn) => {
        entry.conn = conn;
        // Timed out (or the listener closed) while ws was finishing the upgrade.
        if (entry.left) conn.end('not authenticated in time');
      });
  }

  /** The check of an upgraded connection's first message: its proof over our nonce. */
  private gateFor(entry: Admitted, expected: Buffer): ProofGate {
    return {
      expected,
      proven: (conn) => {
        if (this.closed || entry.left) {
          conn.end(this.closed ? 'transport closed' : 'not authenticated in time');
          return;
        }
        this.admission?.authenticated(entry);
        this.host.accepted(conn);
      },
      refused: (conn, proof) => {
        const reason = proof ? 'proof did not verify (replayed or forged handshake?)' : 'message before the proof';
        if (proof) this.owner.counters.proofFailures++;
        conn.peer.inboundRefusal = { atMs: this.owner.nowMs(), reason };
        this.logRefusal({ peer: conn.peer.node, remote: conn.remote, reason });
        conn.end(reason);
      },
    };
  }

  private refuse(
    socket: Duplex, remote: string, node: string | undefined, status: number, reason: string, body: string,
  ): void {
    this.owner.counters.authRejected++;
    this.logRefusal({ peer: node, remote, reason });
    // Why that peer stays down, as status tells it. A stranger may claim a peer's name too; it
    // can only change the words shown for a peer that is down anyway.
    const peer = status === 401 && node !== undefined ? this.host.peerOf(node) : undefined;
    if (peer !== undefined) peer.inboundRefusal = { atMs: this.owner.nowMs(), reason };
    const text = `${body}\n`;
    socket.once('finish', () => socket.destroy());
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
        'Connection: close\r\nContent-Type: text/plain\r\n' +
        `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
    );
  }

  /** At warn at most once per REFUSAL_LOG_INTERVAL_MS, the rest at debug. */
  private logRefusal(fields: LogFields): void {
    const nowMs = this.owner.nowMs();
    if (nowMs - this.lastRefusalLogMs >= REFUSAL_LOG_INTERVAL_MS) {
      this.lastRefusalLogMs = nowMs;
      this.owner.log.warn(fields, 'connection refused');
    } else {
      this.owner.log.debug(fields, 'connection refused');
    }
  }
}

function closedError(): TransportError {
  return new TransportError('ERR_PODTUN_WS_CLOSED', 'the WebSocket transport is closed');
}

function listenOn(server: NetServer, listen: Endpoint): Promise<void> {
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
