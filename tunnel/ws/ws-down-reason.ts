/**
 * Why a WebSocket peer is not up, in the words status, /metrics, the dashboard and doctor show:
 * a short cause an operator acts on, and the detail it came from (the dial's failure text, or
 * the refusal of the peer's own connections). Read only when status is asked for.
 */

/** A refusal of the peer's connections to us counts towards its reason this long. */
export const INBOUND_REFUSAL_REASON_MS = 30_000;

export interface WsDownCause {
  /** "authentication failed", "connection refused on ws", "proxy refused", ... */
  readonly reason: string;
  readonly detail: string;
}

export interface WsDownFacts {
  /** Our last dial's failure, as the dialer logged it; undefined when the last dial did not fail. */
  readonly lastFailure: string | undefined;
  /** Where we dial it (its ws endpoint), for the detail. */
  readonly target: string | undefined;
  /** Whether we dial it through a proxy. */
  readonly proxied: boolean;
  /** Its last connection to us that we refused (authentication), and when. */
  readonly inboundRefusal: { readonly atMs: number; readonly reason: string } | undefined;
  readonly nowMs: number;
}

const AUTH_FAILED = 'authentication failed';

/** The cause, or undefined when nothing failed (no dial failed, nothing refused lately). */
export function wsDownCause(facts: WsDownFacts): WsDownCause | undefined {
  const refusal = facts.inboundRefusal;
  if (refusal !== undefined && facts.nowMs - refusal.atMs < INBOUND_REFUSAL_REASON_MS) {
    return { reason: AUTH_FAILED, detail: `its connection to us was refused: ${refusal.reason}` };
  }
  const failure = facts.lastFailure;
  if (failure !== undefined) {
    const where = facts.target === undefined ? '' : ` (dialing ${facts.target}${facts.proxied ? ' through the proxy' : ''})`;
    return { reason: dialFailureReason(failure, facts.proxied), detail: `${failure}${where}` };
  }
  return undefined;
}

/** A peer we do not dial that has not dialed us, when nothing else is known. */
export const AWAITING_DIAL_IN: WsDownCause = {
  reason: 'waiting for it to dial in',
  detail: 'we do not dial it (no ws endpoint of its own); it has not connected to us',
};

/**
 * The cause in a dial's failure text (ws-dialer.ts, ws-connection.ts): Node's socket errors by
 * code or in core/error-reason.ts's words.
 */
export function dialFailureReason(failure: string, proxied: boolean): string {
  const status = /\bHTTP (\d{3})\b/.exec(failure)?.[1];
  // Our listener answers 401 to a hello it cannot verify; a proof that fails is the server's.
  if (status === '401' || /auth tag invalid|authentication failed|proof/i.test(failure)) return AUTH_FAILED;
  if (status !== undefined) return proxied ? `proxy refused (HTTP ${status})` : `refused by the peer (HTTP ${status})`;
  if (/ECONNREFUSED|connection refused/.test(failure)) return proxied ? 'proxy refused the connection' : 'connection refused on ws';
  if (/ENOTFOUND|EAI_AGAIN/.test(failure)) return 'host name not resolved';
  if (/EHOSTUNREACH|ENETUNREACH|host unreachable|network unreachable/.test(failure)) return 'no route to the peer';
  if (/certificate|self[- ]signed|\bTLS\b|\bSSL\b|altnames/i.test(failure)) return 'TLS failed';
  if (/timed out|ETIMEDOUT|no pong/i.test(failure)) return 'no answer on ws';
  if (/ECONNRESET|connection reset|socket hang up|EPIPE/.test(failure)) return proxied ? 'proxy closed the connection' : 'connection reset on ws';
  return 'cannot connect on ws';
}
