/**
 * `podtun doctor` on a live 3-node cluster, run inside n1's namespace (the compiled
 * dist/node-bootstrap/cli/doctor-command.js through `node -e`, with --json): a healthy node passes every
 * check, and each injected fault fails the check that names it, and only checks it explains.
 *
 * ```
 *   n1 (doctor runs here) ==UDP 8285 / WS 8443== n2, n3
 *   faults on n1: ip_forward=0 | cluster route deleted | UDP blocked (auto -> ws: a warning) ;
 *   then n3 stopped ; then n1's own daemon stopped (the one failure reported)
 * ```
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLUSTER_CIDR_V4, PODTUN_POD_MTU, TUN_NAME } from '../../lab/cluster.js';
import type { Cluster } from '../../lab/cluster.js';
import { waitPeers } from '../../lab/podtun-status.js';
import { netnsSkipReason, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['nft', 'ping']) ?? podtunSkipReason();
printSkip('podtun-doctor.test.ts', skipReason);

interface Check {
  layer: string;
  name: string;
  ok: boolean;
  warning?: boolean;
  detail: string;
  hint: string;
}

interface DoctorRun {
  exitCode: number;
  checks: Check[];
  text: string;
}

/** Loads the doctor module given as argv[1] and runs its command with the remaining args. */
const RUNNER = [
  'const [mod, ...args] = process.argv.slice(1);',
  'const { doctorCommand } = await import(mod);',
  'const io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };',
  'process.exitCode = await doctorCommand(args, process.env, io, false);',
].join('\n');

/**
 * doctor in n1 as the README shows it (`--config FILE`), finding the daemon's socket as `podtun
 * status` does: the harness gives each node's daemon its socket by PODTUN_STATUS_SOCKET, and the
 * doctor is run with the same environment.
 */
async function doctor(c: Cluster, json: boolean): Promise<DoctorRun> {
  const n1 = c.node(1);
  const mod = join(c.repoRoot, 'dist', 'node-bootstrap', 'cli', 'doctor-command.js');
  const argv = ['node', '--input-type=module', '-e', RUNNER, mod, '--config', n1.configFile];
  if (json) argv.push('--json');
  const r = await c.outcome(n1.ns, argv, { timeoutMs: 20_000, env: { ...process.env, PODTUN_STATUS_SOCKET: n1.statusSocket } });
  let checks: Check[] = [];
  if (json) {
    try {
      checks = (JSON.parse(r.stdout) as { checks: Check[] }).checks;
    } catch {
      throw new Error(`doctor printed no JSON (exit ${r.exitCode}): ${r.stdout}\n${r.stderr}`);
    }
  }
  return { exitCode: r.exitCode, checks, text: r.stdout };
}

function failing(run: DoctorRun): string[] {
  return run.checks.filter((c) => !c.ok).map((c) => `${c.layer} ${c.name}`);
}

function warnings(run: DoctorRun): string[] {
  return run.checks.filter((c) => c.warning === true).map((c) => `${c.layer} ${c.name}`);
}

function show(run: DoctorRun): string {
  return run.checks.map((c) => `${c.ok ? 'OK' : 'FAIL'} ${c.layer} ${c.name}: ${c.detail}${c.ok ? '' : ` (${c.hint})`}`).join('\n');
}

