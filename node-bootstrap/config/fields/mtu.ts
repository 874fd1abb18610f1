/** MTUs: the underlay's, a node's own, and the tunnel MTU they leave for pods. */
import type { Cidr, IpFamily } from '../../../core/cidr.js';
import { describe } from '../../../core/config-check.js';
import type { IssueFn } from '../../../core/config-check.js';
import { tunnelOverheadBytes } from '../../../tunnel/tunnel-mtu.js';

export const MTU_MIN = 576;
export const MTU_MIN_IPV6 = 1280;
export const MTU_MAX = 65535;

export function mtuAt(value: unknown, path: string, family: IpFamily, clusterCidrs: readonly Cidr[], issue: IssueFn): number | undefined {
  if (typeof value !== 'number' || !Number.isInteger(value)) return issue(path, `expected an integer, got ${describe(value)}`);
  const min = family === 6 ? MTU_MIN_IPV6 : MTU_MIN;
  if (value < min || value > MTU_MAX) {
    return issue(path, `${value} is out of range (${min}-${MTU_MAX}${family === 6 ? ' on an IPv6 underlay' : ''})`);
  }
  return checkTunnelMtu(value, path, clusterCidrs, family, issue);
}

/** With IPv6 pods the tunnel MTU must stay >= 1280, or the kernel disables IPv6 on the TUN. */
export function checkTunnelMtu(mtu: number, path: string, clusterCidrs: readonly Cidr[], family: IpFamily, issue: IssueFn): number | undefined {
  const overheadBytes = tunnelOverheadBytes(family);
  if (clusterCidrs.some((c) => c.family === 6) && mtu - overheadBytes < MTU_MIN_IPV6) {
    return issue(path, `${mtu} leaves a tunnel MTU of ${mtu - overheadBytes}, below the ${MTU_MIN_IPV6} IPv6 needs (at least ${MTU_MIN_IPV6 + overheadBytes})`);
  }
  return mtu;
}
