/**
 * Our side of each peer's connection: we dial every peer that has a `ws` endpoint and names `ws`
 * among its transports, directly or through the proxy `proxyFor` names (http, https, socks5,
 * socks5h: ws-proxy-agent.ts), trusting
 * the system's CAs or those of `caFile`, and redial after a failure or a close.
 *
 *   1. dial(peer): a client hello (ws-handshake.ts) in the upgrade headers, one connection at a
 *      time per peer; the 101 answer must prove the server is the peer (else serverAuthFailed)
 *   2. open: our proof over the server's nonce goes out first (ws-connection.ts); counted
 *      (connectsOk), logged, the peer's state refreshed by the owner
 *   3. failed or closed: a failure is logged at warn once per distinct reason; redial after
 *      min..cap ms, cap = min(reconnectMaxMs, reconnectMinMs * 2^attempt) (full jitter); a
 *      connection that stayed open deadAfterMs resets the backoff.
 */
import { checkServerIdentity } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import type { LogFields } from '../../core/log-fields.js';
import { errorReason } from '../../core/error-reason.js';
import { dialConnection } from './ws-connection.js';
import type { ConnectionOwner, WsConnection } from './ws-connection.js';
import { checkServerProof, clientHello } from './ws-handshake.js';
import type { WsPeer } from './ws-peer.js';
import { readPem } from './pem-file.js';
import { proxyAgent } from './ws-proxy-agent.js';

export class WsDialer {
  private ca: Buffer | undefined;
  /** Dials go out between start() and stop() or close(); after close() no redial is scheduled. */
  private started = false;
  private closed = false;

  constructor(
    private readonly owner: ConnectionOwner,
    /** A dialed connection opened: the owner refreshes the peer's state. */
    private readonly peerChanged: (peer: WsPeer) => void,
  ) {}

  /** Reads the CA file, if any, then lets dials go out (none before: they would not trust it). */
  async start(): Promise<void> {
    const caFile = this.owner.config.caFile;
    if (caFile !== undefined) this.ca = await readPem(caFile, 'CA certificates');
    this.started = true;
  }

  /** A failed start: no dials until the next start. */
  stop(): void {
    this.started = false;
  }

  /** No more dials or redials; cancels the pending redials of `peers`. */
  close(peers: Iterable<WsPeer>): void {
    this.closed = true;
    for (const peer of peers) this.cancelRedial(peer);
  }

  /** The URL we dial `node` at, or undefined when `wsEndpoint` is unusable (logged). */
  target(node: string, wsEndpoint: string): URL | undefined {
    try {
      const url = new URL(wsEndpoint);
      if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error(`scheme ${url.protocol} is not ws: or wss:`);
      return url;
    } catch (err: unknown) {
      this.owner.log.warn({ peer: node, endpoint: wsEndpoint, err }, 'peer ws endpoint unusable; not dialing it');
      return undefined;
    }
  }

  /** Starts our connection to `peer` if we dial it and none is under way. */
  dial(peer: WsPeer): void {
    const url = peer.url;
    if (!this.started || this.closed || peer.removed || url === undefined) return;
    if (peer.dialed !== undefined || peer.redialTimer !== undefined) return;
    const { config, counters } = this.owner;
    const hello = clientHello(config.secret, config.localNode, peer.node, Date.now());
    // Ends the agent's socket to the proxy if we give up while CONNECT is unanswered (ws's
    // terminate() aborts the request, but the agent would keep that socket until the proxy answers).
    const abort = new AbortController();
    let proxy: string | undefined;
    try {
      proxy = config.proxyFor(url.href) || undefined;
      const via = proxy;
      peer.dialed = dialConnection(this.owner, peer, {
        url,
        headers: hello.headers,
        agent: via === undefined ? undefined : proxyAgent(via, { signal: abort.signal, timeoutMs: config.handshakeTimeoutMs }),
        ca: this.ca,
        tlsIdentity: via !== undefined && url.protocol === 'wss:' ? identityCheckFor(url) : undefined,
        abort,
        checkUpgrade: (headers) => {
          const answer = checkServerProof(config.secret, config.localNode, peer.node, hello.nonce, headers);
          if (!answer.ok) counters.serverAuthFailed++;
          return answer;
        },
        opened: (conn) => this.opened(conn, via),
      });
    } catch (err: unknown) {
      counters.connectsFailed++;
      this.failed(peer, `cannot dial ${url.href}${proxy === undefined ? '' : ` via ${redact(proxy)}`}: ${errorReason(err)}`);
      this.scheduleRedial(peer);
    }
  }

  /** The peer's dial target changed: the backoff starts over, and the old connection makes way. */
  retarget(peer: WsPeer): void {
    peer.attempt = 0;
    peer.lastFailure = undefined;
    this.cancelRedial(peer);
    if (peer.dialed !== undefined) peer.dialed.end('peer endpoint changed');
    else this.dial(peer);
  }

  /** Our connection `conn` closed for `reason` (the transport still runs): count, log, redial. */
  closedConnection(conn: WsConnection, reason: string): void {
    const peer = conn.peer;
    if (conn.openedAtMs === 0) {
      this.owner.counters.connectsFailed++;
      this.failed(peer, reason);
    } else if (this.owner.nowMs() - conn.openedAtMs >= this.owner.config.deadAfterMs) {
      peer.attempt = 0;
    }
    this.scheduleRedial(peer);
  }

  cancelRedial(peer: WsPeer): void {
    if (peer.redialTimer !== undefined) clearTimeout(peer.redialTimer);
    peer.redialTimer = undefined;
  }

  private opened(conn: WsConnection, proxy: string | undefined): void {
    const peer = conn.peer;
    this.owner.counters.connectsOk++;
    peer.lastFailure = undefined;
    this.owner.log.info({ peer: peer.node, endpoint: peer.wsEndpoint, proxy: proxy === undefined ? undefined : redact(proxy) },
      'connected');
    this.peerChanged(peer);
  }

  private failed(peer: WsPeer, reason: string): void {
    const fields: LogFields = { peer: peer.node, endpoint: peer.wsEndpoint, reason };
    if (peer.lastFailure !== reason) this.owner.log.warn(fields, 'cannot connect');
    else this.owner.log.debug(fields, 'cannot connect');
    peer.lastFailure = reason;
  }

  /** Redials after min..cap ms, cap = min(reconnectMaxMs, reconnectMinMs * 2^attempt) (full jitter). */
  private scheduleRedial(peer: WsPeer): void {
    if (this.closed || peer.removed || peer.url === undefined) return;
    if (peer.dialed !== undefined || peer.redialTimer !== undefined) return;
    const { reconnectMinMs, reconnectMaxMs } = this.owner.config;
    const capMs = Math.min(reconnectMaxMs, reconnectMinMs * 2 ** peer.attempt);
    const delayMs = reconnectMinMs + Math.random() * (capMs - reconnectMinMs);
    if (capMs < reconnectMaxMs) peer.attempt++;
    peer.redialTimer = setTimeout(() => {
      peer.redialTimer = undefined;
      this.owner.counters.reconnects++;
      this.dial(peer);
    }, delayMs);
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
