/**
 * One doctor check and the report they add up to, plus what the layers' checks share: the
 * pass/fail constructors and reading `ip -j` output.
 */

export interface DoctorCheck {
  /** host | tun | routes | daemon | peer:<name> | mtu:<name> */
  readonly layer: string;
  readonly name: string;
  readonly ok: boolean;
  /** Passed, but worth knowing (a peer on WebSocket because UDP is blocked): does not fail the run. */
  readonly warning?: boolean;
  readonly detail: string;
  /** What to do about it ('' when there is nothing to do). */
  readonly hint: string;
}

export interface DoctorReport {
  readonly checks: readonly DoctorCheck[];
  /** 0 when every check passed, 1 otherwise. */
  readonly exitCode: 0 | 1;
}

export function pass(layer: string, name: string, detail: string): DoctorCheck {
  return { layer, name, ok: true, detail, hint: '' };
}

export function warn(layer: string, name: string, detail: string, hint: string): DoctorCheck {
  return { layer, name, ok: true, warning: true, detail, hint };
}

export function fail(layer: string, name: string, detail: string, hint: string): DoctorCheck {
  return { layer, name, ok: false, detail, hint };
}

export function doctorReport(checks: readonly DoctorCheck[]): DoctorReport {
  return { checks, exitCode: checks.every((c) => c.ok) ? 0 : 1 };
}

/** Bound on one `ip` run. */
export const IP_TIMEOUT_MS = 3_000;

/** `ip -j` output as a list; [] when it is not one (a failed or older `ip`). */
export function parseJsonArray<T>(text: string): T[] {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? (value as T[]) : [];
  } catch {
    return [];
  }
}

export function firstLine(text: string): string {
  return (text.trim().split('\n')[0] ?? '').trim();
}
