/**
 * podtun-ipam under the reference `bridge` plugin, as a runtime would drive it: bridge is
 * exec'd with the CNI environment and finds podtun-ipam through CNI_PATH.
 *
 *   node ns (pti-node-*)                      pod ns (pti-pod-*)
 *   ┌──────────────────────────────┐         ┌───────────────────────┐
 *   │ ptb-* bridge  10.250.x.1/24  │──veth───│ eth0  10.250.x.2/24   │
 *   └──────────────────────────────┘         └───────────────────────┘
 *
 * bridge itself runs inside the node namespace (ip netns exec), so the root namespace gets no
 * device, address or route.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cniEnv, preparePodtunIpam, runPlugin } from '../../test/cni-process.js';
import { skipUnlessMet } from '../../test/requirement.js';

const BRIDGE_PLUGIN = '/usr/lib/cni/bridge';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root for network namespaces (CI runs it as root)';
  if (!existsSync(BRIDGE_PLUGIN)) return `${BRIDGE_PLUGIN} is missing (Debian package containernetworking-plugins)`;
  for (const [command, pkg] of [['ip', 'iproute2'], ['ping', 'iputils-ping']] as const) {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'ignore' });
    } catch {
      return `\`${command}\` is missing (Debian package ${pkg})`;
    }
  }
  return undefined;
}

const skip = skipUnlessMet('cni/ipam/podtun-ipam-bridge.test.ts', skipReason());

function ip(args: readonly string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

describe.skipIf(skip)('podtun-ipam behind the reference bridge plugin', () => {
  const suffix = randomBytes(3).toString('hex');
  const nodeNs = `pti-node-${suffix}`;
  const podNs = `pti-pod-${suffix}`;
  const bridgeName = `ptb-${suffix}`;
  const subnetByte = 200 + (randomBytes(1)[0] ?? 0) % 50;
  const subnet = `10.250.${subnetByte}.0/24`;
  let workDir: string;
  let pluginDir: string;
  let dataDir: string;

  beforeAll(async () => {
    // The bridge plugin finds podtun-ipam by name in CNI_PATH: the build dir holds it.
    pluginDir = dirname(preparePodtunIpam()[0] ?? '');
    workDir = await mkdtemp(join(tmpdir(), 'podtun-ipam-bridge-'));
    dataDir = join(workDir, 'networks');
    ip(['netns', 'add', nodeNs]);
    ip(['netns', 'add', podNs]);
  }, 120_000);

  afterAll(async () => {
    for (const ns of [podNs, nodeNs]) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  function conf(extra: Record<string, unknown> = {}): string {
    return JSON.stringify({
      cniVersion: '1.0.0',
      name: `pti-${suffix}`,
      type: 'bridge',
      bridge: bridgeName,
      isGateway: true,
      ipam: { type: 'podtun-ipam', subnet, dataDir },
      ...extra,
    });
  }

  function bridge(command: string, stdin: string): ReturnType<typeof runPlugin> {
    const env = cniEnv(command, { containerId: `ctr-${suffix}`, netns: `/run/netns/${podNs}`, ifName: 'eth0', path: `${pluginDir}:/usr/lib/cni` });
    return runPlugin(['ip', 'netns', 'exec', nodeNs, BRIDGE_PLUGIN], env, stdin, { timeoutMs: 20_000 });
  }

  it('ADD gives the pod the address podtun-ipam reserved, CHECK agrees, DEL takes it back', async () => {
    const added = await bridge('ADD', conf());
    expect(added.exitCode, `${added.stdout}${added.stderr}`).toBe(0);
    const result = added.json as { ips: { address: string; gateway: string }[] };
    const podAddress = `10.250.${subnetByte}.2`;
    expect(result.ips).toEqual([expect.objectContaining({ address: `${podAddress}/24`, gateway: `10.250.${subnetByte}.1` })]);

    const podAddrs = JSON.parse(ip(['-n', podNs, '-j', 'addr', 'show', 'dev', 'eth0'])) as { addr_info: { family: string; local: string; prefixlen: number }[] }[];
    expect(podAddrs[0]?.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)).toEqual([`${podAddress}/24`]);
    const netDir = join(dataDir, `pti-${suffix}`);
    expect(await readFile(join(netDir, podAddress), 'utf8')).toBe(`ctr-${suffix}\r\neth0`);
    // The pod reaches the bridge's gateway address over the veth.
    execFileSync('ip', ['netns', 'exec', podNs, 'ping', '-c', '1', '-W', '2', `10.250.${subnetByte}.1`], { stdio: 'ignore', timeout: 10_000 });

    const checked = await bridge('CHECK', conf({ prevResult: added.json }));
    expect(checked.exitCode, `${checked.stdout}${checked.stderr}`).toBe(0);

    const deleted = await bridge('DEL', conf({ prevResult: added.json }));
    expect(deleted.exitCode, `${deleted.stdout}${deleted.stderr}`).toBe(0);
    expect(() => ip(['-n', podNs, 'link', 'show', 'eth0'])).toThrow();
    expect((await readdir(netDir)).filter((name) => /^[0-9.]+$/.test(name))).toEqual([]);
    const again = await bridge('DEL', conf());
    expect(again.exitCode, `${again.stdout}${again.stderr}`).toBe(0);
  }, 60_000);
});
