import { describe, expect, it } from 'vitest';
import { CniCode } from './cni-error.js';
import { buildConflist } from './podtun-conflist.js';
import { parsePodtunConfig } from './podtun-cni-plugin.js';

describe('buildConflist', () => {
  it('the defaults: one podtun plugin, 1.0.0 for old runtimes, 1.0.0 and 1.1.0 for new ones', () => {
    expect(buildConflist()).toEqual({
      cniVersion: '1.0.0',
      cniVersions: ['1.0.0', '1.1.0'],
      name: 'podtun',
      plugins: [{ type: 'podtun', daemonSocket: '/run/podtun/podtun.sock', bridge: 'cni0', dataDir: '/var/lib/cni/networks' }],
    });
  });

  it('carries the options, and the plugin accepts what it writes', () => {
    const options = { networkName: 'pods', daemonSocket: '/run/pt/api.sock', bridge: 'ptbr0', dataDir: '/var/lib/podtun/ipam' };
    const conflist = buildConflist(options);
    const plugins = conflist['plugins'] as Record<string, unknown>[];
    expect(plugins).toHaveLength(1);
    // What a runtime hands the plugin: the entry plus the list's name and version.
    expect(parsePodtunConfig({ ...plugins[0], name: conflist['name'], cniVersion: conflist['cniVersion'] })).toEqual({
      name: 'pods',
      daemonSocket: '/run/pt/api.sock',
      bridge: 'ptbr0',
      dataDir: '/var/lib/podtun/ipam',
      delegate: 'bridge',
    });
    // A JSON round trip changes nothing (what install writes is what it built).
    expect(JSON.parse(JSON.stringify(conflist))).toEqual(conflist);
  });

  it.each([
    [{ networkName: 'my net' }, '"name"'],
    [{ bridge: 'a-bridge-name-too-long' }, '"bridge"'],
    [{ daemonSocket: 'podtun.sock' }, '"daemonSocket"'],
    [{ dataDir: 'var/lib' }, '"dataDir"'],
  ])('%j: CNI error 7 naming the field', (options, field) => {
    expect(() => buildConflist(options)).toThrow(expect.objectContaining({ code: CniCode.InvalidConfig, message: expect.stringContaining(field) }));
  });
});
