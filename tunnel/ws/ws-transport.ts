/**
 * The WebSocket tunnel: pod packets over ws:// or wss://, for networks where UDP is blocked, only
 * HTTP(S) (possibly through a CONNECT proxy) gets out, or a node can only dial out.
 *
 * Connections. Every node dials every peer that has a `ws` endpoint and names `ws` among its
 * transports (while a more preferred transport carries the traffic, the connection stands by), and accepts connections from
 * any peer that authenticates (ws-handshake.ts). A node that can only dial out thus still has a
 * connection with each peer, through its own dial. A pair that dial each other has two
 * connections: each side sends on the one it dialed while that is open, else on the inbound one,
 * and receives from both, so no packet is delivered twice.
 *
 * Inside (router -> peer):
 *   1. send(slot, batch, idx, count): pick the peer's connection (else PeerDown)
 *   2. if what the socket holds unsent + this batch > maxBufferedBytes: drop the whole batch
 *      (Congested). A slow or dead peer costs its own packets, never a wait for others.
 *   3. frame the packets into as few messages of <= maxPayloadBytes as they fit (ws-framing.ts),
 *      one Buffer each; packets that cannot be framed at all are dropped (TooBig / Malformed).
 * Outside (peer -> router), once per binary message:
 *   1. decode into the reused InboundBatch, tagged with the slot the connection authenticated as
 *   2. a garbled or non-binary message is dropped whole (badMessages, drop.malformed)
 *   3. the sink is called once per message.
 * Control, every tick: ping each open connection every pingIntervalMs (8-byte time stamp, echoed
 *   in the pong: RTT); terminate a connection silent for deadAfterMs; redial with jittered
 *   exponential backoff.
 *
 * No MTU overhead (ws-transport-type.ts): the packets ride a TCP byte stream, and TCP cuts it into segments that
 * fit the underlay path MTU on its own, so the framing (4 bytes per packet, 2-14 per message)
 * never makes an underlay packet too big and the TUN MTU need not shrink for it.
 */
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { checkServerIdentity } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';
import type { InboundBatch, PacketBatch } from '../../core/packet-batch.js';
import { DropReason, dropCountersToObject, newDropCounters } from '../../core/drop-reason.js';
import type { LogFields } from '../../core/log-fields.js';
import type { Logger } from '../../core/logger.js';
import { formatEndpoint, parseEndpoint } from '../../core/endpoint.js';
import type { Endpoint } from '../../core/endpoint.js';
import {
  FRAME_LEN_BYTES,
  MIN_FRAMED_PACKET_LEN,
  WS_SUBPROTOCOL,
  decodeMessage,
  encodeBatch,
  fitPackets,
  frameErrorName,
  framedBytes,
  newInboundBatch,
} from './ws-framing.js';
import { HandshakeVerifier, checkServerProof, clientHello, serverProofLines } from './ws-handshake.js';
import type { InboundSink, PeerSpec, PeerState, PeerStatus, Transport } from '../../core/transport.js';
import { errorReason } from '../../core/error-reason.js';
import { PeerSlots, closedHandlesReleased } from '../peer-slots.js';
import { TransportError, positiveOption } from '../transport-error.js';
import { addDrops } from '../transport-stats.js';

export const DEFAULT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
export const DEFAULT_PING_INTERVAL_MS = 1000;
export const DEFAULT_DEAD_AFTER_MS = 3000;
export const DEFAULT_RECONNECT_MIN_MS = 100;
export const DEFAULT_RECONNECT_MAX_MS = 5000;
/** The opening handshake (TCP, proxy CONNECT, TLS, upgrade) gets at least this long. */
const MIN_HANDSHAKE_TIMEOUT_MS = 1000;
/** Plain HTTP requests to the listener (not upgrades) must complete within this. */
const HTTP_REQUEST_TIMEOUT_MS = 10_000;
/** Close code ws uses for a message over maxPayload (RFC 6455 "message too big"). */
const CLOSE_TOO_BIG = 1009;
const PING_BYTES = 8;
const SRTT_GAIN = 1 / 8;
/** Refused connections are logged at warn at most this often; the rest at debug. */
const REFUSAL_LOG_INTERVAL_MS = 1000;
const SEND_OPTIONS = { binary: true, compress: false } as const;

