import { describe, expect, it } from 'vitest';
import { labGuide } from './lab-guide.js';
import type { LabNode, UpLab } from './lab-state.js';

const DIR = '/run/podtun-lab/run';

function node(i: number, udpBlocked = false): LabNode {
  return {
    name: `n${i}`, ns: `ptlab-n${i}`, underlayIp: `192.168.77.${i}`, daemon: { pid: 100 + i, startTicks: 7 },
    socket: `${DIR}/n${i}.sock`, config: `${DIR}/n${i}.yaml`, log: `${DIR}/n${i}.log`, dashboard: '127.0.0.1:9403', udpBlocked,
  };
}

const state: UpLab = {
  version: 1, phase: 'up', owner: { pid: 99, startTicks: 1 }, command: 'podtun lab up', startedAt: '', upAt: '', dir: DIR,
  namespaces: ['ptlab-u', 'ptlab-n1', 'ptlab-n2', 'ptlab-n3'], underlayNs: 'ptlab-u',
  nodes: [node(1), node(2), node(3, true)],
  pods: [1, 2, 3].map((i) => ({ name: `p${i}a`, ns: `ptlab-p${i}a`, node: `n${i}`, ipv4: `10.244.${i}.10`, ipv6: `fd00:10:244:${i}::a` })),
};

describe('lab guide', () => {
  const text = labGuide(state, 'podtun');

  it.each([
    ['the underlay', 'Nodes (namespace ptlab-u is the underlay switch between them):'],
    ['a blocked node', '  n3 (UDP blocked)  ptlab-n3   192.168.77.3  103'],
    ['a pod row', '  p2a  ptlab-p2a  n2    10.244.2.10  fd00:10:244:2::a'],
    ['status in the node namespace', `  ip netns exec ptlab-n1 podtun status --socket ${DIR}/n1.sock`],
    ['doctor with config and socket', `  ip netns exec ptlab-n1 podtun doctor --config ${DIR}/n1.yaml --socket ${DIR}/n1.sock`],
    ['a ping to another node', '  ip netns exec ptlab-p1a ping -c 3 10.244.2.10'],
    ['the WebSocket path named', '  # p1a (n1) -> p3a (n3), through podtun over WebSocket'],
    ['an IPv6 ping', '  ip netns exec ptlab-p1a ping -c 3 fd00:10:244:3::a'],
    ['the dashboard in the namespace', '  ip netns exec ptlab-n1 curl -s http://127.0.0.1:9403/status'],
    ['the log', `  tail -f ${DIR}/n1.log`],
    ['how to end it', '  podtun lab down'],
  ])('shows %s', (_what, line) => {
    // Each as a line, or the start of a table row.
    expect(`\n${text}`).toContain(`\n${line}`);
  });

  it('invokes the CLI as it is given (a checkout without `podtun` on PATH)', () => {
    const guide = labGuide(state, 'node /src/podtun/bin/podtun.js');
    expect(guide).toContain('  ip netns exec ptlab-n1 node /src/podtun/bin/podtun.js status --socket');
    expect(guide).not.toMatch(/^ {2}podtun /m);
  });
});
