import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LabStateError, buildingState, readLabState, writeLabState } from './lab-state.js';
import type { UpLab } from './lab-state.js';

const dirs: string[] = [];
function stateFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'podtun-lab-state-'));
  dirs.push(dir);
  return join(dir, 'sub', 'state.json');
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const building = buildingState({ pid: 4242, startTicks: 99 }, 'podtun lab up', '/run/podtun-lab/run');
const up: UpLab = {
  ...building,
  phase: 'up',
  upAt: '2025-01-01T00:00:00.000Z',
  namespaces: ['ptlab-u', 'ptlab-n1'],
  underlayNs: 'ptlab-u',
  nodes: [{
    name: 'n1', ns: 'ptlab-n1', underlayIp: '192.168.77.1', daemon: { pid: 4300, startTicks: 120 },
    socket: '/run/podtun-lab/run/n1.sock', config: '/run/podtun-lab/run/n1.yaml', log: '/run/podtun-lab/run/n1.log',
    dashboard: '127.0.0.1:9403', udpBlocked: false,
  }],
  pods: [{ name: 'p1a', ns: 'ptlab-p1a', node: 'n1', ipv4: '10.244.1.10', ipv6: undefined }],
};

describe('lab state file', () => {
  it('is absent before the first write (undefined, not an error)', () => {
    expect(readLabState(stateFile())).toBeUndefined();
  });

  it.each([['building', building], ['up', up]] as const)('reads back what was written (%s), leaving no temp file', (_phase, state) => {
    const path = stateFile();
    writeLabState(state, path);
    expect(readLabState(path)).toEqual(JSON.parse(JSON.stringify(state)));
    expect(readdirSync(join(path, '..'))).toEqual(['state.json']);
  });

  it.each([
    ['not JSON', '{"version": 1,', /is not JSON/],
    ['another version', JSON.stringify({ ...building, version: 2 }), /is not a podtun lab state \(version 1\)/],
    ['an unknown phase', JSON.stringify({ ...building, phase: 'down' }), /is not a podtun lab state/],
    ['an owner without a start time', JSON.stringify({ ...building, owner: { pid: 4242 } }), /is not a podtun lab state/],
    ['a daemon PID that is not a process', JSON.stringify({ ...up, nodes: [{ ...up.nodes[0], daemon: { pid: -1, startTicks: 5 } }] }), /is not a podtun lab state/],
    ['up without nodes', JSON.stringify({ ...up, nodes: undefined }), /is not a podtun lab state/],
  ])('refuses %s with a LabStateError naming the file', (_name, text, message) => {
    const path = stateFile();
    writeLabState(building, path);
    writeFileSync(path, text);
    expect(() => readLabState(path)).toThrow(LabStateError);
    expect(() => readLabState(path)).toThrow(message);
    expect(() => readLabState(path)).toThrow(path);
  });
});
