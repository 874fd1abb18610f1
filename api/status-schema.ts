/**
 * The reply of the local API's `GET /status`, defined once. The daemon builds it
 * (node-bootstrap/local-api/status-report.ts); every reader (the status CLI, doctor, the
 * dashboard, the lab, the tests) takes it through `readStatusReport`, which checks an unknown JSON
 * value field by field and names the first field that is wrong. Fields a newer daemon adds are
 * left out of what it returns; a field missing or of another type is an error.
 */
import type { PeerEndpoints, PeerState, TransportKind, TransportSwitch } from '../core/transport.js';

/** The transport and the state a route to this node's own subnets shows. */
export const LOCAL_ROUTE = 'local';

export type RouteState = PeerState | typeof LOCAL_ROUTE;

/** Drop counters by reason name (`no_route`, `spoofed`, ...). */
export type DropCounts = Readonly<Record<string, number>>;

/** Both transports' counters (and a few gauges: `ws.connectionsOpen`), `udp.*` and `ws.*`, plus the selector's `switches`. */
export type TransportCounters = Readonly<Record<string, number>>;

/** One row of the route table: subnet -> node -> transport -> state. */
export interface RouteView {
  readonly subnet: string;
  readonly node: string;
  /** 'udp' | 'ws' for a peer (what carries it now), 'local' for this node's lease, '-' when none yet. */
  readonly transport: string;
  readonly state: RouteState;
}

export interface PeerReport {
  readonly node: string;
  readonly subnets: readonly string[];
  /** The endpoint in use now (the carrying transport's), else the lease's first; absent when none. */
  readonly endpoint?: string | undefined;
  /** Every endpoint of its lease, by transport kind. */
  readonly endpoints: PeerEndpoints;
  /** Largest inner packet the tunnel carries to this peer, bytes. */
  readonly tunnelMtu: number;
  /** The same number under the name operators look for. */
  readonly mtu: number;
  readonly txPackets: number;
  readonly txBytes: number;
  readonly rxPackets: number;
  readonly rxBytes: number;
  /** Packets from this peer whose source it does not own. */
  readonly spoofed: number;
  readonly state: PeerState;
  /** Smoothed probe round trip; only while up (absent before the first reply and while down). */
  readonly rttMs?: number | undefined;
  /** ms since anything was last heard from it; absent when nothing ever was. */
  readonly lastHeardAgeMs?: number | undefined;
  /** The transport carrying the peer now; absent before a transport knows it. */
  readonly transport?: TransportKind | undefined;
  /** The last change of transport, if any. */
  readonly lastSwitch?: TransportSwitch | undefined;
  /** Why it is not up ("authentication failed", "no handshake answer", "key unknown", ...). */
  readonly downReason?: string | undefined;
  /** What the reason came from: a dial's error, a refusal, unanswered probes. */
  readonly downDetail?: string | undefined;
  /** How it and this node disagree on who owns which subnets (both views); absent when they agree. */
  readonly ownershipMismatch?: string | undefined;
  /** ms since the last completed handshake (sealed transports). */
  readonly lastHandshakeAgeMs?: number | undefined;
  /** Its traffic is authenticated and encrypted on the carrying transport. */
  readonly sealed?: boolean | undefined;
}

export interface StatusReport {
  readonly node: string;
  readonly localSubnets: readonly string[];
  readonly drops: DropCounts;
  /** ICMP errors not sent because of the rate limit. */
  readonly icmpSuppressed: number;
  readonly peers: readonly PeerReport[];
  readonly transport: TransportCounters;
  /** This node's subnets (its lease). */
  readonly lease: readonly string[];
  readonly routes: readonly RouteView[];
}

/** A reply that is not a StatusReport; `field` is its path ("peers[1].txBytes", "" for the whole). */
export class StatusSchemaError extends Error {
  readonly code = 'ERR_PODTUN_STATUS_SCHEMA';
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(field === '' ? `status reply ${reason}` : `status reply: ${field} ${reason}`);
    this.name = 'StatusSchemaError';
  }
}

/** Checks `value` (parsed JSON) against the schema; throws StatusSchemaError naming the field. */
export function readStatusReport(value: unknown): StatusReport {
  const r = record(value, '');
  return {
    node: text(r['node'], 'node'),
    localSubnets: list(r['localSubnets'], 'localSubnets', text),
    drops: fields(r['drops'], 'drops', count),
    icmpSuppressed: count(r['icmpSuppressed'], 'icmpSuppressed'),
    peers: list(r['peers'], 'peers', readPeer),
    transport: fields(r['transport'], 'transport', finite),
    lease: list(r['lease'], 'lease', text),
    routes: list(r['routes'], 'routes', readRoute),
  };
}

