/**
 * Mutual authentication of a WebSocket tunnel connection, carried in the HTTP upgrade headers.
 *
 *   client -> server (upgrade request):
 *     x-podtun-node:  <client node name>
 *     x-podtun-time:  <client wall clock, unix ms, decimal>
 *     x-podtun-nonce: <NONCE_BYTES random bytes, hex>
 *     x-podtun-auth:  hex authTag(secret, 'podtun-ws-client', node, dialed node, time, nonce)
 *   server checks: all present and well formed (else 400); node is one of its peers, the tag
 *     names this server as the dialed node (a hello captured on the way to one node is useless
 *     at another),
 *     |now - time| <= HANDSHAKE_MAX_SKEW_MS, tag valid, nonce not seen within the window
 *     (else 401); then answers 101 with
 *     x-podtun-node:  <server node name>
 *     x-podtun-auth:  hex authTag(secret, 'podtun-ws-server', server node, client nonce)
 *   client checks: the server is the node it dialed and its tag is valid; else it closes.
 *
 * The client proves membership and freshness; the server proves it holds the secret by tagging
 * the client's fresh nonce, so a party without the secret can pose as neither end. This does not
 * encrypt anything: use wss (TLS) where the underlay is not trusted.
 *
 * Pure functions and a replay cache; no sockets here.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { AUTH_TAG_LEN, authTag, verifyAuthTag } from '../cluster-auth.js';

export const HEADER_NODE = 'x-podtun-node';
export const HEADER_TIME = 'x-podtun-time';
export const HEADER_NONCE = 'x-podtun-nonce';
export const HEADER_AUTH = 'x-podtun-auth';

/** Largest accepted difference between the client's clock and the server's. */
export const HANDSHAKE_MAX_SKEW_MS = 60_000;
export const NONCE_BYTES = 16;
/** Nonces remembered at most (a full cache refuses new connections rather than forget). */
export const DEFAULT_MAX_NONCES = 65_536;

const CLIENT_PURPOSE = 'podtun-ws-client';
const SERVER_PURPOSE = 'podtun-ws-server';
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

/** Header lines ("name: value") the server adds to its 101 answer to prove itself. */
export function serverProofLines(secret: Uint8Array, serverNode: string, clientNonce: string): string[] {
  const tag = authTag(secret, SERVER_PURPOSE, serverNode, clientNonce).toString('hex');
  return [`${HEADER_NODE}: ${serverNode}`, `${HEADER_AUTH}: ${tag}`];
}

/**
 * Why the server's 101 answer does not prove it is `expectedNode` holding the secret, or
 * undefined when it does.
 */
export function checkServerProof(
  secret: Uint8Array, expectedNode: string, clientNonce: string, headers: IncomingHttpHeaders,
): string | undefined {
  const node = single(headers[HEADER_NODE]);
  const tag = single(headers[HEADER_AUTH]);
  if (node === undefined || tag === undefined) return 'server sent no authentication headers';
  if (node !== expectedNode) return `server is node "${node}", not "${expectedNode}"`;
  if (!TAG_RE.test(tag)) return 'server sent a malformed auth tag';
  if (!verifyAuthTag(secret, Buffer.from(tag, 'hex'), SERVER_PURPOSE, node, clientNonce)) {
    return 'server auth tag invalid (different cluster secret?)';
  }
  return undefined;
}

function single(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function refuse(
  status: 400 | 401 | 503, reason: string, node: string | undefined, body: string = reason,
): HandshakeVerdict {
  return { ok: false, status, reason, body, node };
}
