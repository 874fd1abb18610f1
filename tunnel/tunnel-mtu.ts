/**
 * The TUN MTU, computed here and nowhere else: the underlay MTU minus the largest overhead of
 * any registered transport on that underlay family, so a packet fits whichever transport carries
 * its peer and a switch never changes the TUN MTU or a route.
 */
import type { IpFamily } from '../core/cidr.js';
import { TRANSPORTS } from './transports.js';

export function tunnelOverheadBytes(family: IpFamily): number {
  return Math.max(0, ...TRANSPORTS.map((t) => t.overheadBytes(family)));
}

/** 1460 on a 1500-byte IPv4 underlay (UDP: 12 + 8 + 20). */
export function tunnelMtuOf(underlayMtu: number, family: IpFamily): number {
  return underlayMtu - tunnelOverheadBytes(family);
}
