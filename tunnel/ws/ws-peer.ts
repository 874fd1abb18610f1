/**
 * What the WebSocket transport knows of one peer node: where it dials it, its connections (ours
 * and the newest one it made to us), the dial backoff and its state. Owned by WsTransport; the
 * dialer keeps the dial fields, connections update its liveness fields.
 */
import type { PeerState } from '../../core/transport.js';
import type { WsConnection } from './ws-connection.js';

export interface WsPeer {
  readonly slot: number;
  readonly node: string;
  /** Its `ws` endpoint as given. */
  wsEndpoint: string | undefined;
  /** The IP literals among its endpoints' hosts (WsTransport's address index). */
  addresses: readonly string[];
  /** Where we dial it; undefined when we do not (no endpoint, not among its transports, unusable URL). */
  url: URL | undefined;
  /** Our connection to it (connecting or open). */
  dialed: WsConnection | undefined;
  /** The newest authenticated connection it made to us. */
  inbound: WsConnection | undefined;
  /** Failed dials since the last stable connection (backoff exponent). */
  attempt: number;
  redialTimer: NodeJS.Timeout | undefined;
  /** The last dial failure logged at warn (repeats go to debug). */
  lastFailure: string | undefined;
  /** Its last connection to us refused for authentication (a reason it is down). */
  inboundRefusal: { atMs: number; reason: string } | undefined;
  state: PeerState;
  sinceMs: number;
  rttMs: number | undefined;
  lastSeenMs: number | undefined;
  removed: boolean;
}

export function newWsPeer(slot: number, node: string, wsEndpoint: string | undefined, url: URL | undefined, nowMs: number): WsPeer {
  return {
    slot,
    node,
    wsEndpoint,
    addresses: [],
    url,
    dialed: undefined,
    inbound: undefined,
    attempt: 0,
    redialTimer: undefined,
    lastFailure: undefined,
    inboundRefusal: undefined,
    state: 'unknown',
    sinceMs: nowMs,
    rttMs: undefined,
    lastSeenMs: undefined,
    removed: false,
  };
}

/**
 * The connection to send on: the one we dialed when open, else the inbound one. Each side of a
 * pair that dial each other thus sends on its own dial and receives on both, and no packet is
 * delivered twice.
 */
export function sendingConn(peer: WsPeer): WsConnection | undefined {
  const dialed = peer.dialed;
  if (dialed !== undefined && dialed.canSend) return dialed;
  const inbound = peer.inbound;
  if (inbound !== undefined && inbound.canSend) return inbound;
  return undefined;
}
