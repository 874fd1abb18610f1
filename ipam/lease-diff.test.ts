import { describe, expect, it } from 'vitest';
import { diffLeases, fullSet } from './lease-diff.js';
import type { Lease } from '../core/lease.js';

const a: Lease = { node: 'a', subnets: ['10.244.1.0/24', 'fd00:10:244:1::/64'], endpoints: { udp: '192.168.77.1:8285' } };
const b: Lease = { node: 'b', subnets: ['10.244.2.0/24'], endpoints: { udp: '192.168.77.2:8285' } };
const c: Lease = { node: 'c', subnets: ['10.244.3.0/24'], endpoints: {} };

/** Events in a compact form: "+b", "-b". */
function brief(before: Lease[], after: Lease[]): string[] {
  return diffLeases(before, after).map((e) => `${e.type === 'added' ? '+' : '-'}${e.lease.node}`);
}

describe('diffLeases', () => {
  it.each<[string, Lease[], Lease[], string[]]>([
    ['nothing changed', [a, b], [a, b], []],
    ['same set, other order', [a, b], [b, a], []],
    ['subnet order only', [a], [{ ...a, subnets: ['fd00:10:244:1::/64', '10.244.1.0/24'] }], []],
    ['empty to full', [], [a, b], ['+a', '+b']],
    ['full to empty', [a, b], [], ['-a', '-b']],
    ['node added', [a], [a, b], ['+b']],
    ['node removed', [a, b], [a], ['-b']],
    ['endpoint changed', [b], [{ ...b, endpoints: { udp: '192.168.77.9:8285' } }], ['-b', '+b']],
    ['endpoint dropped', [b], [{ ...b, endpoints: {} }], ['-b', '+b']],
    ['subnet added', [b], [{ ...b, subnets: [...b.subnets, 'fd00:10:244:2::/64'] }], ['-b', '+b']],
    ['subnet replaced', [b], [{ ...b, subnets: ['10.244.9.0/24'] }], ['-b', '+b']],
    ['mtu set', [b], [{ ...b, mtu: 1400 }], ['-b', '+b']],
    ['ws endpoint set', [b], [{ ...b, endpoints: { ...b.endpoints, ws: 'wss://b.example:8443' } }], ['-b', '+b']],
    ['ws endpoint changed', [{ ...b, endpoints: { ws: 'ws://192.168.77.2:8080' } }], [{ ...b, endpoints: { ws: 'ws://192.168.77.2:8081' } }], ['-b', '+b']],
    ['endpoint under another kind', [b], [{ ...b, endpoints: { relay: '192.168.77.2:8285' } }], ['-b', '+b']],
    ['transports changed', [{ ...b, transports: ['udp', 'ws'] }], [{ ...b, transports: ['ws'] }], ['-b', '+b']],
    ['transports reordered', [{ ...b, transports: ['udp', 'ws'] }], [{ ...b, transports: ['ws', 'udp'] }], ['-b', '+b']],
    ['same transports', [{ ...b, transports: ['udp', 'ws'] }], [{ ...b, transports: ['udp', 'ws'] }], []],
    ['removals before additions', [a, b], [c, { ...a, endpoints: { udp: '192.168.77.5:8285' } }], ['-a', '-b', '+a', '+c']],
  ])('%s', (_what, before, after, events) => {
    expect(brief(before, after)).toEqual(events);
  });

  it('carries the old lease in removed and the new one in added', () => {
    const moved = { ...b, endpoints: { udp: '192.168.77.9:8285' } };
    expect(diffLeases([b], [moved])).toEqual([
      { type: 'removed', lease: b },
      { type: 'added', lease: moved },
    ]);
  });

  it('a subnet moving between nodes is released before it is taken', () => {
    const bTakesA = { ...b, subnets: a.subnets };
    const events = diffLeases([a, b], [bTakesA]);
    expect(events.map((e) => e.type)).toEqual(['removed', 'removed', 'added']);
  });

  it('refuses two leases for one node', () => {
    expect(() => diffLeases([a, a], [])).toThrow(/two leases for node "a"/);
  });
});

describe('fullSet', () => {
  it('adds every lease', () => {
    expect(fullSet([a, b])).toEqual([
      { type: 'added', lease: a },
      { type: 'added', lease: b },
    ]);
  });
});
