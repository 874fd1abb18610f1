/**
 * The value stored in the registry for a node's lease: JSON with a format version.
 *
 *   {"version":1,"node":"node-a","subnets":["10.244.3.0/24","fd00:10:244:3::/64"],
 *    "endpoint":"192.168.77.1:8285","wsEndpoint":"ws://192.168.77.1:8286","transport":"auto","mtu":1400}
 *
 * Anything in the registry may have been written by another version, another tool or a human
 * with etcdctl, so decoding validates every field and throws LeaseRecordError with the reason;
 * the manager logs it and ignores the record (never crashes on it). Fields this version does not
 * know are ignored; a different `version` is refused, since its fields may mean something else.
 */
import { parseCidr } from '../core/cidr.js';
import { parseEndpoint } from '../core/endpoint.js';
import type { TransportMode } from '../core/transport.js';
import type { Lease } from '../core/subnet-manager.js';

export const LEASE_RECORD_VERSION = 1;

/** Same range as the node config's mtu (node-bootstrap/config.ts). */
const MTU_MIN = 576;
const MTU_MAX = 65535;
const NODE_NAME_MAX = 253;
const TRANSPORTS: readonly TransportMode[] = ['udp', 'ws', 'auto'];

/** A stored record that cannot be used; the message says which field and why. */
export class LeaseRecordError extends Error {
  readonly code = 'ERR_PODTUN_LEASE_RECORD';
}

export function encodeLeaseRecord(lease: Lease): string {
  const record: Record<string, unknown> = { version: LEASE_RECORD_VERSION, node: lease.node, subnets: [...lease.subnets] };
  if (lease.endpoint !== undefined) record['endpoint'] = lease.endpoint;
  if (lease.wsEndpoint !== undefined) record['wsEndpoint'] = lease.wsEndpoint;
  if (lease.transport !== undefined) record['transport'] = lease.transport;
  if (lease.mtu !== undefined) record['mtu'] = lease.mtu;
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

  if (fields['version'] !== LEASE_RECORD_VERSION) {
    throw new LeaseRecordError(`version: expected ${LEASE_RECORD_VERSION}, got ${describe(fields['version'])}`);
  }
  const node = fields['node'];
  if (typeof node !== 'string' || node === '' || node.length > NODE_NAME_MAX) {
    throw new LeaseRecordError(`node: expected a name of 1-${NODE_NAME_MAX} characters, got ${describe(node)}`);
  }
  const lease: Lease = { node, subnets: subnetsOf(fields['subnets']), endpoint: endpointOf(fields['endpoint']) };

  const ws = fields['wsEndpoint'];
  if (ws !== undefined) lease.wsEndpoint = wsEndpointOf(ws);
  const transport = fields['transport'];
  if (transport !== undefined) {
    if (!TRANSPORTS.includes(transport as TransportMode)) {
      throw new LeaseRecordError(`transport: expected one of ${TRANSPORTS.join(', ')}, got ${describe(transport)}`);
    }
    lease.transport = transport as TransportMode;
  }
  const mtu = fields['mtu'];
  if (mtu !== undefined) {
    if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < MTU_MIN || mtu > MTU_MAX) {
      throw new LeaseRecordError(`mtu: expected an integer from ${MTU_MIN} to ${MTU_MAX}, got ${describe(mtu)}`);
    }
    lease.mtu = mtu;
  }
  return lease;
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

function endpointOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new LeaseRecordError(`endpoint: expected "host:port", got ${describe(value)}`);
  try {
    parseEndpoint(value);
  } catch (err: unknown) {
    throw new LeaseRecordError(`endpoint: ${err instanceof Error ? err.message : String(err)}`);
  }
  return value;
}

function wsEndpointOf(value: unknown): string {
  let url: URL | undefined;
  if (typeof value === 'string') {
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
  }
  if (url === undefined || (url.protocol !== 'ws:' && url.protocol !== 'wss:')) {
    throw new LeaseRecordError(`wsEndpoint: expected a ws:// or wss:// URL, got ${describe(value)}`);
  }
  return value as string;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
