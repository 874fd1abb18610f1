/** `proxy`: the HTTP proxy outgoing WebSocket dials go through, kept as written. */
import { describe, isAbsent } from '../../../core/config-check.js';
import type { IssueFn } from '../../../core/config-check.js';

const FORM = '"http://[user:pass@]host:port"';

export function proxyAt(value: unknown, issue: IssueFn): string | undefined {
  if (isAbsent(value)) return undefined;
  if (typeof value !== 'string') return issue('proxy', `expected ${FORM}, got ${describe(value)}`);
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return issue('proxy', `not a URL; expected ${FORM}`);
  }
  if (url.protocol !== 'http:') return issue('proxy', `scheme "${url.protocol}" not supported; expected ${FORM}`);
  if (url.hostname === '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    return issue('proxy', `expected ${FORM} (a host and port, no path)`);
  }
  return value.trim();
}
