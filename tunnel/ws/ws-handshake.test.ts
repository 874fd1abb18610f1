import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  HANDSHAKE_MAX_SKEW_MS,
  HEADER_AUTH,
  HEADER_NODE,
  HEADER_NONCE,
  HEADER_SERVER_NONCE,
  HEADER_TIME,
  HandshakeVerifier,
  PROOF_LEN,
  PROOF_MAGIC,
  checkServerProof,
  clientHello,
  clientProof,
  isProofMessage,
  serverChallenge,
  verifyClientProof,
} from './ws-handshake.js';
import type { ServerAnswer } from './ws-handshake.js';
import { decodeMessage, newInboundBatch } from './ws-framing.js';

const SECRET = Buffer.from('0123456789abcdef0123456789abcdef');
const OTHER = Buffer.from('fedcba9876543210fedcba9876543210');
const NOW = 1_700_000_000_000;

function verifier(max?: number): HandshakeVerifier {
  return new HandshakeVerifier(SECRET, 'node-s', (node) => node === 'node-a' || node === 'node-b', max);
}

/** The 101 header lines as a client's IncomingMessage would present them. */
function asHeaders(lines: readonly string[]): IncomingHttpHeaders {
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

  it('lets the client check the server: right node, right secret, its own nonce, a fresh server nonce', () => {
    const hello = clientHello(SECRET, 'node-a', 'node-b', NOW);
    const challenge = serverChallenge(SECRET, 'node-b', 'node-a', hello.nonce);
    const answer = asHeaders(challenge.lines);
    expect(answer[HEADER_SERVER_NONCE]).toMatch(/^[0-9a-f]{32}$/);
    expect(serverChallenge(SECRET, 'node-b', 'node-a', hello.nonce).lines).not.toEqual(challenge.lines);
    const reason = (a: ServerAnswer): string | undefined => (a.ok ? undefined : a.reason);
    expect(checkServerProof(SECRET, 'node-a', 'node-b', hello.nonce, answer)).toMatchObject({ ok: true });
    const cases: Array<[ServerAnswer, string | RegExp]> = [
      [checkServerProof(SECRET, 'node-a', 'node-c', hello.nonce, answer), 'server is node "node-b", not "node-c"'],
      [checkServerProof(SECRET, 'node-a', 'node-b', clientHello(SECRET, 'node-a', 'node-b', NOW).nonce, answer), /auth tag invalid/],
      [checkServerProof(SECRET, 'node-x', 'node-b', hello.nonce, answer), /auth tag invalid/], // made for another client
      [checkServerProof(SECRET, 'node-a', 'node-b', hello.nonce, asHeaders(serverChallenge(OTHER, 'node-b', 'node-a', hello.nonce).lines)),
        /auth tag invalid/],
      // The tag covers the server nonce: swapping it in transit is noticed.
      [checkServerProof(SECRET, 'node-a', 'node-b', hello.nonce, { ...answer, [HEADER_SERVER_NONCE]: 'ab'.repeat(16) }), /auth tag invalid/],
      [checkServerProof(SECRET, 'node-a', 'node-b', hello.nonce, { ...answer, [HEADER_SERVER_NONCE]: undefined }), /server nonce/],
      [checkServerProof(SECRET, 'node-a', 'node-b', hello.nonce, { ...answer, [HEADER_SERVER_NONCE]: 'xyz' }), /server nonce/],
      [checkServerProof(SECRET, 'node-a', 'node-b', hello.nonce, { ...answer, [HEADER_AUTH]: 'ab' }), 'server sent a malformed auth tag'],
      [checkServerProof(SECRET, 'node-a', 'node-b', hello.nonce, {}), 'server sent no authentication headers'],
    ];
    for (const [got, want] of cases) expect(reason(got)).toMatch(want);
  });

  it('has the client prove the secret over both nonces: a recorded proof is useless on any other connection', () => {
    const hello = clientHello(SECRET, 'node-a', 'node-s', NOW);
    const challenge = serverChallenge(SECRET, 'node-s', 'node-a', hello.nonce, 'cd'.repeat(16));
    const answer = checkServerProof(SECRET, 'node-a', 'node-s', hello.nonce, asHeaders(challenge.lines));
    if (!answer.ok) throw new Error(answer.reason);
    expect(answer.proof).toHaveLength(PROOF_LEN);
    expect(answer.proof.subarray(0, PROOF_MAGIC.length)).toEqual(PROOF_MAGIC);
    expect(answer.proof).toEqual(challenge.expectedProof);
    expect(verifyClientProof(answer.proof, challenge.expectedProof)).toBe(true);

    // The same hello answered again (a replay after the server restarted): a fresh server nonce,
    // so the recorded proof has the shape of one but does not verify.
    const again = serverChallenge(SECRET, 'node-s', 'node-a', hello.nonce);
    expect(isProofMessage(answer.proof)).toBe(true);
    expect(verifyClientProof(answer.proof, again.expectedProof)).toBe(false);

    const serverNonce = 'cd'.repeat(16);
    const wrong: Array<[string, Buffer]> = [
      ['other secret', clientProof(OTHER, 'node-a', 'node-s', hello.nonce, serverNonce)],
      ['other client', clientProof(SECRET, 'node-b', 'node-s', hello.nonce, serverNonce)],
      ['other server', clientProof(SECRET, 'node-a', 'node-t', hello.nonce, serverNonce)],
      ['nodes swapped', clientProof(SECRET, 'node-s', 'node-a', hello.nonce, serverNonce)],
      ['nonces swapped', clientProof(SECRET, 'node-a', 'node-s', serverNonce, hello.nonce)],
      ['truncated', answer.proof.subarray(0, PROOF_LEN - 1)],
      ['empty', Buffer.alloc(0)],
    ];
    for (const [what, proof] of wrong) expect({ what, ok: verifyClientProof(proof, challenge.expectedProof) }).toEqual({ what, ok: false });
    expect(clientProof(SECRET, 'node-a', 'node-s', hello.nonce, serverNonce)).toEqual(challenge.expectedProof);
  });

  it('never takes data for a proof, nor a proof for data', () => {
    const data = Buffer.alloc(PROOF_LEN);
    data.writeUInt32BE(PROOF_LEN - 4, 0);
    expect(isProofMessage(data)).toBe(false);
    const proof = clientProof(SECRET, 'node-a', 'node-s', 'ab'.repeat(16), 'cd'.repeat(16));
    expect(decodeMessage(proof, 0, newInboundBatch())).toBeLessThan(0);
  });
});
