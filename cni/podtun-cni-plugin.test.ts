/**
 * runCni per command with the daemon and the delegate plugins replaced by recorded fakes: what
 * podtun asks the daemon, what it hands bridge and podtun-ipam (config, environment), and how it
 * answers the runtime. CNI_PATH lookups use real executable files in a temp dir. The real bridge
 * and podtun-ipam in network namespaces: podtun-cni-bridge.test.ts.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CniCode, CniError } from './cni-error.js';
import type { NodeLease } from './daemon-client.js';
import { createExecPlugin, findPluginInPath, parsePodtunConfig, runCni } from './podtun-cni-plugin.js';
import type { CniDeps, PluginExecResult } from './podtun-cni-plugin.js';

const LEASE: NodeLease = {
  node: 'n1',
  subnets: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
  mtu: 1460,
  clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/48'],
};

const BRIDGE_VERSION = { cniVersion: '1.0.0', supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'] };

/** What Debian's bridge 1.1.1 answers to ADD at 1.0.0 (macs shortened). */
const BRIDGE_RESULT = {
  cniVersion: '1.0.0',
  interfaces: [
    { name: 'cni0', mac: '02:00:00:00:00:01' },
    { name: 'veth0a1b2c3d', mac: '02:00:00:00:00:02' },
    { name: 'eth0', mac: '02:00:00:00:00:03', sandbox: '/var/run/netns/p1' },
  ],
  ips: [
    { interface: 2, address: '10.244.1.2/24', gateway: '10.244.1.1' },
    { interface: 2, address: 'fd00:10:244:1::2/64', gateway: 'fd00:10:244:1::1' },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '10.244.1.1' },
    { dst: '::/0', gw: 'fd00:10:244:1::1' },
  ],
  dns: {},
};

interface Call {
  plugin: string;
  command: string;
  env: Readonly<Record<string, string>>;
  config: Record<string, unknown>;
}

type Responder = (call: Call) => PluginExecResult | undefined;

/** A daemon and plugins answering like the real ones unless `respond` answers first. */
function fakes(options: { lease?: NodeLease | CniError; respond?: Responder } = {}): CniDeps & { calls: Call[]; leaseAsks: string[] } {
  const calls: Call[] = [];
  const leaseAsks: string[] = [];
  return {
    calls,
    leaseAsks,
    fetchLease: (socketPath) => {
      leaseAsks.push(socketPath);
      const lease = options.lease ?? LEASE;
      return lease instanceof CniError ? Promise.reject(lease) : Promise.resolve(lease);
    },
    execPlugin: (path, env, stdin) => {
      const call: Call = {
        plugin: path.slice(path.lastIndexOf('/') + 1),
        command: env['CNI_COMMAND'] ?? '',
        env,
        config: JSON.parse(stdin) as Record<string, unknown>,
      };
      calls.push(call);
      const answer = options.respond?.(call);
      if (answer !== undefined) return Promise.resolve(answer);
      if (call.command === 'VERSION') return Promise.resolve({ stdout: JSON.stringify(BRIDGE_VERSION), exitCode: 0 });
      if (call.command === 'ADD') return Promise.resolve({ stdout: JSON.stringify(BRIDGE_RESULT), exitCode: 0 });
      return Promise.resolve({ stdout: '', exitCode: 0 });
    },
  };
}

const NOT_READY = new CniError(CniCode.TryAgainLater, 'podtun daemon not ready: lease not up (/run/podtun/podtun.sock)');

