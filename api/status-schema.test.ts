import { describe, expect, it } from 'vitest';
import { StatusSchemaError, readStatusReport } from './status-schema.js';
import type { StatusReport } from './status-schema.js';

/** A reply as the daemon sends it: n2 over UDP, n3 switched to WebSocket and down, no endpoint. */
const REPLY = {
  node: 'n1',
  localSubnets: ['10.244.1.0/24'],
  drops: { spoofed: 3 },
  icmpSuppressed: 0,
  peers: [
    {
      node: 'n2', subnets: ['10.244.2.0/24'], endpoint: '192.168.77.2:8285', endpoints: { udp: '192.168.77.2:8285' },
      tunnelMtu: 1460, mtu: 1460, txPackets: 2, txBytes: 200, rxPackets: 1, rxBytes: 100, spoofed: 3,
      state: 'up', rttMs: 0.5, transport: 'udp',
    },
    {
      node: 'n3', subnets: ['10.244.3.0/24'], endpoints: {},
      tunnelMtu: 1400, mtu: 1400, txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, spoofed: 0,
      state: 'down', transport: 'ws', lastSwitch: { atMs: 1_700_000_000_000, from: 'udp', to: 'ws', reason: 'udp silent 3s' },
    },
  ],
  transport: { 'udp.drop.bad_header': 2, 'ws.connectionsOpen': 1, switches: 1 },
  lease: ['10.244.1.0/24'],
  routes: [
    { subnet: '10.244.1.0/24', node: 'n1', transport: 'local', state: 'local' },
    { subnet: '10.244.2.0/24', node: 'n2', transport: 'udp', state: 'up' },
  ],
} as const satisfies StatusReport;

/** REPLY with one field replaced (undefined: removed), by path. */
function withField(path: readonly (string | number)[], value: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(REPLY)) as Record<string, unknown>;
  let at: Record<string | number, unknown> = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
  const last = path[path.length - 1] ?? '';
  if (value === undefined) delete at[last];
  else at[last] = value;
  return copy;
}

describe('readStatusReport', () => {
  it('reads a daemon reply as it is', () => {
    expect(readStatusReport(JSON.parse(JSON.stringify(REPLY)))).toEqual(REPLY);
  });

  it('leaves out fields it does not know (a newer daemon)', () => {
    const report = readStatusReport(withField(['peers', 0, 'futureField'], 1));
    expect(report.peers[0]).not.toHaveProperty('futureField');
  });

  it.each([
    ['null', null, '', 'status reply is not a JSON object (got null)'],
    ['a list', [], '', 'status reply is not a JSON object (got [])'],
    ['routes', withField(['routes'], undefined), 'routes', 'status reply: routes is missing'],
    ['node', withField(['node'], 1), 'node', 'status reply: node is not a string (got 1)'],
    ['drops.spoofed', withField(['drops', 'spoofed'], -1), 'drops.spoofed', 'status reply: drops.spoofed is not a count (got -1)'],
    ['transport.switches', withField(['transport', 'switches'], 'x'), 'transport.switches', 'status reply: transport.switches is not a number (got "x")'],
    ['peers[1].txBytes', withField(['peers', 1, 'txBytes'], 1.5), 'peers[1].txBytes', 'status reply: peers[1].txBytes is not a count (got 1.5)'],
    ['peers[0].state', withField(['peers', 0, 'state'], 'sideways'), 'peers[0].state', 'status reply: peers[0].state is not one of unknown|up|down (got "sideways")'],
    ['peers[0].endpoints.udp', withField(['peers', 0, 'endpoints', 'udp'], 8285), 'peers[0].endpoints.udp', 'status reply: peers[0].endpoints.udp is not a string (got 8285)'],
    ['peers[1].lastSwitch.atMs', withField(['peers', 1, 'lastSwitch', 'atMs'], undefined), 'peers[1].lastSwitch.atMs', 'status reply: peers[1].lastSwitch.atMs is missing'],
    ['routes[0].state', withField(['routes', 0, 'state'], 'up?'), 'routes[0].state', 'status reply: routes[0].state is not one of unknown|up|down|local (got "up?")'],
  ])('refuses a bad %s', (_label, value, field, message) => {
    let caught: unknown;
    try {
      readStatusReport(value);
    } catch (err: unknown) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StatusSchemaError);
    expect(caught).toMatchObject({ field, message, code: 'ERR_PODTUN_STATUS_SCHEMA' });
  });
});
