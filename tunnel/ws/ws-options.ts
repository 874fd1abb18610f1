/**
 * The WebSocket transport's options: what the caller may set, the defaults, and the checked,
 * frozen form the transport's parts read (WsConfig). Every bad value throws a TransportError
 * naming the option.
 */
import type { OwnershipClaims } from '../../core/ownership-claims.js';
import { FRAME_LEN_BYTES, MIN_FRAMED_PACKET_LEN } from './ws-framing.js';
import type { Logger } from '../../core/logger.js';
import type { NativeSealer } from '../../native/addon.js';
import type { NodeKeyPair } from '../seal/node-key.js';
import { parseEndpoint } from '../../core/endpoint.js';
import type { Endpoint } from '../../core/endpoint.js';
import { errorReason } from '../../core/error-reason.js';
import { TransportError, positiveOption } from '../transport-error.js';

export const DEFAULT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
export const DEFAULT_PING_INTERVAL_MS = 1000;
export const DEFAULT_DEAD_AFTER_MS = 3000;
export const DEFAULT_RECONNECT_MIN_MS = 100;
export const DEFAULT_RECONNECT_MAX_MS = 5000;
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 5000;
export const DEFAULT_AUTH_TIMEOUT_MS = 5000;
export const DEFAULT_MAX_UNAUTHENTICATED_PER_SOURCE = 16;
/** The opening handshake (TCP, proxy CONNECT, TLS, upgrade) gets at least this long. */
const MIN_HANDSHAKE_TIMEOUT_MS = 1000;

export interface WsTransportOptions {
  localNode: string;
  /** "host:port" to accept connections on; undefined = dial out only. Port 0: ephemeral (see `port`). */
  listen: string | undefined;
  /** Serve wss:// with this certificate and key (PEM files). */
  tls?: { certFile: string; keyFile: string };
  /** PEM file of CA certificates trusted when dialing wss:// peers (default: the system's). */
  caFile?: string;
  clusterSecret: Uint8Array;
  /**
   * Seal every message (`encryption: sealed`, ws-sealing.ts): this node's key, the addon's sealer
   * (owned by the transport from here: closed with it) and whether AES runs in hardware here.
   */
  sealing?: { nodeKey: NodeKeyPair; sealer: NativeSealer; cpuHasAesHw: boolean; rekeyAfterMessages?: number };
  /** Proxy URL ("http://user:pass@host:port") to reach `url` through, or undefined for direct. */
  proxyFor: (url: string) => string | undefined;
  /** The subnet claims pings carry and check (core/ownership-claims.ts); none when absent. */
  ownership?: OwnershipClaims;
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
  /** The listener closes an accepted connection that sends no byte within this (handshakeTimeouts). */
  firstByteTimeoutMs?: number;
  /**
   * The listener closes an accepted connection not authenticated within this: upgrade answered
   * and the client's proof message verified (ws-handshake.ts). Counted in handshakeTimeouts.
   */
  authTimeoutMs?: number;
  /** Connections not yet authenticated from one source address, at most; more are reset at once. */
  maxUnauthenticatedPerSource?: number;
  /**
   * Connections not yet authenticated, at most; more are reset at once. A quarter is kept for
   * peers' addresses (ws-admission.ts). Default: min(1024, the open-files soft limit / 4), read
   * when the listener starts.
   */
  maxUnauthenticated?: number;
}

/** The options checked, defaults filled in. */
export interface WsConfig {
  readonly localNode: string;
  /** Where to listen, parsed, and as given (for messages); undefined: dial out only. */
  readonly listen: Endpoint | undefined;
  readonly listenText: string | undefined;
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  readonly caFile: string | undefined;
  readonly secret: Uint8Array;
  readonly proxyFor: (url: string) => string | undefined;
  readonly ownership: OwnershipClaims | undefined;
  readonly maxBufferedBytes: number;
  readonly maxPayloadBytes: number;
  readonly pingIntervalMs: number;
  readonly deadAfterMs: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  /** How long a connection may take to open before it is given up: max(deadAfterMs, 1 s). */
  readonly handshakeTimeoutMs: number;
  readonly firstByteTimeoutMs: number;
  readonly authTimeoutMs: number;
  readonly maxUnauthenticatedPerSource: number;
  /** undefined: from the open-files limit when the listener starts. */
  readonly maxUnauthenticated: number | undefined;
}

