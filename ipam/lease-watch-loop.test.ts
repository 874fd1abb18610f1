/**
 * The list -> watch -> relist loop against a scripted source: each list() and watch() call takes
 * the next step of a script, so the tests say exactly what the source does, in order.
 */
import { describe, expect, it } from 'vitest';
import type { Lease, LeaseEvent } from '../core/lease.js';
import { runLeaseWatchLoop } from './lease-watch-loop.js';
import type { LeaseChange, LeaseSnapshot, LeaseWatchSource, WatchOutcome } from './lease-watch-loop.js';
import { quietLogger } from '../test/recording-logger.js';

const lease = (node: string, subnet: string, endpoint = `${subnet.split('/')[0] ?? ''}:8285`): Lease => ({
  node, subnets: [subnet], endpoints: { udp: endpoint },
});
const A = lease('a', '10.244.1.0/24');
const B = lease('b', '10.244.2.0/24');
const C = lease('c', '10.244.3.0/24');

type ListStep = LeaseSnapshot | Error;
/** A watch step: changes to deliver, then how it ends ('hang': until the signal aborts). */
interface WatchStep {
  changes?: LeaseChange[];
  end: WatchOutcome | Error | 'hang';
}

class ScriptedSource implements LeaseWatchSource {
  readonly watchedFrom: string[] = [];
  lists = 0;

  constructor(
    private readonly listSteps: ListStep[],
    private readonly watchSteps: WatchStep[],
  ) {}

  list(): Promise<LeaseSnapshot> {
    this.lists++;
    const step = this.listSteps.shift();
    if (step === undefined) return new Promise(() => undefined);
    return step instanceof Error ? Promise.reject(step) : Promise.resolve(step);
  }

  async watch(fromVersion: string, onChange: (change: LeaseChange) => void, signal: AbortSignal): Promise<WatchOutcome> {
    this.watchedFrom.push(fromVersion);
    const step = this.watchSteps.shift() ?? { end: 'hang' };
    for (const change of step.changes ?? []) onChange(change);
    if (step.end === 'hang') {
      await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
      return { kind: 'aborted' };
    }
    if (step.end instanceof Error) throw step.end;
    return step.end;
  }
}

const brief = (events: LeaseEvent[]): string[] => events.map((e) => `${e.type === 'added' ? '+' : '-'}${e.lease.node}`);

async function run(source: ScriptedSource, until: (batches: LeaseEvent[][]) => boolean, extra: { watchdogMs?: number; resyncMs?: number } = {}) {
  const batches: LeaseEvent[][] = [];
  const stop = new AbortController();
  const done = runLeaseWatchLoop({
    source, what: 'test', retryMinMs: 5, retryMaxMs: 20, resyncMs: extra.resyncMs ?? 0, watchdogMs: extra.watchdogMs ?? 0,
    signal: stop.signal, log: quietLogger, onEvents: (e) => batches.push(e),
  });
  for (let i = 0; i < 400 && !until(batches); i++) await new Promise((r) => setTimeout(r, 5));
  stop.abort();
  await done;
  return batches;
}

describe('runLeaseWatchLoop', () => {
  it('hands on the full set first, then each change (a changed lease as removed + added), resuming after a normal end', async () => {
    const source = new ScriptedSource([{ leases: [A, B], version: '10' }], [
      { changes: [{ version: '11', lease: C }, { version: '12', lease: { ...B, endpoints: { udp: '192.168.77.9:8285' } } }], end: { kind: 'ended', version: '12' } },
      { changes: [{ version: '13', removed: 'a' }, { version: '14' }, { version: '15', removed: 'nobody' }, { version: '16', lease: C }], end: 'hang' },
    ]);
    const batches = await run(source, (b) => b.length >= 4);
    expect(batches.map(brief)).toEqual([['+a', '+b'], ['+c'], ['-b', '+b'], ['-a']]);
    expect(source.watchedFrom).toEqual(['10', '12']);
    expect(source.lists).toBe(1);
  });

  it('an empty first list still makes a first batch', async () => {
    const batches = await run(new ScriptedSource([{ leases: [], version: '1' }], []), (b) => b.length >= 1);
    expect(batches).toEqual([[]]);
  });

  it('a failing source: nothing is removed meanwhile; after the outage only the difference is handed on', async () => {
    const source = new ScriptedSource(
      [{ leases: [A, B], version: '10' }, new Error('connection refused'), new Error('connection refused'), { leases: [A, C], version: '30' }],
      [{ end: new Error('stream reset') }],
    );
    const batches = await run(source, (b) => b.length >= 2);
    expect(batches.map(brief)).toEqual([['+a', '+b'], ['-b', '+c']]);
    expect(source.lists).toBe(4);
    expect(source.watchedFrom).toEqual(['10', '30']);
  });

  it('an expired version (compaction, 410 Gone) relists at once', async () => {
    const source = new ScriptedSource([{ leases: [A], version: '5' }, { leases: [A, B], version: '50' }], [{ end: { kind: 'expired', reason: '410 Gone' } }]);
    const batches = await run(source, (b) => b.length >= 2);
    expect(batches.map(brief)).toEqual([['+a'], ['+b']]);
    expect(source.watchedFrom).toEqual(['5', '50']);
  });

  it('a silent watch is taken as dead by the watchdog and relisted', async () => {
    const source = new ScriptedSource([{ leases: [A], version: '1' }, { leases: [B], version: '2' }], [{ end: 'hang' }]);
    const batches = await run(source, (b) => b.length >= 2, { watchdogMs: 50 });
    expect(batches.map(brief)).toEqual([['+a'], ['-a', '+b']]);
  });

  it('the periodic resync relists even while the watch is healthy', async () => {
    const source = new ScriptedSource([{ leases: [A], version: '1' }, { leases: [A, C], version: '9' }], [{ end: 'hang' }]);
    const batches = await run(source, (b) => b.length >= 2, { resyncMs: 40 });
    expect(batches.map(brief)).toEqual([['+a'], ['+c']]);
  });

  it('an abort during the backoff ends the loop at once and leaves no timer', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const source = new ScriptedSource([new Error('down')], []);
    const stop = new AbortController();
    const started = Date.now();
    const done = runLeaseWatchLoop({
      source, what: 'test', retryMinMs: 60_000, retryMaxMs: 60_000, resyncMs: 0, watchdogMs: 0, signal: stop.signal, log: quietLogger, onEvents: () => undefined,
    });
    await new Promise((r) => setTimeout(r, 20));
    stop.abort();
    await done;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(before);
  });
});
