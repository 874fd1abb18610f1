/**
 * The `ipam` object of a network config, as podtun-ipam reads it:
 *
 *   { "type": "podtun-ipam",
 *     "ranges": [[{ "subnet": "10.244.1.0/24", "rangeStart"?, "rangeEnd"?, "gateway"? }], [...]],
 *     "subnet"?: "10.244.1.0/24", "rangeStart"?, "rangeEnd"?, "gateway"?   (one range, host-local's shorthand)
 *     "routes"?: [{ "dst": "0.0.0.0/0", "gw"?: "10.244.1.1" }],
 *     "dataDir"?: "/var/lib/cni/networks",
 *     "daemonSocket"?: "/run/podtun/podtun.sock" }
 *
 * Without ranges and subnet, the node's subnets come from the podtun daemon at run time (see
 * podtun-ipam-plugin.ts), which makes podtun-ipam a drop-in for host-local under bridge/ptp.
 * The spec lets a plugin refuse fields it does not know; inside `ipam` (ours alone) an unknown
 * key is CniError 2 naming key and value, so a typo ("rangestart") fails loudly instead of being
 * ignored. Top-level keys belong to the calling plugin and are not looked at.
 */
import { parseAddress, parseCidr } from '../../core/cidr.js';
import { CniCode, CniError } from '../cni-error.js';
import { isPlainObject } from '../cni-protocol.js';
import { checkRangeSets, parseRange } from './pod-address-allocator.js';
import type { AddressRange, RangeSpec } from './pod-address-allocator.js';
import { DEFAULT_DATA_DIR } from './pod-address-store.js';

export interface IpamRoute {
  readonly dst: string;
  readonly gw?: string;
}

/** Where the reservations of a network live: all DEL and GC need. */
export interface IpamStoreLocation {
  /** The network's name (config.name), the state directory under dataDir. */
  readonly network: string;
  readonly dataDir: string;
}

export interface PodtunIpamConfig extends IpamStoreLocation {
  readonly daemonSocket: string | undefined;
  /** One address per set; undefined: ask the podtun daemon for the node's subnets. */
  readonly rangeSets: readonly (readonly AddressRange[])[] | undefined;
  readonly routes: readonly IpamRoute[];
}

const IPAM_KEYS = ['type', 'ranges', 'subnet', 'rangeStart', 'rangeEnd', 'gateway', 'routes', 'dataDir', 'daemonSocket'];
const RANGE_KEYS = ['subnet', 'rangeStart', 'rangeEnd', 'gateway'];
const ROUTE_KEYS = ['dst', 'gw'];

/** Parses and validates the whole `ipam` object (ADD, CHECK, STATUS). Errors: CniError 2 or 7. */
export function parseIpamConfig(config: Readonly<Record<string, unknown>>): PodtunIpamConfig {
  const ipam = ipamObject(config);
  rejectUnknownKeys(ipam, IPAM_KEYS, 'ipam');
  const location = parseStoreLocation(config);
  const daemonSocket = optionalString(ipam, 'daemonSocket', 'ipam');
  const specs = rangeSpecs(ipam);
  const rangeSets =
    specs === undefined ? undefined : specs.map((set, s) => set.map((spec, r) => parseRange(spec, `ipam.ranges[${s}][${r}]`)));
  if (rangeSets !== undefined) checkRangeSets(rangeSets, 'ipam.ranges');
  return { ...location, daemonSocket, rangeSets, routes: parseRoutes(ipam['routes']) };
}

/**
 * Only the network name and dataDir, leniently: DEL and GC must clean up even under a config
 * that ADD would refuse (spec: DEL releases what it can and succeeds).
 */
export function parseStoreLocation(config: Readonly<Record<string, unknown>>): IpamStoreLocation {
  const network = config['name'];
  if (typeof network !== 'string' || network === '') throw invalid('name', 'missing');
  const ipam = isPlainObject(config['ipam']) ? config['ipam'] : {};
  const dataDir = optionalString(ipam, 'dataDir', 'ipam') ?? DEFAULT_DATA_DIR;
  if (!dataDir.startsWith('/')) throw invalid('ipam.dataDir', `"${dataDir}" is not an absolute path`);
  return { network, dataDir };
}

/** The daemon's node subnets as range sets, one subnet per set, defaults for the rest. */
export function rangeSetsFromSubnets(subnets: readonly string[]): AddressRange[][] {
  const sets = subnets.map((subnet, i) => [parseRange({ subnet }, `podtun daemon subnet[${i}]`)]);
  checkRangeSets(sets, 'podtun daemon subnets');
  return sets;
}

