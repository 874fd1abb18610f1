/**
 * Which node subnet to try next: pure, no I/O. The registry's atomic claim decides who really
 * gets it; this only proposes.
 *
 *  1. The preferred subnet (this node's previous one), if it is one of the cluster's subnets of
 *     the right length and nobody holds anything overlapping it.
 *  2. Otherwise one of the lowest `spread` free subnets, picked at random.
 *
 * Subnet 0 of the cluster (10.244.0.0/24 in 10.244.0.0/16) is never handed out, as in flannel:
 * it holds the cluster's network address, which tools and humans read as "the network".
 *
 * Why a random pick among the first few free: when 20 nodes start at once they all list the same
 * registry state. With "lowest free" every node races for the same subnet, one wins per round,
 * and the last node needs 20 rounds (190 failed transactions in all). Picking among the lowest
 * 16 free makes most first attempts distinct while still keeping the used subnets packed at the
 * bottom of the range (flannel does the same among its first 100).
 */
import type { Cidr } from '../core/cidr.js';
import { bitsOf, indexOfSubnet, nthSubnet, overlappingIndices, subnetCount } from './subnet-index.js';
import type { IndexRange } from './subnet-index.js';

/** The default `spread` the registry manager uses; see the file comment. */
export const DEFAULT_SUBNET_SPREAD = 16;

export interface ChooseSubnetInput {
  readonly cluster: Cidr;
  /** Prefix length of a node subnet, from the cluster's own length to 32 (IPv4) or 128 (IPv6). */
  readonly subnetLength: number;
  /** Subnets held by anyone (any length, any family: only those overlapping the cluster count). */
  readonly taken: readonly Cidr[];
  /** This node's previous subnet, returned when still free. */
  readonly preferred?: Cidr | undefined;
  /** Pick among this many lowest free subnets; default 1 (the lowest). */
  readonly spread?: number;
  /** Uniform in [0, 1); default Math.random. */
  readonly random?: () => number;
}

/** The cluster CIDR has no free subnet of the requested length. */
export class SubnetsExhaustedError extends Error {
  readonly code = 'ERR_PODTUN_SUBNETS_EXHAUSTED';
}

/** The subnet length does not fit the cluster CIDR (a config error). */
export class SubnetLengthError extends Error {
  readonly code = 'ERR_PODTUN_SUBNET_LENGTH';
}

export function chooseSubnet(input: ChooseSubnetInput): Cidr {
  const { cluster, subnetLength } = input;
  if (!Number.isInteger(subnetLength) || subnetLength < cluster.prefixLen || subnetLength > bitsOf(cluster)) {
    throw new SubnetLengthError(
      `subnet length /${subnetLength} does not fit ${cluster.text} (expected ${cluster.prefixLen}-${bitsOf(cluster)})`,
    );
  }
  const count = subnetCount(cluster, subnetLength);
  const taken = takenRanges(cluster, subnetLength, input.taken);

  if (input.preferred !== undefined) {
    const index = indexOfSubnet(cluster, subnetLength, input.preferred);
    if (index !== undefined && index >= 1n && !taken.some((r) => r.first <= index && index <= r.last)) {
      return nthSubnet(cluster, subnetLength, index);
    }
  }

  const spread = Math.max(1, Math.floor(input.spread ?? 1));
  const free: bigint[] = [];
  let next = 1n;
  for (const range of taken) {
    while (next < range.first && next < count && free.length < spread) free.push(next++);
    if (free.length >= spread) break;
    if (range.last + 1n > next) next = range.last + 1n;
  }
  while (next < count && free.length < spread) free.push(next++);
  if (free.length === 0) {
    const usable = count - 1n;
    throw new SubnetsExhaustedError(
      `no free /${subnetLength} subnet left in ${cluster.text} (${usable} usable, all taken)`,
    );
  }
  const random = input.random ?? Math.random;
  const pick = free[Math.min(free.length - 1, Math.floor(random() * free.length))] ?? 1n;
  return nthSubnet(cluster, subnetLength, pick);
}

/** Taken index ranges, sorted by first index and merged. */
function takenRanges(cluster: Cidr, length: number, taken: readonly Cidr[]): IndexRange[] {
  const ranges: IndexRange[] = [];
  for (const cidr of taken) {
    const range = overlappingIndices(cluster, length, cidr);
    if (range !== undefined) ranges.push(range);
  }
  ranges.sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const merged: IndexRange[] = [];
  for (const range of ranges) {
    const last = merged[merged.length - 1];
    if (last !== undefined && range.first <= last.last + 1n) {
      if (range.last > last.last) merged[merged.length - 1] = { first: last.first, last: range.last };
    } else {
      merged.push(range);
    }
  }
  return merged;
}
