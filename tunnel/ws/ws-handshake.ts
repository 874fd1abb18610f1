/**
 * Mutual authentication of a WebSocket tunnel connection: a hello in the HTTP upgrade headers,
 * then a challenge-response over a fresh server nonce before the connection carries anything.
 *
 *   client -> server (upgrade request):
 *     x-podtun-node:  <client node name>
 *     x-podtun-time:  <client wall clock, unix ms, decimal>
 *     x-podtun-nonce: <NONCE_BYTES random bytes, hex>
 *     x-podtun-auth:  hex authTag(secret, 'podtun-ws-client', node, dialed node, time, nonce)
 *   server checks: all present and well formed (else 400); node is one of its peers, the tag
 *     names this server as the dialed node (a hello captured on the way to one node is useless
 *     at another), |now - time| <= HANDSHAKE_MAX_SKEW_MS, tag valid, nonce not seen within the
 *     window (else 401); then answers 101 with
 *     x-podtun-node:         <server node name>
 *     x-podtun-server-nonce: <NONCE_BYTES random bytes, hex: fresh for this connection>
 *     x-podtun-auth:         hex authTag(secret, 'podtun-ws-server', server node, client node,
 *                            client nonce, server nonce)
 *   client checks: the server is the node it dialed, its nonce is well formed and its tag is
 *     valid; else it closes. Then its FIRST WebSocket message, before any data, is the proof:
 *     PROOF_MAGIC (8 bytes) | authTag(secret, 'podtun-ws-proof', client node, server node,
 *                                     client nonce, server nonce)
 *   server: the connection is not authenticated until that proof has arrived and verified. Until
 *     then it carries nothing and replaces no connection of the peer; it is closed when the proof
 *     is late (the listener's authTimeoutMs), wrong (proofFailures) or preceded by anything else
 *     (preProofMessages, the message dropped).
 *
 * Why both halves: the hello lets the server refuse strangers before a WebSocket is made, and
 * its nonce cache refuses a replayed hello while the server runs. But that cache lives in memory:
 * after a restart a hello captured on plain ws:// would pass again. The proof closes that hole: it
 * covers a nonce the server drew for this connection only, so no recorded handshake proves
 * anything on another connection, before or after a restart. The server proves itself by tagging
 * the client's fresh nonce, so a party without the secret can pose as neither end.
 *
 * A proof message can never be taken for data: its first 4 bytes, read as a packet length
 * (ws-framing.ts), are far over any packet's. This does not encrypt anything, nor protect a
 * connection from an attacker on the path after the handshake: use wss (TLS) where the underlay
 * is not trusted.
 *
 * Pure functions and a replay cache; no sockets here.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { AUTH_TAG_LEN, authTag, verifyAuthTag } from '../cluster-auth.js';

export const HEADER_NODE = 'x-podtun-node';
export const HEADER_TIME = 'x-podtun-time';
export const HEADER_NONCE = 'x-podtun-nonce';
export const HEADER_AUTH = 'x-podtun-auth';
export const HEADER_SERVER_NONCE = 'x-podtun-server-nonce';

/** Largest accepted difference between the client's clock and the server's. */
export const HANDSHAKE_MAX_SKEW_MS = 60_000;
export const NONCE_BYTES = 16;
/** Nonces remembered at most (a full cache refuses new connections rather than forget). */
export const DEFAULT_MAX_NONCES = 65_536;

const CLIENT_PURPOSE = 'podtun-ws-client';
const SERVER_PURPOSE = 'podtun-ws-server';
const PROOF_PURPOSE = 'podtun-ws-proof';
/** Opens every proof message ("PTPROOF1"; as a packet length 0x50545052, impossible). */
export const PROOF_MAGIC = Buffer.from('PTPROOF1', 'latin1');
/** Bytes of a proof message: PROOF_MAGIC and the tag. */
export const PROOF_LEN = PROOF_MAGIC.length + AUTH_TAG_LEN;
const NONCE_RE = /^[0-9a-f]{32,128}$/;
const TIME_RE = /^\d{1,15}$/;
const TAG_RE = new RegExp(`^[0-9a-f]{${2 * AUTH_TAG_LEN}}$`);
const NODE_MAX_LEN = 253;

