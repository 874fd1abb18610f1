/** The cluster CIDRs and a node's pod subnets inside them. */
import { cidrContains, cidrsOverlap, parseCidr } from '../../../core/cidr.js';
import type { Cidr, IpFamily } from '../../../core/cidr.js';
import { describe, errorMessage } from '../../../core/config-check.js';
import type { IssueFn } from '../../../core/config-check.js';

/** The TUN takes the subnet's network address and the pod bridge .1: at least 4 addresses. */
export const SUBNET_PREFIX_MAX: Readonly<Record<IpFamily, number>> = { 4: 30, 6: 126 };

export function cidrAt(value: unknown, path: string, issue: IssueFn): Cidr | undefined {
  if (typeof value !== 'string') return issue(path, `expected a CIDR string, got ${describe(value)}`);
  try {
    return parseCidr(value.trim());
  } catch (err: unknown) {
    return issue(path, errorMessage(err));
  }
}

/** `clusterCidrs`: one IPv4, optionally one IPv6; sorted IPv4 first. */
export function clusterCidrsAt(value: unknown, issue: IssueFn): Cidr[] {
  const out: Cidr[] = [];
  if (value === undefined) issue('clusterCidrs', 'required (one IPv4 CIDR, optionally one IPv6 CIDR)');
  else if (!Array.isArray(value)) issue('clusterCidrs', `expected a list of CIDRs, got ${describe(value)}`);
  else if (value.length === 0) issue('clusterCidrs', 'empty; needs one IPv4 CIDR');
  else {
    let bad = false;
    value.forEach((item: unknown, i) => {
      const cidr = cidrAt(item, `clusterCidrs[${i}]`, (path, reason) => {
        bad = true;
        return issue(path, reason);
      });
      if (cidr === undefined) return;
      const same = out.find((c) => c.family === cidr.family);
      if (same !== undefined) {
        bad = true;
        issue(`clusterCidrs[${i}]`, `"${cidr.text}": a second IPv${cidr.family} cluster CIDR (already ${same.text}); one per family`);
      } else out.push(cidr);
    });
    if (!bad && !out.some((c) => c.family === 4)) issue('clusterCidrs', 'needs one IPv4 CIDR');
  }
  return out.sort((a, b) => a.family - b.family);
}

/** Checks one node subnet against the cluster CIDRs, the node's other subnet and every subnet seen so far. */
export function subnetAt(
  cidr: Cidr,
  path: string,
  clusterCidrs: readonly Cidr[],
  sameNode: readonly Cidr[],
  seen: readonly { cidr: Cidr; path: string }[],
  issue: IssueFn,
): void {
  const cluster = clusterCidrs.find((c) => c.family === cidr.family);
  if (cluster === undefined) {
    issue(path, `"${cidr.text}": no IPv${cidr.family} cluster CIDR to hold it (clusterCidrs: ${clusterCidrs.map((c) => c.text).join(', ') || 'none'})`);
  } else if (!cidrContains(cluster, cidr)) {
    issue(path, `"${cidr.text}" is not inside the IPv${cidr.family} cluster CIDR ${cluster.text}`);
  }
  if (cidr.prefixLen > SUBNET_PREFIX_MAX[cidr.family]) {
    issue(path, `"${cidr.text}" is too small for a node subnet (at most /${SUBNET_PREFIX_MAX[cidr.family]}: the TUN takes the network address, the pod bridge the next one)`);
  }
  const twin = sameNode.find((c) => c.family === cidr.family);
  if (twin !== undefined) issue(path, `"${cidr.text}": a second IPv${cidr.family} subnet on this node (already ${twin.text}); one per family`);
  const other = seen.find((s) => cidrsOverlap(s.cidr, cidr));
  if (other !== undefined) issue(path, `"${cidr.text}" overlaps ${other.path} (${other.cidr.text})`);
}