const OPTION_ERROR = 'ERR_PODTUN_WS_OPTION';

export function resolveWsOptions(options: WsTransportOptions): WsConfig {
  let listen: Endpoint | undefined;
  if (options.listen !== undefined) {
    try {
      listen = parseEndpoint(options.listen, { allowPortZero: true });
    } catch (err: unknown) {
      throw new TransportError('ERR_PODTUN_WS_LISTEN',
        `cannot listen on ${String(options.listen)}: ${errorReason(err)}`, { cause: err });
    }
  }
  const maxBufferedBytes = positiveOption(options.maxBufferedBytes, DEFAULT_MAX_BUFFERED_BYTES, 'maxBufferedBytes', OPTION_ERROR);
  const maxPayloadBytes = positiveOption(options.maxPayloadBytes, DEFAULT_MAX_PAYLOAD_BYTES, 'maxPayloadBytes', OPTION_ERROR);
  if (maxPayloadBytes < FRAME_LEN_BYTES + MIN_FRAMED_PACKET_LEN) {
    throw new TransportError(OPTION_ERROR,
      `maxPayloadBytes must be at least ${FRAME_LEN_BYTES + MIN_FRAMED_PACKET_LEN}, got ${maxPayloadBytes}`);
  }
  const pingIntervalMs = positiveOption(options.pingIntervalMs, DEFAULT_PING_INTERVAL_MS, 'pingIntervalMs', OPTION_ERROR);
  const deadAfterMs = positiveOption(options.deadAfterMs, DEFAULT_DEAD_AFTER_MS, 'deadAfterMs', OPTION_ERROR);
  const reconnectMinMs = positiveOption(options.reconnectMinMs, DEFAULT_RECONNECT_MIN_MS, 'reconnectMinMs', OPTION_ERROR);
  const reconnectMaxMs = positiveOption(options.reconnectMaxMs, DEFAULT_RECONNECT_MAX_MS, 'reconnectMaxMs', OPTION_ERROR);
  if (reconnectMaxMs < reconnectMinMs) {
    throw new TransportError(OPTION_ERROR,
      `reconnectMaxMs (${reconnectMaxMs}) must not be below reconnectMinMs (${reconnectMinMs})`);
  }
  const firstByteTimeoutMs = positiveOption(options.firstByteTimeoutMs, DEFAULT_FIRST_BYTE_TIMEOUT_MS, 'firstByteTimeoutMs', OPTION_ERROR);
  const authTimeoutMs = positiveOption(options.authTimeoutMs, DEFAULT_AUTH_TIMEOUT_MS, 'authTimeoutMs', OPTION_ERROR);
  const maxUnauthenticatedPerSource = countOption(options.maxUnauthenticatedPerSource,
    DEFAULT_MAX_UNAUTHENTICATED_PER_SOURCE, 'maxUnauthenticatedPerSource');
  const maxUnauthenticated = options.maxUnauthenticated === undefined ? undefined
    : countOption(options.maxUnauthenticated, 0, 'maxUnauthenticated');
  return Object.freeze({
    localNode: options.localNode,
    listen,
    listenText: options.listen,
    tls: options.tls,
    caFile: options.caFile,
    // Our own copy (TransportContext): the caller may reuse its buffer.
    secret: Uint8Array.from(options.clusterSecret),
    proxyFor: options.proxyFor,
    ownership: options.ownership,
    maxBufferedBytes,
    maxPayloadBytes,
    pingIntervalMs,
    deadAfterMs,
    reconnectMinMs,
    reconnectMaxMs,
    handshakeTimeoutMs: Math.max(deadAfterMs, MIN_HANDSHAKE_TIMEOUT_MS),
    firstByteTimeoutMs,
    authTimeoutMs,
    maxUnauthenticatedPerSource,
    maxUnauthenticated,
  });
}

/** A whole number of connections, at least 1. */
function countOption(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new TransportError(OPTION_ERROR, `${name} must be a whole number >= 1, got ${value}`);
  }
  return value;
}
