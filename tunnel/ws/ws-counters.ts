/**
 * The WebSocket transport's counters, one set per transport, shared by its parts (listener,
 * dialer, connections, send pools) and reported by WsTransport.stats() under these names.
 */
import { newDropCounters } from '../../core/drop-reason.js';

export class WsCounters {
  /** Packets dropped, indexed by DropReason (reported as `drop.<reason>`). */
  readonly drops = newDropCounters();
  messagesIn = 0;
  messagesOut = 0;
  packetsIn = 0;
  packetsOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  connectsOk = 0;
  connectsFailed = 0;
  inboundAccepted = 0;
  authRejected = 0;
  /** Connections reset at accept: too many unauthenticated ones from their address (ws-admission.ts). */
  refusedPerSourceCap = 0;
  /** Connections reset at accept: too many unauthenticated ones in all (ws-admission.ts). */
  refusedGlobalCap = 0;
  /** Accepted connections closed for not authenticating in time (first byte, upgrade, proof). */
  handshakeTimeouts = 0;
  /** Upgraded connections closed because their proof message did not verify (a replay, a wrong secret). */
  proofFailures = 0;
  /** Messages dropped for arriving before the proof (the connection is closed with them). */
  preProofMessages = 0;
  serverAuthFailed = 0;
  reconnects = 0;
  deadConnections = 0;
  oversized = 0;
  badMessages = 0;
  pingsOut = 0;
  pongsIn = 0;
  /** Messages written from a recycled send buffer (ws-send-pool.ts). */
  sendBuffersReused = 0;
  /** Send buffers allocated for a pool: its first ones, or a bigger one replacing one too small. */
  sendBuffersPooled = 0;
  /** Messages written from a one-off buffer because every pooled one was still being written. */
  sendPoolEmpty = 0;
}
