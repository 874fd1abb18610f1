/**
 * UDP endpoints as written in config: "192.168.77.1:8285", "[fd00::1]:8285", and, where a peer is
 * named rather than addressed, "node-b.example.net:8285" (parseEndpointOrName; the transport
 * looks the name up off the data path, tunnel/endpoint-resolver.ts). IPv6 needs brackets so the
 * port cannot be mistaken for part of the address.
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

/** An endpoint whose host is a DNS name: looked up before use, and again while in use. */
export interface NamedEndpoint {
  /** Lower case, without a trailing dot: "node-b.example.net". */
  name: string;
  port: number;
}

export function parseEndpoint(text: string, options: ParseEndpointOptions = {}): Endpoint {
  const { hostText, portText, bracketed } = splitHostPort(text);
  const address = addressOf(text, hostText, bracketed);
  if ('cause' in address) throw new EndpointError(`"${text}": host "${hostText}" is not an IP address`, address);
  return { ...address, port: portOf(text, portText, options) };
}

/** "ip:port" as parseEndpoint, or "name:port" with a DNS host name (RFC 1123 labels). */
export function parseEndpointOrName(text: string): Endpoint | NamedEndpoint {
  const { hostText, portText, bracketed } = splitHostPort(text);
  const address = addressOf(text, hostText, bracketed);
  const port = portOf(text, portText, {});
  if (!('cause' in address)) return { ...address, port };
  const name = hostText.toLowerCase().replace(/\.$/, '');
  if (bracketed || !isHostName(name)) {
    throw new EndpointError(`"${text}": host "${hostText}" is neither an IP address nor a host name`);
  }
  return { name, port };
}

export function isNamedEndpoint(endpoint: Endpoint | NamedEndpoint): endpoint is NamedEndpoint {
  return 'name' in endpoint;
}

function splitHostPort(text: string): { hostText: string; portText: string; bracketed: boolean } {
  if (typeof text !== 'string') throw new EndpointError(`expected "host:port", got ${typeof text}`);
  let hostText: string;
  let portText: string;
  const bracketed = text.startsWith('[');
  if (bracketed) {
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
  return { hostText, portText, bracketed };
}

/** The host as an address, or why it is none (a name, or not a host at all). */
function addressOf(text: string, hostText: string, bracketed: boolean): Omit<Endpoint, 'port'> | { cause: unknown } {
  let family: IpFamily;
  let host: string;
  try {
    const address = parseAddress(hostText);
    family = address.family;
    host = formatAddress(address);
  } catch (err: unknown) {
    // Bracketed text can only be an IPv6 address: say why it is not one.
    if (bracketed) throw new EndpointError(`"${text}": host "${hostText}" is not an IP address`, { cause: err });
    return { cause: err };
  }
  if (family === 4 && bracketed) throw new EndpointError(`"${text}": brackets are for IPv6 addresses only`);
  return { host, family };
}

function portOf(text: string, portText: string, options: ParseEndpointOptions): number {
  const minPort = options.allowPortZero === true ? 0 : 1;
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < minPort || Number(portText) > 65535) {
    throw new EndpointError(`"${text}": port "${portText}" is not a number from ${minPort} to 65535`);
  }
  return Number(portText);
}

/**
 * Labels of letters, digits and inner hyphens, 1..63 characters each, 253 in all; the last
 * label not all digits, so a mistyped address ("10.0.0.300") is not taken for a name.
 */
function isHostName(name: string): boolean {
  if (name.length > 253) return false;
  const labels = name.split('.');
  return labels.every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l)) && !/^\d+$/.test(labels[labels.length - 1] ?? '');
}

/** "host:port", with brackets around IPv6 hosts. */
export function formatEndpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
