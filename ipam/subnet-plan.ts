/**
 * What a registry-backed node leases: per address family present in the cluster CIDRs, one
 * subnet of the configured length from that family's cluster CIDRs. Checked once, when the
 * manager is built, so that a bad length is a LeaseError at start and not a failed claim later.
 */
import { errorMessage } from '../core/config-check.js';
import { cidrContains, parseCidr } from '../core/cidr.js';
import type { Cidr, IpFamily } from '../core/cidr.js';
import { LeaseError } from './lease-error.js';
import { bitsOf } from './subnet-index.js';

export interface FamilyPlan {
  readonly family: IpFamily;
  /** The family's cluster CIDRs, tried in order. */
  readonly clusters: readonly Cidr[];
  /** Prefix length of a node subnet. */
  readonly length: number;
}

export interface SubnetPlan {
  readonly clusters: readonly Cidr[];
  /** IPv4 first; at least one. */
  readonly families: readonly FamilyPlan[];
  /** The cluster CIDRs as text, for messages: "10.244.0.0/16, fd00:10:244::/48". */
  readonly text: string;
}

export function planSubnets(clusterCidrs: readonly string[], lengthV4: number, lengthV6: number): SubnetPlan {
  const clusters = clusterCidrs.map((text) => {
    try {
      return parseCidr(text);
    } catch (err: unknown) {
      throw new LeaseError(`cluster CIDR "${text}": ${errorMessage(err)}`, { cause: err });
    }
  });
  const families: FamilyPlan[] = [];
  for (const family of [4, 6] as const) {
    const ofFamily = clusters.filter((c) => c.family === family);
    if (ofFamily.length === 0) continue;
    const length = family === 4 ? lengthV4 : lengthV6;
    for (const cluster of ofFamily) {
      if (!Number.isInteger(length) || length < cluster.prefixLen || length > bitsOf(cluster)) {
        throw new LeaseError(
          `subnet length /${length} does not fit cluster CIDR ${cluster.text} (expected ${cluster.prefixLen}-${bitsOf(cluster)})`,
        );
      }
    }
    families.push({ family, clusters: ofFamily, length });
  }
  if (families.length === 0) throw new LeaseError('no cluster CIDR to lease subnets from');
  return { clusters, families, text: clusters.map((c) => c.text).join(', ') };
}

/** `subnetText` (canonical CIDR text) lies inside one of the cluster CIDRs. */
export function insideClusters(plan: SubnetPlan, subnetText: string): boolean {
  const subnet = parseCidr(subnetText);
  return plan.clusters.some((cluster) => cidrContains(cluster, subnet));
}
