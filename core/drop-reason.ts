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
}

export const DROP_REASON_COUNT = 11;

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