export interface ClientHello {
  /** Headers for the upgrade request. */
  headers: Record<string, string>;
  /** Our nonce: the server's proof must tag it (checkServerProof). */
  nonce: string;
}

/** The upgrade headers by which `localNode` proves membership to `targetNode` at wall-clock `nowMs`. */
export function clientHello(secret: Uint8Array, localNode: string, targetNode: string, nowMs: number): ClientHello {
  const nonce = randomBytes(NONCE_BYTES).toString('hex');
  const time = String(Math.floor(nowMs));
  return {
    nonce,
    headers: {
      [HEADER_NODE]: localNode,
      [HEADER_TIME]: time,
      [HEADER_NONCE]: nonce,
      [HEADER_AUTH]: authTag(secret, CLIENT_PURPOSE, localNode, targetNode, time, nonce).toString('hex'),
    },
  };
}

export type HandshakeVerdict =
  | { ok: true; node: string; nonce: string }
  | {
      ok: false;
      /** 400: headers missing or malformed; 401: not authenticated; 503: replay cache full. */
      status: 400 | 401 | 503;
      /** For the log (precise). */
      reason: string;
      /** For the HTTP body (does not say which check failed beyond what is harmless). */
      body: string;
      /** The claimed node name, when there was one. */
      node: string | undefined;
    };

/** Checks clients' upgrade headers for one server; remembers nonces to refuse replays. */
export class HandshakeVerifier {
  /** nonce -> when it may be forgotten (wall-clock ms: its time stamp + the window). */
  private readonly seen = new Map<string, number>();
  private nextSweepMs = 0;

  constructor(
    private readonly secret: Uint8Array,
    /** This server's node name: client tags must name it. */
    private readonly serverNode: string,
    /** Whether `node` is a peer this server accepts connections from. */
    private readonly isKnownNode: (node: string) => boolean,
    private readonly maxNonces: number = DEFAULT_MAX_NONCES,
  ) {}

  /** Nonces currently remembered. */
  get size(): number {
    return this.seen.size;
  }

  /** Verdict on an upgrade request's headers at wall-clock `nowMs`; records the nonce on success. */
  verify(headers: IncomingHttpHeaders, nowMs: number): HandshakeVerdict {
    const node = single(headers[HEADER_NODE]);
    const time = single(headers[HEADER_TIME]);
    const nonce = single(headers[HEADER_NONCE]);
    const tag = single(headers[HEADER_AUTH]);
    if (node === undefined || time === undefined || nonce === undefined || tag === undefined) {
      return refuse(400, 'missing authentication headers', node);
    }
    if (node === '' || node.length > NODE_MAX_LEN) return refuse(400, 'malformed node name', undefined);
    if (!TIME_RE.test(time)) return refuse(400, 'malformed time', node);
    if (!NONCE_RE.test(nonce)) return refuse(400, 'malformed nonce', node);
    if (!TAG_RE.test(tag)) return refuse(400, 'malformed auth tag', node);
    if (!this.isKnownNode(node)) return refuse(401, 'unknown node', node, 'authentication failed');
    const stampMs = Number(time);
    if (Math.abs(nowMs - stampMs) > HANDSHAKE_MAX_SKEW_MS) {
      return refuse(401, `clock skew over ${HANDSHAKE_MAX_SKEW_MS / 1000} s`, node);
    }
    if (!verifyAuthTag(this.secret, Buffer.from(tag, 'hex'), CLIENT_PURPOSE, node, this.serverNode, time, nonce)) {
      return refuse(401, 'bad auth tag', node, 'authentication failed');
    }
    this.sweep(nowMs);
    const until = this.seen.get(nonce);
    if (until !== undefined && until >= nowMs) return refuse(401, 'replayed nonce', node, 'authentication failed');
    if (this.seen.size >= this.maxNonces) return refuse(503, 'replay cache full', node, 'busy, retry later');
    this.seen.set(nonce, stampMs + HANDSHAKE_MAX_SKEW_MS);
    return { ok: true, node, nonce };
  }

