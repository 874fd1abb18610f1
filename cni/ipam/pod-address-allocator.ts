/**
 * Which pod addresses a range set offers, and in what order: pure, no files. The store
 * (pod-address-store.ts) walks these candidates and reserves the first free one.
 *
 * Layout of a node subnet (10.244.1.0/24): the network address .0 belongs to the node's TUN,
 * the gateway (default .1, the first host) to the bridge, the IPv4 broadcast .255 to nobody;
 * none of the three is ever a candidate. Pods get the rest, .2 to .254 by default.
 *
 * Candidates go round-robin like host-local's: starting just after the last reserved address,
 * to the end of its range, on through the set's later ranges, wrapping to the first, until the
 * start comes round again. So a freed address is not handed out again until the set has gone
 * round once, which keeps a late packet for a deleted pod away from its successor.
 *
 * Addresses are bigints for both families; a /64 is walked lazily, never materialized.
 */
import { cidrContainsAddress, formatAddress, parseAddress, parseCidr } from '../../core/cidr.js';
import type { Cidr, IpAddress, IpFamily } from '../../core/cidr.js';
import { CniCode, CniError } from '../cni-error.js';

/** A range as written in the config (host-local's shape). */
export interface RangeSpec {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

/** A validated range: the subnet and the inclusive span [start, end] that pods are taken from. */
export interface AddressRange {
  readonly family: IpFamily;
  readonly subnet: Cidr;
  /** The network address (the TUN's), never a candidate. */
  readonly network: bigint;
  /** The gateway (the bridge's), never a candidate. */
  readonly gateway: bigint;
  /** IPv4 only: the broadcast address, never a candidate. */
  readonly broadcast: bigint | undefined;
  readonly start: bigint;
  readonly end: bigint;
}

/** An address as a number, with its family (an IPv4 number may also lie inside an IPv6 range). */
export interface IpValue {
  readonly family: IpFamily;
  readonly value: bigint;
}

/** One address a range set offers. */
export interface PodAddressCandidate {
  readonly range: AddressRange;
  readonly address: bigint;
}

/**
 * Validates one range: subnet with host bits clear and room for pods (IPv4 at most /30, IPv6 at
 * most /126), rangeStart/rangeEnd/gateway inside it, start <= end, the network address and the
 * IPv4 broadcast outside [start, end]. Errors are CniError 7 naming `field`.
 */
export function parseRange(spec: RangeSpec, field: string): AddressRange {
  const subnet = parseField(field, 'subnet', () => parseCidr(spec.subnet));
  const bits = subnet.family === 4 ? 32 : 128;
  if (bits - subnet.prefixLen < 2) {
    throw invalid(`${field}.subnet`, `${subnet.text} is too small to allocate pod addresses from (at most /${bits - 2})`);
  }
  const network = addressToBigint(subnet);
  const last = network + (1n << BigInt(bits - subnet.prefixLen)) - 1n;
  const broadcast = subnet.family === 4 ? last : undefined;
  const inSubnet = (name: string, text: string): bigint => {
    const address = parseField(field, name, () => parseAddress(text));
    if (!cidrContainsAddress(subnet, address)) throw invalid(`${field}.${name}`, `${text} is not in ${subnet.text}`);
    return addressToBigint(address);
  };
  const gateway = spec.gateway === undefined ? network + 1n : inSubnet('gateway', spec.gateway);
  if (gateway === network || gateway === broadcast) {
    throw invalid(`${field}.gateway`, `${formatBigint(subnet.family, gateway)} is the network or broadcast address of ${subnet.text}`);
  }
  const start = spec.rangeStart === undefined ? network + 1n : inSubnet('rangeStart', spec.rangeStart);
  const end = spec.rangeEnd === undefined ? (broadcast === undefined ? last : last - 1n) : inSubnet('rangeEnd', spec.rangeEnd);
  if (start === network) throw invalid(`${field}.rangeStart`, `${spec.rangeStart ?? ''} is the network address of ${subnet.text} (the node's TUN)`);
  if (end === broadcast) throw invalid(`${field}.rangeEnd`, `${spec.rangeEnd ?? ''} is the broadcast address of ${subnet.text}`);
  if (start > end) throw invalid(field, `rangeStart ${formatBigint(subnet.family, start)} is after rangeEnd ${formatBigint(subnet.family, end)}`);
  return { family: subnet.family, subnet, network, gateway, broadcast, start, end };
}

/**
 * Validates the range sets as a whole: each set non-empty and of one family, and no two ranges
 * overlapping (within or across sets), because one address must have one owner.
 */
export function checkRangeSets(sets: readonly (readonly AddressRange[])[], field: string): void {
  const all: { range: AddressRange; where: string }[] = [];
  sets.forEach((set, s) => {
    const first = set[0];
    if (first === undefined) throw invalid(`${field}[${s}]`, 'a range set needs at least one range');
    set.forEach((range, r) => {
      const where = `${field}[${s}][${r}]`;
      if (range.family !== first.family) throw invalid(where, `mixes IPv${range.family} into an IPv${first.family} range set`);
      for (const other of all) {
        if (other.range.family === range.family && range.start <= other.range.end && other.range.start <= range.end) {
          throw invalid(where, `${describeRange(range)} overlaps ${other.where} ${describeRange(other.range)}`);
        }
      }
      all.push({ range, where });
    });
  });
}

/** The addresses pods may get from `range`: [start, end] minus the gateway (network and broadcast are outside). */
export function isCandidate(range: AddressRange, address: IpValue): boolean {
  const { family, value } = address;
  return family === range.family && value >= range.start && value <= range.end && value !== range.gateway;
}

/** Number of addresses the set can hand out (for messages and tests). */
export function rangeSetCapacity(set: readonly AddressRange[]): bigint {
  let total = 0n;
  for (const range of set) {
    total += range.end - range.start + 1n;
    if (range.gateway >= range.start && range.gateway <= range.end) total -= 1n;
  }
  return total;
}

/**
 * The set's candidates in round-robin order: after `lastReserved` when it lies in one of the
 * set's ranges, else from the first range's start; every candidate exactly once, lazily.
 */
export function* candidateAddresses(set: readonly AddressRange[], lastReserved: IpValue | undefined): Generator<PodAddressCandidate, void, undefined> {
  if (set.length === 0) return;
  let rangeIndex = 0;
  let address = set[0]?.start ?? 0n;
  if (lastReserved !== undefined) {
    const { family, value } = lastReserved;
    const found = set.findIndex((range) => range.family === family && value >= range.start && value <= range.end);
    if (found >= 0) {
      rangeIndex = found;
      address = value + 1n;
    }
  }
  // Normalise a start just past the end of its range onto the next range (wrapping).
  let range = set[rangeIndex] as AddressRange;
  if (address > range.end) {
    rangeIndex = (rangeIndex + 1) % set.length;
    range = set[rangeIndex] as AddressRange;
    address = range.start;
  }
  const firstRange = rangeIndex;
  const firstAddress = address;
  for (;;) {
    if (address !== range.gateway) yield { range, address };
    if (address < range.end) {
      address += 1n;
    } else {
      rangeIndex = (rangeIndex + 1) % set.length;
      range = set[rangeIndex] as AddressRange;
      address = range.start;
    }
    if (rangeIndex === firstRange && address === firstAddress) return;
  }
}

/** The range of `set` that `address` is a candidate of, if any. */
export function rangeOf(set: readonly AddressRange[], address: IpValue): AddressRange | undefined {
  return set.find((range) => isCandidate(range, address));
}

/** Address text as the store names its files and results show it: "10.244.1.2", "fd00:10:244:1::2". */
export function formatBigint(family: IpFamily, value: bigint): string {
  const length = family === 4 ? 4 : 16;
  const bytes = new Uint8Array(length);
  let rest = value;
  for (let i = length - 1; i >= 0; i--) {
    bytes[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return formatAddress({ family, bytes });
}

/** Parses address text into (family, bigint); undefined for anything that is not a plain address. */
export function parseBigint(text: string): IpValue | undefined {
  try {
    const address = parseAddress(text);
    return { family: address.family, value: addressToBigint(address) };
  } catch {
    return undefined;
  }
}

/** "10.244.1.2/24": the address with its subnet's prefix, as CNI results carry it. */
export function formatWithPrefix(range: AddressRange, address: bigint): string {
  return `${formatBigint(range.family, address)}/${range.subnet.prefixLen}`;
}

function addressToBigint(address: IpAddress | Cidr): bigint {
  let value = 0n;
  for (const byte of address.bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

function describeRange(range: AddressRange): string {
  return `${formatBigint(range.family, range.start)}-${formatBigint(range.family, range.end)}`;
}

function parseField<T>(field: string, name: string, parse: () => T): T {
  try {
    return parse();
  } catch (err: unknown) {
    throw invalid(`${field}.${name}`, err instanceof Error ? err.message : String(err), err);
  }
}

function invalid(field: string, reason: string, cause?: unknown): CniError {
  return new CniError(CniCode.InvalidConfig, `invalid ${field}: ${reason}`, undefined, cause === undefined ? undefined : { cause });
}