export interface WsTransportOptions {
  localNode: string;
  /** "host:port" to accept connections on; undefined = dial out only. Port 0: ephemeral (see `port`). */
  listen: string | undefined;
  /** Serve wss:// with this certificate and key (PEM files). */
  tls?: { certFile: string; keyFile: string };
  /** PEM file of CA certificates trusted when dialing wss:// peers (default: the system's). */
  caFile?: string;
  clusterSecret: Uint8Array;
  /** Proxy URL ("http://user:pass@host:port") to reach `url` through, or undefined for direct. */
  proxyFor: (url: string) => string | undefined;
  log: Logger;
  /** Bytes a connection may hold unsent before whole batches to that peer are dropped. */
  maxBufferedBytes?: number;
  /** Largest message sent or accepted (bytes); larger incoming ones close the connection (1009). */
  maxPayloadBytes?: number;
  pingIntervalMs?: number;
  /** A connection without pong or data this long is terminated; its peer is down unless another is open. */
  deadAfterMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

interface WsPeer {
  slot: number;
  node: string;
  /** Its `ws` endpoint as given. */
  wsEndpoint: string | undefined;
  /** Where we dial it; undefined when we do not (no endpoint, mode 'udp', unusable URL). */
  url: URL | undefined;
  /** Our connection to it (connecting or open). */
  dialed: WsConn | undefined;
  /** The newest authenticated connection it made to us. */
  inbound: WsConn | undefined;
  /** Failed dials since the last stable connection (backoff exponent). */
  attempt: number;
  redialTimer: NodeJS.Timeout | undefined;
  /** The last dial failure logged at warn (repeats go to debug). */
  lastFailure: string | undefined;
  state: PeerState;
  sinceMs: number;
  rttMs: number | undefined;
  lastSeenMs: number | undefined;
  removed: boolean;
}

interface WsConn {
  ws: WebSocket;
  peer: WsPeer;
  dialed: boolean;
  /** "host:port" of the other end as we know it. */
  remote: string;
  /** Authenticated and open: may carry packets. */
  open: boolean;
  /** We terminated it (its 'close' event may still be pending). */
  ended: boolean;
  startedAtMs: number;
  openedAtMs: number;
  lastSeenMs: number;
  lastPingMs: number;
  /** Our nonce (dialed connections): the server must tag it. */
  nonce: string;
  /** Why we ended it, or why it failed (for the close log). */
  reason: string | undefined;
  /** A message over maxPayload arrived on it. */
  oversized: boolean;
}

const defaultNowMs = (): number => performance.timeOrigin + performance.now();
/** Zero mask: ws then skips masking client frames (tun-io.md pitfall 9); fine between our nodes. */
const zeroMask = (mask: Buffer): void => {
  mask.fill(0);
};

export class WsTransport implements Transport {
  readonly kind = 'ws';

  private readonly localNode: string;
  private readonly listen: Endpoint | undefined;
  private readonly listenText: string | undefined;
  private readonly tls: { certFile: string; keyFile: string } | undefined;
  private readonly caFile: string | undefined;
  private readonly secret: Uint8Array;
  private readonly proxyFor: (url: string) => string | undefined;
  private readonly log: Logger;
  private readonly maxBufferedBytes: number;
  private readonly maxPayloadBytes: number;
  private readonly pingIntervalMs: number;
  private readonly deadAfterMs: number;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly handshakeTimeoutMs: number;
  private readonly nowMs = defaultNowMs;

  private readonly peers = new PeerSlots<WsPeer>('ERR_PODTUN_WS_SLOT');
  private readonly byNode = new Map<string, WsPeer>();
  private readonly conns = new Set<WsConn>();
  /** Sockets being refused (an HTTP error is being written): destroyed on close. */
  private readonly refusing = new Set<Duplex>();
  /** Server proof header lines for upgrades being accepted. */
  private readonly proofs = new WeakMap<IncomingMessage, string[]>();
  private readonly verifier: HandshakeVerifier;
  private readonly inbound: InboundBatch = newInboundBatch();

  private server: HttpServer | undefined;
  private wss: WebSocketServer | undefined;
  private ca: Buffer | undefined;
  private sink: InboundSink | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private onDrained: (() => void) | undefined;
  private boundPort = -1;
  private lastRefusalLogMs = Number.NEGATIVE_INFINITY;
  private oversizedLogged = false;

  // Counters.
  private readonly dropCounters = newDropCounters();
  private messagesIn = 0;
  private messagesOut = 0;
  private packetsIn = 0;
  private packetsOut = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private connectsOk = 0;
  private connectsFailed = 0;
  private inboundAccepted = 0;
  private authRejected = 0;
  private serverAuthFailed = 0;
  private reconnects = 0;
  private deadConnections = 0;
  private oversized = 0;
  private badMessages = 0;
  private pingsOut = 0;
  private pongsIn = 0;

