/**
 * How a node is reached, as a `nodes[]` entry or the `advertise` block writes it: one endpoint
 * key per registered transport (`endpoint` for UDP, `wsEndpoint`), and `transport`, the
 * preference: `auto` (every transport in registry order, the default), one kind, or a list.
 */
import type { IpFamily } from '../../../core/cidr.js';
import { errorMessage, isAbsent, show } from '../../../core/config-check.js';
import type { IssueFn } from '../../../core/config-check.js';
import type { TransportKind } from '../../../core/transport.js';
import { DEFAULT_TRANSPORTS, TRANSPORTS } from '../../../tunnel/transports.js';

export const AUTO_TRANSPORT = 'auto';

/** The endpoint keys the registered transports own. */
export const ENDPOINT_KEYS: readonly string[] = TRANSPORTS.flatMap((t) => (t.endpointKey === undefined ? [] : [t.endpointKey]));

export interface Reach {
  /** Canonical text per transport kind. */
  endpoints: Record<TransportKind, string>;
  /** The families of the endpoints that name an address (they size the MTU). */
  families: IpFamily[];
}

/** Reads every transport's endpoint key of `entry` (at `<at>.<key>`). */
export function endpointsAt(entry: Readonly<Record<string, unknown>>, at: string, issue: IssueFn): Reach {
  const reach: Reach = { endpoints: {}, families: [] };
  for (const t of TRANSPORTS) {
    if (t.endpointKey === undefined) continue;
    const value = entry[t.endpointKey];
    if (isAbsent(value)) continue;
    const path = `${at}.${t.endpointKey}`;
    if (typeof value !== 'string') {
      issue(path, `expected a string, got ${Array.isArray(value) ? 'a list (quote IPv6 endpoints in YAML: "[fd00::1]:8285")' : typeof value}`);
      continue;
    }
    try {
      const parsed = t.parseEndpoint(value.trim());
      reach.endpoints[t.kind] = parsed.text;
      if (parsed.family !== undefined) reach.families.push(parsed.family);
    } catch (err: unknown) {
      issue(path, errorMessage(err));
    }
  }
  return reach;
}

/** `transport`: auto (the default), one registered kind, or a list of distinct kinds. */
export function transportsAt(value: unknown, path: string, issue: IssueFn): TransportKind[] | undefined {
  if (isAbsent(value) || value === AUTO_TRANSPORT) return [...DEFAULT_TRANSPORTS];
  const kinds = TRANSPORTS.map((t) => t.kind);
  const choices = `${[...kinds, AUTO_TRANSPORT].join('|')}, or a list of ${kinds.join(', ')}`;
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  if (list.length === 0) return issue(path, `an empty list; expected ${choices}`);
  const out: TransportKind[] = [];
  for (const item of list) {
    if (typeof item !== 'string' || !kinds.includes(item)) return issue(path, `${show(item)} is not one of ${choices}`);
    if (out.includes(item)) return issue(path, `"${item}" is listed twice`);
    out.push(item);
  }
  return out;
}
