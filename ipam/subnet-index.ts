/**
 * Subnets of a fixed length inside a cluster CIDR, numbered 0, 1, 2, ... from the network
 * address: index n of length L in C is C's network address + n * 2^(bits - L). Pure bigint
 * arithmetic, the same for IPv4 and IPv6 (a v6 /48 holds 2^16 /64s, far past 32-bit numbers).
 */
import { formatAddress } from '../core/cidr.js';
import type { Cidr } from '../core/cidr.js';

/** Inclusive range of subnet indices. */
export interface IndexRange {
  readonly first: bigint;
  readonly last: bigint;
}

export function bitsOf(cidr: Cidr): number {
  return cidr.family === 4 ? 32 : 128;
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

export function bigIntToBytes(value: bigint, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = length - 1, v = value; i >= 0; i--, v >>= 8n) bytes[i] = Number(v & 0xffn);
  return bytes;
}

/** How many subnets of `length` the cluster holds (caller checked the length fits). */
export function subnetCount(cluster: Cidr, length: number): bigint {
  return 1n << BigInt(length - cluster.prefixLen);
}

/** Subnet number `n` (0-based) of `length` inside `cluster`; n must be below subnetCount. */
export function nthSubnet(cluster: Cidr, length: number, n: bigint): Cidr {
  const bits = bitsOf(cluster);
  const value = bytesToBigInt(cluster.bytes) + (n << BigInt(bits - length));
  const bytes = bigIntToBytes(value, bits / 8);
  const address = formatAddress({ family: cluster.family, bytes });
  return { family: cluster.family, bytes, prefixLen: length, text: `${address}/${length}` };
}

/**
 * The indices of the `length` subnets of `cluster` that overlap `other`; undefined when none do
 * (other family, or outside the cluster). A longer `other` hits one index, a shorter one a run.
 */
export function overlappingIndices(cluster: Cidr, length: number, other: Cidr): IndexRange | undefined {
  if (other.family !== cluster.family) return undefined;
  const bits = bitsOf(cluster);
  const count = subnetCount(cluster, length);
  const base = bytesToBigInt(cluster.bytes);
  const clusterSize = 1n << BigInt(bits - cluster.prefixLen);
  const start = bytesToBigInt(other.bytes);
  const size = 1n << BigInt(bits - other.prefixLen);
  const end = start + size - 1n;
  if (end < base || start > base + clusterSize - 1n) return undefined;
  const shift = BigInt(bits - length);
  const first = start <= base ? 0n : (start - base) >> shift;
  const lastRaw = (end - base) >> shift;
  return { first, last: lastRaw >= count ? count - 1n : lastRaw };
}

/** `subnet` is exactly one of the `length` subnets of `cluster`: its index, else undefined. */
export function indexOfSubnet(cluster: Cidr, length: number, subnet: Cidr): bigint | undefined {
  if (subnet.family !== cluster.family || subnet.prefixLen !== length) return undefined;
  const range = overlappingIndices(cluster, length, subnet);
  return range === undefined ? undefined : range.first;
}