  constructor(options: WsTransportOptions) {
    if (options.listen !== undefined) {
      try {
        this.listen = parseEndpoint(options.listen, { allowPortZero: true });
      } catch (err: unknown) {
        throw new TransportError('ERR_PODTUN_WS_LISTEN',
          `cannot listen on ${String(options.listen)}: ${errorReason(err)}`, { cause: err });
      }
    }
    this.listenText = options.listen;
    this.localNode = options.localNode;
    this.tls = options.tls;
    this.caFile = options.caFile;
    this.secret = options.clusterSecret;
    this.proxyFor = options.proxyFor;
    this.log = options.log;
    this.maxBufferedBytes = positiveOption(options.maxBufferedBytes, DEFAULT_MAX_BUFFERED_BYTES, 'maxBufferedBytes', 'ERR_PODTUN_WS_OPTION');
    this.maxPayloadBytes = positiveOption(options.maxPayloadBytes, DEFAULT_MAX_PAYLOAD_BYTES, 'maxPayloadBytes', 'ERR_PODTUN_WS_OPTION');
    if (this.maxPayloadBytes < FRAME_LEN_BYTES + MIN_FRAMED_PACKET_LEN) {
      throw new TransportError('ERR_PODTUN_WS_OPTION',
        `maxPayloadBytes must be at least ${FRAME_LEN_BYTES + MIN_FRAMED_PACKET_LEN}, got ${this.maxPayloadBytes}`);
    }
    this.pingIntervalMs = positiveOption(options.pingIntervalMs, DEFAULT_PING_INTERVAL_MS, 'pingIntervalMs', 'ERR_PODTUN_WS_OPTION');
    this.deadAfterMs = positiveOption(options.deadAfterMs, DEFAULT_DEAD_AFTER_MS, 'deadAfterMs', 'ERR_PODTUN_WS_OPTION');
    this.reconnectMinMs = positiveOption(options.reconnectMinMs, DEFAULT_RECONNECT_MIN_MS, 'reconnectMinMs', 'ERR_PODTUN_WS_OPTION');
    this.reconnectMaxMs = positiveOption(options.reconnectMaxMs, DEFAULT_RECONNECT_MAX_MS, 'reconnectMaxMs', 'ERR_PODTUN_WS_OPTION');
    if (this.reconnectMaxMs < this.reconnectMinMs) {
      throw new TransportError('ERR_PODTUN_WS_OPTION',
        `reconnectMaxMs (${this.reconnectMaxMs}) must not be below reconnectMinMs (${this.reconnectMinMs})`);
    }
    this.handshakeTimeoutMs = Math.max(this.deadAfterMs, MIN_HANDSHAKE_TIMEOUT_MS);
    this.verifier = new HandshakeVerifier(this.secret, this.localNode, (node) => this.byNode.has(node));
  }

  /** The bound listening port (after start, with `listen` set; useful when port 0 was asked). */
  get port(): number {
    if (this.boundPort < 0) throw new TransportError('ERR_PODTUN_WS_CLOSED', 'the WebSocket transport is not listening');
    return this.boundPort;
  }

  /** Reads TLS files, listens if configured, starts dialing peers and the liveness tick. */
  async start(sink: InboundSink): Promise<void> {
    if (this.closed) throw new TransportError('ERR_PODTUN_WS_CLOSED', 'the WebSocket transport is closed');
    if (this.started) throw new TransportError('ERR_PODTUN_WS_CLOSED', 'the WebSocket transport is already started');
    this.started = true;
    try {
      await this.startServing(sink);
    } catch (err: unknown) {
      this.started = false;
      this.server = undefined;
      throw err;
    }
  }

