/**
 * Pods attached by a real CNI runtime client (libcni's cnitool) through the `podtun` CNI plugin
 * that `podtun run` installed, with the reference `bridge` plugin doing the plumbing and
 * `podtun-ipam` the addresses; the pods reach each other across nodes through the routers.
 *
 * ```
 *             underlay ns (ul0)  + etcd ns
 *          /          |          \
 *        n1           n2          n3        podtun run: lease from etcd, then installs
 *      cni0 (bridge plugin)  ...            <run>/nI-cni/bin/{podtun,podtun-ipam} + net.d/10-podtun.conflist
 *      pod c1         pod c2      pod c3     cnitool add podtun /run/netns/<pod>  (CNI_PATH: bin + /usr/lib/cni)
 * ```
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PODTUN_POD_MTU, REFERENCE_CNI_DIR } from '../../lab/cluster.js';
import type { PodInfo } from '../../lab/cluster.js';
import { cnitoolSkipReason } from '../../lab/cnitool.js';
import { readStatus } from '../../lab/podtun-status.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';
import { addressInCidr, cidrContains, formatAddress, parseCidr } from '../../core/cidr.js';
import { run } from '../../lab/shell.js';

const skipReason = netnsSkipReason(['ping', 'etcd']) ?? podtunSkipReason() ?? cnitoolSkipReason() ??
  (existsSync('/usr/lib/cni/bridge') ? undefined : 'the reference CNI plugins are missing (Debian package containernetworking-plugins)');
printSkip('podtun-cni.test.ts', skipReason);

describe.skipIf(skipReason !== undefined)('podtun: pods attached through the CNI plugin', () => {
  const cluster = useCluster({ nodes: 3, podsPerNode: 0, ipv6: true, mode: 'podtun', podtun: { etcd: {} } });
  const pods: PodInfo[] = [];

  it('installed the executables and the conflist once ready', () => {
    const c = cluster();
    for (const node of c.nodes()) {
      for (const exe of ['podtun', 'podtun-ipam']) expect(existsSync(join(node.cniBinDir, exe)), `${node.name} ${exe}`).toBe(true);
      const conflist = JSON.parse(readFileSync(join(node.cniConfDir, '10-podtun.conflist'), 'utf8')) as { name?: string; plugins?: { type?: string; daemonSocket?: string }[] };
      expect(conflist.name).toBe('podtun');
      expect(conflist.plugins?.[0]).toMatchObject({ type: 'podtun', daemonSocket: node.statusSocket });
    }
  });

  it('attaches a pod on each node inside the node\'s lease, with the tunnel MTU', { timeout: 60_000 }, async () => {
    const c = cluster();
    for (const i of [1, 2, 3]) {
      const pod = await c.attachPod(i, `c${i}`);
      pods.push(pod);
      const { lease } = await readStatus(c, i);
      const v4 = parseCidr(lease[0] ?? '');
      const v6 = parseCidr(lease[1] ?? '');
      expect(cidrContains(v4, parseCidr(`${pod.ipv4}/32`)), `${pod.ipv4} in ${v4.text}`).toBe(true);
      expect(cidrContains(v6, parseCidr(`${pod.ipv6 ?? '::'}/128`)), `${pod.ipv6 ?? 'no v6'} in ${v6.text}`).toBe(true);
      const link = JSON.parse((await c.exec(pod.ns, ['ip', '-j', 'link', 'show', 'eth0'])).stdout) as { mtu?: number }[];
      expect(link[0]?.mtu).toBe(PODTUN_POD_MTU);
      // The bridge plugin made the gateway (the subnet's .1) on cni0 in the node namespace.
      const cni0 = (await c.exec(c.node(i).ns, ['ip', '-4', 'addr', 'show', 'cni0'])).stdout;
      expect(cni0).toContain(`${formatAddress(addressInCidr(v4, 1))}/`);
    }
    expect(new Set(pods.map((p) => p.ipv4)).size).toBe(3);
  });

  it('pods reach each other across nodes, IPv4 and IPv6, both ways', { timeout: 60_000 }, async () => {
    const c = cluster();
    for (const a of pods) {
      for (const b of pods) {
        if (a === b) continue;
        const v4 = await c.outcome(a.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', b.ipv4]);
        expect(parsePing(v4.stdout).received, `${a.name} -> ${b.name} v4`).toBe(2);
        const v6 = await c.outcome(a.ns, ['ping', '-6', '-c', '2', '-i', '0.2', '-W', '2', b.ipv6 ?? '']);
        expect(parsePing(v6.stdout).received, `${a.name} -> ${b.name} v6`).toBe(2);
      }
    }
  });

  it('the installed plugin answers STATUS 0 and its GC frees exactly the reservation no runtime knows', { timeout: 60_000 }, async () => {
    const c = cluster();
    const node = c.node(1);
    const stray = await c.attachPod(1, 'stray');
    const ipamDir = join(node.cniDataDir, 'podtun');
    const owners = readdirSync(ipamDir).filter((f) => /^[\d.]+$|:/.test(f)).map((f) => readFileSync(join(ipamDir, f), 'utf8').split('\r\n')[0]);
    expect(existsSync(join(ipamDir, stray.ipv4))).toBe(true);
    const strayOwner = readFileSync(join(ipamDir, stray.ipv4), 'utf8').split('\r\n')[0];
    // The runtime's view after losing track of `stray`: every attachment but its one.
    const valid = [...new Set(owners)].filter((id) => id !== strayOwner).map((containerID) => ({ containerID, ifname: 'eth0' }));
    const conflist = JSON.parse(readFileSync(join(node.cniConfDir, '10-podtun.conflist'), 'utf8')) as { name: string; plugins: Record<string, unknown>[] };
    const netconf = (extra: Record<string, unknown>): string => JSON.stringify({ cniVersion: '1.1.0', name: conflist.name, ...conflist.plugins[0], ...extra });
    const env = { CNI_PATH: `${node.cniBinDir}:${REFERENCE_CNI_DIR}` };
    const status = await c.outcome(node.ns, ['env', 'CNI_COMMAND=STATUS', ...envArgs(env), join(node.cniBinDir, 'podtun')], { input: netconf({}) });
    expect({ code: status.exitCode, out: status.stdout }).toEqual({ code: 0, out: '' });
    const gc = await c.outcome(node.ns, ['env', 'CNI_COMMAND=GC', ...envArgs(env), join(node.cniBinDir, 'podtun')], { input: netconf({ 'cni.dev/valid-attachments': valid }) });
    expect(gc.exitCode, gc.stdout).toBe(0);
    expect(existsSync(join(ipamDir, stray.ipv4))).toBe(false);
    const kept = pods.filter((p) => p.node === 1);
    expect(kept).toHaveLength(1);
    for (const pod of kept) expect(existsSync(join(ipamDir, pod.ipv4)), `${pod.name} kept`).toBe(true);
  });

  it('CHECK passes; DEL twice succeeds and frees the address', { timeout: 60_000 }, async () => {
    const c = cluster();
    const pod = pods[2];
    if (pod === undefined) throw new Error('no pod');
    expect((await c.cni(3, 'check', pod.ns)).exitCode).toBe(0);
    const ipamDir = join(c.node(3).cniDataDir, 'podtun');
    expect(existsSync(join(ipamDir, pod.ipv4))).toBe(true);
    expect((await c.cni(3, 'del', pod.ns)).exitCode).toBe(0);
    expect(existsSync(join(ipamDir, pod.ipv4))).toBe(false);
    const again = await c.cni(3, 'del', pod.ns);
    expect(again.exitCode, again.stderr).toBe(0);
  });

  it('podtun uninstall removes the conflist and executables, and is idempotent', { timeout: 30_000 }, async () => {
    const c = cluster();
    const node = c.node(1);
    const bin = join(c.repoRoot, 'bin', 'podtun.js');
    const first = await run(['node', bin, 'uninstall', '--config', node.configFile]);
    expect(first.stdout).toContain(join(node.cniConfDir, '10-podtun.conflist'));
    expect(existsSync(join(node.cniConfDir, '10-podtun.conflist'))).toBe(false);
    expect(existsSync(join(node.cniBinDir, 'podtun'))).toBe(false);
    expect(existsSync(join(node.cniBinDir, 'podtun-ipam'))).toBe(false);
    expect((await run(['node', bin, 'uninstall', '--config', node.configFile])).stdout).toBe('nothing to remove\n');
  });
});

function envArgs(env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}
