import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { identify, isRunning, processStartTicks, signalVerified } from './process-start.js';
import { waitExit } from './shell.js';

describe('process identity (PID + start time)', () => {
  it('reads this process\'s start time, and none for a PID that does not exist', () => {
    const me = identify(process.pid);
    expect(me?.startTicks).toBeGreaterThan(0);
    expect(me !== undefined && isRunning(me)).toBe(true);
    // PIDs are below 2^22 on Linux (pid_max).
    expect(processStartTicks(2 ** 22 + 1)).toBeUndefined();
  });

  it('signals a process group only while the PID has the recorded start time', async () => {
    const child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    try {
      const id = identify(child.pid ?? -1);
      expect(id).toBeDefined();
      if (id === undefined) return;
      // A recycled PID: same number, another start time. Never signalled.
      expect(signalVerified({ pid: id.pid, startTicks: id.startTicks + 1 }, 'SIGTERM')).toBe(false);
      expect(await waitExit(child, 300)).toBe(false);
      expect(signalVerified(id, 'SIGTERM')).toBe(true);
      expect(await waitExit(child, 5_000)).toBe(true);
      expect(isRunning(id)).toBe(false);
      expect(signalVerified(id, 'SIGTERM')).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