  private async startServing(sink: InboundSink): Promise<void> {
    if (this.caFile !== undefined) this.ca = await readPem(this.caFile, 'CA certificates');
    const wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: this.maxPayloadBytes,
      clientTracking: false,
      skipUTF8Validation: true,
      handleProtocols: (protocols: Set<string>) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
    });
    wss.on('headers', (headers: string[], req: IncomingMessage) => {
      const lines = this.proofs.get(req);
      if (lines !== undefined) headers.push(...lines);
    });
    if (this.listen !== undefined) {
      const server = await this.createServer();
      if (this.closed) throw new TransportError('ERR_PODTUN_WS_CLOSED', 'the WebSocket transport is closed');
      this.server = server;
      try {
        await listenOn(server, this.listen);
      } catch (err: unknown) {
        throw new TransportError('ERR_PODTUN_WS_LISTEN',
          `cannot listen on ${this.listenText ?? ''}: ${errorReason(err)}`, { cause: err });
      }
      const address = server.address();
      this.boundPort = typeof address === 'object' && address !== null ? address.port : this.listen.port;
      if (this.closed) {
        server.close();
        throw new TransportError('ERR_PODTUN_WS_CLOSED', 'the WebSocket transport is closed');
      }
      this.log.info({ listen: formatEndpoint(this.listen.host, this.boundPort), tls: this.tls !== undefined },
        'ws transport listening');
    } else {
      this.log.info({ listen: undefined }, 'ws transport started, dialing out only');
    }
    this.wss = wss;
    this.sink = sink;
    const tickMs = Math.max(1, Math.min(this.pingIntervalMs, Math.floor(this.deadAfterMs / 4)));
    this.timer = setInterval(() => this.tick(), tickMs);
    for (const peer of this.byNode.values()) this.dial(peer);
  }

  /**
   * Adds or updates the peer in `slot`. The same node with the same dial target (a lease
   * refresh) keeps its connections; a changed target closes our dialed connection and redials.
   */
  setPeer(slot: number, spec: PeerSpec): void {
    this.peers.check(slot);
    const wsEndpoint = spec.endpoints[this.kind];
    const old = this.peers.at(slot);
    const same = old !== undefined && old.node === spec.node;
    if (old !== undefined && !same) this.forget(old);
    const elsewhere = this.byNode.get(spec.node);
    if (elsewhere !== undefined && elsewhere.slot !== slot) this.forget(elsewhere);

    const url = this.dialTarget(spec);
    if (same) {
      if (wsEndpoint === old.wsEndpoint && url?.href === old.url?.href) return;
      old.wsEndpoint = wsEndpoint;
      old.url = url;
      old.attempt = 0;
      old.lastFailure = undefined;
      if (old.redialTimer !== undefined) clearTimeout(old.redialTimer);
      old.redialTimer = undefined;
      if (old.dialed !== undefined) this.end(old.dialed, 'peer endpoint changed');
      else this.dial(old);
      return;
    }
    const peer: WsPeer = {
      slot,
      node: spec.node,
      wsEndpoint,
      url,
      dialed: undefined,
      inbound: undefined,
      attempt: 0,
      redialTimer: undefined,
      lastFailure: undefined,
      state: 'unknown',
      sinceMs: this.nowMs(),
      rttMs: undefined,
      lastSeenMs: undefined,
      removed: false,
    };
    this.peers.set(slot, peer);
    this.byNode.set(spec.node, peer);
    this.dial(peer);
  }

  /** Forgets the peer in `slot`: closes its connections and stops redialing it. */
  removePeer(slot: number): void {
    this.peers.check(slot);
    const peer = this.peers.at(slot);
    if (peer !== undefined) this.forget(peer);
  }

  /**
   * Sends packets `idx[0..count)` of `batch` (virtio header first, as read from the TUN) to the
   * peer in `slot`, framed into messages. Borrowed batch: copied into the messages before return.
   * Never waits: with no open connection (PeerDown) or too much unsent already (Congested) the
   * whole batch is dropped. Returns how many packets were dropped.
   */
  send(slot: number, batch: PacketBatch, idx: Int32Array, count: number): number {
    const peer = this.peers.at(slot);
    const conn = peer === undefined ? undefined : sendingConn(peer);
    const drops = this.dropCounters;
    if (conn === undefined) {
      drops[DropReason.PeerDown] = (drops[DropReason.PeerDown] ?? 0) + count;
      return count;
    }
    const ws = conn.ws;
    if (ws.bufferedAmount + framedBytes(batch, idx, 0, count) > this.maxBufferedBytes) {
      drops[DropReason.Congested] = (drops[DropReason.Congested] ?? 0) + count;
      return count;
    }
    let dropped = 0;
    let i = 0;
    while (i < count) {
      const n = fitPackets(batch, idx, i, count - i, this.maxPayloadBytes);
      if (n === 0) {
        const len = batch.offs[2 * (idx[i] ?? 0) + 1] ?? 0;
        const reason = len < MIN_FRAMED_PACKET_LEN ? DropReason.Malformed : DropReason.TooBig;
        drops[reason] = (drops[reason] ?? 0) + 1;
        dropped++;
        i++;
        continue;
      }
      const message = encodeBatch(batch, idx, i, n);
      ws.send(message, SEND_OPTIONS);
      this.messagesOut++;
      this.packetsOut += n;
      this.bytesOut += message.length;
      i += n;
    }
    return dropped;
  }

  peerStatus(): PeerStatus[] {
    const out: PeerStatus[] = [];
    for (const peer of this.peers.values()) {
      out.push({
        slot: peer.slot,
        node: peer.node,
        transport: 'ws',
        endpoint: peer.wsEndpoint,
        state: peer.state,
        rttMs: peer.rttMs,
        lastSeenMs: peer.lastSeenMs,
      });
    }
    return out;
  }

  drops(): Record<string, number> {
    return dropCountersToObject(this.dropCounters);
  }

  stats(): Record<string, number> {
    let open = 0;
    let buffered = 0;
    for (const conn of this.conns) {
      if (!conn.open) continue;
      open++;
      buffered += conn.ws.bufferedAmount;
    }
    const out: Record<string, number> = {
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      packetsIn: this.packetsIn,
      packetsOut: this.packetsOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      connectionsOpen: open,
      /** Unsent bytes held by open connections (each at most maxBufferedBytes + frame headers). */
      bufferedBytes: buffered,
      connectsOk: this.connectsOk,
      connectsFailed: this.connectsFailed,
      inboundAccepted: this.inboundAccepted,
      authRejected: this.authRejected,
      serverAuthFailed: this.serverAuthFailed,
      reconnects: this.reconnects,
      deadConnections: this.deadConnections,
      oversized: this.oversized,
      badMessages: this.badMessages,
      pingsOut: this.pingsOut,
      pongsIn: this.pongsIn,
    };
    addDrops(out, this.dropCounters);
    return out;
  }

  /** Stops timers and dials, terminates every connection, closes the listener. Safe twice. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.sink = undefined;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    for (const peer of this.byNode.values()) {
      if (peer.redialTimer !== undefined) clearTimeout(peer.redialTimer);
      peer.redialTimer = undefined;
    }
    const drained = this.conns.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => {
      this.onDrained = resolve;
    });
    for (const conn of [...this.conns]) this.end(conn, 'transport closed');
    for (const socket of this.refusing) socket.destroy();
    this.refusing.clear();
    this.wss?.close();
    this.wss = undefined;
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) {
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await serverClosed;
    }
    await drained;
    // 'close' events come before libuv has released the handles; they are gone a loop turn later.
    await closedHandlesReleased();
  }

  // --- connections ---

  private async createServer(): Promise<HttpServer> {
    let server: HttpServer;
    if (this.tls !== undefined) {
      const cert = await readPem(this.tls.certFile, 'TLS certificate');
      const key = await readPem(this.tls.keyFile, 'TLS key');
      try {
        server = createHttpsServer({ cert, key });
      } catch (err: unknown) {
        throw new TransportError('ERR_PODTUN_WS_TLS',
          `cannot use TLS certificate ${this.tls.certFile} with key ${this.tls.keyFile}: ${errorReason(err)}`,
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
      this.log.debug({ remote: remoteOf(socket), err }, 'tls handshake failed');
    });
    return server;
  }

  /** An upgrade request on our listener: authenticate, then hand it to ws or refuse it. */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    const wss = this.wss;
    if (this.closed || wss === undefined) {
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
    const peer = this.byNode.get(verdict.node);
    if (peer === undefined) {
      this.refuse(socket, remote, verdict.node, 401, 'unknown node', 'authentication failed');
      return;
    }
    this.proofs.set(req, serverProofLines(this.secret, this.localNode, verdict.nonce));
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      this.proofs.delete(req);
      this.accepted(ws, peer, socket, remote);
    });
  }

  private refuse(
    socket: Duplex, remote: string, node: string | undefined, status: number, reason: string, body: string,
  ): void {
    this.authRejected++;
    const nowMs = this.nowMs();
    const fields: LogFields = { peer: node, remote, reason };
    if (nowMs - this.lastRefusalLogMs >= REFUSAL_LOG_INTERVAL_MS) {
      this.lastRefusalLogMs = nowMs;
      this.log.warn(fields, 'connection refused');
    } else {
      this.log.debug(fields, 'connection refused');
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

  private accepted(ws: WebSocket, peer: WsPeer, socket: Duplex, remote: string): void {
    if (this.closed || peer.removed) {
      ws.terminate();
      return;
    }
    setNoDelay(socket);
    const nowMs = this.nowMs();
    const conn = this.track(ws, peer, false, remote, '');
    conn.open = true;
    conn.openedAtMs = nowMs;
    conn.lastSeenMs = nowMs;
    this.inboundAccepted++;
    const previous = peer.inbound;
    peer.inbound = conn;
    if (previous !== undefined) this.end(previous, 'replaced by a newer connection from the peer');
    this.log.info({ peer: peer.node, remote }, 'connection accepted');
    this.refreshState(peer);
  }

  /** Starts our connection to `peer` if we dial it and none is under way. */
  private dial(peer: WsPeer): void {
    const url = peer.url;
    if (!this.started || this.closed || peer.removed || url === undefined) return;
    if (peer.dialed !== undefined || peer.redialTimer !== undefined) return;
    const hello = clientHello(this.secret, this.localNode, peer.node, Date.now());
    // Ends the agent's socket to the proxy if we give up while CONNECT is unanswered (ws's
    // terminate() aborts the request, but the agent would keep that socket until the proxy answers).
    const abort = new AbortController();
    let proxy: string | undefined;
    let ws: WebSocket;
    try {
      proxy = this.proxyFor(url.href) || undefined;
      ws = new WebSocket(url, [WS_SUBPROTOCOL], {
        perMessageDeflate: false,
        maxPayload: this.maxPayloadBytes,
        generateMask: zeroMask,
        headers: hello.headers,
        handshakeTimeout: this.handshakeTimeoutMs,
        skipUTF8Validation: true,
        agent: proxy === undefined ? undefined : new HttpsProxyAgent(proxy, { signal: abort.signal }),
        ...(this.ca === undefined ? {} : { ca: this.ca }),
        ...(proxy !== undefined && url.protocol === 'wss:' ? identityCheckFor(url) : {}),
      });
    } catch (err: unknown) {
      this.connectsFailed++;
      this.dialFailed(peer, `cannot dial ${url.href}${proxy === undefined ? '' : ` via ${redact(proxy)}`}: ${errorReason(err)}`);
      this.scheduleRedial(peer);
      return;
    }
    const conn = this.track(ws, peer, true, url.host, hello.nonce);
    peer.dialed = conn;
    ws.once('close', () => abort.abort());
    ws.on('upgrade', (res: IncomingMessage) => {
      const reason = checkServerProof(this.secret, peer.node, conn.nonce, res.headers);
      if (reason !== undefined) {
        this.serverAuthFailed++;
        this.end(conn, reason);
        return;
      }
      setNoDelay(res.socket);
    });
    ws.on('unexpected-response', (_req: unknown, res: IncomingMessage) => {
      res.resume();
      this.end(conn, `server answered HTTP ${res.statusCode ?? '?'}${res.statusMessage ? ` ${res.statusMessage}` : ''}`);
    });
    ws.on('open', () => {
      const nowMs = this.nowMs();
      conn.open = true;
      conn.openedAtMs = nowMs;
      conn.lastSeenMs = nowMs;
      this.connectsOk++;
      peer.lastFailure = undefined;
      this.log.info({ peer: peer.node, endpoint: peer.wsEndpoint, proxy: proxy === undefined ? undefined : redact(proxy) },
        'connected');
      this.refreshState(peer);
    });
  }

  /** Registers the listeners every connection has; returns its record. */
  private track(ws: WebSocket, peer: WsPeer, dialed: boolean, remote: string, nonce: string): WsConn {
    const conn: WsConn = {
      ws,
      peer,
      dialed,
      remote,
      open: false,
      ended: false,
      startedAtMs: this.nowMs(),
      openedAtMs: 0,
      lastSeenMs: 0,
      lastPingMs: 0,
      nonce,
      reason: undefined,
      oversized: false,
    };
    this.conns.add(conn);
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(conn, data, isBinary));
    ws.on('pong', (data: Buffer) => this.onPong(conn, data));
    ws.on('ping', () => {
      conn.lastSeenMs = this.nowMs();
    });
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') conn.oversized = true;
      conn.reason ??= errorReason(err);
    });
    ws.on('close', (code: number) => this.onClose(conn, code));
    return conn;
  }

  private onClose(conn: WsConn, code: number): void {
    const peer = conn.peer;
    const wasOpen = conn.openedAtMs > 0;
    conn.open = false;
    this.conns.delete(conn);
    if (peer.dialed === conn) peer.dialed = undefined;
    if (peer.inbound === conn) peer.inbound = undefined;
    if (this.closed) {
      if (this.conns.size === 0) this.onDrained?.();
      return;
    }
    if (conn.oversized || code === CLOSE_TOO_BIG) {
      this.oversized++;
      const fields: LogFields = { peer: peer.node, remote: conn.remote, count: this.maxPayloadBytes };
      const msg = conn.oversized ? 'message over maxPayloadBytes received; connection closed'
        : 'peer refused a message as too big; connection closed';
      if (!this.oversizedLogged) this.log.warn(fields, msg);
      else this.log.debug(fields, msg);
      this.oversizedLogged = true;
    }
    const nowMs = this.nowMs();
    const reason = conn.reason ?? `closed with code ${code}`;
    if (wasOpen) {
      this.log.info({ peer: peer.node, remote: conn.remote, reason }, 'connection closed');
    }
    if (conn.dialed) {
      if (!wasOpen) {
        this.connectsFailed++;
        this.dialFailed(peer, reason);
      } else if (nowMs - conn.openedAtMs >= this.deadAfterMs) {
        peer.attempt = 0;
      }
      this.scheduleRedial(peer);
    }
    this.refreshState(peer);
  }

  private dialFailed(peer: WsPeer, reason: string): void {
    const fields: LogFields = { peer: peer.node, endpoint: peer.wsEndpoint, reason };
    if (peer.lastFailure !== reason) this.log.warn(fields, 'cannot connect');
    else this.log.debug(fields, 'cannot connect');
    peer.lastFailure = reason;
  }

  /** Redials after min..cap ms, cap = min(reconnectMaxMs, reconnectMinMs * 2^attempt) (full jitter). */
  private scheduleRedial(peer: WsPeer): void {
    if (this.closed || peer.removed || peer.url === undefined) return;
    if (peer.dialed !== undefined || peer.redialTimer !== undefined) return;
    const capMs = Math.min(this.reconnectMaxMs, this.reconnectMinMs * 2 ** peer.attempt);
    const delayMs = this.reconnectMinMs + Math.random() * (capMs - this.reconnectMinMs);
    if (capMs < this.reconnectMaxMs) peer.attempt++;
    peer.redialTimer = setTimeout(() => {
      peer.redialTimer = undefined;
      this.reconnects++;
      this.dial(peer);
    }, delayMs);
  }

  /** Ends a connection on our side (terminate: no closing handshake to wait for). */
  private end(conn: WsConn, reason: string): void {
    if (conn.ended) return;
    conn.ended = true;
    conn.open = false;
    conn.reason = reason;
    conn.ws.terminate();
  }

  // --- outside: one message (borrowed by the sink during the call) ---

  private onMessage(conn: WsConn, data: RawData, isBinary: boolean): void {
    const peer = conn.peer;
    const nowMs = this.nowMs();
    conn.lastSeenMs = nowMs;
    if (!conn.open || peer.removed) return;
    peer.lastSeenMs = nowMs;
    if (!isBinary || !Buffer.isBuffer(data)) {
      this.refuseMessage(conn, 'text message');
      return;
    }
    const n = decodeMessage(data, peer.slot, this.inbound);
    if (n < 0) {
      this.refuseMessage(conn, frameErrorName(n));
      return;
    }
    this.messagesIn++;
    this.packetsIn += n;
    this.bytesIn += data.length;
    this.sink?.(this.inbound);
  }

  /** A message dropped whole: counted once under badMessages and drop.malformed. */
  private refuseMessage(conn: WsConn, reason: string): void {
    this.badMessages++;
    this.dropCounters[DropReason.Malformed] = (this.dropCounters[DropReason.Malformed] ?? 0) + 1;
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ peer: conn.peer.node, remote: conn.remote, reason }, 'message dropped');
    }
  }

  private onPong(conn: WsConn, data: Buffer): void {
    const nowMs = this.nowMs();
    conn.lastSeenMs = nowMs;
    this.pongsIn++;
    const peer = conn.peer;
    peer.lastSeenMs = nowMs;
    if (data.length !== PING_BYTES) return;
    const sampleMs = nowMs - data.readDoubleBE(0);
    if (!Number.isFinite(sampleMs) || sampleMs < 0 || sampleMs > nowMs - conn.openedAtMs) return;
    peer.rttMs = peer.rttMs === undefined ? sampleMs : peer.rttMs + SRTT_GAIN * (sampleMs - peer.rttMs);
  }

  // --- control ---

  private tick(): void {
    const nowMs = this.nowMs();
    for (const conn of this.conns) {
      if (conn.ended) continue;
      if (!conn.open) {
        // ws's own handshakeTimeout starts only once the proxy agent hands over a socket: a
        // proxy that never answers CONNECT is caught here.
        if (nowMs - conn.startedAtMs >= this.handshakeTimeoutMs) {
          this.end(conn, `opening handshake timed out after ${this.handshakeTimeoutMs} ms`);
        }
        continue;
      }
      if (nowMs - conn.lastSeenMs >= this.deadAfterMs) {
        this.deadConnections++;
        this.log.warn({ peer: conn.peer.node, remote: conn.remote, silentMs: this.deadAfterMs },
          'connection silent; terminating');
        this.end(conn, `no pong or data for ${this.deadAfterMs} ms`);
        continue;
      }
      if (nowMs - conn.lastPingMs < this.pingIntervalMs) continue;
      conn.lastPingMs = nowMs;
      const ping = Buffer.allocUnsafe(PING_BYTES);
      ping.writeDoubleBE(nowMs, 0);
      conn.ws.ping(ping);
      this.pingsOut++;
    }
    for (const peer of this.byNode.values()) {
      if (peer.state === 'unknown' && nowMs - peer.sinceMs >= this.deadAfterMs) {
        peer.state = 'down';
        this.log.warn({ peer: peer.node, endpoint: peer.wsEndpoint }, 'peer unreachable');
      }
    }
  }

  /** up while an authenticated connection is open, else down (logged on change). */
  private refreshState(peer: WsPeer): void {
    if (peer.removed || this.closed) return;
    const up = sendingConn(peer) !== undefined;
    if (up && peer.state !== 'up') {
      peer.state = 'up';
      this.log.info({ peer: peer.node, endpoint: peer.wsEndpoint }, 'peer up');
    } else if (!up && peer.state === 'up') {
      peer.state = 'down';
      this.log.warn({ peer: peer.node, endpoint: peer.wsEndpoint }, 'peer down');
    }
  }

  /** The URL we dial for `spec`, or undefined (not dialed; an unusable URL is logged). */
  private dialTarget(spec: PeerSpec): URL | undefined {
    const wsEndpoint = spec.endpoints[this.kind];
    if (wsEndpoint === undefined || !spec.transports.includes(this.kind)) return undefined;
    try {
      const url = new URL(wsEndpoint);
      if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error(`scheme ${url.protocol} is not ws: or wss:`);
      return url;
    } catch (err: unknown) {
      this.log.warn({ peer: spec.node, endpoint: wsEndpoint, err }, 'peer ws endpoint unusable; not dialing it');
      return undefined;
    }
  }

  private forget(peer: WsPeer): void {
    peer.removed = true;
    this.peers.clear(peer.slot);
    if (this.byNode.get(peer.node) === peer) this.byNode.delete(peer.node);
    if (peer.redialTimer !== undefined) clearTimeout(peer.redialTimer);
    peer.redialTimer = undefined;
    if (peer.dialed !== undefined) this.end(peer.dialed, 'peer removed');
    if (peer.inbound !== undefined) this.end(peer.inbound, 'peer removed');
  }
}

