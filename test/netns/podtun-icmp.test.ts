/**
 * podtun end to end: ICMP errors reach the sending pod. A destination inside the cluster CIDR
 * that no node owns gets "net unreachable"; a TTL too small to cross two routing hops gets
 * "time exceeded".
 *
 * ```
 *   p1a 10.244.1.10 -- cni0 -- n1 [kernel hop] -> podtun0 [podtun] ==UDP== n2 podtun0 -> [kernel hop] cni0 -- p2a
 *        |
 *        +-> 10.244.99.5 (in 10.244.0.0/16, no node): ICMP net unreachable from 10.244.1.0
 *        +-> ping -t 2 10.244.2.10: ICMP time exceeded before reaching p2a
 * ```
 */
import { describe, expect, it } from 'vitest';
import { netnsSkipReason, podtunSkipReason, printSkip, useCluster } from './support.js';

const skipReason = netnsSkipReason(['ping']) ?? podtunSkipReason();
printSkip('podtun-icmp.test.ts', skipReason);

describe.skipIf(skipReason !== undefined)('podtun: ICMP errors', () => {
  const cluster = useCluster({ nodes: 2, podsPerNode: 1, ipv6: true, mode: 'podtun' });

  it('answers a cluster address no node owns with "Destination Net Unreachable" (IPv4)', async () => {
    const c = cluster();
    const out = await c.outcome(c.pod(1, 0).ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', '10.244.99.5']);
    expect(out.stdout + out.stderr).toContain('Destination Net Unreachable');
  });

  it('answers such an IPv6 address with "Destination unreachable"', async () => {
    const c = cluster();
    const out = await c.outcome(c.pod(1, 0).ns, ['ping', '-6', '-c', '2', '-i', '0.2', '-W', '2', 'fd00:10:244:99::5']);
    expect(out.stdout + out.stderr).toMatch(/Destination unreachable/i);
  });

  it('answers a too-small TTL across nodes with "Time to live exceeded" (IPv4)', async () => {
    const c = cluster();
    const out = await c.outcome(c.pod(1, 0).ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', '-t', '2', c.pod(2, 0).ipv4]);
    expect(out.stdout + out.stderr).toContain('Time to live exceeded');
  });

  it('answers a too-small hop limit across nodes with "Time exceeded" (IPv6)', async () => {
    const c = cluster();
    const out = await c.outcome(c.pod(1, 0).ns, [
      'ping', '-6', '-c', '2', '-i', '0.2', '-W', '2', '-t', '2', c.pod(2, 0).ipv6 ?? '',
    ]);
    expect(out.stdout + out.stderr).toMatch(/Time exceeded/i);
  });
});
