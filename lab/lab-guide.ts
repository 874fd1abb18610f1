/**
 * How to use a lab that is up: its nodes and pods, then commands to paste (`podtun status` and
 * `doctor` inside a node's namespace, pings between pods on different nodes, the dashboard, the
 * logs). Printed by `lab up`, `demo --keep` and `lab status`; pure but for `podtunInvocation`.
 */
import { hasCommand } from './requirements.js';
import { findRepoRoot } from './cluster.js';
import { join } from 'node:path';
import type { UpLab } from './lab-state.js';
import { formatTable } from '../node-bootstrap/cli/status-format.js';

/**
 * How to run this CLI again from the user's shell: `npx podtun` when this run came through npx
 * (which puts the checkout's bin on PATH for its own child only), `podtun` when PATH has it
 * otherwise (a global install), else this checkout's bin by path.
 */
export function podtunInvocation(): string {
  if (process.env['npm_command'] === 'exec') return 'npx podtun';
  return hasCommand('podtun') ? 'podtun' : `node ${join(findRepoRoot(), 'bin', 'podtun.js')}`;
}

/** The tables and commands; `podtun` is how to invoke the CLI (podtunInvocation). */
export function labGuide(state: UpLab, podtun: string): string {
  const nodes = formatTable(
    ['NODE', 'NAMESPACE', 'UNDERLAY', 'DAEMON PID', 'SOCKET', 'LOG'],
    state.nodes.map((n) => [
      n.udpBlocked ? `${n.name} (UDP blocked)` : n.name,
      n.ns,
      n.underlayIp,
      String(n.daemon.pid),
      n.socket,
      n.log,
    ]),
  );
  const pods = formatTable(
    ['POD', 'NAMESPACE', 'NODE', 'IPV4', 'IPV6'],
    state.pods.map((p) => [p.name, p.ns, p.node, p.ipv4, p.ipv6 ?? '-']),
  );
  const [first, second, third] = state.nodes;
  const lines: string[] = [];
  if (first !== undefined) {
    const firstPod = state.pods.find((p) => p.node === first.name);
    lines.push(
      `# ${first.name} as \`podtun status\` and \`podtun doctor\` see it, inside its namespace`,
      `ip netns exec ${first.ns} ${podtun} status --socket ${first.socket}`,
      `ip netns exec ${first.ns} ${podtun} doctor --config ${first.config} --socket ${first.socket}`,
    );
    for (const other of [second, third]) {
      const target = state.pods.find((p) => p.node === other?.name);
      if (firstPod === undefined || other === undefined || target === undefined) continue;
      lines.push(
        `# ${firstPod.name} (${first.name}) -> ${target.name} (${other.name}), through podtun${other.udpBlocked ? ' over WebSocket' : ''}`,
        `ip netns exec ${firstPod.ns} ping -c 3 ${target.ipv4}`,
      );
      if (target.ipv6 !== undefined) lines.push(`ip netns exec ${firstPod.ns} ping -c 3 ${target.ipv6}`);
    }
    lines.push(
      `# ${first.name}'s dashboard: every node serves one on ${first.dashboard} inside its own namespace`,
      `ip netns exec ${first.ns} curl -s http://${first.dashboard}/status`,
      `# ${first.name}'s daemon log (JSON lines)`,
      `tail -f ${first.log}`,
    );
  }
  lines.push(`${podtun} lab status`, `${podtun} lab down`);
  return (
    `Nodes (namespace ${state.underlayNs} is the underlay switch between them):\n` +
    indent(nodes) +
    `\nPods:\n${indent(pods)}` +
    `\nThe lab stays up until \`${podtun} lab down\`. Try:\n${indent(`${lines.join('\n')}\n`)}`
  );
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '  ');
}