/** The connection to send on: the one we dialed when open, else the inbound one. */
function sendingConn(peer: WsPeer): WsConn | undefined {
  const dialed = peer.dialed;
  if (dialed !== undefined && dialed.open && dialed.ws.readyState === WebSocket.OPEN) return dialed;
  const inbound = peer.inbound;
  if (inbound !== undefined && inbound.open && inbound.ws.readyState === WebSocket.OPEN) return inbound;
  return undefined;
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

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err: unknown) {
    throw new TransportError('ERR_PODTUN_WS_TLS', `cannot read ${what} ${file}: ${errorReason(err)}`, { cause: err });
  }
}

/**
 * Through a proxy, https-proxy-agent starts TLS to the target without its host name and, for an
 * IP-literal host, without SNI: Node would then check the certificate against "localhost". This
 * checks it against the host we dial. Returned as `object` because ws's typing of the option
 * (boolean result) predates Node's (Error | undefined); ws passes it to tls.connect unchanged.
 */
function identityCheckFor(url: URL): object {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const options: Pick<ConnectionOptions, 'checkServerIdentity'> = {
    checkServerIdentity: (_servername, cert) => checkServerIdentity(host, cert),
  };
  return options;
}

function setNoDelay(socket: Duplex | Socket | null): void {
  const s = socket as Partial<Socket> | null;
  if (s !== null && typeof s.setNoDelay === 'function') s.setNoDelay(true);
}

function remoteOf(socket: Duplex): string {
  const s = socket as Partial<Socket>;
  const host = s.remoteAddress;
  return host === undefined ? 'unknown' : formatEndpoint(host, s.remotePort ?? 0);
}

/** The proxy URL without its password, for logs. */
function redact(proxy: string): string {
  try {
    const url = new URL(proxy);
    if (url.password !== '') url.password = '***';
    return url.href;
  } catch {
    return '(unparsable proxy URL)';
  }
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  503: 'Service Unavailable',
};


