import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CniCode, CniError } from '../cni-error.js';
import { parseCniRequest } from '../cni-protocol.js';
import { runIpamCommand } from './podtun-ipam-plugin.js';
import type { PodtunIpamDeps } from './podtun-ipam-plugin.js';

let dataDir: string;
let netDir: string;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'podtun-ipam-'));
  netDir = join(dataDir, 'podnet');
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

interface Call {
  command: string;
  id?: string;
  ifName?: string;
  ipam?: Record<string, unknown>;
  extra?: Record<string, unknown>;
  cniVersion?: string;
  deps?: PodtunIpamDeps;
}

/** One invocation through the real request parser; returns exit code and parsed stdout. */
async function call({ command, id = 'c1', ifName = 'eth0', ipam = {}, extra = {}, cniVersion = '1.1.0', deps = {} }: Call): Promise<{ exitCode: number; json: Record<string, unknown> | undefined }> {
  const config = { cniVersion, name: 'podnet', type: 'bridge', ipam: { type: 'podtun-ipam', dataDir, ...ipam }, ...extra };
  const env = { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_IFNAME: ifName, CNI_NETNS: '/run/netns/x', CNI_PATH: '/opt/cni/bin' };
  const outcome = await runIpamCommand(parseCniRequest(env, JSON.stringify(config)), deps);
  return { exitCode: outcome.exitCode, json: outcome.stdout === '' ? undefined : (JSON.parse(outcome.stdout) as Record<string, unknown>) };
}

