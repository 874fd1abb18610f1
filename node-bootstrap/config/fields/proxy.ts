/** `proxy`: the proxy outgoing WebSocket dials go through (tunnel/ws/proxy-url.ts), kept as written. */
import { describe, errorMessage, isAbsent } from '../../../core/config-check.js';
import type { IssueFn } from '../../../core/config-check.js';
import { PROXY_FORM, parseProxyUrl } from '../../../tunnel/ws/proxy-url.js';

export function proxyAt(value: unknown, issue: IssueFn): string | undefined {
  if (isAbsent(value)) return undefined;
  if (typeof value !== 'string') return issue('proxy', `expected ${PROXY_FORM}, got ${describe(value)}`);
  try {
    parseProxyUrl(value.trim());
  } catch (err: unknown) {
    return issue('proxy', errorMessage(err));
  }
  return value.trim();
}
