/**
 * The value stored in the registry for a node's lease: JSON with a format version.
 *
 *   {"version":2,"node":"node-a","subnets":["10.244.3.0/24","fd00:10:244:3::/64"],
 *    "endpoints":{"udp":"192.168.77.1:8285","ws":"ws://192.168.77.1:8286"},"transports":["udp","ws"],"mtu":1400,
 *    "publicKey":"<44 characters of base64>"}
 *
 * Endpoints are opaque text keyed by transport kind: each transport parses its own when the
 * lease reaches it, so a record naming a transport this node lacks is still read. Version 1
 * records (`endpoint`, `wsEndpoint`, `transport: udp|ws|auto`), written by earlier podtun
 * versions, are read as the same lease.
 *
 * Anything in the registry may have been written by another version, another tool or a human
 * with etcdctl, so decoding validates every field and throws LeaseRecordError with the reason;
 * the manager logs it and ignores the record (never crashes on it). Fields this version does not
 * know are ignored; an unknown `version` is refused, since its fields may mean something else.
 */
import { parseCidr } from '../core/cidr.js';
import type { Lease } from '../core/lease.js';
import { parsePublicKeyText } from '../core/public-key.js';

export const LEASE_RECORD_VERSION = 2;
const LEASE_RECORD_V1 = 1;

/** Same range as the node config's mtu (node-bootstrap/config/). */
const MTU_MIN = 576;
const MTU_MAX = 65535;
const NODE_NAME_MAX = 253;
const KIND_RE = /^[a-z][a-z0-9-]{0,31}$/;
const ENDPOINT_MAX = 512;
const MAX_KINDS = 16;
/** Version 1's `transport` words as preferences. */
const V1_TRANSPORTS: Readonly<Record<string, readonly string[]>> = { udp: ['udp'], ws: ['ws'], auto: ['udp', 'ws'] };

/** A stored record that cannot be used; the message says which field and why. */
export class LeaseRecordError extends Error {
  readonly code = 'ERR_PODTUN_LEASE_RECORD';
}

export function encodeLeaseRecord(lease: Lease): string {
  const record: Record<string, unknown> = {
    version: LEASE_RECORD_VERSION,
    node: lease.node,
    subnets: [...lease.subnets],
    endpoints: { ...lease.endpoints },
  };
  if (lease.transports !== undefined) record['transports'] = [...lease.transports];
  if (lease.mtu !== undefined) record['mtu'] = lease.mtu;
  if (lease.publicKey !== undefined) record['publicKey'] = lease.publicKey;
  return JSON.stringify(record);
}

/** Parses and validates a stored record; subnets come back in canonical text. */
export function decodeLeaseRecord(text: string): Lease {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err: unknown) {
    throw new LeaseRecordError(`not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new LeaseRecordError('not a JSON object');
  const fields = raw as Record<string, unknown>;

  const version = fields['version'];
  if (version !== LEASE_RECORD_VERSION && version !== LEASE_RECORD_V1) {
    throw new LeaseRecordError(`version: expected ${LEASE_RECORD_V1} or ${LEASE_RECORD_VERSION}, got ${describe(version)}`);
  }
  const node = fields['node'];
  if (typeof node !== 'string' || node === '' || node.length > NODE_NAME_MAX) {
    throw new LeaseRecordError(`node: expected a name of 1-${NODE_NAME_MAX} characters, got ${describe(node)}`);
  }
  const subnets = subnetsOf(fields['subnets']);
  const { endpoints, transports } = version === LEASE_RECORD_V1 ? v1Reach(fields) : v2Reach(fields);
  const mtu = fields['mtu'];
  if (mtu !== undefined && (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < MTU_MIN || mtu > MTU_MAX)) {
    throw new LeaseRecordError(`mtu: expected an integer from ${MTU_MIN} to ${MTU_MAX}, got ${describe(mtu)}`);
  }
  const publicKey = fields['publicKey'];
  if (publicKey !== undefined) {
    if (typeof publicKey !== 'string') throw new LeaseRecordError(`publicKey: expected text, got ${describe(publicKey)}`);
    try {
      parsePublicKeyText(publicKey);
    } catch (err: unknown) {
      throw new LeaseRecordError(`publicKey: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return {
    node,
    subnets,
    endpoints,
    ...(transports === undefined ? {} : { transports }),
    ...(mtu === undefined ? {} : { mtu: mtu as number }),
    ...(publicKey === undefined ? {} : { publicKey }),
  };
}

interface Reach {
  endpoints: Record<string, string>;
  transports: string[] | undefined;
}

function v2Reach(fields: Record<string, unknown>): Reach {
  const raw = fields['endpoints'] ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new LeaseRecordError(`endpoints: expected an object, got ${describe(raw)}`);
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > MAX_KINDS) throw new LeaseRecordError(`endpoints: more than ${MAX_KINDS} kinds`);
  const endpoints: Record<string, string> = {};
  for (const [kind, value] of entries) {
    if (!KIND_RE.test(kind)) throw new LeaseRecordError(`endpoints: ${describe(kind)} is not a transport kind`);
    if (typeof value !== 'string' || value === '' || value.length > ENDPOINT_MAX) {
      throw new LeaseRecordError(`endpoints.${kind}: expected text of 1-${ENDPOINT_MAX} characters, got ${describe(value)}`);
    }
    endpoints[kind] = value;
  }
  const rawTransports = fields['transports'];
  if (rawTransports === undefined) return { endpoints, transports: undefined };
  if (!Array.isArray(rawTransports) || rawTransports.length === 0 || rawTransports.length > MAX_KINDS ||
    !rawTransports.every((k) => typeof k === 'string' && KIND_RE.test(k)) || new Set(rawTransports).size !== rawTransports.length) {
    throw new LeaseRecordError(`transports: expected a list of distinct transport kinds, got ${describe(rawTransports)}`);
  }
  return { endpoints, transports: rawTransports as string[] };
}

function v1Reach(fields: Record<string, unknown>): Reach {
  const endpoints: Record<string, string> = {};
  for (const [key, kind] of [['endpoint', 'udp'], ['wsEndpoint', 'ws']] as const) {
    const value = fields[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string' || value === '' || value.length > ENDPOINT_MAX) {
      throw new LeaseRecordError(`${key}: expected text of 1-${ENDPOINT_MAX} characters, got ${describe(value)}`);
    }
    endpoints[kind] = value;
  }
  const transport = fields['transport'];
  if (transport === undefined) return { endpoints, transports: undefined };
  const transports = typeof transport === 'string' ? V1_TRANSPORTS[transport] : undefined;
  if (transports === undefined) throw new LeaseRecordError(`transport: expected one of udp, ws, auto, got ${describe(transport)}`);
  return { endpoints, transports: [...transports] };
}

function subnetsOf(value: unknown): string[] {
  if (!Array.isArray(value) || value.length < 1 || value.length > 2) {
    throw new LeaseRecordError(`subnets: expected 1 or 2 CIDRs, got ${describe(value)}`);
  }
  const subnets: string[] = [];
  const families = new Set<number>();
  for (const item of value) {
    if (typeof item !== 'string') throw new LeaseRecordError(`subnets: expected CIDR strings, got ${describe(item)}`);
    let cidr;
    try {
      cidr = parseCidr(item);
    } catch (err: unknown) {
      throw new LeaseRecordError(`subnets: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (families.has(cidr.family)) throw new LeaseRecordError(`subnets: two IPv${cidr.family} subnets`);
    families.add(cidr.family);
    subnets.push(cidr.text);
  }
  return subnets;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
