/** Node names and the TUN name: what Kubernetes and Linux accept. */
import { describe } from '../../../core/config-check.js';
import type { IssueFn } from '../../../core/config-check.js';
import { DEFAULT_TUN_NAME } from '../node-config.js';

const NODE_NAME_MAX = 253;
const NODE_NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;
/** Linux IFNAMSIZ - 1. */
export const TUN_NAME_MAX = 15;
const TUN_NAME_RE = /^[A-Za-z0-9_.-]+$/;

export function nodeNameAt(value: unknown, path: string, issue: IssueFn, required: boolean): string | undefined {
  if (value === undefined) return required ? issue(path, path === 'nodeName' ? 'required (or set NODE_NAME, as a DaemonSet does from the downward API)' : 'required') : undefined;
  if (typeof value !== 'string') return issue(path, `expected a string, got ${describe(value)}`);
  if (value.length === 0 || value.length > NODE_NAME_MAX) return issue(path, `must be 1-${NODE_NAME_MAX} characters`);
  if (!NODE_NAME_RE.test(value)) {
    return issue(path, `"${value}" is not a node name (letters, digits, '.', '_', '-'; starts and ends with a letter or digit)`);
  }
  return value;
}

export function tunNameAt(value: unknown, issue: IssueFn): string | undefined {
  if (value === undefined) return DEFAULT_TUN_NAME;
  if (typeof value !== 'string') return issue('tunName', `expected a string, got ${describe(value)}`);
  if (value.length === 0 || value.length > TUN_NAME_MAX) return issue('tunName', `"${value}" must be 1-${TUN_NAME_MAX} characters (Linux interface name)`);
  if (!TUN_NAME_RE.test(value) || value === '.' || value === '..') {
    return issue('tunName', `"${value}" may only use letters, digits, '_', '.', '-'`);
  }
  return value;
}