describe.skipIf(skipReason !== undefined)('podtun doctor (3 nodes)', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 1, ipv6: false, mode: 'podtun' });

  it('passes on a healthy node and names each injected fault', { timeout: 90_000 }, async () => {
    const c = cluster();
    const n1 = c.node(1);
    await waitPeers(c, 1, ['n2', 'n3'], { transport: 'udp' }, 15_000);

    // Healthy: exit 0, every layer checked; the text form is one OK line per check.
    const healthy = await doctor(c, true);
    expect(failing(healthy), show(healthy)).toEqual([]);
    expect(healthy.exitCode).toBe(0);
    const layers = new Set(healthy.checks.map((k) => k.layer));
    for (const layer of ['host', 'tun', 'routes', 'daemon', 'peer:n2', 'peer:n3', 'mtu:n2', 'mtu:n3']) expect(layers, layer).toContain(layer);
    const mtu = healthy.checks.find((k) => k.layer === 'mtu:n2');
    expect(mtu?.detail, show(healthy)).toContain(`${PODTUN_POD_MTU} bytes`);
    const text = await doctor(c, false);
    expect(text.exitCode).toBe(0);
    expect(text.text).toMatch(/^OK host ip_forward: /m);
    expect(text.text).not.toMatch(/FAIL/);

    // Forwarding off.
    await c.exec(n1.ns, ['sysctl', '-qw', 'net.ipv4.ip_forward=0']);
    try {
      const run = await doctor(c, true);
      expect(run.exitCode).toBe(1);
      expect(failing(run), show(run)).toEqual(['host ip_forward']);
      expect(run.checks.find((k) => k.name === 'ip_forward')?.hint).toContain('net.ipv4.ip_forward=1');
    } finally {
      await c.exec(n1.ns, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    }

    // The cluster route removed: the routes layer names it (pings through the tunnel fail too).
    await c.exec(n1.ns, ['ip', 'route', 'del', CLUSTER_CIDR_V4, 'dev', TUN_NAME]);
    try {
      const run = await doctor(c, true);
      expect(run.exitCode).toBe(1);
      const failed = failing(run);
      expect(failed, show(run)).toContain(`routes cluster ${CLUSTER_CIDR_V4}`);
      expect(failed, show(run)).toContain('routes to n2 10.244.2.1');
      expect(failed.every((f) => f.startsWith('routes ') || f.startsWith('mtu:')), show(run)).toBe(true);
    } finally {
      await c.exec(n1.ns, ['ip', 'route', 'replace', CLUSTER_CIDR_V4, 'dev', TUN_NAME]);
    }

    // UDP blocked on n1: peers fall back to WebSocket, the network podtun exists for. The doctor
    // warns about UDP for each, fails nothing, exits 0.
    await c.blockUdp(1);
    try {
      await waitPeers(c, 1, ['n2', 'n3'], { transport: 'ws' }, 15_000);
      // Both directions: until n2 and n3 switch too, their replies still go out over UDP.
      await waitPeers(c, 2, ['n1'], { transport: 'ws' }, 15_000);
      await waitPeers(c, 3, ['n1'], { transport: 'ws' }, 15_000);
      const run = await doctor(c, true);
      expect(failing(run), show(run)).toEqual([]);
      expect(run.exitCode).toBe(0);
      expect(warnings(run).sort(), show(run)).toEqual(['peer:n2 udp', 'peer:n3 udp']);
      const udp = run.checks.find((k) => k.layer === 'peer:n2' && k.name === 'udp');
      expect(udp?.detail).toContain('WebSocket');
      expect(udp?.hint).toContain('firewall');
    } finally {
      await c.blockUdp(1, false);
    }
    await waitPeers(c, 1, ['n2', 'n3'], { transport: 'udp' }, 20_000);

    // A peer down: only n3's checks fail.
    await c.stopNode(3);
    await waitPeers(c, 1, ['n3'], { state: 'down' }, 15_000);
    const run = await doctor(c, true);
    expect(run.exitCode).toBe(1);
    const failed = failing(run);
    expect(failed, show(run)).toContain('peer:n3 state');
    expect(failed.every((f) => f.startsWith('peer:n3 ') || f.startsWith('mtu:n3 ')), show(run)).toBe(true);

    // This node's daemon stopped (its TUN, routes and sysctls go with it): one failure, the daemon.
    await c.stopNode(1);
    const stopped = await doctor(c, true);
    expect(stopped.exitCode).toBe(1);
    expect(failing(stopped), show(stopped)).toEqual(['daemon status']);
    expect(stopped.checks.find((k) => k.name === 'status')?.hint).toContain('is podtun run running on this node?');
  });
});
