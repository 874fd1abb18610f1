/**
 * Whether `pid` names a live process (signal 0). Stray temp files carry their writer's PID: one
 * whose writer is gone (killed mid-write) may be removed. EPERM means alive, someone else's.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err: unknown) {
    return !(err instanceof Error && (err as NodeJS.ErrnoException).code === 'ESRCH');
  }
}