function ipamObject(config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const ipam = config['ipam'];
  if (!isPlainObject(ipam)) throw invalid('ipam', 'missing (an object with "type": "podtun-ipam")');
  if (typeof ipam['type'] !== 'string' || ipam['type'] === '') throw invalid('ipam.type', 'missing');
  return ipam;
}

function rangeSpecs(ipam: Record<string, unknown>): RangeSpec[][] | undefined {
  const hasShorthand = ['subnet', 'rangeStart', 'rangeEnd', 'gateway'].some((key) => ipam[key] !== undefined);
  if (ipam['ranges'] !== undefined) {
    if (hasShorthand) throw invalid('ipam', 'give either "ranges" or "subnet" (with rangeStart/rangeEnd/gateway), not both');
    const ranges = ipam['ranges'];
    if (!Array.isArray(ranges) || ranges.length === 0) throw invalid('ipam.ranges', 'expected a non-empty array of range sets');
    return ranges.map((set: unknown, s) => {
      if (!Array.isArray(set) || set.length === 0) throw invalid(`ipam.ranges[${s}]`, 'expected a non-empty array of ranges');
      return set.map((range: unknown, r) => rangeSpec(range, `ipam.ranges[${s}][${r}]`));
    });
  }
  if (!hasShorthand) return undefined;
  if (ipam['subnet'] === undefined) throw invalid('ipam.subnet', 'missing (rangeStart/rangeEnd/gateway need a subnet)');
  return [[rangeSpec({ subnet: ipam['subnet'], rangeStart: ipam['rangeStart'], rangeEnd: ipam['rangeEnd'], gateway: ipam['gateway'] }, 'ipam')]];
}

function rangeSpec(value: unknown, field: string): RangeSpec {
  if (!isPlainObject(value)) throw invalid(field, 'expected an object with "subnet"');
  rejectUnknownKeys(value, RANGE_KEYS, field);
  const subnet = optionalString(value, 'subnet', field);
  if (subnet === undefined) throw invalid(`${field}.subnet`, 'missing');
  const spec: RangeSpec = { subnet };
  const rangeStart = optionalString(value, 'rangeStart', field);
  const rangeEnd = optionalString(value, 'rangeEnd', field);
  const gateway = optionalString(value, 'gateway', field);
  if (rangeStart !== undefined) spec.rangeStart = rangeStart;
  if (rangeEnd !== undefined) spec.rangeEnd = rangeEnd;
  if (gateway !== undefined) spec.gateway = gateway;
  return spec;
}

function parseRoutes(value: unknown): IpamRoute[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid('ipam.routes', 'expected an array of {dst, gw?}');
  return value.map((item: unknown, i) => {
    const field = `ipam.routes[${i}]`;
    if (!isPlainObject(item)) throw invalid(field, 'expected an object {dst, gw?}');
    rejectUnknownKeys(item, ROUTE_KEYS, field);
    const dstText = optionalString(item, 'dst', field);
    if (dstText === undefined) throw invalid(`${field}.dst`, 'missing');
    const dst = attempt(`${field}.dst`, () => parseCidr(dstText));
    const gwText = optionalString(item, 'gw', field);
    if (gwText === undefined) return { dst: dst.text };
    const gw = attempt(`${field}.gw`, () => parseAddress(gwText));
    if (gw.family !== dst.family) throw invalid(`${field}.gw`, `${gwText} is not of the same family as ${dst.text}`);
    return { dst: dst.text, gw: gwText };
  });
}

function rejectUnknownKeys(object: Record<string, unknown>, known: readonly string[], field: string): void {
  for (const [key, value] of Object.entries(object)) {
    if (!known.includes(key)) {
      throw new CniError(
        CniCode.UnsupportedField,
        `unsupported field ${field}.${key}: ${JSON.stringify(value) ?? String(value)}`,
        `podtun-ipam understands ${field}.{${known.join(', ')}}`,
      );
    }
  }
}

function optionalString(object: Record<string, unknown>, key: string, field: string): string | undefined {
  const value = object[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw invalid(`${field}.${key}`, `expected a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

function attempt<T>(field: string, parse: () => T): T {
  try {
    return parse();
  } catch (err: unknown) {
    throw invalid(field, err instanceof Error ? err.message : String(err), err);
  }
}

function invalid(field: string, reason: string, cause?: unknown): CniError {
  return new CniError(CniCode.InvalidConfig, `invalid ${field}: ${reason}`, undefined, cause === undefined ? undefined : { cause });
}
