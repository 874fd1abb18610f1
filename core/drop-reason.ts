/**
 * Why a packet was dropped. Per-packet problems are counted under one of these, never thrown.
 * The numeric values index counter arrays; add new reasons at the end.
 */
export const enum DropReason {
  Malformed = 0,
  NoRoute = 1,
  Spoofed = 2,
  TtlExceeded = 3,
  TooBig = 4,
  PeerDown = 5,
  Congested = 6,
  UnknownPeer = 7,
  NotLocal = 8,
  BadHeader = 9,
  Unauthenticated = 10,
  /** Sealed: no session with the peer yet (its handshake is under way or unanswered). */
  NoSession = 11,
  /** Sealed: the tag did not verify (forged, bit-flipped, wrong key). */
  AuthFailed = 12,
  /** Sealed: a counter already seen or too old for the replay window. */
  Replayed = 13,
  /** Sealed: a receiver index no session has (forged, or from a session already gone). */
  UnknownSession = 14,
  /** Sealed: the key that opened it is past its lifetime. */
  Expired = 15,
  /** Sealed: an unsealed datagram from a peer (one end has `encryption: none`). */
  Unsealed = 16,
  /** Sealed: a handshake message refused (bad mac, wrong key or secret, replayed, rate-limited). */
  HandshakeRefused = 17,
  /**
   * Leaving through the TUN to a link-local or multicast address (fe80::/10, ff00::/8,
   * 169.254.0.0/16, 224.0.0.0/4, broadcast): the host's own link chatter, which no peer routes.
   * Not an error, and no ICMP error is sent for it.
   */
  LinkLocal = 18,
}

export const DROP_REASON_COUNT = 19;

export const DROP_REASON_NAMES: readonly string[] = [
  'malformed',
  'no_route',
  'spoofed',
  'ttl_exceeded',
  'too_big',
  'peer_down',
  'congested',
  'unknown_peer',
  'not_local',
  'bad_header',
  'unauthenticated',
  'no_session',
  'auth_failed',
  'replayed',
  'unknown_session',
  'expired',
  'unsealed',
  'handshake_refused',
  'link_local',
];

/** A counter per drop reason; indexed by DropReason. */
export function newDropCounters(): Float64Array {
  return new Float64Array(DROP_REASON_COUNT);
}

/** Counters as a plain object for status output: { malformed: 3, ... } (zeros left out). */
export function dropCountersToObject(counters: Float64Array): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < counters.length; i++) {
    const n = counters[i] ?? 0;
    const name = DROP_REASON_NAMES[i];
    if (n > 0 && name !== undefined) out[name] = n;
  }
  return out;
}
