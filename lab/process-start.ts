/**
 * A process named by its PID and its start time, so that a PID recorded by an earlier command
 * (the lab's daemons, the `lab up` that is building) is only ever signalled while it still names
 * that process: once it exits, the kernel may give the PID to an unrelated one, which started
 * later.
 */
import { readFileSync } from 'node:fs';
import { signalGroup } from './shell.js';

export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks after boot when the process started. */
  startTicks: number;
}

/** The start time of `pid`, or undefined when there is no such process. */
export function processStartTicks(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count from after the last ')'.
  // What follows starts at field 3 (state), so starttime, field 22, is the 20th.
  const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  return Number.isSafeInteger(ticks) ? ticks : undefined;
}

/** The identity of a running process (undefined when it is gone). */
export function identify(pid: number): ProcessIdentity | undefined {
  const startTicks = processStartTicks(pid);
  return startTicks === undefined ? undefined : { pid, startTicks };
}

/** Whether `id` still names a running process (a zombie counts until it is reaped). */
export function isRunning(id: ProcessIdentity): boolean {
  return processStartTicks(id.pid) === id.startTicks;
}

/**
 * Signals the process group `id` leads (the lab's daemons each lead one), only if `id` still
 * names the process that was recorded; false when it is gone or its PID now names another.
 */
export function signalVerified(id: ProcessIdentity, signal: NodeJS.Signals): boolean {
  return isRunning(id) && signalGroup(id.pid, signal);
}
