/**
 * The kit every config block validator uses, whichever folder owns the block (the node config
 * in node-bootstrap/config/, a subnet manager's block in ipam/, a transport's in tunnel/): a
 * validator reports each problem with the field path and the reason, then returns the value or
 * undefined; the config loader collects every issue before refusing the file.
 */
import { resolve } from 'node:path';
import { formatEndpoint, parseEndpoint } from './endpoint.js';
import type { IpFamily } from './cidr.js';

export interface ConfigIssue {
  /** Field path, e.g. "nodes[1].subnets[0]"; empty for the file as a whole. */
  readonly path: string;
  readonly reason: string;
}

/** Records an issue; returns undefined so a validator can `return issue(...)`. */
export type IssueFn = (path: string, reason: string) => undefined;

/** "host:port" parsed; `host` is an IP literal (the addon binds and sends to numbers). */
export interface HostPort {
  readonly host: string;
  readonly port: number;
  readonly family: IpFamily;
  /** Canonical text: "192.168.77.1:8285", "[fd00::1]:8285". */
  readonly text: string;
}

/** What a block validator may need besides its value. */
export interface BlockContext {
  /** Relative file paths are taken from here (the config file's directory). */
  readonly baseDir: string;
  readonly issue: IssueFn;
}

/** Reports every key of `value` not in `known`, at `<path>.<key>` (the key alone at the top). */
export function checkKnownKeys(value: Record<string, unknown>, path: string, known: readonly string[], issue: IssueFn): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) issue(path === '' ? key : `${path}.${key}`, `unknown setting (known: ${known.join(', ')})`);
  }
}

/** One block's issues: reported as usual, and remembered so the block can refuse to build a value. */
export function blockIssues(report: IssueFn): { issue: IssueFn; bad: () => boolean } {
  let bad = false;
  return {
    issue: (path, reason) => {
      bad = true;
      return report(path, reason);
    },
    bad: () => bad,
  };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Absent: undefined and null (a YAML key with no value). */
export function isAbsent(value: unknown): value is undefined | null {
  return value === undefined || value === null;
}

/** A value for a message: `a list`, `a mapping`, `number 3`, `string "x"`. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${show(value)}`;
}

export function show(value: unknown): string {
  return typeof value === 'string' ? `"${value}"` : String(value);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function intAt(value: unknown, path: string, fallback: number, min: number, max: number, issue: IssueFn): number | undefined {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value)) return issue(path, `expected an integer, got ${describe(value)}`);
  if (value < min || value > max) return issue(path, `${value} is out of range (${min}-${max})`);
  return value;
}

/** A file path (absolute, or relative to the config file's directory); its user checks existence. */
export function filePathAt(value: unknown, path: string, baseDir: string, issue: IssueFn, required: boolean): string | undefined {
  if (value === undefined) return required ? issue(path, 'required') : undefined;
  if (typeof value !== 'string' || value.trim() === '') return issue(path, `expected a file path, got ${describe(value)}`);
  return resolve(baseDir, value.trim());
}

/** Parses "a.b.c.d:port" or "[v6]:port" (core/endpoint.ts); the host must be an IP address. */
export function parseHostPort(text: string): HostPort {
  const { host, port, family } = parseEndpoint(text);
  return { host, port, family, text: formatEndpoint(host, port) };
}

export function hostPortAt(value: unknown, path: string, issue: IssueFn): HostPort | undefined {
  if (Array.isArray(value)) return issue(path, `expected a "host:port" string, got a list (quote IPv6 endpoints in YAML: "[fd00::1]:8285")`);
  if (typeof value !== 'string') return issue(path, `expected a "host:port" string, got ${describe(value)}`);
  try {
    return parseHostPort(value.trim());
  } catch (err: unknown) {
    return issue(path, errorMessage(err));
  }
}

/** A URL with one of `schemes` ("http:", ...) and a host; no query or fragment; no path or credentials unless allowed. */
export function urlAt(
  value: unknown,
  path: string,
  schemes: readonly string[],
  form: string,
  issue: IssueFn,
  allow: { credentials?: boolean; path?: boolean } = {},
): string | undefined {
  if (typeof value !== 'string') return issue(path, `expected ${form}, got ${describe(value)}`);
  const text = value.trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return issue(path, `"${text}" is not a URL; expected ${form}`);
  }
  if (!schemes.includes(url.protocol)) return issue(path, `"${text}": scheme must be ${schemes.map((s) => s.slice(0, -1)).join(' or ')}`);
  if (url.hostname === '') return issue(path, `"${text}" has no host`);
  if (allow.credentials !== true && (url.username !== '' || url.password !== '')) return issue(path, `"${text}": no credentials in the URL`);
  if (url.search !== '' || url.hash !== '') return issue(path, `"${text}": no query or fragment`);
  if (allow.path !== true && url.pathname !== '/' && url.pathname !== '') return issue(path, `"${text}": expected ${form} (no path)`);
  return text;
}
