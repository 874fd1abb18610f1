/**
 * Host network setup against the real kernel, in a namespace of its own:
 *
 * ```
 *   netns ptboot-<random>
 *     pt0  persistent TUN (ip tuntap), down, MTU 1500     <- setup: addresses, MTU, up, routes
 *     ul0  veth (peer ul1), up, fd00:10:244::/48 routed to it       <- replaced by setup, restored by undo
 * ```
 *
 * `ip` runs as `ip -n NS`, sysctls through `ip netns exec NS` (reading /proc/sys from this
 * process would see the root namespace). The root namespace is never given an address or route.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { setupHostNetwork, tunAddressesOf } from './host-network.js';
import { HostNetworkError, systemHostOps } from './host-ops.js';
import type { HostOps } from './host-ops.js';
import { quietLogger } from '../../test/recording-logger.js';
import { skipUnlessMet } from '../../test/requirement.js';


function run(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || err.message}`, { cause: err }));
    });
  });
}

/** HostOps for namespace `ns`, errors shaped like systemHostOps' (stderr in the message). */
function netnsOps(ns: string): HostOps {
  return {
    ip: async (args) => {
      try {
        return await run('ip', ['-n', ns, ...args]);
      } catch (err: unknown) {
        throw new HostNetworkError('ERR_PODTUN_HOST_NETWORK', (err as Error).message, { cause: err });
      }
    },
    readSysctl: async (path) => {
      try {
        return (await run('ip', ['netns', 'exec', ns, 'cat', `/proc/sys/${path.join('/')}`])).trim();
      } catch (err: unknown) {
        if (/No such file/.test((err as Error).message)) return undefined;
        throw err;
      }
    },
    writeSysctl: async (path, value) => {
      await run('ip', ['netns', 'exec', ns, 'sh', '-c', 'printf "%s\\n" "$1" > "$2"', 'sh', value, `/proc/sys/${path.join('/')}`]);
    },
  };
}

const isRoot = process.getuid?.() === 0;
const hasIp = await run('ip', ['-V']).then(() => true, () => false);
const skipReason = !isRoot ? 'not root' : !hasIp ? 'no ip command (iproute2)' : undefined;
const skip = skipUnlessMet('node-bootstrap/host-network/host-network.test.ts', skipReason);

const SYSCTLS = [
  'net/ipv4/ip_forward',
  'net/ipv6/conf/all/forwarding',
  'net/ipv4/conf/pt0/accept_local',
  'net/ipv4/conf/pt0/rp_filter',
  'net/ipv6/conf/pt0/disable_ipv6',
  'net/ipv6/conf/pt0/addr_gen_mode',
];

