/**
 * One WebSocket connection with a peer, dialed or accepted, and how both kinds are made with
 * the tunnel's fixed `ws` options. The one module that imports `ws`.
 *
 * Out, send(batch, idx, plan): each planned message (ws-framing.ts) is encoded into a buffer of
 *   the connection's SendBufferPool and written; the buffer goes back to the pool in ws's send
 *   callback. Packets that fit no message are dropped (Malformed when too short, else TooBig).
 * Proof (ws-handshake.ts): a dialed connection sends its proof message first, before it counts as
 *   open. An accepted one is not open until the client's first message has verified as the proof
 *   the listener expects (its ProofGate); whatever else comes first is refused through the gate.
 * In, once per binary message of an open connection:
 *   1. decode into the transport's reused InboundBatch, tagged with the slot of the peer the
 *      connection authenticated as
 *   2. a garbled or non-binary message is dropped whole (badMessages, drop.malformed)
 *   3. the sink is called once per message.
 * Liveness, every tick: ping every pingIntervalMs (8-byte time stamp, echoed in the pong: RTT);
 *   terminate when silent for deadAfterMs, or a dial not open within handshakeTimeoutMs (an
 *   accepted connection's deadline is the listener's: ws-admission.ts).
 * Close: why it ended (our reason, ws's error, else the close code) is kept for the owner's log.
 */