const DUAL = { ranges: [[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/64' }]] };

async function files(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(netDir)).sort()) out[name] = await readFile(join(netDir, name), 'utf8');
  return out;
}

describe('ADD', () => {
  it('reserves one address per range set, from .2, and answers in the caller\'s version', async () => {
    const add = await call({ command: 'ADD', ipam: { ...DUAL, routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00:10:244:1::1' }] } });
    expect(add).toEqual({
      exitCode: 0,
      json: {
        cniVersion: '1.1.0',
        ips: [
          { address: '10.244.1.2/24', gateway: '10.244.1.1' },
          { address: 'fd00:10:244:1::2/64', gateway: 'fd00:10:244:1::1' },
        ],
        routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00:10:244:1::1' }],
      },
    });
    expect(await files()).toEqual({
      '10.244.1.2': 'c1\r\neth0',
      'fd00:10:244:1::2': 'c1\r\neth0',
      'last_reserved_ip.0': '10.244.1.2',
      'last_reserved_ip.1': 'fd00:10:244:1::2',
    });
    const old = await call({ command: 'ADD', id: 'c2', ipam: DUAL, cniVersion: '0.3.1' });
    expect(old.json).toEqual({
      cniVersion: '0.3.1',
      ips: [
        { version: '4', address: '10.244.1.3/24', gateway: '10.244.1.1' },
        { version: '6', address: 'fd00:10:244:1::3/64', gateway: 'fd00:10:244:1::1' },
      ],
    });
  });

  it('is idempotent per (containerID, ifname) and completes a half-done ADD', async () => {
    const first = await call({ command: 'ADD', ipam: DUAL });
    expect(await call({ command: 'ADD', ipam: DUAL })).toEqual(first);
    expect((await call({ command: 'ADD', ifName: 'net1', ipam: DUAL })).json?.['ips']).toEqual([
      { address: '10.244.1.3/24', gateway: '10.244.1.1' },
      { address: 'fd00:10:244:1::3/64', gateway: 'fd00:10:244:1::1' },
    ]);
    // A killed ADD got only its IPv4 address: the retry keeps it and adds IPv6.
    await writeFile(join(netDir, '10.244.1.9'), 'c3\r\neth0');
    expect((await call({ command: 'ADD', id: 'c3', ipam: DUAL })).json?.['ips']).toEqual([
      { address: '10.244.1.9/24', gateway: '10.244.1.1' },
      { address: 'fd00:10:244:1::4/64', gateway: 'fd00:10:244:1::1' },
    ]);
  });

  it('takes the host-local shorthand: subnet with rangeStart and gateway', async () => {
    const add = await call({ command: 'ADD', ipam: { subnet: '10.50.0.0/16', rangeStart: '10.50.3.0', gateway: '10.50.0.254' } });
    expect(add.json?.['ips']).toEqual([{ address: '10.50.3.0/16', gateway: '10.50.0.254' }]);
  });

  it('leaves nothing behind when a later range set is full (CniError 100)', async () => {
    const ipam = { ranges: [[{ subnet: '10.244.1.0/24' }], [{ subnet: '10.9.0.0/30' }]] };
    await call({ command: 'ADD', id: 'first', ipam });
    const before = await files();
    const full = await call({ command: 'ADD', id: 'second', ipam });
    expect(full).toEqual({ exitCode: 1, json: expect.objectContaining({ code: CniCode.RangeExhausted, msg: 'no free address in 10.9.0.0/30' }) });
    expect(await files()).toEqual(before);
  });

  it('asks the podtun daemon when the config has no ranges', async () => {
    const sockets: (string | undefined)[] = [];
    const daemonLease = (socket: string | undefined): Promise<{ subnets: string[] }> => {
      sockets.push(socket);
      return Promise.resolve({ subnets: ['10.244.7.0/24', 'fd00:10:244:7::/64'] });
    };
    const add = await call({ command: 'ADD', ipam: { daemonSocket: '/run/podtun/podtun.sock' }, deps: { daemonLease } });
    expect(add.json?.['ips']).toEqual([
      { address: '10.244.7.2/24', gateway: '10.244.7.1' },
      { address: 'fd00:10:244:7::2/64', gateway: 'fd00:10:244:7::1' },
    ]);
    expect(sockets).toEqual(['/run/podtun/podtun.sock']);
  });

  it.each<[string, PodtunIpamDeps, number, RegExp]>([
    ['no daemon to ask', {}, CniCode.InvalidConfig, /no "ranges" or "subnet", and no podtun daemon/],
    ['the daemon not ready', { daemonLease: () => Promise.reject(new CniError(CniCode.TryAgainLater, 'podtun daemon has no lease yet')) }, CniCode.TryAgainLater, /no lease yet/],
    ['the daemon unreachable', { daemonLease: () => Promise.reject(new Error('connect ENOENT /run/podtun.sock')) }, CniCode.TryAgainLater, /did not answer.*ENOENT/],
    ['no subnets yet', { daemonLease: () => Promise.resolve({ subnets: [] }) }, CniCode.TryAgainLater, /no subnets for this node yet/],
    ['a bad subnet', { daemonLease: () => Promise.resolve({ subnets: ['10.0.0.0/31'] }) }, CniCode.InvalidConfig, /podtun daemon subnet\[0\]/],
  ])('without ranges and %s: code %i', async (_what, deps, code, reason) => {
    const add = await call({ command: 'ADD', deps });
    expect(add.exitCode).toBe(1);
    expect(add.json?.['code']).toBe(code);
    expect(add.json?.['msg']).toMatch(reason);
  });

  it.each<[Record<string, unknown>, number, RegExp]>([
    [{ subnet: '10.0.0.0/24', rangestart: '10.0.0.5' }, CniCode.UnsupportedField, /unsupported field ipam\.rangestart: "10\.0\.0\.5"/],
    [{ ranges: [[{ subnet: '10.0.0.0/24', start: '10.0.0.9' }]] }, CniCode.UnsupportedField, /ipam\.ranges\[0\]\[0\]\.start: "10\.0\.0\.9"/],
    [{ subnet: '10.0.0.0/24', routes: [{ dst: '0.0.0.0/0', via: 'x' }] }, CniCode.UnsupportedField, /ipam\.routes\[0\]\.via/],
    [{ subnet: '10.0.0.0/24', ranges: [[{ subnet: '10.1.0.0/24' }]] }, CniCode.InvalidConfig, /either "ranges" or "subnet"/],
    [{ ranges: [] }, CniCode.InvalidConfig, /ipam\.ranges: expected a non-empty array/],
    [{ ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: '10.0.0.128/25' }]] }, CniCode.InvalidConfig, /overlaps/],
    [{ subnet: '10.0.0.0/24', routes: [{ dst: '0.0.0.0/0', gw: 'fd00::1' }] }, CniCode.InvalidConfig, /not of the same family/],
    [{ subnet: '10.0.0.0/24', dataDir: 'relative/dir' }, CniCode.InvalidConfig, /not an absolute path/],
    [{ rangeStart: '10.0.0.9' }, CniCode.InvalidConfig, /ipam\.subnet: missing/],
  ])('config %j is refused with code %i', async (ipam, code, reason) => {
    const add = await call({ command: 'ADD', ipam });
    expect(add.exitCode).toBe(1);
    expect(add.json).toMatchObject({ code, msg: expect.stringMatching(reason) });
  });
});

describe('DEL', () => {
  it('releases everything the pair holds, again and again, even under a config ADD would refuse', async () => {
    await call({ command: 'ADD', ipam: DUAL });
    await call({ command: 'ADD', id: 'c2', ipam: DUAL });
    expect(await call({ command: 'DEL', ipam: { ...DUAL, bogus: true } })).toEqual({ exitCode: 0, json: undefined });
    expect(Object.keys(await files())).toEqual(['10.244.1.3', 'fd00:10:244:1::3', 'last_reserved_ip.0', 'last_reserved_ip.1']);
    expect(await call({ command: 'DEL', ipam: DUAL })).toEqual({ exitCode: 0, json: undefined });
    expect(await call({ command: 'DEL', id: 'never-added', ipam: { dataDir: join(dataDir, 'absent') } })).toEqual({ exitCode: 0, json: undefined });
  });
});

describe('CHECK', () => {
  it('passes when the reservations are prevResult\'s ips, fails otherwise', async () => {
    const add = await call({ command: 'ADD', ipam: DUAL });
    const prevResult = add.json;
    expect(await call({ command: 'CHECK', ipam: DUAL, extra: { prevResult } })).toEqual({ exitCode: 0, json: undefined });

    const noPrev = await call({ command: 'CHECK', ipam: DUAL });
    expect(noPrev.json).toMatchObject({ code: CniCode.InvalidConfig, msg: expect.stringContaining('needs prevResult') });

    const unknown = await call({ command: 'CHECK', id: 'c9', ipam: DUAL, extra: { prevResult } });
    expect(unknown.json).toMatchObject({ code: CniCode.UnknownContainer, msg: 'no address is reserved for c9/eth0 in network podnet' });

    const other = { ips: [{ address: '10.244.1.77/24' }, { address: 'fd00:10:244:1::2/64' }] };
    const mismatch = await call({ command: 'CHECK', ipam: DUAL, extra: { prevResult: other } });
    expect(mismatch.json).toMatchObject({
      code: CniCode.InvalidConfig,
      msg: 'reservations of c1/eth0 do not match prevResult',
      details: 'reserved: [10.244.1.2, fd00:10:244:1::2]; in prevResult: [10.244.1.77, fd00:10:244:1::2]',
    });

    const moved = await call({ command: 'CHECK', ipam: { ranges: [[{ subnet: '10.244.2.0/24' }], [{ subnet: 'fd00:10:244:1::/64' }]] }, extra: { prevResult } });
    expect(moved.json).toMatchObject({ code: CniCode.InvalidConfig, msg: 'c1/eth0 holds 10.244.1.2, which is outside the configured ranges' });
  });
});

describe('GC', () => {
  it('frees exactly the reservations not in cni.dev/valid-attachments, and garbage files', async () => {
    for (const id of ['a', 'b', 'c']) await call({ command: 'ADD', id, ipam: DUAL });
    await writeFile(join(netDir, '10.244.1.50'), '');
    await writeFile(join(netDir, '10.244.1.51'), 'c');
    const gc = await call({ command: 'GC', ipam: DUAL, extra: { 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }, { containerID: 'c', ifname: 'eth0' }] } });
    expect(gc).toEqual({ exitCode: 0, json: undefined });
    expect(await files()).toEqual({
      '10.244.1.2': 'a\r\neth0',
      '10.244.1.4': 'c\r\neth0',
      '10.244.1.51': 'c',
      'fd00:10:244:1::2': 'a\r\neth0',
      'fd00:10:244:1::4': 'c\r\neth0',
      'last_reserved_ip.0': '10.244.1.4',
      'last_reserved_ip.1': 'fd00:10:244:1::4',
    });
    // The draft spelling libcni also sends is honoured; an empty list frees everything.
    expect((await call({ command: 'GC', ipam: DUAL, extra: { 'cni.dev/attachments': [] } })).exitCode).toBe(0);
    expect(Object.keys(await files())).toEqual(['last_reserved_ip.0', 'last_reserved_ip.1']);
  });

  it('refuses to guess without the valid-attachments list', async () => {
    await call({ command: 'ADD', ipam: DUAL });
    const gc = await call({ command: 'GC', ipam: DUAL });
    expect(gc.json).toMatchObject({ code: CniCode.InvalidConfig, msg: expect.stringContaining('cni.dev/valid-attachments') });
    const bad = await call({ command: 'GC', ipam: DUAL, extra: { 'cni.dev/valid-attachments': [{ containerID: 'a' }] } });
    expect(bad.json).toMatchObject({ code: CniCode.InvalidConfig });
    expect(Object.keys(await files())).toContain('10.244.1.2');
  });
});

