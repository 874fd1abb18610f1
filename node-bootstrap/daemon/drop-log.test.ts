import { describe, expect, it } from 'vitest';
import { recordingLogger } from '../../test/recording-logger.js';
import type { LogLine } from '../../test/recording-logger.js';
import { startDropLog } from './drop-log.js';

describe('startDropLog', () => {
  it('logs one debug line per reason that moved, with the count since the last line', () => {
    const lines: LogLine[] = [];
    let drops: Record<string, number> = { spoofed: 5 };
    const dropLog = startDropLog({ drops: () => drops, log: recordingLogger(lines), intervalMs: 60_000 });
    try {
      dropLog.tick();
      drops = { spoofed: 5, no_route: 2 };
      dropLog.tick();
      drops = { spoofed: 9, no_route: 2 };
      dropLog.tick();
      dropLog.tick();
    } finally {
      dropLog.close();
      dropLog.close();
    }
    expect(lines.map((l) => [l.level, l.msg, l.obj])).toEqual([
      ['debug', 'packets dropped', { reason: 'spoofed', count: 5 }],
      ['debug', 'packets dropped', { reason: 'no_route', count: 2 }],
      ['debug', 'packets dropped', { reason: 'spoofed', count: 4 }],
    ]);
  });

  it("names the last dropped packet's source and destination when the router kept them", () => {
    const lines: LogLine[] = [];
    const dropLog = startDropLog({
      drops: () => ({ no_route: 3, congested: 1 }),
      lastDropped: (reason) => (reason === 'no_route' ? { src: '10.244.1.5', dst: '10.244.7.9' } : undefined),
      log: recordingLogger(lines),
      intervalMs: 60_000,
    });
    dropLog.tick();
    dropLog.close();
    expect(lines.map((l) => l.obj)).toEqual([
      { reason: 'no_route', count: 3, src: '10.244.1.5', dst: '10.244.7.9' },
      { reason: 'congested', count: 1 },
    ]);
  });
});
