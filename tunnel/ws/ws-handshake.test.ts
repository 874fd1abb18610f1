import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  HANDSHAKE_MAX_SKEW_MS,
  HEADER_AUTH,
  HEADER_NODE,
  HEADER_NONCE,
  HEADER_TIME,
  HandshakeVerifier,
  checkServerProof,
  clientHello,
  serverProofLines,
} from './ws-handshake.js';

const SECRET = Buffer.from('0123456789abcdef0123456789abcdef');
const OTHER = Buffer.from('fedcba9876543210fedcba9876543210');
const NOW = 1_700_000_000_000;

function verifier(max?: number): HandshakeVerifier {
  return new HandshakeVerifier(SECRET, 'node-s', (node) => node === 'node-a' || node === 'node-b', max);
}

/** The 101 header lines as a client's IncomingMessage would present them. */
function asHeaders(lines: string[]): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    out[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

describe('ws handshake', () => {
  it('accepts a fresh hello from a known node, once', () => {
    const v = verifier();
    const hello = clientHello(SECRET, 'node-a', 'node-s', NOW);
    expect(hello.headers[HEADER_NODE]).toBe('node-a');
    expect(hello.headers[HEADER_TIME]).toBe(String(NOW));
    expect(hello.headers[HEADER_NONCE]).toMatch(/^[0-9a-f]{32}$/);
    expect(hello.headers[HEADER_AUTH]).toMatch(/^[0-9a-f]{64}$/);
    expect(v.verify(hello.headers, NOW + 5)).toEqual({ ok: true, node: 'node-a', nonce: hello.nonce });
    expect(v.verify(hello.headers, NOW + 10)).toMatchObject({ ok: false, status: 401, reason: 'replayed nonce' });
    expect(clientHello(SECRET, 'node-a', 'node-s', NOW).nonce).not.toBe(hello.nonce);
  });

  it('refuses a hello made for another node (no cross-node replay)', () => {
    const toOther = clientHello(SECRET, 'node-a', 'node-t', NOW);
    expect(verifier().verify(toOther.headers, NOW)).toMatchObject({ ok: false, status: 401, reason: 'bad auth tag' });
  });

  it('refuses with 400 or 401 and a reason', () => {
    const v = verifier();
    const good = clientHello(SECRET, 'node-a', 'node-s', NOW).headers;
    const without = (name: string): IncomingHttpHeaders => {
      const h: IncomingHttpHeaders = { ...good };
      delete h[name];
      return h;
    };
    const cases: Array<[IncomingHttpHeaders, number, string]> = [
      [without(HEADER_AUTH), 400, 'missing authentication headers'],
      [without(HEADER_NONCE), 400, 'missing authentication headers'],
      [{ ...good, [HEADER_TIME]: 'yesterday' }, 400, 'malformed time'],
      [{ ...good, [HEADER_NONCE]: 'xyz' }, 400, 'malformed nonce'],
      [{ ...good, [HEADER_AUTH]: 'ab' }, 400, 'malformed auth tag'],
      [clientHello(SECRET, 'node-x', 'node-s', NOW).headers, 401, 'unknown node'],
      [clientHello(OTHER, 'node-a', 'node-s', NOW).headers, 401, 'bad auth tag'],
      [{ ...good, [HEADER_NODE]: 'node-b' }, 401, 'bad auth tag'],
      [{ ...good, [HEADER_TIME]: String(NOW + 1) }, 401, 'bad auth tag'],
      [clientHello(SECRET, 'node-a', 'node-s', NOW - HANDSHAKE_MAX_SKEW_MS - 1).headers, 401, 'clock skew over 60 s'],
      [clientHello(SECRET, 'node-a', 'node-s', NOW + HANDSHAKE_MAX_SKEW_MS + 1).headers, 401, 'clock skew over 60 s'],
    ];
    for (const [headers, status, reason] of cases) {
      expect(v.verify(headers, NOW)).toMatchObject({ ok: false, status, reason });
    }
    expect(v.size).toBe(0);
    expect(v.verify(good, NOW)).toMatchObject({ ok: true });
  });

  it('forgets nonces once their time stamp is out of the window, and is bounded', () => {
    const v = verifier(3);
    const hellos = [0, 1, 2].map(() => clientHello(SECRET, 'node-b', 'node-s', NOW));
    for (const h of hellos) expect(v.verify(h.headers, NOW)).toMatchObject({ ok: true });
    expect(v.verify(clientHello(SECRET, 'node-b', 'node-s', NOW).headers, NOW)).toMatchObject({ ok: false, status: 503 });
    const later = NOW + HANDSHAKE_MAX_SKEW_MS + 1;
    expect(v.verify(clientHello(SECRET, 'node-b', 'node-s', later).headers, later)).toMatchObject({ ok: true });
    expect(v.size).toBe(1);
    // The old hello is now refused by the clock, not the cache.
    expect(v.verify(hellos[0]?.headers ?? {}, later)).toMatchObject({ ok: false, reason: 'clock skew over 60 s' });
  });

  it('lets the client check the server: right node, right secret, its own nonce', () => {
    const hello = clientHello(SECRET, 'node-a', 'node-s', NOW);
    const proof = asHeaders(serverProofLines(SECRET, 'node-b', hello.nonce));
    expect(checkServerProof(SECRET, 'node-b', hello.nonce, proof)).toBeUndefined();
    expect(checkServerProof(SECRET, 'node-c', hello.nonce, proof)).toBe('server is node "node-b", not "node-c"');
    expect(checkServerProof(SECRET, 'node-b', clientHello(SECRET, 'node-a', 'node-s', NOW).nonce, proof))
      .toMatch(/auth tag invalid/);
    expect(checkServerProof(SECRET, 'node-b', hello.nonce, asHeaders(serverProofLines(OTHER, 'node-b', hello.nonce))))
      .toMatch(/auth tag invalid/);
    expect(checkServerProof(SECRET, 'node-b', hello.nonce, {})).toBe('server sent no authentication headers');
  });
});