describe('STATUS and VERSION', () => {
  it('STATUS: ready with a usable data dir and known ranges, 50 with the reason otherwise', async () => {
    expect(await call({ command: 'STATUS', ipam: DUAL })).toEqual({ exitCode: 0, json: undefined });
    await writeFile(join(dataDir, 'a-file'), '');
    const badDir = await call({ command: 'STATUS', ipam: { ...DUAL, dataDir: join(dataDir, 'a-file') } });
    expect(badDir.json).toMatchObject({ code: CniCode.NotAvailable, msg: expect.stringMatching(/data dir .*a-file\/podnet is not usable: .*ENOTDIR/) });
    const notReady = await call({
      command: 'STATUS',
      deps: { daemonLease: () => Promise.reject(new CniError(CniCode.TryAgainLater, 'podtun daemon has no lease yet')) },
    });
    expect(notReady.json).toMatchObject({ code: CniCode.NotAvailable, msg: 'no pod ranges known: podtun daemon has no lease yet' });
    const ready = await call({ command: 'STATUS', deps: { daemonLease: () => Promise.resolve({ subnets: ['10.244.7.0/24'] }) } });
    expect(ready.exitCode).toBe(0);
  });

  it('VERSION lists what we speak', async () => {
    const outcome = await runIpamCommand(parseCniRequest({ CNI_COMMAND: 'VERSION' }, ''), {});
    expect(JSON.parse(outcome.stdout)).toEqual({ cniVersion: '1.1.0', supportedVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });
});
