/**
 * The list -> watch -> relist loop against a scripted source: each list() and watch() call takes
 * the next step of its script, so a row says exactly what the source does, in order, and what
 * the consumer must see (batches), what the loop must ask (calls) and what it must say (logs).
 */
import { describe, expect, it } from 'vitest';
import type { Lease, LeaseEvent } from '../core/lease.js';
import { recordingLogger } from '../test/recording-logger.js';
import type { LogLine } from '../test/recording-logger.js';
import { resourcesAbove, settledResources } from '../test/registry-contract.js';
import { sleep } from './abortable.js';
import { LeaseWatchOptionsError, runLeaseWatchLoop } from './lease-watch-loop.js';
import type { LeaseChange, LeaseSnapshot, LeaseWatchLoopOptions, LeaseWatchSource, WatchOutcome } from './lease-watch-loop.js';

const lease = (node: string, third: number, host = third): Lease => ({
  node,
  subnets: [`10.244.${third}.0/24`],
  endpoints: { udp: `192.168.77.${host}:8285` },
});
const A = lease('a', 1);
const B = lease('b', 2);
const B2 = lease('b', 2, 99);
const C = lease('c', 3);
const C2 = lease('c', 3, 98);
const D = lease('d', 4);

type V = number;
/** A list answers, fails, or never answers. */
type ListStep = LeaseSnapshot<V> | { readonly fail: string } | 'hang';

interface Turn {
  /** Pause before this turn, ms. */
  readonly afterMs?: number;
  /** Delivered synchronously, in one turn of the event loop. */
  readonly changes: readonly LeaseChange<V>[];
}

interface WatchStep {
  readonly turns?: readonly Turn[];
  /**
   * After the turns (and endAfterMs): an outcome, a failure, 'hang' until the signal aborts, or
   * 'deaf': ignores its signal, still delivers its turns and never settles (a buggy source).
   */
  readonly end: WatchOutcome<V> | { readonly fail: string } | 'hang' | 'deaf';
  readonly endAfterMs?: number;
}

class ScriptedSource implements LeaseWatchSource<V> {
  /** "list" / "watch <from>", in order. */
  readonly calls: string[] = [];
  /** When each call was made (Date.now()). */
  readonly callAtMs: number[] = [];
  readonly watchSignals: AbortSignal[] = [];

  constructor(
    private readonly lists: ListStep[],
    private readonly watches: WatchStep[],
  ) {}

  async list(): Promise<LeaseSnapshot<V>> {
    this.record('list');
    const step = this.lists.shift() ?? 'hang';
    if (step === 'hang') return new Promise<never>(() => undefined);
    if ('fail' in step) throw new Error(step.fail);
    return step;
  }

  async watch(fromVersion: V, onChange: (change: LeaseChange<V>) => void, signal: AbortSignal): Promise<WatchOutcome<V>> {
    this.record(`watch ${fromVersion}`);
    this.watchSignals.push(signal);
    const step = this.watches.shift() ?? { end: 'hang' };
    const deaf = step.end === 'deaf';
    for (const turn of step.turns ?? []) {
      if (deaf) await new Promise((r) => setTimeout(r, turn.afterMs ?? 0));
      else await sleep(turn.afterMs ?? 0, signal);
      if (signal.aborted && !deaf) return { kind: 'aborted' };
      for (const change of turn.changes) onChange(change);
    }
    if (deaf) return new Promise<never>(() => undefined);
    if (step.end !== 'hang') await sleep(step.endAfterMs ?? 0, signal);
    if (step.end === 'hang' || signal.aborted) {
      await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
      return { kind: 'aborted' };
    }
    if ('fail' in step.end) throw new Error(step.end.fail);
    return step.end;
  }

  private record(call: string): void {
    this.calls.push(call);
    this.callAtMs.push(Date.now());
  }
}

interface Run {
  readonly batches: string[][];
  readonly source: ScriptedSource;
  readonly lines: LogLine[];
}

