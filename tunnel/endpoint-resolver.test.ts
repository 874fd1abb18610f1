import { describe, expect, it } from 'vitest';
import type { IpFamily } from '../core/cidr.js';
import { DOWN_INTERVAL_MS, EndpointResolver } from './endpoint-resolver.js';
import type { ResolvedAddress } from './endpoint-resolver.js';
import { recordingLogger } from '../test/recording-logger.js';
import type { LogLine } from '../test/recording-logger.js';

const INTERVAL_MS = 60_000;
const NAME = { name: 'node-b.example.net', peer: 'node-b', endpoint: 'node-b.example.net:8285' };

/**
 * A DNS stand-in: `answer` is what the next lookups of a name give (an address, or an Error to
 * reject with); `hold()` keeps the next lookup pending until released. Every call is recorded.
 */
function fakeDns() {
  const answers = new Map<string, string | Error>();
  const calls: { name: string; family: IpFamily | undefined }[] = [];
  let held: ((value: string) => void) | undefined;
  let holdNext = false;
  return {
    calls,
    answer: (name: string, value: string | Error) => answers.set(name, value),
    hold: () => {
      holdNext = true;
    },
    release: (value: string) => held?.(value),
    lookup: (name: string, family: IpFamily | undefined): Promise<string> => {
      calls.push({ name, family });
      if (holdNext) {
        holdNext = false;
        return new Promise((resolve) => {
          held = resolve;
        });
      }
      const value = answers.get(name) ?? new Error(`getaddrinfo ENOTFOUND ${name}`);
      return value instanceof Error ? Promise.reject(value) : Promise.resolve(value);
    },
  };
}