import { CLAIM_BYTES } from '../../core/ownership-claims.js';
import type { Agent, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';
import type { InboundBatch, PacketBatch } from '../../core/packet-batch.js';
import { DropReason } from '../../core/drop-reason.js';
import type { LogFields } from '../../core/log-fields.js';
import type { Logger } from '../../core/logger.js';
import type { InboundSink } from '../../core/transport.js';
import { errorReason } from '../../core/error-reason.js';
import { MIN_FRAMED_PACKET_LEN, WS_SUBPROTOCOL, decodeMessage, encodeMessage, frameErrorName } from './ws-framing.js';
import type { MessagePlan } from './ws-framing.js';
import type { WsConfig } from './ws-options.js';
import type { WsCounters } from './ws-counters.js';
import type { WsPeer } from './ws-peer.js';
import { SendBufferPool } from './ws-send-pool.js';
import type { WsSealing } from './ws-sealing.js';
import { SEALED_DATA_HEADER_LEN, SEALED_DATA_OVERHEAD } from '../seal/sealed-format.js';
import { isProofMessage, verifyClientProof } from './ws-handshake.js';
import type { ServerAnswer } from './ws-handshake.js';

/** Close code ws uses for a message over maxPayload (RFC 6455 "message too big"). */
const CLOSE_TOO_BIG = 1009;
/** A ping: our timestamp (8, echoed in the pong: RTT), then our subnet claim (core/ownership-claims.ts). */
const PING_OFFSET_CLAIM = 8;
const PING_BYTES = PING_OFFSET_CLAIM + CLAIM_BYTES;
const SRTT_GAIN = 1 / 8;
const SEND_OPTIONS = { binary: true, compress: false } as const;

/** Zero mask: ws then skips masking client frames (tun-io.md pitfall 9); fine between our nodes. */
const zeroMask = (mask: Buffer): void => {
  mask.fill(0);
};

/** What connections share with the transport that owns them. */
export interface ConnectionOwner {
  readonly config: WsConfig;
  readonly log: Logger;
  readonly counters: WsCounters;
  readonly nowMs: () => number;
  /** The batch every connection decodes into (one message at a time, so one for all). */
  readonly inbound: InboundBatch;
  /** Where decoded messages go; undefined before start and after close. */
  sink: InboundSink | undefined;
  /** Sealing (`encryption: sealed`): every message sealed for, and opened from, the connection's peer. */
  readonly sealing: WsSealing | undefined;
  /** Every connection not closed yet: one adds itself when made and leaves on its 'close' event. */
  readonly connections: Set<WsConnection>;
  /** Its 'close' event, after it left `connections`. */
  connectionClosed(conn: WsConnection, code: number): void;
}

/** What the dialer gives for one dial. */
export interface DialRequest {
  readonly url: URL;
  /** The upgrade headers proving who we are (ws-handshake.ts clientHello). */
  readonly headers: Record<string, string>;
  /** An HTTP CONNECT proxy agent, or undefined for a direct connection. */
  readonly agent: Agent | undefined;
  /** CA certificates to trust for wss (undefined: the system's). */
  readonly ca: Buffer | undefined;
  /** More tls.connect options, passed through ws unchanged (the identity check through a proxy). */
  readonly tlsIdentity: object | undefined;
  /** Aborted once the connection has closed: ends a proxy CONNECT that is still unanswered. */
  readonly abort: AbortController;
  /** The server's 101 answer checked: the proof message to send first, or why it does not prove it is the peer. */
  checkUpgrade(headers: IncomingHttpHeaders): ServerAnswer;
  /** The upgrade was proved and the connection is open. */
  opened(conn: WsConnection): void;
}

/** Dials `req.url` for `peer`; the connection starts connecting. Throws what `ws` throws on bad options. */
export function dialConnection(owner: ConnectionOwner, peer: WsPeer, req: DialRequest): WsConnection {
  const ws = new WebSocket(req.url, [WS_SUBPROTOCOL], {
    perMessageDeflate: false,
    maxPayload: owner.config.maxPayloadBytes,
    generateMask: zeroMask,
    headers: req.headers,
    handshakeTimeout: owner.config.handshakeTimeoutMs,
    skipUTF8Validation: true,
    agent: req.agent,
    ...(req.ca === undefined ? {} : { ca: req.ca }),
    ...req.tlsIdentity,
  });
  const conn = new WsConnection(ws, owner, peer, true, req.url.host);
  let proof: Buffer | undefined;
  ws.once('close', () => req.abort.abort());
  ws.on('upgrade', (res: IncomingMessage) => {
    const answer = req.checkUpgrade(res.headers);
    if (!answer.ok) {
      conn.end(answer.reason);
      return;
    }
    proof = answer.proof;
    setNoDelay(res.socket);
  });
  ws.on('unexpected-response', (_req: unknown, res: IncomingMessage) => {
    res.resume();
    conn.end(`server answered HTTP ${res.statusCode ?? '?'}${res.statusMessage ? ` ${res.statusMessage}` : ''}`);
  });
  ws.on('open', () => {
    // First on the wire, before any data or ping: the server counts nothing before it.
    if (proof !== undefined) ws.send(proof, SEND_OPTIONS);
    conn.markOpen(owner.nowMs());
    req.opened(conn);
  });
  return conn;
}

/** What an accepted connection's first message is checked against, and whom it tells. */
export interface ProofGate {
  /** The proof message expected (ws-handshake.ts serverChallenge). */
  readonly expected: Buffer;
  /** The proof verified: the connection may now be taken as the peer's. */
  proven(conn: WsConnection): void;
  /** Anything else came first: `proof` when it had the shape of a proof. The gate's owner ends it. */
  refused(conn: WsConnection, proof: boolean): void;
}

/**
 * Completes upgrades whose hello the listener has checked: ws's server without a server of its
 * own (the listener owns the HTTP server, the checks and the refusals).
 */
export class UpgradeCompleter {
  private readonly wss: WebSocketServer;
  /** Server proof header lines for upgrades being completed. */
  private readonly proofs = new WeakMap<IncomingMessage, readonly string[]>();

  constructor(private readonly owner: ConnectionOwner) {
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: owner.config.maxPayloadBytes,
      clientTracking: false,
      skipUTF8Validation: true,
      handleProtocols: (protocols: Set<string>) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
    });
    this.wss.on('headers', (headers: string[], req: IncomingMessage) => {
      const lines = this.proofs.get(req);
      if (lines !== undefined) headers.push(...lines);
    });
  }

  /**
   * Answers `req` with 101 and `challengeLines`, then hands the connection of `peer`, not open
   * yet, to `upgraded`; it opens once its first message passes `gate`.
   */
  complete(
    req: IncomingMessage, socket: Duplex, head: Buffer, challengeLines: readonly string[], peer: WsPeer, remote: string,
    gate: ProofGate, upgraded: (conn: WsConnection) => void,
  ): void {
    this.proofs.set(req, challengeLines);
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      this.proofs.delete(req);
      setNoDelay(socket);
      upgraded(new WsConnection(ws, this.owner, peer, false, remote, gate));
    });
  }

  close(): void {
    this.wss.close();
  }
}

export class WsConnection {
  /** Authenticated and open: may carry packets. */
  open = false;
  /** When it opened; 0 while it has not. */
  openedAtMs = 0;
  /** We terminated it (its 'close' event may still be pending). */
  private ended = false;
  private readonly startedAtMs: number;
  private lastSeenMs = 0;
  private lastPingMs = 0;
  /** Why we ended it, or why it failed (for the close log). */
  private reason: string | undefined;
  /** A message over maxPayload arrived on it. */
  private oversized = false;
  /** Accepted and awaiting the client's proof: its first message goes here. */
  private gate: ProofGate | undefined;
  /** Where sealed handshake messages on this connection came from, and how they are answered. */
  private readonly controlSource: { readonly remote: string; reply(message: Buffer): void };
  private readonly pool: SendBufferPool;
  /** ws's send callback for every message, made once: hands the pool its buffer back. */
  private readonly onWritten: (err?: Error | null) => void;

