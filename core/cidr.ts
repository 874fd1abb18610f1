/**
 * Addresses and CIDRs at the edges (config, IPAM, CLI): parsed and validated once with
 * ip-address, then carried as bytes so the hot path never parses text. The only importer of
 * ip-address.
 */
import { Address4, Address6 } from 'ip-address';

export type IpFamily = 4 | 6;

export interface IpAddress {
  family: IpFamily;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

export interface Cidr {
  family: IpFamily;
  /** The network address (host bits zero), 4 or 16 bytes. */
  bytes: Uint8Array;
  prefixLen: number;
  /** Canonical text, e.g. "10.244.1.0/24", "fd00:10:244:1::/64". */
  text: string;
}

/** A bad address or CIDR, with the reason; callers add the field it came from. */
export class AddressError extends Error {
  readonly code = 'ERR_PODTUN_ADDRESS';
}

export function parseAddress(text: string): IpAddress {
  if (typeof text !== 'string' || text.includes('/')) {
    throw new AddressError(`"${String(text)}" is not an IP address`);
  }
  if (Address4.isValid(text)) return { family: 4, bytes: Uint8Array.from(new Address4(text).toArray()) };
  if (Address6.isValid(text) && !text.includes('%')) {
    return { family: 6, bytes: bigIntToBytes16(new Address6(text).bigInt()) };
  }
  throw new AddressError(`"${text}" is not an IPv4 or IPv6 address`);
}

function bigIntToBytes16(value: bigint): Uint8Array {
  const bytes = new Uint8Array(16);
  for (let i = 15, v = value; i >= 0; i--, v >>= 8n) bytes[i] = Number(v & 0xffn);
  return bytes;
}

/** Parses "a.b.c.d/n" or "v6/n". Host bits must be zero: "10.244.1.5/24" is refused. */
export function parseCidr(text: string): Cidr {
  if (typeof text !== 'string') throw new AddressError(`expected a CIDR string, got ${typeof text}`);
  const slash = text.indexOf('/');
  if (slash < 0) throw new AddressError(`"${text}" has no prefix length (expected address/length)`);
  const addrText = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  const address = parseAddress(addrText);
  const maxLen = address.family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > maxLen) {
    throw new AddressError(`"${text}" has a bad prefix length (0-${maxLen})`);
  }
  const prefixLen = Number(lenText);
  const network = maskBytes(address.bytes, prefixLen);
  if (!bytesEqual(network, address.bytes)) {
    throw new AddressError(`"${text}" has host bits set (network address is ${formatAddress({ family: address.family, bytes: network })}/${prefixLen})`);
  }
  return { family: address.family, bytes: network, prefixLen, text: `${formatAddress(address)}/${prefixLen}` };
}

export function formatAddress(address: IpAddress): string {
  if (address.family === 4) return Array.from(address.bytes).join('.');
  return Address6.fromByteArray(Array.from(address.bytes)).correctForm();
}

/** `inner` lies entirely within `outer` (same family). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefixLen < outer.prefixLen) return false;
  return bytesEqual(maskBytes(inner.bytes, outer.prefixLen), outer.bytes);
}

export function cidrContainsAddress(outer: Cidr, address: IpAddress): boolean {
  if (outer.family !== address.family) return false;
  return bytesEqual(maskBytes(address.bytes, outer.prefixLen), outer.bytes);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

/** The address `offset` places after the network address (offset fits in 32 bits). */
export function addressInCidr(cidr: Cidr, offset: number): IpAddress {
  const bytes = Uint8Array.from(cidr.bytes);
  let carry = offset >>> 0;
  for (let i = bytes.length - 1; i >= 0 && carry > 0; i--) {
    const sum = (bytes[i] ?? 0) + (carry & 0xff);
    bytes[i] = sum & 0xff;
    carry = (carry >>> 8) + (sum >> 8);
  }
  return { family: cidr.family, bytes };
}

/** IPv4 bytes as an unsigned 32-bit number, the form the hot path uses. */
export function ipv4ToNumber(bytes: Uint8Array): number {
  return (((bytes[0] ?? 0) << 24) | ((bytes[1] ?? 0) << 16) | ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0)) >>> 0;
}

function maskBytes(bytes: Uint8Array, prefixLen: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefixLen - i * 8));
    out[i] = (bytes[i] ?? 0) & ((0xff00 >> bits) & 0xff);
  }
  return out;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
