/**
 * This node's own pod subnets as the outside pipeline tests them: a destination check is one
 * masked compare (IPv4) or a few byte compares (IPv6) instead of a second route lookup per
 * inbound packet (the source lookup, which proves the sender owns the source, is the only one).
 */
import type { Cidr } from '../core/cidr.js';
import { ipv4ToNumber } from '../core/cidr.js';

export class LocalSubnets {
  /** IPv4 networks and masks as unsigned numbers; at most one per family in practice. */
  private v4Nets: number[] = [];
  private v4Masks: number[] = [];
  private v6: Cidr[] = [];

  set(subnets: readonly Cidr[]): void {
    const v4 = subnets.filter((c) => c.family === 4);
    this.v4Nets = v4.map((c) => ipv4ToNumber(c.bytes));
    this.v4Masks = v4.map((c) => (c.prefixLen === 0 ? 0 : (0xffffffff << (32 - c.prefixLen)) >>> 0));
    this.v6 = subnets.filter((c) => c.family === 6);
  }

  /** `addr`: an unsigned IPv4 address. */
  contains4(addr: number): boolean {
    const nets = this.v4Nets;
    for (let i = 0; i < nets.length; i++) {
      if (((addr & this.v4Masks[i]!) >>> 0) === nets[i]) return true;
    }
    return false;
  }

  /** The 16-byte IPv6 address at `buf[off]` (borrowed). */
  contains6(buf: Uint8Array, off: number): boolean {
    for (const cidr of this.v6) if (prefixMatches(cidr, buf, off)) return true;
    return false;
  }
}

function prefixMatches(cidr: Cidr, buf: Uint8Array, off: number): boolean {
  const whole = cidr.prefixLen >> 3;
  for (let i = 0; i < whole; i++) if (buf[off + i] !== cidr.bytes[i]) return false;
  const rest = cidr.prefixLen & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((buf[off + whole]! & mask) === cidr.bytes[whole]);
}