type LoopTuning = Partial<Pick<LeaseWatchLoopOptions<V>, 'retryMinMs' | 'retryMaxMs' | 'watchdogMs' | 'resyncMs' | 'random'>>;

const brief = (events: readonly LeaseEvent[]): string[] =>
  events.map((e) => `${e.type === 'added' ? '+' : '-'}${e.lease.node}${e.type === 'added' && e.lease.endpoints['udp']?.startsWith('192.168.77.9') ? "'" : ''}`);

/**
 * Runs the loop until `until` holds (fails after 3 s), lets it run `settleMs` more (to show that
 * nothing more arrives), then aborts it and waits for it to return.
 */
async function run(source: ScriptedSource, tuning: LoopTuning, until: (r: Run) => boolean, settleMs = 0): Promise<Run> {
  const r: Run = { batches: [], source, lines: [] };
  const stop = new AbortController();
  const done = runLeaseWatchLoop({
    source,
    what: 'scripted',
    signal: stop.signal,
    onEvents: (events) => r.batches.push(brief(events)),
    log: recordingLogger(r.lines),
    retryMinMs: 10,
    retryMaxMs: 40,
    ...tuning,
  });
  const deadline = Date.now() + 3000;
  while (!until(r)) {
    if (Date.now() > deadline) {
      stop.abort();
      await done;
      throw new Error(`timed out; batches ${JSON.stringify(r.batches)}, calls ${JSON.stringify(source.calls)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  if (settleMs > 0) await new Promise((resolve) => setTimeout(resolve, settleMs));
  stop.abort();
  await done;
  return r;
}

const messages = (r: Run, level: string): string[] => r.lines.filter((l) => l.level === level).map((l) => l.msg);
const called = (call: string) => (r: Run) => r.source.calls.includes(call);

interface Row {
  readonly name: string;
  readonly lists: ListStep[];
  readonly watches: WatchStep[];
  readonly tuning?: LoopTuning;
  readonly until: (r: Run) => boolean;
  /** Extra run time after `until`, to show that nothing more arrives. */
  readonly settleMs?: number;
  readonly batches: string[][];
  readonly calls: string[];
  readonly warn?: string[];
  readonly info?: string[];
}

const ROWS: Row[] = [
  {
    name: "the full set first; one turn is one batch, a change is removed then added; bookmarks and no-ops hand on nothing; a clean end resumes from its version",
    lists: [{ leases: [A, B], version: 10 }],
    watches: [
      {
        turns: [
          { changes: [{ version: 11, lease: C }, { version: 11, lease: B2 }] },
          { afterMs: 5, changes: [{ version: 12 }] },
          { afterMs: 5, changes: [{ version: 13, removed: 'nobody' }, { version: 13, lease: C }] },
        ],
        end: { kind: 'ended', version: 13 },
        endAfterMs: 20,
      },
      { turns: [{ changes: [{ version: 14, removed: 'a' }] }], end: 'hang' },
    ],
    until: (r) => r.batches.length >= 3,
    settleMs: 30,
    batches: [['+a', '+b'], ['-b', "+b'", '+c'], ['-a']],
    calls: ['list', 'watch 10', 'watch 13'],
    warn: [],
  },
  {
    name: 'an outage: the watch breaks, lists fail; nothing is handed on meanwhile, then only what changed (one warning for the outage)',
    lists: [{ leases: [A, B, C], version: 10 }, { fail: 'connection refused' }, { fail: 'connection refused' }, { leases: [A, C2, D], version: 30 }],
    watches: [{ end: { fail: 'stream reset' } }, { end: 'hang' }],
    until: called('watch 30'),
    batches: [['+a', '+b', '+c'], ['-b', '-c', "+c'", '+d']],
    calls: ['list', 'watch 10', 'list', 'list', 'list', 'watch 30'],
    warn: ['lease watch broken; keeping the known leases until the source answers'],
    info: ['lease watch resynced'],
  },
  {
    name: 'an expired version (etcd compaction, 410 Gone): relists at once, no failure',
    lists: [{ leases: [A], version: 5 }, { leases: [A, B], version: 50 }],
    watches: [{ end: { kind: 'expired', reason: '410 Gone' }, endAfterMs: 20 }, { end: 'hang' }],
    until: called('watch 50'),
    batches: [['+a'], ['+b']],
    calls: ['list', 'watch 5', 'list', 'watch 50'],
    warn: [],
    info: ['lease watch expired; relisting'],
  },
  {
    name: 'a silent watch: the watchdog relists',
    lists: [{ leases: [A], version: 1 }, { leases: [B], version: 2 }],
    watches: [{ end: 'hang' }, { end: 'hang' }],
    tuning: { watchdogMs: 40 },
    until: called('watch 2'),
    batches: [['+a'], ['-a', '+b']],
    calls: ['list', 'watch 1', 'list', 'watch 2'],
    warn: ['lease watch silent; relisting'],
  },
  {
    name: 'bookmarks keep the watchdog quiet',
    lists: [{ leases: [A], version: 1 }],
    watches: [{ turns: Array.from({ length: 8 }, (_, i) => ({ afterMs: 15, changes: [{ version: 2 + i }] })), end: 'hang' }],
    tuning: { watchdogMs: 40 },
    until: (r) => r.source.calls.length >= 2,
    settleMs: 100,
    batches: [['+a']],
    calls: ['list', 'watch 1'],
    warn: [],
  },
  {
    name: 'the periodic resync relists while the watch is healthy',
    lists: [{ leases: [A], version: 1 }, { leases: [A, C], version: 9 }],
    watches: [{ end: 'hang' }, { end: 'hang' }],
    tuning: { resyncMs: 40 },
    until: called('watch 9'),
    batches: [['+a'], ['+c']],
    calls: ['list', 'watch 1', 'list', 'watch 9'],
    warn: [],
  },
  {
    name: 'a deaf watch (ignores its signal) is not heard once the watchdog has moved on',
    lists: [{ leases: [A], version: 1 }, { leases: [A], version: 2 }],
    // The second watch stays alive (bookmarks) while the first one's late change arrives.
    watches: [
      { turns: [{ afterMs: 80, changes: [{ version: 3, lease: B }] }], end: 'deaf' },
      { turns: Array.from({ length: 12 }, (_, i) => ({ afterMs: 15, changes: [{ version: 3 + i }] })), end: 'hang' },
    ],
    tuning: { watchdogMs: 30 },
    until: called('watch 2'),
    settleMs: 120,
    batches: [['+a']],
    calls: ['list', 'watch 1', 'list', 'watch 2'],
  },
  {
    name: 'a watch that ends at once is paced as a failure, not resumed in a spin',
    lists: [{ leases: [A], version: 1 }, { leases: [A], version: 2 }, { leases: [A], version: 3 }],
    watches: [{ end: { kind: 'ended', version: 1 } }, { end: { kind: 'ended', version: 2 } }, { end: 'hang' }],
    tuning: { retryMinMs: 30, retryMaxMs: 60, random: () => 0 },
    until: called('watch 3'),
    batches: [['+a']],
    calls: ['list', 'watch 1', 'list', 'watch 2', 'list', 'watch 3'],
    warn: ['lease watch ended at once; relisting after a pause', 'lease watch ended at once; relisting after a pause'],
  },
];

describe('runLeaseWatchLoop', () => {
  it.each(ROWS)('$name', async (row) => {
    const source = new ScriptedSource([...row.lists], [...row.watches]);
    const r = await run(source, row.tuning ?? {}, row.until, row.settleMs);
    expect(r.batches).toEqual(row.batches);
    expect(source.calls).toEqual(row.calls);
    if (row.warn !== undefined) expect(messages(r, 'warn')).toEqual(row.warn);
    if (row.info !== undefined) expect(messages(r, 'info')).toEqual(row.info);
  });

  it('pauses before each relist after a quick end: the half of an exponential backoff (jitter 0)', async () => {
    const source = new ScriptedSource(
      [{ leases: [A], version: 1 }, { leases: [A], version: 2 }, { leases: [A], version: 3 }],
      [{ end: { kind: 'ended', version: 1 } }, { end: { kind: 'ended', version: 2 } }, { end: 'hang' }],
    );
    await run(source, { retryMinMs: 40, retryMaxMs: 400, random: () => 0 }, called('watch 3'));
    const at = source.callAtMs;
    // watch 1 -> list: 20 ms (40/2); watch 2 -> list: 40 ms (80/2). A timer may fire a ms early.
    expect((at[2] ?? 0) - (at[1] ?? 0)).toBeGreaterThanOrEqual(19);
    expect((at[4] ?? 0) - (at[3] ?? 0)).toBeGreaterThanOrEqual(39);
  });

  it('a consumer that throws is logged and the loop goes on', async () => {
    const source = new ScriptedSource([{ leases: [A], version: 1 }], [{ turns: [{ afterMs: 10, changes: [{ version: 2, lease: B }] }], end: 'hang' }]);
    const lines: LogLine[] = [];
    const seen: string[][] = [];
    const stop = new AbortController();
    const done = runLeaseWatchLoop({
      source,
      what: 'scripted',
      signal: stop.signal,
      onEvents: (events) => {
        seen.push(brief(events));
        throw new Error('consumer bug');
      },
      log: recordingLogger(lines),
      retryMinMs: 10,
      retryMaxMs: 40,
    });
    for (let i = 0; i < 100 && seen.length < 2; i++) await sleep(10, stop.signal);
    stop.abort();
    await done;
    expect(seen).toEqual([['+a'], ['+b']]);
    expect(lines.filter((l) => l.msg === 'lease event handler failed')).toHaveLength(2);
  });

  it.each<[string, ListStep[], WatchStep[], LoopTuning]>([
    ['in the pause after a failed list', [{ fail: 'down' }], [], { retryMinMs: 60_000, retryMaxMs: 60_000 }],
    ['during a list that never answers', ['hang'], [], {}],
    ['during a watch, with the watchdog and the resync armed', [{ leases: [A], version: 1 }], [{ end: 'hang' }], { watchdogMs: 60_000, resyncMs: 60_000 }],
  ])('an abort %s returns at once and leaves no timer', async (_name, lists, watches, tuning) => {
    const baseline = await settledResources();
    const source = new ScriptedSource(lists, watches);
    const stop = new AbortController();
    const done = runLeaseWatchLoop({
      source,
      what: 'scripted',
      signal: stop.signal,
      onEvents: () => undefined,
      log: recordingLogger([]),
      retryMinMs: 10,
      retryMaxMs: 40,
      ...tuning,
    });
    await sleep(40, new AbortController().signal);
    const abortedAt = Date.now();
    stop.abort();
    await done;
    expect(Date.now() - abortedAt).toBeLessThan(100);
    expect(source.watchSignals.every((s) => s.aborted)).toBe(true);
    expect(resourcesAbove(baseline, await settledResources())).toEqual([]);
  });

  it.each<[string, LoopTuning, RegExp]>([
    ['a zero retryMinMs', { retryMinMs: 0 }, /retryMinMs/],
    ['retryMaxMs below retryMinMs', { retryMinMs: 100, retryMaxMs: 10 }, /retryMaxMs \(10\) is below retryMinMs \(100\)/],
    ['a negative watchdog', { watchdogMs: -1 }, /watchdogMs/],
    ['a NaN resync', { resyncMs: Number.NaN }, /resyncMs/],
  ])('refuses %s', async (_name, tuning, message) => {
    const source = new ScriptedSource([], []);
    const started = runLeaseWatchLoop({
      source,
      what: 'scripted',
      signal: new AbortController().signal,
      onEvents: () => undefined,
      log: recordingLogger([]),
      retryMinMs: 10,
      retryMaxMs: 40,
      ...tuning,
    });
    await expect(started).rejects.toThrow(LeaseWatchOptionsError);
    await expect(started).rejects.toThrow(message);
    expect(source.calls).toEqual([]);
  });
});
