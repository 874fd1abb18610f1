/**
 * Short reasons for failed socket operations in logs and typed errors: "address in use" for an
 * EADDRINUSE, whether the error names it by code (Node), by numeric errno (the native addon) or in
 * its message; otherwise the error's own message.
 */
import { constants as osConstants } from 'node:os';

const ERRNO_REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address in use',
  EADDRNOTAVAIL: 'address not available on this host',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EAFNOSUPPORT: 'address family not supported',
  ENOENT: 'no such file',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

/** The errno name ("EADDRINUSE") of a numeric errno (positive or negated). */
function errnoName(errno: unknown): string | undefined {
  if (typeof errno !== 'number') return undefined;
  const abs = Math.abs(errno);
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === abs) return name;
  return undefined;
}

export function errorReason(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const byErrno = ERRNO_REASONS[errnoName((err as { errno?: unknown }).errno) ?? ''];
    if (byErrno !== undefined) return byErrno;
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && ERRNO_REASONS[code] !== undefined) return ERRNO_REASONS[code];
    const message = (err as { message?: unknown }).message;
    const named = typeof message === 'string' ? /\bE[A-Z]+\b/.exec(message)?.[0] : undefined;
    const reason = named === undefined ? undefined : ERRNO_REASONS[named];
    if (reason !== undefined) return reason;
    if (typeof message === 'string' && message !== '') return message;
  }
  return String(err);
}