describe.skipIf(skip)('setupHostNetwork in a network namespace', () => {
  const ns = `ptboot-${randomBytes(4).toString('hex')}`;
  const ops = netnsOps(ns);
  const options = {
    tunName: 'pt0',
    localSubnets: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
    clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/48'],
    mtu: 1460,
    log: quietLogger,
    ops,
  };

  /** Everything setup may touch, as text, to compare before setup with after undo. */
  async function snapshot(): Promise<Record<string, string>> {
    // The kernel gives a link its default qdisc the first time it goes up, and keeps it.
    const noQdisc = (json: string): string =>
      JSON.stringify((JSON.parse(json) as Record<string, unknown>[]).map(({ qdisc: _qdisc, ...rest }) => rest));
    const snap: Record<string, string> = {
      links: noQdisc(await run('ip', ['-n', ns, '-j', 'link', 'show'])),
      addresses: noQdisc(await run('ip', ['-n', ns, '-j', 'addr', 'show'])),
      routes4: await run('ip', ['-n', ns, '-j', '-4', 'route', 'show', 'table', 'all']),
      routes6: await run('ip', ['-n', ns, '-j', '-6', 'route', 'show', 'table', 'all']),
    };
    for (const key of SYSCTLS) snap[key] = (await ops.readSysctl(key.split('/'))) ?? 'missing';
    return snap;
  }

  async function link(): Promise<{ mtu: number; flags: string[]; addr_info: { local: string; prefixlen: number }[] }> {
    const [info] = JSON.parse(await run('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', 'pt0'])) as [
      { mtu: number; flags: string[]; addr_info: { local: string; prefixlen: number }[] },
    ];
    return info;
  }

  beforeAll(async () => {
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', ns, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul1']);
    await run('ip', ['-n', ns, 'link', 'set', 'ul0', 'up']);
  });

  afterAll(async () => {
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  });

  beforeEach(async () => {
    // A fresh persistent TUN per test: it outlives this process, like a TUN left by a crash.
    await run('ip', ['-n', ns, 'link', 'del', 'pt0']).catch(() => undefined);
    await run('ip', ['-n', ns, 'tuntap', 'add', 'mode', 'tun', 'name', 'pt0']);
    await run('ip', ['-n', ns, '-6', 'route', 'replace', 'fd00:10:244::/48', 'dev', 'ul0', 'metric', '1024']);
    await ops.writeSysctl(['net', 'ipv4', 'ip_forward'], '0');
    await ops.writeSysctl(['net', 'ipv6', 'conf', 'all', 'forwarding'], '0');
    // Already right: setup must neither record nor touch it.
    await ops.writeSysctl(['net', 'ipv4', 'conf', 'pt0', 'rp_filter'], '0');
  });

  it('applies addresses, MTU, link, routes and sysctls, then undoes exactly that', async () => {
    const before = await snapshot();
    const network = await setupHostNetwork(options);

    const info = await link();
    expect(info.mtu).toBe(1460);
    expect(info.flags).toContain('UP');
    const addrs = info.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
    expect(addrs).toEqual(expect.arrayContaining(['10.244.1.0/32', 'fd00:10:244:1::/128']));
    expect(await run('ip', ['-n', ns, '-4', 'route', 'show', 'exact', '10.244.0.0/16'])).toMatch(/^10\.244\.0\.0\/16 dev pt0 /);
    expect(await run('ip', ['-n', ns, '-6', 'route', 'show', 'exact', 'fd00:10:244::/48'])).toMatch(/^fd00:10:244::\/48 dev pt0 /);
    expect(await ops.readSysctl(['net', 'ipv4', 'ip_forward'])).toBe('1');
    expect(await ops.readSysctl(['net', 'ipv6', 'conf', 'all', 'forwarding'])).toBe('1');
    expect(await ops.readSysctl(['net', 'ipv4', 'conf', 'pt0', 'accept_local'])).toBe('1');
    expect(await ops.readSysctl(['net', 'ipv4', 'conf', 'pt0', 'rp_filter'])).toBe('0');
    // No link-local address: the kernel has nothing to announce into the TUN.
    expect(info.addr_info.map((a) => a.local).filter((a) => a.startsWith('fe80:'))).toEqual([]);

    expect(network.changes.map((c) => c.kind)).toEqual([
      'sysctl', 'sysctl', 'sysctl', 'sysctl', 'mtu', 'link-up', 'address', 'address', 'route', 'route',
    ]);
    expect(network.changes.filter((c) => c.kind === 'sysctl').map((c) => c.key)).toEqual([
      'net.ipv4.ip_forward',
      'net.ipv6.conf.all.forwarding',
      'net.ipv4.conf.pt0.accept_local',
      'net.ipv6.conf.pt0.addr_gen_mode',
    ]);
    expect(network.changes.find((c) => c.kind === 'route' && c.cidr === 'fd00:10:244::/48')).toMatchObject({
      previous: { dev: 'ul0', metric: 1024 },
    });

    await network.undo();
    await network.undo();
    expect(await snapshot()).toEqual(before);
    expect(await run('ip', ['-n', ns, '-6', 'route', 'show', 'exact', 'fd00:10:244::/48'])).toMatch(/dev ul0/);
  });

  it('turns IPv6 off on the TUN of an IPv4-only cluster, and back on undo', async () => {
    const before = await snapshot();
    const network = await setupHostNetwork({ ...options, localSubnets: ['10.244.1.0/24'], clusterCidrs: ['10.244.0.0/16'] });
    expect(await ops.readSysctl(['net', 'ipv6', 'conf', 'pt0', 'disable_ipv6'])).toBe('1');
    expect((await link()).addr_info.map((a) => a.local)).toEqual(['10.244.1.0']);
    await network.undo();
    expect(await snapshot()).toEqual(before);
  });

  it('leaves what was already right alone on a second setup (a restart on a persistent TUN)', async () => {
    const first = await setupHostNetwork(options);
    const second = await setupHostNetwork(options);
    expect(second.changes).toEqual([]);
    await second.undo();
    expect((await link()).flags).toContain('UP');
    await first.undo();
  });

  it('restores the global sysctls when the TUN is gone before undo', async () => {
    const before = await snapshot();
    const network = await setupHostNetwork(options);
    await run('ip', ['-n', ns, 'link', 'del', 'pt0']);
    await network.undo();
    const after = await snapshot();
    expect(after['net/ipv4/ip_forward']).toBe(before['net/ipv4/ip_forward']);
    expect(after['net/ipv6/conf/all/forwarding']).toBe(before['net/ipv6/conf/all/forwarding']);
    // The route pt0 took over from ul0 is back.
    expect(await run('ip', ['-n', ns, '-6', 'route', 'show', 'exact', 'fd00:10:244::/48'])).toMatch(/dev ul0/);
  });

  it('rolls back what it did when a step fails, and says which step', async () => {
    const before = await snapshot();
    const failing: HostOps = {
      ...ops,
      ip: (args) => (args.includes('replace') && args.includes('10.244.0.0/16')
        ? Promise.reject(new HostNetworkError('ERR_PODTUN_HOST_NETWORK', 'ip route replace: RTNETLINK answers: boom'))
        : ops.ip(args)),
    };
    await expect(setupHostNetwork({ ...options, ops: failing })).rejects.toThrow(
      /failed to set up host network for pt0: ip route replace: RTNETLINK answers: boom/,
    );
    expect(await snapshot()).toEqual(before);
  });

  it('refuses a device that does not exist', async () => {
    await expect(setupHostNetwork({ ...options, tunName: 'nope0' })).rejects.toThrow(/device nope0 does not exist/);
  });
});

