import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CniCode, CniError } from './cni-error.js';
import {
  CURRENT_CNI_VERSION,
  SUPPORTED_CNI_VERSIONS,
  compareCniVersions,
  convertResult,
  errorOutcome,
  parseCniRequest,
  readStdin,
  successOutcome,
  versionOutcome,
} from './cni-protocol.js';

const CONFIG = JSON.stringify({ cniVersion: '1.0.0', name: 'podnet', type: 'podtun-ipam' });
const FULL_ENV = { CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/p1', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin::/usr/lib/cni' };

function codeOf(fn: () => unknown): { code: number; message: string } {
  try {
    fn();
  } catch (err: unknown) {
    if (err instanceof CniError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a CniError');
}

describe('parseCniRequest', () => {
  it('parses an ADD: env, CNI_ARGS, CNI_PATH, config', () => {
    const request = parseCniRequest(
      { ...FULL_ENV, CNI_COMMAND: 'ADD', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;FOO=bar=baz' },
      CONFIG,
    );
    expect(request).toMatchObject({ command: 'ADD', containerId: 'c1', netns: '/run/netns/p1', ifName: 'eth0', cniVersion: '1.0.0', stdin: CONFIG });
    expect(request.path).toEqual(['/opt/cni/bin', '/usr/lib/cni']);
    expect(request.config).toEqual(JSON.parse(CONFIG));
    expect([...request.args]).toEqual([
      ['IgnoreUnknown', '1'],
      ['K8S_POD_NAMESPACE', 'default'],
      ['K8S_POD_NAME', 'web-0'],
      ['FOO', 'bar=baz'],
    ]);
  });

  it.each([
    ['ADD', { CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' }, 'CNI_NETNS'],
    ['ADD', { CNI_NETNS: '/n', CNI_IFNAME: 'eth0' }, 'CNI_CONTAINERID'],
    ['ADD', { CNI_CONTAINERID: 'c1', CNI_NETNS: '/n' }, 'CNI_IFNAME'],
    ['CHECK', { CNI_CONTAINERID: 'c1', CNI_NETNS: '', CNI_IFNAME: 'eth0' }, 'CNI_NETNS'],
    ['DEL', { CNI_NETNS: '/n', CNI_IFNAME: 'eth0' }, 'CNI_CONTAINERID'],
    ['DEL', { CNI_CONTAINERID: 'c1' }, 'CNI_IFNAME'],
    ['GC', {}, 'CNI_PATH'],
  ])('%s without %j is InvalidEnv naming %s', (command, env, missing) => {
    const config = JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 't' });
    const { code, message } = codeOf(() => parseCniRequest({ ...env, CNI_COMMAND: command }, config));
    expect(code).toBe(CniCode.InvalidEnv);
    expect(message).toContain(missing);
  });

  it('DEL needs no netns and no CNI_PATH; STATUS and VERSION need nothing', () => {
    expect(parseCniRequest({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' }, CONFIG).netns).toBeUndefined();
    const status = JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 't' });
    expect(parseCniRequest({ CNI_COMMAND: 'STATUS' }, status).command).toBe('STATUS');
    expect(parseCniRequest({ CNI_COMMAND: 'VERSION' }, '')).toMatchObject({ command: 'VERSION', config: {}, cniVersion: CURRENT_CNI_VERSION });
    expect(parseCniRequest({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}').cniVersion).toBe('0.4.0');
  });

  it.each([
    [{ CNI_COMMAND: undefined }, /CNI_COMMAND/],
    [{ CNI_COMMAND: 'ATTACH' }, /unknown CNI_COMMAND "ATTACH"/],
    [{ CNI_CONTAINERID: '-leading-dash' }, /invalid characters in CNI_CONTAINERID/],
    [{ CNI_CONTAINERID: 'a/b' }, /invalid characters in CNI_CONTAINERID/],
    [{ CNI_IFNAME: 'a-very-long-name0' }, /too long/],
    [{ CNI_IFNAME: '..' }, /not a valid interface name/],
    [{ CNI_IFNAME: 'eth/0' }, /contains "\/", ":" or whitespace/],
    [{ CNI_IFNAME: 'eth 0' }, /contains "\/", ":" or whitespace/],
    [{ CNI_ARGS: 'K8S_POD_NAME' }, /invalid pair "K8S_POD_NAME"/],
    [{ CNI_ARGS: 'FOO=1' }, /unknown key "FOO"/],
    [{ CNI_ARGS: 'IgnoreUnknown=maybe;FOO=1' }, /not a boolean/],
  ])('refuses env %j with InvalidEnv', (override, reason) => {
    const env = { ...FULL_ENV, CNI_COMMAND: 'ADD', ...override };
    const { code, message } = codeOf(() => parseCniRequest(env, CONFIG));
    expect(code).toBe(CniCode.InvalidEnv);
    expect(message).toMatch(reason);
  });

  it('accepts a 15-byte interface name and plugin-specific CNI_ARGS keys when told', () => {
    expect(parseCniRequest({ ...FULL_ENV, CNI_COMMAND: 'ADD', CNI_IFNAME: 'abcdefghijklmno' }, CONFIG).ifName).toBe('abcdefghijklmno');
    const request = parseCniRequest({ ...FULL_ENV, CNI_COMMAND: 'ADD', CNI_ARGS: 'IP=10.0.0.9' }, CONFIG, { knownArgs: ['IP'] });
    expect(request.args.get('IP')).toBe('10.0.0.9');
  });

  it.each([
    ['', CniCode.DecodeFailure, /no network config/],
    ['{"cniVersion":', CniCode.DecodeFailure, /not valid JSON/],
    ['[1,2]', CniCode.DecodeFailure, /not a JSON object \(got an array\)/],
    ['null', CniCode.DecodeFailure, /not a JSON object \(got null\)/],
    ['{"name":"n","type":"t"}', CniCode.IncompatibleVersion, /no cniVersion; supported versions: 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0/],
    ['{"cniVersion":"0.2.0","name":"n","type":"t"}', CniCode.IncompatibleVersion, /unsupported cniVersion "0\.2\.0"; supported versions: 0\.3\.1/],
    ['{"cniVersion":7,"name":"n","type":"t"}', CniCode.IncompatibleVersion, /unsupported cniVersion 7/],
    ['{"cniVersion":"1.0.0","type":"t"}', CniCode.InvalidConfig, /no "name"/],
    ['{"cniVersion":"1.0.0","name":"../etc","type":"t"}', CniCode.InvalidConfig, /invalid characters in network name/],
    ['{"cniVersion":"1.0.0","name":"n","type":3}', CniCode.InvalidConfig, /no "type"/],
  ])('stdin %s -> code %i', (stdin, expectedCode, reason) => {
    const { code, message } = codeOf(() => parseCniRequest({ ...FULL_ENV, CNI_COMMAND: 'ADD' }, stdin));
    expect(code).toBe(expectedCode);
    expect(message).toMatch(reason);
  });

  it.each([
    ['CHECK', '0.3.1', /does not allow CHECK; it needs 0\.4\.0/],
    ['GC', '1.0.0', /does not allow GC; it needs 1\.1\.0/],
    ['STATUS', '1.0.0', /does not allow STATUS/],
  ])('%s under cniVersion %s is IncompatibleVersion', (command, version, reason) => {
    const stdin = JSON.stringify({ cniVersion: version, name: 'n', type: 't' });
    const { code, message } = codeOf(() => parseCniRequest({ ...FULL_ENV, CNI_COMMAND: command }, stdin));
    expect(code).toBe(CniCode.IncompatibleVersion);
    expect(message).toMatch(reason);
  });
});

describe('outcomes', () => {
  it('success: the result with cniVersion first, exit 0', () => {
    const outcome = successOutcome({ ips: [], cniVersion: 'ignored' }, '1.0.0');
    expect(outcome.exitCode).toBe(0);
    expect(outcome.stdout).toBe('{"cniVersion":"1.0.0","ips":[]}\n');
  });

  it('version: the supported list', () => {
    expect(JSON.parse(versionOutcome().stdout)).toEqual({ cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_CNI_VERSIONS] });
    expect(JSON.parse(versionOutcome('0.4.0').stdout).cniVersion).toBe('0.4.0');
  });

  it('errors: CniError keeps code and details, the cause fills missing details', () => {
    const outcome = errorOutcome(new CniError(CniCode.RangeExhausted, 'no free address in 10.0.0.0/30', 'all 1 taken'), '1.0.0');
    expect(outcome.exitCode).toBe(1);
    expect(JSON.parse(outcome.stdout)).toEqual({ cniVersion: '1.0.0', code: 100, msg: 'no free address in 10.0.0.0/30', details: 'all 1 taken' });
    const caused = errorOutcome(new CniError(CniCode.IoFailure, 'failed to write', undefined, { cause: new Error('disk full') }), undefined);
    expect(JSON.parse(caused.stdout)).toEqual({ cniVersion: CURRENT_CNI_VERSION, code: 5, msg: 'failed to write', details: 'disk full' });
  });

  it('errors: a Node system error is IoFailure, anything else 999', () => {
    const fsError = Object.assign(new Error("EACCES: permission denied, open '/x'"), { code: 'EACCES', syscall: 'open' });
    expect(JSON.parse(errorOutcome(fsError, '1.0.0').stdout)).toMatchObject({ code: 5, msg: "EACCES: permission denied, open '/x'" });
    expect(JSON.parse(errorOutcome(new TypeError('x is undefined'), '1.0.0').stdout)).toMatchObject({ code: 999, msg: 'unexpected error: x is undefined' });
    expect(JSON.parse(errorOutcome('a string', '1.0.0').stdout)).toMatchObject({ code: 999, msg: 'unexpected error: a string' });
  });
});

describe('convertResult', () => {
  const modern = {
    cniVersion: '1.1.0',
    interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/p', mtu: 1400, socketPath: '/s', pciID: '0000:01' }],
    ips: [
      { address: '10.244.1.2/24', gateway: '10.244.1.1', interface: 0 },
      { address: 'fd00:10:244:1::2/64', gateway: 'fd00:10:244:1::1', interface: 0 },
    ],
    routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1', mtu: 1400, priority: 5, table: 7, scope: 0, advmss: 1360 }],
    dns: { nameservers: ['10.96.0.10'] },
  };

  it('down to 0.4.0 / 0.3.1: ips carry version, 1.1-only fields go', () => {
    for (const version of ['0.4.0', '0.3.1']) {
      expect(convertResult(modern, version)).toEqual({
        cniVersion: version,
        interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/p' }],
        ips: [
          { version: '4', address: '10.244.1.2/24', gateway: '10.244.1.1', interface: 0 },
          { version: '6', address: 'fd00:10:244:1::2/64', gateway: 'fd00:10:244:1::1', interface: 0 },
        ],
        routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }],
        dns: { nameservers: ['10.96.0.10'] },
      });
    }
  });

  it('1.0.0 has no ip version and no 1.1 fields; 1.1.0 keeps them; up from 0.4.0 drops version', () => {
    const v100 = convertResult(modern, '1.0.0');
    expect(v100['ips']).toEqual(modern.ips);
    expect(v100['interfaces']).toEqual([{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/p' }]);
    expect(convertResult(modern, '1.1.0')).toEqual(modern);
    const old = { cniVersion: '0.4.0', ips: [{ version: '4', address: '10.0.0.2/24' }] };
    expect(convertResult(old, '1.1.0')).toEqual({ cniVersion: '1.1.0', ips: [{ address: '10.0.0.2/24' }] });
    expect(convertResult(old, '0.4.0')).toEqual(old);
  });

  it('refuses a version we do not speak', () => {
    expect(codeOf(() => convertResult(modern, '0.2.0')).code).toBe(CniCode.IncompatibleVersion);
  });
});

describe('compareCniVersions', () => {
  it.each([
    ['0.3.1', '0.4.0', -1],
    ['1.0.0', '0.4.0', 1],
    ['1.1.0', '1.1.0', 0],
    ['1.10.0', '1.9.0', 1],
    ['1.0', '1.0.0', 0],
  ])('%s vs %s -> %i', (a, b, expected) => {
    expect(compareCniVersions(a, b)).toBe(expected);
  });

  it('refuses a malformed version', () => {
    expect(codeOf(() => compareCniVersions('1.x', '1.0.0')).code).toBe(CniCode.IncompatibleVersion);
  });
});

describe('readStdin', () => {
  it('reads everything, in pieces', async () => {
    expect(await readStdin(Readable.from([Buffer.from('{"a":'), Buffer.from('"é"}')]))).toBe('{"a":"é"}');
    expect(await readStdin(Readable.from([]))).toBe('');
  });

  it('refuses more than maxBytes and invalid UTF-8 with DecodeFailure', async () => {
    await expect(readStdin(Readable.from([Buffer.alloc(600, 0x20), Buffer.alloc(600, 0x20)]), 1000)).rejects.toMatchObject({
      code: CniCode.DecodeFailure,
      message: expect.stringContaining('larger than 1000 bytes'),
    });
    await expect(readStdin(Readable.from([Buffer.from([0x7b, 0xff, 0x7d])]))).rejects.toMatchObject({ code: CniCode.DecodeFailure });
  });
});
