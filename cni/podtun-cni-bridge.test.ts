/**
 * The podtun CNI plugin end to end with the real reference bridge plugin (Debian's
 * containernetworking-plugins in /usr/lib/cni), the built podtun-ipam, and a stand-in daemon:
 *
 * ```
 *   this process: HTTP on <tmp>/podtun.sock   GET /cni -> 200 {subnets, mtu 1460} | 503 | (gone)
 *        ^ Unix socket (a file: reachable from every namespace)
 *        |
 *   netns ptc<id>-n ("node")        plugins run here: ip netns exec ptc<id>-n <tmp>/bin/podtun
 *     cni0 10.244.1.1/24, fd00:10:244:1::1/64 (made by bridge)
 *      |  veth          \  veth
 *   netns ptc<id>-p1    netns ptc<id>-p2      eth0 10.244.1.x/24, fd00:10:244:1::x/64, MTU 1460,
 *                                             default routes via cni0
 * ```
 *
 * CNI_PATH = <tmp>/bin (podtun and podtun-ipam: shell wrappers running the built
 * dist/cni/cni-entry.js) then /usr/lib/cni (bridge). The root namespace gets no
 * address or route; the namespaces are recorded (test/netns/cleanup.ts) so a killed run's are
 * removed by the next. Needs root, iproute2, ping, containernetworking-plugins and dist/.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findRepoRoot } from '../lab/cluster.js';
import { removeNamespaceSync, removeRecord, removeStaleRuns, writeRecord } from '../lab/cleanup.js';
import { netnsSkipReason } from '../lab/requirements.js';
import { outcomeIn, pollUntil, runIn } from '../lab/shell.js';
import type { Outcome } from '../lab/shell.js';
import { parsePing } from '../test/netns/support.js';
import { skipUnlessMet } from '../test/requirement.js';

const root = findRepoRoot();
const entry = join(root, 'dist', 'cni', 'cni-entry.js');
const BRIDGE_DIR = '/usr/lib/cni';

const skipReason =
  netnsSkipReason(['ping']) ??
  (!existsSync(join(BRIDGE_DIR, 'bridge'))
    ? `${BRIDGE_DIR}/bridge is missing (Debian package containernetworking-plugins)`
    : !existsSync(entry)
      ? 'dist/cni/cni-entry.js is missing: run `npm run build` first'
      : undefined);
const skip = skipUnlessMet('cni/podtun-cni-bridge.test.ts', skipReason);

const LEASE = { node: 'n1', subnets: ['10.244.1.0/24', 'fd00:10:244:1::/64'], mtu: 1460, clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/48'] };
const NETWORK = 'podtun';

interface Added {
  result: Record<string, unknown>;
  ipv4: string;
  ipv6: string;
}

describe.skipIf(skip)('podtun CNI plugin with the reference bridge plugin', () => {
  const id = randomBytes(3).toString('hex');
  const runId = `ptc${id}`;
  const nodeNs = `${runId}-n`;
  const pods = [`${runId}-p1`, `${runId}-p2`];
  let dir = '';
  let binDir = '';
  let dataDir = '';
  let socketPath = '';
  let server: Server | undefined;
  let daemon: { status: 200 | 503 } = { status: 200 };
  const added = new Map<string, Added>();

  async function startDaemon(): Promise<void> {
    server = createServer((req, res) => {
      const body = req.url !== '/cni' ? { error: 'not found' } : daemon.status === 200 ? { ready: true, ...LEASE } : { ready: false, reason: 'lease not up' };
      res.writeHead(req.url !== '/cni' ? 404 : daemon.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server?.listen(socketPath, resolve));
  }

  async function stopDaemon(): Promise<void> {
    const s = server;
    server = undefined;
    s?.closeAllConnections();
    await new Promise<void>((resolve) => (s === undefined ? resolve() : s.close(() => resolve())));
    await rm(socketPath, { force: true });
  }

  function conf(cniVersion: string, extra: Record<string, unknown> = {}): string {
    return JSON.stringify({ cniVersion, name: NETWORK, type: 'podtun', daemonSocket: socketPath, dataDir, ...extra });
  }

  /** Runs `plugin` in the node namespace, as a runtime there would. */
  function cni(command: string, podNs: string | undefined, stdin: string, extraEnv: Record<string, string> = {}): Promise<Outcome> {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_PATH: `${binDir}:${BRIDGE_DIR}`,
      ...(podNs === undefined
        ? {}
        : {
            CNI_CONTAINERID: `ctr-${podNs}`,
            CNI_NETNS: `/var/run/netns/${podNs}`,
            CNI_IFNAME: 'eth0',
            CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${podNs};K8S_POD_INFRA_CONTAINER_ID=ctr-${podNs}`,
          }),
      ...extraEnv,
    };
    return outcomeIn(nodeNs, [join(binDir, 'podtun')], { input: stdin, env, timeoutMs: 30_000 });
  }

  function json(out: Outcome): Record<string, unknown> {
    try {
      return JSON.parse(out.stdout) as Record<string, unknown>;
    } catch {
      throw new Error(`not JSON on stdout (exit ${out.exitCode}): ${out.stdout}\nstderr: ${out.stderr}`);
    }
  }

  /** Reservation files (named by address) of the network in podtun-ipam's data dir. */
  async function reservations(): Promise<string[]> {
    const names = await readdir(join(dataDir, NETWORK)).catch(() => [] as string[]);
    return names.filter((name) => isIP(name) !== 0).sort();
  }

  beforeAll(async () => {
    removeStaleRuns();
    writeRecord({ runId, ownerPid: process.pid, createdAt: new Date().toISOString(), namespaces: [nodeNs, ...pods] });
    dir = await mkdtemp(join(tmpdir(), 'podtun-cni-bridge-'));
    binDir = join(dir, 'bin');
    dataDir = join(dir, 'ipam');
    socketPath = join(dir, 'podtun.sock');
    await runIn(null, ['mkdir', '-p', binDir]);
    for (const name of ['podtun', 'podtun-ipam']) {
      await writeFile(join(binDir, name), `#!/bin/sh\nexec '${process.execPath}' '${entry}' ${name} "$@"\n`);
      await chmod(join(binDir, name), 0o755);
    }
    for (const ns of [nodeNs, ...pods]) {
      await runIn(null, ['ip', 'netns', 'add', ns]);
      await runIn(null, ['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await startDaemon();
  });

  afterAll(async () => {
    await stopDaemon().catch(() => undefined);
    for (const ns of [...pods, nodeNs]) removeNamespaceSync(ns);
    removeRecord(runId);
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('ADD: a 1.1.0 pod and a 1.0.0 pod get addresses from the lease, the MTU, default routes', async () => {
    for (const [i, ns] of pods.entries()) {
      const version = i === 0 ? '1.1.0' : '1.0.0';
      const out = await cni('ADD', ns, conf(version));
      const result = json(out);
      expect(out.exitCode, out.stdout + out.stderr).toBe(0);
      expect(result['cniVersion']).toBe(version);
      const ips = result['ips'] as { address: string; gateway: string }[];
      const ipv4 = ips.find((ip) => ip.address.startsWith('10.244.1.'))?.address ?? '';
      const ipv6 = ips.find((ip) => ip.address.startsWith('fd00:10:244:1::'))?.address ?? '';
      expect(ipv4).toMatch(/^10\.244\.1\.\d+\/24$/);
      expect(ipv6).toMatch(/^fd00:10:244:1::[0-9a-f]+\/64$/);
      expect(ips.map((ip) => ip.gateway).sort()).toEqual(['10.244.1.1', 'fd00:10:244:1::1']);
      const interfaces = result['interfaces'] as { name: string; sandbox?: string; mtu?: number }[];
      expect(interfaces.find((ifc) => ifc.sandbox !== undefined)?.name).toBe('eth0');
      // interfaces[].mtu exists from CNI 1.1.0 on; the link MTU is set either way.
      expect(interfaces.map((ifc) => ifc.mtu)).toEqual(interfaces.map(() => (version === '1.1.0' ? LEASE.mtu : undefined)));
      added.set(ns, { result, ipv4: ipv4.split('/')[0] ?? '', ipv6: ipv6.split('/')[0] ?? '' });

      const link = await runIn(ns, ['ip', '-o', 'link', 'show', 'eth0']);
      expect(link.stdout).toContain(`mtu ${LEASE.mtu} `);
      const addrs = await runIn(ns, ['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
      expect(addrs.stdout).toContain(`inet ${ipv4} `);
      expect(addrs.stdout).toContain(`inet6 ${ipv6} `);
      expect((await runIn(ns, ['ip', 'route', 'show', 'default'])).stdout).toContain('default via 10.244.1.1 dev eth0');
      expect((await runIn(ns, ['ip', '-6', 'route', 'show', 'default'])).stdout).toContain('default via fd00:10:244:1::1 dev eth0');
    }
    const [a, b] = pods.map((ns) => added.get(ns));
    expect(a?.ipv4).not.toBe(b?.ipv4);
    expect(await reservations()).toEqual([a?.ipv4, a?.ipv6, b?.ipv4, b?.ipv6].sort());
    // The bridge lives in the node namespace, never in ours.
    expect((await runIn(nodeNs, ['ip', '-o', 'addr', 'show', 'dev', 'cni0'])).stdout).toContain('inet 10.244.1.1/24');
    expect((await outcomeIn(null, ['ip', 'link', 'show', 'cni0'])).exitCode).not.toBe(0);
  });

  it('the pods reach each other and the gateway over IPv4 and IPv6', async () => {
    const [p1, p2] = pods as [string, string];
    const a = added.get(p1);
    const b = added.get(p2);
    if (a === undefined || b === undefined) throw new Error('ADD did not run');
    const targets: [string, string][] = [
      [p1, b.ipv4],
      [p2, a.ipv4],
      [p1, '10.244.1.1'],
      [p1, b.ipv6],
      [p2, a.ipv6],
      [p2, 'fd00:10:244:1::1'],
    ];
    for (const [from, to] of targets) {
      // IPv6 addresses may still be in duplicate address detection for a moment after ADD.
      const received = await pollUntil(
        `${from} -> ${to}`,
        async () => {
          const received = parsePing((await outcomeIn(from, ['ping', '-c', '1', '-W', '1', to])).stdout).received;
          return received === 1 ? received : undefined;
        },
        8_000,
        200,
      );
      expect(received, `${from} -> ${to}`).toBe(1);
    }
    const burst = await outcomeIn(p1, ['ping', '-c', '3', '-i', '0.2', '-W', '2', b.ipv4]);
    expect(parsePing(burst.stdout).received).toBe(3);
  });

  it('CHECK with the ADD result passes; STATUS is 0 while the daemon is ready', async () => {
    const [p1] = pods as [string];
    const prev = added.get(p1)?.result;
    const check = await cni('CHECK', p1, conf('1.1.0', { prevResult: prev }));
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toBe('');
    const status = await cni('STATUS', undefined, conf('1.1.0'));
    expect(status.exitCode, status.stdout + status.stderr).toBe(0);
  });

  it('daemon answering 503: ADD is error 11 with its reason, STATUS is 50', async () => {
    daemon = { status: 503 };
    try {
      const before = await reservations();
      const add = await cni('ADD', pods[0], conf('1.1.0'), { CNI_CONTAINERID: 'ctr-third', CNI_IFNAME: 'eth1' });
      expect(add.exitCode).not.toBe(0);
      expect(json(add)).toMatchObject({ cniVersion: '1.1.0', code: 11, msg: `podtun daemon not ready: lease not up (${socketPath})` });
      expect(await reservations()).toEqual(before);
      const status = await cni('STATUS', undefined, conf('1.1.0'));
      expect(status.exitCode).not.toBe(0);
      expect(json(status)).toMatchObject({ code: 50, msg: expect.stringContaining('lease not up') });
    } finally {
      daemon = { status: 200 };
    }
  });

  it('DEL while the daemon socket is gone succeeds, twice; the pod interface and its addresses are gone', async () => {
    const [p1, p2] = pods as [string, string];
    await stopDaemon();
    const keep = added.get(p2);
    for (let round = 0; round < 2; round++) {
      const del = await cni('DEL', p1, conf('1.1.0', { prevResult: added.get(p1)?.result }));
      expect(del.exitCode, `round ${round}: ${del.stdout}${del.stderr}`).toBe(0);
      expect(del.stdout).toBe('');
    }
    expect((await outcomeIn(p1, ['ip', 'link', 'show', 'eth0'])).exitCode).not.toBe(0);
    expect(await reservations()).toEqual([keep?.ipv4, keep?.ipv6].sort());
    const status = await cni('STATUS', undefined, conf('1.1.0'));
    expect(json(status)).toMatchObject({ code: 50, msg: expect.stringContaining(`cannot reach ${socketPath}`) });
  });

  it('DEL with the pod namespace already deleted, and without prevResult, succeeds and releases', async () => {
    const [, p2] = pods as [string, string];
    await startDaemon();
    await runIn(null, ['ip', 'netns', 'del', p2]);
    const del = await cni('DEL', p2, conf('1.0.0'));
    expect(del.exitCode, del.stdout + del.stderr).toBe(0);
    expect(await reservations()).toEqual([]);
    const again = await cni('DEL', p2, conf('1.0.0'), { CNI_NETNS: '' });
    expect(again.exitCode, again.stdout + again.stderr).toBe(0);
    // Both veths went with their pods: the node has only the bridge and lo left.
    const links = (await runIn(nodeNs, ['ip', '-o', 'link', 'show'])).stdout;
    expect(links).not.toMatch(/veth/);
  });
});
