import { describe, expect, it } from 'vitest';
import { INBOUND_REFUSAL_REASON_MS, dialFailureReason, wsDownCause } from './ws-down-reason.js';

describe('dialFailureReason', () => {
  it.each([
    ['server answered HTTP 401 Unauthorized', false, 'authentication failed'],
    ['server auth tag invalid (different cluster secret?)', false, 'authentication failed'],
    ['server answered HTTP 403 Forbidden', true, 'proxy refused (HTTP 403)'],
    ['server answered HTTP 407 Proxy Authentication Required', true, 'proxy refused (HTTP 407)'],
    ['server answered HTTP 400 Bad Request', false, 'refused by the peer (HTTP 400)'],
    ['connect ECONNREFUSED 192.168.77.3:8443', false, 'connection refused on ws'],
    ['connect ECONNREFUSED 192.168.77.9:3128', true, 'proxy refused the connection'],
    ['connection refused', false, 'connection refused on ws'],
    ['host unreachable', false, 'no route to the peer'],
    ['connection reset', false, 'connection reset on ws'],
    ['getaddrinfo ENOTFOUND node-b.example.net', false, 'host name not resolved'],
    ['connect EHOSTUNREACH 192.168.77.3:8443', false, 'no route to the peer'],
    ['self-signed certificate', false, 'TLS failed'],
    ['opening handshake timed out after 5000 ms', false, 'no answer on ws'],
    ['socket hang up', true, 'proxy closed the connection'],
    ['read ECONNRESET', false, 'connection reset on ws'],
    ['closed with code 1006', false, 'cannot connect on ws'],
  ])('%s (proxied %s) -> %s', (failure, proxied, want) => {
    expect(dialFailureReason(failure, proxied)).toBe(want);
  });
});

describe('wsDownCause', () => {
  const nowMs = 1_000_000;
  it('names a recent refusal of the peer\'s own connection first, an old one no more', () => {
    const inboundRefusal = { atMs: nowMs - 1000, reason: 'bad auth tag' };
    const target = 'ws://1.2.3.4:8443';
    expect(wsDownCause({ lastFailure: 'connection refused', target, proxied: false, inboundRefusal, nowMs }))
      .toEqual({ reason: 'authentication failed', detail: 'its connection to us was refused: bad auth tag' });
    const old = { ...inboundRefusal, atMs: nowMs - INBOUND_REFUSAL_REASON_MS };
    expect(wsDownCause({ lastFailure: 'connection refused', target, proxied: false, inboundRefusal: old, nowMs }))
      .toEqual({ reason: 'connection refused on ws', detail: 'connection refused (dialing ws://1.2.3.4:8443)' });
    expect(wsDownCause({ lastFailure: 'server answered HTTP 403 Forbidden', target, proxied: true, inboundRefusal: undefined, nowMs }))
      .toEqual({ reason: 'proxy refused (HTTP 403)', detail: 'server answered HTTP 403 Forbidden (dialing ws://1.2.3.4:8443 through the proxy)' });
  });

  it('knows nothing when no dial failed and nothing was refused', () => {
    expect(wsDownCause({ lastFailure: undefined, target: undefined, proxied: false, inboundRefusal: undefined, nowMs })).toBeUndefined();
  });
});