const PEER_STATES = { unknown: true, up: true, down: true } as const satisfies Record<PeerState, true>;
const ROUTE_STATES = { ...PEER_STATES, [LOCAL_ROUTE]: true } as const satisfies Record<RouteState, true>;

function readPeer(value: unknown, field: string): PeerReport {
  const p = record(value, field);
  return {
    node: text(p['node'], `${field}.node`),
    subnets: list(p['subnets'], `${field}.subnets`, text),
    endpoint: optional(p['endpoint'], `${field}.endpoint`, text),
    endpoints: fields(p['endpoints'], `${field}.endpoints`, text),
    tunnelMtu: count(p['tunnelMtu'], `${field}.tunnelMtu`),
    mtu: count(p['mtu'], `${field}.mtu`),
    txPackets: count(p['txPackets'], `${field}.txPackets`),
    txBytes: count(p['txBytes'], `${field}.txBytes`),
    rxPackets: count(p['rxPackets'], `${field}.rxPackets`),
    rxBytes: count(p['rxBytes'], `${field}.rxBytes`),
    spoofed: count(p['spoofed'], `${field}.spoofed`),
    state: oneOf(p['state'], `${field}.state`, PEER_STATES),
    rttMs: optional(p['rttMs'], `${field}.rttMs`, finite),
    lastHeardAgeMs: optional(p['lastHeardAgeMs'], `${field}.lastHeardAgeMs`, finite),
    transport: optional(p['transport'], `${field}.transport`, text),
    lastSwitch: optional(p['lastSwitch'], `${field}.lastSwitch`, readSwitch),
    downReason: optional(p['downReason'], `${field}.downReason`, text),
    downDetail: optional(p['downDetail'], `${field}.downDetail`, text),
    ownershipMismatch: optional(p['ownershipMismatch'], `${field}.ownershipMismatch`, text),
    lastHandshakeAgeMs: optional(p['lastHandshakeAgeMs'], `${field}.lastHandshakeAgeMs`, finite),
    sealed: optional(p['sealed'], `${field}.sealed`, flag),
  };
}

function readSwitch(value: unknown, field: string): TransportSwitch {
  const s = record(value, field);
  return {
    atMs: finite(s['atMs'], `${field}.atMs`),
    from: text(s['from'], `${field}.from`),
    to: text(s['to'], `${field}.to`),
    reason: text(s['reason'], `${field}.reason`),
  };
}

function readRoute(value: unknown, field: string): RouteView {
  const r = record(value, field);
  return {
    subnet: text(r['subnet'], `${field}.subnet`),
    node: text(r['node'], `${field}.node`),
    transport: text(r['transport'], `${field}.transport`),
    state: oneOf(r['state'], `${field}.state`, ROUTE_STATES),
  };
}

// --- one reader per JSON shape; each throws naming `field` ---

type Read<T> = (value: unknown, field: string) => T;

function wrong(value: unknown, field: string, expected: string): StatusSchemaError {
  return new StatusSchemaError(field, value === undefined ? 'is missing' : `is not ${expected} (got ${JSON.stringify(value)})`);
}

function record(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw wrong(value, field, 'a JSON object');
  return value as Record<string, unknown>;
}

function text(value: unknown, field: string): string {
  if (typeof value !== 'string') throw wrong(value, field, 'a string');
  return value;
}

function finite(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw wrong(value, field, 'a number');
  return value;
}

function flag(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw wrong(value, field, 'a boolean');
  return value;
}

function count(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw wrong(value, field, 'a count');
  return value;
}

function oneOf<T extends string>(value: unknown, field: string, allowed: Readonly<Record<T, true>>): T {
  if (typeof value !== 'string' || !Object.hasOwn(allowed, value)) throw wrong(value, field, `one of ${Object.keys(allowed).join('|')}`);
  return value as T;
}

function optional<T>(value: unknown, field: string, read: Read<T>): T | undefined {
  return value === undefined ? undefined : read(value, field);
}

function list<T>(value: unknown, field: string, read: Read<T>): T[] {
  if (!Array.isArray(value)) throw wrong(value, field, 'a list');
  return value.map((item: unknown, i) => read(item, `${field}[${i}]`));
}

function fields<T>(value: unknown, field: string, read: Read<T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [key, item] of Object.entries(record(value, field))) out[key] = read(item, `${field}.${key}`);
  return out;
}