  /** Forgets nonces whose time stamp can no longer pass the skew check. */
  private sweep(nowMs: number): void {
    if (nowMs < this.nextSweepMs && this.seen.size < this.maxNonces) return;
    this.nextSweepMs = nowMs + HANDSHAKE_MAX_SKEW_MS;
    for (const [nonce, until] of this.seen) if (until < nowMs) this.seen.delete(nonce);
  }
}

/** What the server answers an authenticated hello with, and the proof it then waits for. */
export interface ServerChallenge {
  /** Header lines ("name: value") of the 101 answer: our node, a fresh nonce, our tag. */
  readonly lines: readonly string[];
  /** The client's first message must be exactly this (verifyClientProof). */
  readonly expectedProof: Buffer;
}

/**
 * The server's side of the challenge for the hello of `clientNode` with `clientNonce`: a fresh
 * server nonce (random unless given: tests), the 101 header lines and the proof to expect.
 */
export function serverChallenge(
  secret: Uint8Array, serverNode: string, clientNode: string, clientNonce: string,
  serverNonce: string = randomBytes(NONCE_BYTES).toString('hex'),
): ServerChallenge {
  const tag = authTag(secret, SERVER_PURPOSE, serverNode, clientNode, clientNonce, serverNonce).toString('hex');
  return {
    lines: [`${HEADER_NODE}: ${serverNode}`, `${HEADER_SERVER_NONCE}: ${serverNonce}`, `${HEADER_AUTH}: ${tag}`],
    expectedProof: clientProof(secret, clientNode, serverNode, clientNonce, serverNonce),
  };
}

/** The proof message `clientNode` sends first on its connection to `serverNode`. */
export function clientProof(
  secret: Uint8Array, clientNode: string, serverNode: string, clientNonce: string, serverNonce: string,
): Buffer {
  const tag = authTag(secret, PROOF_PURPOSE, clientNode, serverNode, clientNonce, serverNonce);
  return Buffer.concat([PROOF_MAGIC, tag], PROOF_LEN);
}

/** Whether a message has the shape of a proof (PROOF_LEN bytes opening with PROOF_MAGIC); not whether it is valid. */
export function isProofMessage(message: Uint8Array): boolean {
  return message.length === PROOF_LEN && PROOF_MAGIC.equals(message.subarray(0, PROOF_MAGIC.length));
}

/** Whether the client's first message is the proof expected (constant-time). */
export function verifyClientProof(message: Uint8Array, expected: Uint8Array): boolean {
  return message.length === expected.length && timingSafeEqual(message, expected);
}

export type ServerAnswer =
  | { ok: true; /** The proof message to send first. */ proof: Buffer }
  | { ok: false; /** Why the answer does not prove the server is the node dialed. */ reason: string };

/**
 * The client's check of the server's 101 answer to its hello (`clientNonce`): it must prove it is
 * `expectedNode` holding the secret; then the answer is the proof message to send first.
 */
export function checkServerProof(
  secret: Uint8Array, clientNode: string, expectedNode: string, clientNonce: string, headers: IncomingHttpHeaders,
): ServerAnswer {
  const node = single(headers[HEADER_NODE]);
  const serverNonce = single(headers[HEADER_SERVER_NONCE]);
  const tag = single(headers[HEADER_AUTH]);
  if (node === undefined || tag === undefined) return { ok: false, reason: 'server sent no authentication headers' };
  if (node !== expectedNode) return { ok: false, reason: `server is node "${node}", not "${expectedNode}"` };
  if (serverNonce === undefined || !NONCE_RE.test(serverNonce)) {
    return { ok: false, reason: 'server sent no or a malformed server nonce (podtun before the proof message?)' };
  }
  if (!TAG_RE.test(tag)) return { ok: false, reason: 'server sent a malformed auth tag' };
  if (!verifyAuthTag(secret, Buffer.from(tag, 'hex'), SERVER_PURPOSE, node, clientNode, clientNonce, serverNonce)) {
    return { ok: false, reason: 'server auth tag invalid (different cluster secret?)' };
  }
  return { ok: true, proof: clientProof(secret, clientNode, node, clientNonce, serverNonce) };
}

function single(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function refuse(
  status: 400 | 401 | 503, reason: string, node: string | undefined, body: string = reason,
): HandshakeVerdict {
  return { ok: false, status, reason, body, node };
}
