/**
 * The process's open-files soft limit (RLIMIT_NOFILE), which the listener sizes its cap on
 * unauthenticated connections from. Node has no getrlimit: Linux shows it in /proc/self/limits.
 * Read when the listener starts, so a limit the daemon raised at start is the one seen.
 */
import { readFileSync } from 'node:fs';

/** Assumed where the limit cannot be read (the usual soft default). */
export const ASSUMED_OPEN_FILES_LIMIT = 1024;
/** The default cap never exceeds this, whatever the limit. */
export const MAX_DEFAULT_UNAUTHENTICATED = 1024;

const LIMIT_RE = /^Max open files\s+(\d+|unlimited)\s/m;

/** The soft limit on open files; `limitsText` is /proc/self/limits (tests give their own). */
export function openFilesSoftLimit(limitsText?: string): number {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return ASSUMED_OPEN_FILES_LIMIT;
    }
  }
  const value = LIMIT_RE.exec(text)?.[1];
  if (value === undefined) return ASSUMED_OPEN_FILES_LIMIT;
  return value === 'unlimited' ? Number.POSITIVE_INFINITY : Number(value);
}

/** The default cap on unauthenticated connections: min(1024, limit / 4), at least 1. */
export function defaultMaxUnauthenticated(openFilesLimit: number): number {
  return Math.max(1, Math.min(MAX_DEFAULT_UNAUTHENTICATED, Math.floor(openFilesLimit / 4)));
}
