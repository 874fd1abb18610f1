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
import { describe, expect, it } from 'vitest';
import { CLUSTER_CIDR_V4, PODTUN_POD_MTU, TUN_NAME } from '../../lab/cluster.js';
import { waitPeers } from '../../lab/podtun-status.js';
import { failingChecks, runDoctor, showDoctor, warningChecks } from './doctor-run.js';
import { netnsSkipReason, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['nft', 'ping']) ?? podtunSkipReason();
printSkip('podtun-doctor.test.ts', skipReason);

describe.skipIf(skipReason !== undefined)('podtun doctor (3 nodes)', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 1, ipv6: false, mode: 'podtun' });

  it('passes on a healthy node and names each injected fault', { timeout: 90_000 }, async () => {
    const c = cluster();
    const n1 = c.node(1);
    await waitPeers(c, 1, ['n2', 'n3'], { transport: 'udp' }, 15_000);

    // Healthy: exit 0, every layer checked; the text form is one OK line per check.
    const healthy = await runDoctor(c, true);
    expect(failingChecks(healthy), showDoctor(healthy)).toEqual([]);
    expect(healthy.exitCode).toBe(0);
    const layers = new Set(healthy.checks.map((k) => k.layer));
    for (const layer of ['host', 'tun', 'routes', 'daemon', 'peer:n2', 'peer:n3', 'mtu:n2', 'mtu:n3']) expect(layers, layer).toContain(layer);
    const mtu = healthy.checks.find((k) => k.layer === 'mtu:n2');
    expect(mtu?.detail, showDoctor(healthy)).toContain(`${PODTUN_POD_MTU} bytes`);
    const text = await runDoctor(c, false);
    expect(text.exitCode).toBe(0);
    expect(text.text).toMatch(/^OK host ip_forward: /m);
    expect(text.text).not.toMatch(/FAIL/);

    // Forwarding off.
    await c.exec(n1.ns, ['sysctl', '-qw', 'net.ipv4.ip_forward=0']);
    try {
      const run = await runDoctor(c, true);
      expect(run.exitCode).toBe(1);
      expect(failingChecks(run), showDoctor(run)).toEqual(['host ip_forward']);
      expect(run.checks.find((k) => k.name === 'ip_forward')?.hint).toContain('net.ipv4.ip_forward=1');
    } finally {
      await c.exec(n1.ns, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    }

    // The cluster route removed: the routes layer names it (pings through the tunnel fail too).
    await c.exec(n1.ns, ['ip', 'route', 'del', CLUSTER_CIDR_V4, 'dev', TUN_NAME]);
    try {
      const run = await runDoctor(c, true);
      expect(run.exitCode).toBe(1);
      const failed = failingChecks(run);
      expect(failed, showDoctor(run)).toContain(`routes cluster ${CLUSTER_CIDR_V4}`);
      expect(failed, showDoctor(run)).toContain('routes to n2 10.244.2.1');
      expect(failed.every((f) => f.startsWith('routes ') || f.startsWith('mtu:')), showDoctor(run)).toBe(true);
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
      const run = await runDoctor(c, true);
      expect(failingChecks(run), showDoctor(run)).toEqual([]);
      expect(run.exitCode).toBe(0);
      expect(warningChecks(run).sort(), showDoctor(run)).toEqual(['peer:n2 udp', 'peer:n3 udp']);
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
    const run = await runDoctor(c, true);
    expect(run.exitCode).toBe(1);
    const failed = failingChecks(run);
    expect(failed, showDoctor(run)).toContain('peer:n3 state');
    expect(failed.every((f) => f.startsWith('peer:n3 ') || f.startsWith('mtu:n3 ')), showDoctor(run)).toBe(true);

    // This node's daemon stopped (its TUN, routes and sysctls go with it): one failure, the daemon.
    await c.stopNode(1);
    const stopped = await runDoctor(c, true);
    expect(stopped.exitCode).toBe(1);
    expect(failingChecks(stopped), showDoctor(stopped)).toEqual(['daemon status']);
    expect(stopped.checks.find((k) => k.name === 'status')?.hint).toContain('is podtun run running on this node?');
  });
});