describe('systemHostOps', () => {
  it('names the Debian package when ip is missing', async () => {
    const ops = systemHostOps({ ipPath: '/nonexistent/ip' });
    await expect(ops.ip(['link'])).rejects.toMatchObject({ code: 'ERR_PODTUN_IP_MISSING', message: expect.stringMatching(/iproute2/) as unknown });
  });

  it('reads and writes sysctls as files under /proc/sys', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podtun-sysctl-'));
    try {
      const ops = systemHostOps({ procSys: dir });
      expect(await ops.readSysctl(['net', 'ipv4', 'ip_forward'])).toBeUndefined();
      await expect(ops.writeSysctl(['missing', 'dir'], '1')).rejects.toThrow(/cannot set sysctl missing\.dir=1/);
      const real = systemHostOps();
      expect(['0', '1']).toContain(await real.readSysctl(['net', 'ipv4', 'ip_forward']));
      await import('node:fs/promises').then((fs) => fs.writeFile(join(dir, 'x'), '0\n'));
      await ops.writeSysctl(['x'], '1');
      expect(await readFile(join(dir, 'x'), 'utf8')).toBe('1\n');
      expect(await ops.readSysctl(['x'])).toBe('1');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports the failing command with its stderr', async () => {
    await expect(systemHostOps().ip(['link', 'show', 'dev', 'ptboot-none0'])).rejects.toThrow(/ip link show dev ptboot-none0: Device "ptboot-none0" does not exist/);
  });
});

describe('tunAddressesOf', () => {
  it('takes each subnet network address as a host route', () => {
    expect(tunAddressesOf(['10.244.1.0/24', 'fd00:10:244:1::/64'])).toEqual(['10.244.1.0/32', 'fd00:10:244:1::/128']);
  });
});