/** Lets settled lookups run their handlers. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(family: IpFamily | undefined) {
  const dns = fakeDns();
  const lines: LogLine[] = [];
  const moves: { key: number; address: ResolvedAddress }[] = [];
  const resolver = new EndpointResolver({
    lookup: dns.lookup,
    family,
    intervalMs: INTERVAL_MS,
    log: recordingLogger(lines),
    onAddress: (key, address) => moves.push({ key, address }),
  });
  const messages = (level: string): string[] => lines.filter((l) => l.level === level).map((l) => l.msg);
  return { dns, lines, moves, resolver, messages };
}

describe('EndpointResolver', () => {
  it('looks a name up when watched, again each interval, and reports only changes', async () => {
    const { dns, moves, resolver, lines } = setup(4);
    dns.answer(NAME.name, '192.168.77.2');
    expect(resolver.watch(7, NAME, 0)).toBeUndefined();
    await settle();
    expect(dns.calls).toEqual([{ name: NAME.name, family: 4 }]);
    expect(moves).toEqual([{ key: 7, address: { host: '192.168.77.2', family: 4 } }]);
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'peer endpoint resolved', obj: { peer: 'node-b', address: '192.168.77.2' } });
    // Watching the same name again (a lease refresh) answers from what is known, no lookup.
    expect(resolver.watch(7, NAME, 10)).toEqual({ host: '192.168.77.2', family: 4 });

    resolver.tick(INTERVAL_MS - 1);
    await settle();
    expect(dns.calls).toHaveLength(1);
    resolver.tick(INTERVAL_MS);
    await settle();
    expect(dns.calls).toHaveLength(2);
    expect(moves).toHaveLength(1);

    dns.answer(NAME.name, '192.168.77.12');
    resolver.tick(2 * INTERVAL_MS);
    await settle();
    expect(moves.at(-1)).toEqual({ key: 7, address: { host: '192.168.77.12', family: 4 } });
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'peer endpoint moved', obj: { address: '192.168.77.12' } });
  });

  it('looks up at once when the peer goes down, then every DOWN_INTERVAL_MS until it is up', async () => {
    const { dns, resolver } = setup(4);
    dns.answer(NAME.name, '192.168.77.2');
    resolver.watch(1, NAME, 0);
    await settle();
    resolver.setDown(1, true, 1_000);
    await settle();
    expect(dns.calls).toHaveLength(2);
    resolver.setDown(1, true, 1_500); // no change: no extra lookup
    resolver.tick(1_000 + DOWN_INTERVAL_MS - 1);
    await settle();
    expect(dns.calls).toHaveLength(2);
    resolver.tick(1_000 + DOWN_INTERVAL_MS);
    await settle();
    expect(dns.calls).toHaveLength(3);

    const upAt = 1_000 + DOWN_INTERVAL_MS + 100;
    resolver.setDown(1, false, upAt);
    resolver.tick(upAt + DOWN_INTERVAL_MS);
    await settle();
    expect(dns.calls).toHaveLength(3);
    resolver.tick(1_000 + DOWN_INTERVAL_MS + INTERVAL_MS);
    await settle();
    expect(dns.calls).toHaveLength(4);
  });

  it('keeps the last good address through failures, retries with backoff, warns at most once a minute', async () => {
    const { dns, moves, resolver, lines, messages } = setup(4);
    dns.answer(NAME.name, '192.168.77.2');
    resolver.watch(1, NAME, 0);
    await settle();
    dns.answer(NAME.name, new Error('getaddrinfo EAI_AGAIN node-b.example.net'));
    let now = INTERVAL_MS;
    const lookupsAt: number[] = [];
    // Bounded: 70 simulated seconds in 100 ms steps.
    for (let step = 0; step < 700; step++, now += 100) {
      const before = dns.calls.length;
      resolver.tick(now);
      await settle();
      if (dns.calls.length > before) lookupsAt.push(now - INTERVAL_MS);
    }
    // 1, 2, 4, 8, 16, 32 s apart, capped at the interval.
    expect(lookupsAt).toEqual([0, 1_000, 3_000, 7_000, 15_000, 31_000, 63_000]);
    expect(moves).toHaveLength(1);
    const warns = lines.filter((l) => l.level === 'warn');
    expect(warns.map((w) => w.msg)).toEqual([
      'cannot resolve peer endpoint; keeping its last address',
      'cannot resolve peer endpoint; keeping its last address',
    ]);
    expect(warns[0]?.obj).toMatchObject({ peer: 'node-b', endpoint: NAME.endpoint, address: '192.168.77.2', attempt: 1 });
    expect(String(warns[0]?.obj['reason'])).toContain('EAI_AGAIN');
    expect(warns[1]?.obj).toMatchObject({ attempt: 7 });
    expect(messages('debug')).toHaveLength(5);

    dns.answer(NAME.name, '192.168.77.2');
    resolver.tick(now + INTERVAL_MS);
    await settle();
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'peer endpoint resolves again' });
    expect(moves).toHaveLength(1);
  });

  it('counts an answer of the wrong family as a failure, and says when a name never resolved', async () => {
    const { dns, moves, resolver, lines } = setup(4);
    dns.answer(NAME.name, 'fd77::2');
    resolver.watch(1, NAME, 0);
    await settle();
    expect(moves).toEqual([]);
    expect(lines.at(-1)).toMatchObject({ level: 'warn', msg: 'cannot resolve peer endpoint; no address for it yet' });
    expect(String(lines.at(-1)?.obj['reason'])).toContain('not an IPv4 address');

    const either = setup(undefined);
    either.dns.answer(NAME.name, 'FD77:0::2');
    either.resolver.watch(1, NAME, 0);
    await settle();
    expect(either.dns.calls[0]?.family).toBeUndefined();
    expect(either.moves).toEqual([{ key: 1, address: { host: 'fd77::2', family: 6 } }]);
  });

  it('ignores a lookup that settles after its name was forgotten, replaced or the resolver closed', async () => {
    for (const end of ['forget', 'replace', 'close'] as const) {
      const { dns, moves, resolver, lines } = setup(4);
      dns.hold();
      resolver.watch(1, NAME, 0);
      if (end === 'forget') resolver.forget(1);
      if (end === 'close') {
        resolver.close();
        resolver.close();
      }
      if (end === 'replace') {
        dns.answer('node-c.example.net', '192.168.77.3');
        resolver.watch(1, { ...NAME, name: 'node-c.example.net' }, 0);
      }
      dns.release('192.168.77.2');
      await settle();
      expect(moves.map((m) => m.address.host), end).toEqual(end === 'replace' ? ['192.168.77.3'] : []);
      resolver.tick(10 * INTERVAL_MS);
      await settle();
      expect(dns.calls.length, end).toBe(end === 'replace' ? 3 : 1);
      if (end !== 'replace') expect(lines, end).toEqual([]);
    }
  });
});