function parsed(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('runCni', () => {
  let root = '';
  let bin = '';
  let onlyIpam = '';
  let onlyBridge = '';
  let empty = '';

  async function executable(dir: string, name: string): Promise<void> {
    await writeFile(join(dir, name), '#!/bin/sh\nexit 99\n');
    await chmod(join(dir, name), 0o755);
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'podtun-cni-plugin-'));
    [bin, onlyIpam, onlyBridge, empty] = ['bin', 'only-ipam', 'only-bridge', 'empty'].map((d) => join(root, d)) as [string, string, string, string];
    for (const dir of [bin, onlyIpam, onlyBridge, empty]) await mkdir(dir);
    await executable(bin, 'bridge');
    await executable(bin, 'podtun-ipam');
    await executable(onlyIpam, 'podtun-ipam');
    await executable(onlyBridge, 'bridge');
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  function env(command: string, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
    return {
      PATH: '/usr/sbin:/usr/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: 'c0ffee',
      CNI_NETNS: '/var/run/netns/p1',
      CNI_IFNAME: 'eth0',
      CNI_PATH: bin,
      CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0',
      ...extra,
    };
  }

  function conf(cniVersion = '1.1.0', extra: Record<string, unknown> = {}): string {
    return JSON.stringify({ cniVersion, name: 'podtun', type: 'podtun', daemonSocket: '/tmp/d.sock', ...extra });
  }

  /** The 1.1.0 result podtun gave for ADD, as a runtime hands it back in prevResult. */
  const PREV_RESULT = {
    cniVersion: '1.1.0',
    interfaces: BRIDGE_RESULT.interfaces.map((i) => ({ ...i, mtu: 1460 })),
    ips: BRIDGE_RESULT.ips,
    routes: BRIDGE_RESULT.routes,
  };

  describe('ADD', () => {
    it('asks the daemon, hands bridge the lease at 1.0.0, answers 1.1.0 with interface MTUs', async () => {
      const deps = fakes();
      const outcome = await runCni(env('ADD'), conf(), deps);
      expect(outcome.exitCode).toBe(0);
      expect(deps.leaseAsks).toEqual(['/tmp/d.sock']);
      expect(deps.calls.map((c) => `${c.plugin} ${c.command}`)).toEqual(['bridge VERSION', 'bridge ADD']);
      const add = deps.calls[1];
      expect(add?.config).toEqual({
        cniVersion: '1.0.0',
        name: 'podtun',
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        isDefaultGateway: true,
        ipMasq: false,
        hairpinMode: true,
        mtu: 1460,
        ipam: {
          type: 'podtun-ipam',
          dataDir: '/var/lib/cni/networks',
          daemonSocket: '/tmp/d.sock',
          ranges: [[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/64' }]],
        },
      });
      // Go plugins refuse unknown CNI_ARGS keys unless told to ignore them.
      expect(add?.env['CNI_ARGS']).toBe('IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0');
      expect(add?.env).toMatchObject({ PATH: '/usr/sbin:/usr/bin', CNI_NETNS: '/var/run/netns/p1', CNI_IFNAME: 'eth0', CNI_CONTAINERID: 'c0ffee' });
      const result = parsed(outcome.stdout);
      expect(result['cniVersion']).toBe('1.1.0');
      expect(result['interfaces']).toEqual(BRIDGE_RESULT.interfaces.map((i) => ({ ...i, mtu: 1460 })));
      expect(result['ips']).toEqual(BRIDGE_RESULT.ips);
      expect(result['routes']).toEqual(BRIDGE_RESULT.routes);
    });

    it('speaks 0.3.1 to bridge for a 0.3.1 runtime and answers with ips[].version, no MTU fields', async () => {
      const deps = fakes({
        respond: (call) =>
          call.command === 'ADD'
            ? { stdout: JSON.stringify({ ...BRIDGE_RESULT, cniVersion: '0.3.1', ips: BRIDGE_RESULT.ips.map((ip, i) => ({ version: i === 0 ? '4' : '6', ...ip })) }), exitCode: 0 }
            : undefined,
      });
      const outcome = await runCni(env('ADD'), conf('0.3.1'), deps);
      expect(deps.calls[1]?.config['cniVersion']).toBe('0.3.1');
      const result = parsed(outcome.stdout);
      expect(result['cniVersion']).toBe('0.3.1');
      expect(result['interfaces']).toEqual(BRIDGE_RESULT.interfaces);
      expect((result['ips'] as { version: string }[]).map((ip) => ip.version)).toEqual(['4', '6']);
    });

    it('1.0.0 results carry no MTU (the link MTU is still set: bridge gets mtu)', async () => {
      const deps = fakes();
      const outcome = await runCni(env('ADD'), conf('1.0.0'), deps);
      expect(deps.calls[1]?.config['mtu']).toBe(1460);
      expect(parsed(outcome.stdout)['interfaces']).toEqual(BRIDGE_RESULT.interfaces);
    });

    it('keeps CNI_ARGS alone when they already say IgnoreUnknown, and leaves it unset when unset', async () => {
      const deps = fakes();
      await runCni(env('ADD', { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=a' }), conf(), deps);
      await runCni(env('ADD', { CNI_ARGS: undefined }), conf(), deps);
      expect(deps.calls.filter((c) => c.command === 'ADD').map((c) => c.env['CNI_ARGS'])).toEqual(['IgnoreUnknown=1;K8S_POD_NAME=a', undefined]);
    });

    it('forwards args and runtimeConfig, and the configured bridge, dataDir and delegate', async () => {
      const deps = fakes();
      const extra = { bridge: 'br-pods', dataDir: '/var/lib/podtun/ipam', args: { cni: { x: 1 } }, runtimeConfig: { mac: '02:00:00:00:00:09' } };
      await runCni(env('ADD'), conf('1.1.0', extra), deps);
      expect(deps.calls[1]?.config).toMatchObject({ bridge: 'br-pods', args: extra.args, runtimeConfig: extra.runtimeConfig, ipam: { dataDir: '/var/lib/podtun/ipam' } });
    });

    it('daemon not ready: its error 11, nothing executed', async () => {
      const deps = fakes({ lease: NOT_READY });
      const outcome = await runCni(env('ADD'), conf(), deps);
      expect(outcome.exitCode).not.toBe(0);
      expect(parsed(outcome.stdout)).toEqual({ cniVersion: '1.1.0', code: 11, msg: NOT_READY.message });
      expect(deps.calls).toEqual([]);
    });

    it('bridge missing from CNI_PATH: 50 saying to install the standard plugins', async () => {
      const deps = fakes();
      const outcome = await runCni(env('ADD', { CNI_PATH: `${onlyIpam}:${empty}` }), conf(), deps);
      expect(parsed(outcome.stdout)).toMatchObject({
        code: CniCode.NotAvailable,
        msg: `the reference 'bridge' plugin is not in CNI_PATH (${onlyIpam}:${empty}): install the standard CNI plugins (containernetworking-plugins)`,
      });
      expect(deps.calls).toEqual([]);
    });

    it('podtun-ipam missing: 50 naming it; CNI_PATH unset: 50 saying so', async () => {
      const deps = fakes();
      const missingIpam = parsed((await runCni(env('ADD', { CNI_PATH: onlyBridge }), conf(), deps)).stdout);
      expect(missingIpam['code']).toBe(CniCode.NotAvailable);
      expect(missingIpam['msg']).toContain(`'podtun-ipam' is not in CNI_PATH (${onlyBridge}): reinstall podtun`);
      const noPath = parsed((await runCni(env('ADD', { CNI_PATH: undefined }), conf(), deps)).stdout);
      expect(noPath['msg']).toContain("the reference 'bridge' plugin and 'podtun-ipam' are not in CNI_PATH (CNI_PATH is empty)");
      expect(deps.calls).toEqual([]);
    });

    it("passes bridge's error on unchanged but in the runtime's cniVersion", async () => {
      const error = { code: 999, msg: 'failed to set bridge addr: could not add IP address to "cni0": permission denied', details: 'd' };
      const deps = fakes({ respond: (call) => (call.command === 'ADD' ? { stdout: JSON.stringify({ cniVersion: '1.0.0', ...error }), exitCode: 1 } : undefined) });
      const outcome = await runCni(env('ADD'), conf(), deps);
      expect(outcome.exitCode).toBe(1);
      expect(parsed(outcome.stdout)).toEqual({ cniVersion: '1.1.0', ...error });
    });

    it('a delegate that fails without a CNI error: 999 with its exit code and output', async () => {
      const deps = fakes({ respond: (call) => (call.command === 'ADD' ? { stdout: 'panic: oops', exitCode: 2 } : undefined) });
      const result = parsed((await runCni(env('ADD'), conf(), deps)).stdout);
      expect(result).toMatchObject({ code: 999, msg: 'bridge ADD failed with exit code 2 and no CNI error on stdout', details: 'panic: oops' });
    });

    it('a success without a result on stdout: 6', async () => {
      const deps = fakes({ respond: (call) => (call.command === 'ADD' ? { stdout: '', exitCode: 0 } : undefined) });
      expect(parsed((await runCni(env('ADD'), conf(), deps)).stdout)['code']).toBe(CniCode.DecodeFailure);
    });

    it('a delegate without a common version: 1, listing what it speaks', async () => {
      const deps = fakes({ respond: (call) => (call.command === 'VERSION' ? { stdout: '{"cniVersion":"0.2.0","supportedVersions":["0.1.0","0.2.0"]}', exitCode: 0 } : undefined) });
      const result = parsed((await runCni(env('ADD'), conf(), deps)).stdout);
      expect(result['code']).toBe(CniCode.IncompatibleVersion);
      expect(result['msg']).toContain('bridge supports CNI 0.1.0, 0.2.0');
      expect(deps.calls.map((c) => c.command)).toEqual(['VERSION']);
    });

    it('a newer delegate gets the runtime version, not more', async () => {
      const deps = fakes({ respond: (call) => (call.command === 'VERSION' ? { stdout: '{"supportedVersions":["1.0.0","1.1.0","1.2.0"]}', exitCode: 0 } : undefined) });
      await runCni(env('ADD'), conf('1.1.0'), deps);
      await runCni(env('ADD'), conf('1.0.0'), deps);
      expect(deps.calls.filter((c) => c.command === 'ADD').map((c) => c.config['cniVersion'])).toEqual(['1.1.0', '1.0.0']);
    });

    it.each([
      ['bridge', 'cni-bridge-too-long', '"bridge" must be an interface name'],
      ['bridge', 7, '"bridge" must be a string'],
      ['daemonSocket', 'run/podtun.sock', '"daemonSocket" must be an absolute path'],
      ['dataDir', '', '"dataDir" must be an absolute path'],
      ['delegate', '../bin/sh', '"delegate" must be a plugin file name'],
    ])('config %s = %j: 7 naming the field', async (key, value, message) => {
      const deps = fakes();
      const result = parsed((await runCni(env('ADD'), conf('1.1.0', { [key]: value }), deps)).stdout);
      expect(result['code']).toBe(CniCode.InvalidConfig);
      expect(result['msg']).toContain(message);
      expect(deps.calls).toEqual([]);
    });

    it('protocol errors come from the request parser: unknown CNI_ARGS key 4, no stdin 6, bad version 1', async () => {
      const deps = fakes();
      expect(parsed((await runCni(env('ADD', { CNI_ARGS: 'FOO=1' }), conf(), deps)).stdout)['code']).toBe(CniCode.InvalidEnv);
      expect(parsed((await runCni(env('ADD'), '', deps)).stdout)['code']).toBe(CniCode.DecodeFailure);
      const badVersion = parsed((await runCni(env('ADD'), conf('9.9.9'), deps)).stdout);
      expect(badVersion['code']).toBe(CniCode.IncompatibleVersion);
      expect(parsed((await runCni(env('ADD', { CNI_NETNS: undefined }), conf('1.0.0'), deps)).stdout)).toMatchObject({ cniVersion: '1.0.0', code: CniCode.InvalidEnv });
      expect(deps.calls).toEqual([]);
    });
  });

  describe('DEL', () => {
    it('never asks the daemon: bridge DEL without ranges or MTU, prevResult at the delegate version', async () => {
      const deps = fakes({ lease: NOT_READY });
      const outcome = await runCni(env('DEL'), conf('1.1.0', { prevResult: PREV_RESULT }), deps);
      expect(outcome).toEqual({ stdout: '', exitCode: 0 });
      expect(deps.leaseAsks).toEqual([]);
      expect(deps.calls.map((c) => `${c.plugin} ${c.command}`)).toEqual(['bridge VERSION', 'bridge DEL']);
      const del = deps.calls[1]?.config ?? {};
      expect(del['mtu']).toBeUndefined();
      expect(del['ipam']).toEqual({ type: 'podtun-ipam', dataDir: '/var/lib/cni/networks', daemonSocket: '/tmp/d.sock' });
      expect(del['prevResult']).toEqual({ ...PREV_RESULT, cniVersion: '1.0.0', interfaces: BRIDGE_RESULT.interfaces });
    });

    it('without CNI_NETNS or prevResult it still runs bridge DEL (bridge releases the address)', async () => {
      const deps = fakes();
      const outcome = await runCni(env('DEL', { CNI_NETNS: undefined }), conf(), deps);
      expect(outcome).toEqual({ stdout: '', exitCode: 0 });
      const del = deps.calls[1];
      expect(del?.env['CNI_NETNS']).toBeUndefined();
      expect(del?.config['prevResult']).toBeUndefined();
    });

    it('without bridge: podtun-ipam DEL directly, at the runtime version', async () => {
      const deps = fakes();
      const outcome = await runCni(env('DEL', { CNI_PATH: onlyIpam }), conf('1.1.0'), deps);
      expect(outcome).toEqual({ stdout: '', exitCode: 0 });
      expect(deps.calls.map((c) => `${c.plugin} ${c.command}`)).toEqual(['podtun-ipam DEL']);
      expect(deps.calls[0]?.config).toMatchObject({ cniVersion: '1.1.0', name: 'podtun', ipam: { type: 'podtun-ipam' } });
    });

    it('with a bridge that cannot say its version: podtun-ipam DEL directly', async () => {
      const deps = fakes({ respond: (call) => (call.command === 'VERSION' ? { stdout: '', exitCode: 1 } : undefined) });
      expect(await runCni(env('DEL'), conf(), deps)).toEqual({ stdout: '', exitCode: 0 });
      expect(deps.calls.map((c) => `${c.plugin} ${c.command}`)).toEqual(['bridge VERSION', 'podtun-ipam DEL']);
    });

    it('without podtun-ipam (with or without bridge): 50 naming what is missing, nothing run', async () => {
      const deps = fakes();
      const neither = parsed((await runCni(env('DEL', { CNI_PATH: empty }), conf(), deps)).stdout);
      expect(neither).toMatchObject({ code: CniCode.NotAvailable, msg: expect.stringContaining("the reference 'bridge' plugin and 'podtun-ipam' are not") });
      const noIpam = parsed((await runCni(env('DEL', { CNI_PATH: onlyBridge }), conf(), deps)).stdout);
      expect(noIpam).toMatchObject({ code: CniCode.NotAvailable, msg: expect.stringContaining("'podtun-ipam' is not in CNI_PATH") });
      expect(deps.calls).toEqual([]);
    });

    it("bridge DEL's error is passed on (the runtime retries)", async () => {
      const deps = fakes({ respond: (call) => (call.command === 'DEL' ? { stdout: '{"code":5,"msg":"failed to release"}', exitCode: 1 } : undefined) });
      expect(parsed((await runCni(env('DEL'), conf(), deps)).stdout)).toEqual({ cniVersion: '1.1.0', code: 5, msg: 'failed to release' });
    });
  });

  describe('CHECK', () => {
    it('bridge CHECK with the lease config and prevResult converted to 1.0.0', async () => {
      const deps = fakes();
      const outcome = await runCni(env('CHECK'), conf('1.1.0', { prevResult: PREV_RESULT }), deps);
      expect(outcome).toEqual({ stdout: '', exitCode: 0 });
      expect(deps.leaseAsks).toEqual(['/tmp/d.sock']);
      const check = deps.calls[1]?.config ?? {};
      expect(check).toMatchObject({ cniVersion: '1.0.0', mtu: 1460, ipam: { ranges: [[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/64' }]] } });
      expect((check['prevResult'] as { interfaces: unknown }).interfaces).toEqual(BRIDGE_RESULT.interfaces);
    });

    it('without prevResult: 7; daemon not ready: 11; bridge failing: its error', async () => {
      expect(parsed((await runCni(env('CHECK'), conf(), fakes())).stdout)['code']).toBe(CniCode.InvalidConfig);
      expect(parsed((await runCni(env('CHECK'), conf('1.1.0', { prevResult: PREV_RESULT }), fakes({ lease: NOT_READY }))).stdout)['code']).toBe(11);
      const failing = fakes({ respond: (call) => (call.command === 'CHECK' ? { stdout: '{"code":999,"msg":"eth0 missing"}', exitCode: 1 } : undefined) });
      expect(parsed((await runCni(env('CHECK'), conf('1.1.0', { prevResult: PREV_RESULT }), failing)).stdout)).toMatchObject({ code: 999, msg: 'eth0 missing' });
    });
  });

  describe('STATUS', () => {
    const statusEnv = { CNI_CONTAINERID: undefined, CNI_NETNS: undefined, CNI_IFNAME: undefined, CNI_ARGS: undefined };

    it('ready: podtun-ipam STATUS with the lease ranges, exit 0 and no output', async () => {
      const deps = fakes();
      expect(await runCni(env('STATUS', statusEnv), conf(), deps)).toEqual({ stdout: '', exitCode: 0 });
      expect(deps.calls.map((c) => `${c.plugin} ${c.command}`)).toEqual(['podtun-ipam STATUS']);
      expect(deps.calls[0]?.config).toMatchObject({ cniVersion: '1.1.0', ipam: { type: 'podtun-ipam', ranges: [[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/64' }]] } });
    });

    it("daemon not ready: 50 with the daemon's reason", async () => {
      const deps = fakes({ lease: NOT_READY });
      const result = parsed((await runCni(env('STATUS', statusEnv), conf(), deps)).stdout);
      expect(result).toEqual({ cniVersion: '1.1.0', code: 50, msg: NOT_READY.message });
      expect(deps.calls).toEqual([]);
    });

    it('bridge missing: 50 before asking anyone', async () => {
      const deps = fakes();
      const result = parsed((await runCni(env('STATUS', { ...statusEnv, CNI_PATH: onlyIpam }), conf(), deps)).stdout);
      expect(result['code']).toBe(50);
      expect(result['msg']).toContain("the reference 'bridge' plugin is not in CNI_PATH");
      expect(deps.leaseAsks).toEqual([]);
    });

    it("podtun-ipam STATUS failing: its error", async () => {
      const deps = fakes({ respond: () => ({ stdout: '{"code":50,"msg":"data dir /var/lib/cni/networks/podtun is not usable"}', exitCode: 1 }) });
      expect(parsed((await runCni(env('STATUS', statusEnv), conf(), deps)).stdout)).toMatchObject({ code: 50, msg: 'data dir /var/lib/cni/networks/podtun is not usable' });
    });
  });

  describe('GC', () => {
    const attachments = [{ containerID: 'c0ffee', ifname: 'eth0' }];

    it('podtun-ipam GC with the valid attachments, without the daemon', async () => {
      const deps = fakes({ lease: NOT_READY });
      const stdin = conf('1.1.0', { 'cni.dev/valid-attachments': attachments, 'cni.dev/attachments': attachments });
      expect(await runCni(env('GC', { CNI_CONTAINERID: undefined, CNI_NETNS: undefined, CNI_IFNAME: undefined }), stdin, deps)).toEqual({ stdout: '', exitCode: 0 });
      expect(deps.leaseAsks).toEqual([]);
      expect(deps.calls.map((c) => `${c.plugin} ${c.command}`)).toEqual(['podtun-ipam GC']);
      expect(deps.calls[0]?.config).toMatchObject({
        cniVersion: '1.1.0',
        name: 'podtun',
        ipam: { type: 'podtun-ipam', dataDir: '/var/lib/cni/networks' },
        'cni.dev/valid-attachments': attachments,
        'cni.dev/attachments': attachments,
      });
    });

    it('podtun-ipam missing: 50', async () => {
      const result = parsed((await runCni(env('GC', { CNI_PATH: onlyBridge }), conf('1.1.0', { 'cni.dev/valid-attachments': [] }), fakes())).stdout);
      expect(result['code']).toBe(50);
    });
  });

  it('VERSION: the supported versions, with or without stdin', async () => {
    for (const stdin of ['', '{"cniVersion":"1.0.0"}']) {
      const outcome = await runCni({ CNI_COMMAND: 'VERSION' }, stdin, fakes());
      expect(outcome.exitCode).toBe(0);
      expect(parsed(outcome.stdout)['supportedVersions']).toEqual(['0.3.1', '0.4.0', '1.0.0', '1.1.0']);
    }
  });
});

describe('parsePodtunConfig', () => {
  it('fills in the defaults', () => {
    expect(parsePodtunConfig({ name: 'podtun' })).toEqual({
      name: 'podtun',
      daemonSocket: '/run/podtun/podtun.sock',
      bridge: 'cni0',
      dataDir: '/var/lib/cni/networks',
      delegate: 'bridge',
    });
  });

  it.each([[''], ['-x'], ['a/b'], [3]])('refuses network name %j', (name) => {
    expect(() => parsePodtunConfig({ name })).toThrow(/"name" must be a network name/);
  });
});

describe('findPluginInPath and createExecPlugin', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podtun-cni-exec-'));
    for (const d of ['a', 'b', 'c']) await mkdir(join(dir, d));
    await writeFile(join(dir, 'a', 'bridge'), '#!/bin/sh\n'); // not executable
    await mkdir(join(dir, 'a', 'podtun-ipam')); // a directory
    await writeFile(join(dir, 'b', 'bridge'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(dir, 'c', 'bridge'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(dir, 'c', 'echo'), '#!/bin/sh\nprintf "%s|" "$CNI_COMMAND"\ncat\nexit 3\n', { mode: 0o755 });
    await writeFile(join(dir, 'c', 'deaf'), '#!/bin/sh\necho done\n', { mode: 0o755 });
    await writeFile(join(dir, 'c', 'slow'), '#!/bin/sh\nexec sleep 5\n', { mode: 0o755 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('takes the first executable regular file in CNI_PATH order', () => {
    const path = ['', join(dir, 'a'), join(dir, 'b'), join(dir, 'c')];
    expect(findPluginInPath('bridge', path)).toBe(join(dir, 'b', 'bridge'));
    expect(findPluginInPath('podtun-ipam', path)).toBeUndefined();
    expect(findPluginInPath('bridge', [])).toBeUndefined();
  });

  it('runs a plugin: env and stdin in, stdout and the exit code out', async () => {
    const exec = createExecPlugin(5_000);
    expect(await exec(join(dir, 'c', 'echo'), { CNI_COMMAND: 'ADD' }, '{"a":1}')).toEqual({ stdout: 'ADD|{"a":1}', exitCode: 3 });
  });

  it('a plugin that does not read a large stdin is no failure', async () => {
    const exec = createExecPlugin(5_000);
    expect(await exec(join(dir, 'c', 'deaf'), {}, 'x'.repeat(4 * 1024 * 1024))).toEqual({ stdout: 'done\n', exitCode: 0 });
  });

  it('cannot start: CniError 5; too slow: killed, CniError 11', async () => {
    const exec = createExecPlugin(300);
    await expect(exec(join(dir, 'a', 'bridge'), {}, '')).rejects.toMatchObject({ code: CniCode.IoFailure, message: expect.stringContaining('EACCES') });
    const started = performance.now();
    await expect(exec(join(dir, 'c', 'slow'), {}, '')).rejects.toMatchObject({ code: CniCode.TryAgainLater, message: expect.stringContaining('did not finish within 300 ms') });
    expect(performance.now() - started).toBeLessThan(3_000);
  });
});
