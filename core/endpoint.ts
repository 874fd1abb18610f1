/**
 * UDP endpoints as written in config: "192.168.77.1:8285", "[fd00::1]:8285". Hosts are IP
 * literals (no DNS on the data path); IPv6 needs brackets so the port cannot be mistaken for
 * part of the address.
 */
import { formatAddress, parseAddress } from './cidr.js';
import type { IpFamily } from './cidr.js';

export interface Endpoint {
  /** Canonical address text without brackets: "192.168.77.1", "fd00::1". */
  host: string;
  port: number;
  family: IpFamily;
}

export interface ParseEndpointOptions {
  /** Accept port 0 (a listen address asking for an ephemeral port). Default false. */
  allowPortZero?: boolean;
}

/** A bad "host:port"; the message says why, callers add the field it came from. */
export class EndpointError extends Error {
  readonly code = 'ERR_PODTUN_ENDPOINT';
}

export function parseEndpoint(text: string, options: ParseEndpointOptions = {}): Endpoint {
  if (typeof text !== 'string') throw new EndpointError(`expected "host:port", got ${typeof text}`);
  let hostText: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw new EndpointError(`"${text}" has no closing "]" (expected "[v6]:port")`);
    hostText = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (!rest.startsWith(':')) throw new EndpointError(`"${text}" has no port after "]" (expected "[v6]:port")`);
    portText = rest.slice(1);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) throw new EndpointError(`"${text}" has no port (expected "host:port")`);
    hostText = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (hostText.includes(':')) {
      throw new EndpointError(`"${text}": an IPv6 address needs brackets, e.g. "[${hostText}]:${portText}"`);
    }
  }
  if (hostText === '') throw new EndpointError(`"${text}" has an empty host`);
  let family: IpFamily;
  let host: string;
  try {
    const address = parseAddress(hostText);
    family = address.family;
    host = formatAddress(address);
  } catch (err: unknown) {
    throw new EndpointError(`"${text}": host "${hostText}" is not an IP address`, { cause: err });
  }
  if (family === 4 && text.startsWith('[')) {
    throw new EndpointError(`"${text}": brackets are for IPv6 addresses only`);
  }
  const minPort = options.allowPortZero === true ? 0 : 1;
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < minPort || Number(portText) > 65535) {
    throw new EndpointError(`"${text}": port "${portText}" is not a number from ${minPort} to 65535`);
  }
  return { host, port: Number(portText), family };
}

/** "host:port", with brackets around IPv6 hosts. */
export function formatEndpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