  constructor(
    private readonly ws: WebSocket,
    private readonly owner: ConnectionOwner,
    readonly peer: WsPeer,
    readonly dialed: boolean,
    /** "host:port" of the other end as we know it. */
    readonly remote: string,
    gate?: ProofGate,
  ) {
    this.gate = gate;
    this.controlSource = { remote, reply: (message) => void this.sendControl(message) };
    this.startedAtMs = owner.nowMs();
    this.pool = new SendBufferPool(owner.counters, owner.config.maxPayloadBytes);
    this.onWritten = (err) => this.pool.completed(err);
    owner.connections.add(this);
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('pong', (data: Buffer) => this.onPong(data));
    ws.on('ping', (data: Buffer) => {
      this.lastSeenMs = owner.nowMs();
      // Only an open connection's: it has proved it is the peer.
      if (this.openedAtMs > 0 && data.length === PING_BYTES) owner.config.ownership?.heard(this.peer.slot, data, PING_OFFSET_CLAIM);
    });
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.oversized = true;
      this.reason ??= errorReason(err);
    });
    ws.on('close', (code: number) => {
      this.open = false;
      owner.connections.delete(this);
      owner.connectionClosed(this, code);
    });
  }

  /**
   * Sends one control message (a sealed handshake message, a keepalive) as it is; false when the
   * connection cannot send. Control path: one message at a time, never pooled.
   */
  sendControl(message: Buffer): boolean {
    if (!this.canSend) return false;
    this.ws.send(message, SEND_OPTIONS);
    return true;
  }


  /** Open, and so is its socket: sends may go out on it. */
  get canSend(): boolean {
    return this.open && this.ws.readyState === WebSocket.OPEN;
  }

  /** Bytes handed to it and not yet flushed to the socket. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** Authenticated and open (we accepted it, or our dial's upgrade was proved). */
  markOpen(nowMs: number): void {
    this.open = true;
    this.openedAtMs = nowMs;
    this.lastSeenMs = nowMs;
  }

  /**
   * Writes `plan`'s messages of packets `idx[...]` of `batch` (the caller checked the room for
   * them). Borrowed batch: copied into the messages before return. Returns the packets dropped.
   */
  send(batch: PacketBatch, idx: Int32Array, plan: MessagePlan): number {
    const counters = this.owner.counters;
    const drops = counters.drops;
    const packets = plan.packets;
    const sizes = plan.bytes;
    let dropped = 0;
    let at = 0;
    for (let k = 0; k < plan.entries; k++) {
      const n = packets[k] ?? 0;
      const bytes = sizes[k] ?? 0;
      if (n === 0) {
        const reason = bytes < MIN_FRAMED_PACKET_LEN ? DropReason.Malformed : DropReason.TooBig;
        drops[reason] = (drops[reason] ?? 0) + 1;
        dropped++;
        at++;
        continue;
      }
      const sealing = this.owner.sealing;
      let message: Buffer;
      if (sealing === undefined) {
        message = this.pool.take(bytes);
        encodeMessage(batch, idx, at, n, message);
      } else {
        message = this.pool.take(bytes + SEALED_DATA_OVERHEAD);
        encodeMessage(batch, idx, at, n, message, SEALED_DATA_HEADER_LEN);
        if (!sealing.seal(this.peer.slot, message, bytes)) {
          drops[DropReason.NoSession] = (drops[DropReason.NoSession] ?? 0) + n;
          dropped += n;
          at += n;
          continue;
        }
      }
      this.ws.send(message, SEND_OPTIONS, this.onWritten);
      counters.messagesOut++;
      counters.packetsOut += n;
      counters.bytesOut += bytes;
      at += n;
    }
    return dropped;
  }

  /** Liveness: gives up an opening that takes too long or a silent connection; pings. */
  tick(nowMs: number): void {
    if (this.ended) return;
    const config = this.owner.config;
    if (!this.open) {
      // ws's own handshakeTimeout starts only once the proxy agent hands over a socket: a
      // proxy that never answers CONNECT is caught here. (Accepted ones: the listener's deadline.)
      if (this.dialed && nowMs - this.startedAtMs >= config.handshakeTimeoutMs) {
        this.end(`opening handshake timed out after ${config.handshakeTimeoutMs} ms`);
      }
      return;
    }
    if (nowMs - this.lastSeenMs >= config.deadAfterMs) {
      this.owner.counters.deadConnections++;
      this.owner.log.warn({ peer: this.peer.node, remote: this.remote, silentMs: config.deadAfterMs },
        'connection silent; terminating');
      this.end(`no pong or data for ${config.deadAfterMs} ms`);
      return;
    }
    if (nowMs - this.lastPingMs < config.pingIntervalMs) return;
    this.lastPingMs = nowMs;
    const ping = Buffer.alloc(PING_BYTES);
    ping.writeDoubleBE(nowMs, 0);
    config.ownership?.write(this.peer.slot, ping, PING_OFFSET_CLAIM);
    this.ws.ping(ping);
    this.owner.counters.pingsOut++;
  }

  /** Ends it on our side (terminate: no closing handshake to wait for). */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.open = false;
    this.reason = reason;
    this.ws.terminate();
  }

  /**
   * After its 'close' event, while the transport runs: counts an oversized message (at warn the
   * first time in the transport, then at debug), logs the close of a connection that had opened,
   * and returns why it closed.
   */
  explainClose(code: number): string {
    const { counters, log } = this.owner;
    if (this.oversized || code === CLOSE_TOO_BIG) {
      counters.oversized++;
      const fields: LogFields = { peer: this.peer.node, remote: this.remote, count: this.owner.config.maxPayloadBytes };
      const msg = this.oversized ? 'message over maxPayloadBytes received; connection closed'
        : 'peer refused a message as too big; connection closed';
      if (counters.oversized === 1) log.warn(fields, msg);
      else log.debug(fields, msg);
    }
    const reason = this.reason ?? `closed with code ${code}`;
    if (this.openedAtMs > 0) log.info({ peer: this.peer.node, remote: this.remote, reason }, 'connection closed');
    return reason;
  }

  // --- in: one message (borrowed by the sink during the call) ---

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    const gate = this.gate;
    if (gate !== undefined) {
      this.checkProof(gate, data, isBinary);
      return;
    }
    const peer = this.peer;
    const owner = this.owner;
    const nowMs = owner.nowMs();
    this.lastSeenMs = nowMs;
    if (!this.open || peer.removed) return;
    peer.lastSeenMs = nowMs;
    if (!isBinary || !Buffer.isBuffer(data)) {
      this.refuseMessage('text message');
      return;
    }
    const sealing = owner.sealing;
    const framed = sealing === undefined ? data : sealing.open(peer.slot, data, this.controlSource);
    if (framed === undefined) return;
    const n = decodeMessage(framed, peer.slot, owner.inbound);
    if (n < 0) {
      this.refuseMessage(frameErrorName(n));
      return;
    }
    const counters = owner.counters;
    counters.messagesIn++;
    counters.packetsIn += n;
    counters.bytesIn += data.length;
    owner.sink?.(owner.inbound);
  }

  /** The first message of an accepted connection: the proof, or a refusal through the gate. */
  private checkProof(gate: ProofGate, data: RawData, isBinary: boolean): void {
    this.gate = undefined;
    const message = isBinary && Buffer.isBuffer(data) ? data : undefined;
    if (message !== undefined && verifyClientProof(message, gate.expected)) {
      gate.proven(this);
      return;
    }
    const proof = message !== undefined && isProofMessage(message);
    if (!proof) {
      const counters = this.owner.counters;
      counters.preProofMessages++;
      counters.drops[DropReason.Unauthenticated] = (counters.drops[DropReason.Unauthenticated] ?? 0) + 1;
    }
    gate.refused(this, proof);
  }

  /** A message dropped whole: counted once under badMessages and drop.malformed. */
  private refuseMessage(reason: string): void {
    const counters = this.owner.counters;
    counters.badMessages++;
    counters.drops[DropReason.Malformed] = (counters.drops[DropReason.Malformed] ?? 0) + 1;
    if (this.owner.log.isLevelEnabled('debug')) {
      this.owner.log.debug({ peer: this.peer.node, remote: this.remote, reason }, 'message dropped');
    }
  }

  private onPong(data: Buffer): void {
    const nowMs = this.owner.nowMs();
    this.lastSeenMs = nowMs;
    this.owner.counters.pongsIn++;
    const peer = this.peer;
    peer.lastSeenMs = nowMs;
    if (data.length !== PING_BYTES) return;
    const sampleMs = nowMs - data.readDoubleBE(0);
    if (!Number.isFinite(sampleMs) || sampleMs < 0 || sampleMs > nowMs - this.openedAtMs) return;
    peer.rttMs = peer.rttMs === undefined ? sampleMs : peer.rttMs + SRTT_GAIN * (sampleMs - peer.rttMs);
  }
}

function setNoDelay(socket: Duplex | Socket | null): void {
  const s = socket as Partial<Socket> | null;
  if (s !== null && typeof s.setNoDelay === 'function') s.setNoDelay(true);
}
