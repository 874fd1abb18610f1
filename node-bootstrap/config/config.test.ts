import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { nodeIdOf } from '../../tunnel/udp/node-id.js';
import { loadConfig, parseConfigText, resolveConfigSources } from './load-config.js';
import { ConfigError, localNodeOf, transportChoice, tunMtuOf } from './node-config.js';
import type { NodeConfig } from './node-config.js';
import { validateConfig } from './validate-config.js';
import { checkReloadable } from './config-reload.js';
import { testPublicKey } from '../../test/node-keys.js';

/** A transport's validated settings, as its type made them. */
function settingsOf(config: NodeConfig, kind: string): unknown {
  return transportChoice(config, kind)?.settings;
}

type Raw = Record<string, unknown>;

const SECRET = 'c2VjcmV0IG9mIHRoZSBjb25maWcgdGVzdHM=';

function good(): Raw {
  return {
    nodeName: 'node-a',
    clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/48'],
    tunName: 'podtun0',
    listen: '0.0.0.0:8285',
    underlayMtu: 1500,
    logLevel: 'info',
    clusterSecret: SECRET,
    nodes: [
      { name: 'node-a', subnets: ['10.244.1.0/24', 'fd00:10:244:1::/64'], endpoint: '192.168.77.1:8285', publicKey: testPublicKey(0) },
      { name: 'node-b', subnets: ['10.244.2.0/24'], endpoint: '192.168.77.2:8285', mtu: 1400, publicKey: testPublicKey(1) },
    ],
  };
}

function nodeAt(raw: Raw, i: number): Raw {
  return (raw['nodes'] as Raw[])[i] as Raw;
}

/** Applies `edit` to a fresh config (default: good()) and returns the validation error. */
function errorOf(edit: (raw: Raw) => void, base: () => Raw = good): ConfigError {
  const raw = base();
  edit(raw);
  try {
    validateConfig(raw, 'node.yaml');
  } catch (err: unknown) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('validateConfig', () => {
  it('returns a typed, canonical, deep-frozen config', () => {
    const raw = good();
    nodeAt(raw, 0)['subnets'] = ['fd00:10:244:1:0::/64', '10.244.1.0/24'];
    const config = validateConfig(raw, 'node.yaml');
    expect(config.nodeName).toBe('node-a');
    expect(config.nodes[0]?.subnets).toEqual(['10.244.1.0/24', 'fd00:10:244:1::/64']);
    expect(config.nodes[1]?.endpoints).toEqual({ udp: '192.168.77.2:8285' });
    expect(config.nodes[1]?.mtu).toBe(1400);
    expect(settingsOf(config, 'udp')).toEqual({ host: '0.0.0.0', port: 8285, family: 4, text: '0.0.0.0:8285' });
    expect(localNodeOf(config).name).toBe('node-a');
    expect(tunMtuOf(config)).toBe(1440);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.nodes)).toBe(true);
    expect(Object.isFrozen(config.nodes[0])).toBe(true);
    expect(Object.isFrozen(config.nodes[0]?.subnets)).toBe(true);
    expect(Object.isFrozen(config.nodes[0]?.endpoints)).toBe(true);
    expect(Object.isFrozen(settingsOf(config, 'udp'))).toBe(true);
    expect(() => {
      (config.nodes as unknown as unknown[]).push({});
    }).toThrow(TypeError);
  });

  it('fills defaults', () => {
    const config = validateConfig(
      { nodeName: 'a', clusterCidrs: ['10.244.0.0/16'], clusterSecret: SECRET, nodes: [{ name: 'a', subnets: ['10.244.1.0/24'] }] },
      'node.yaml',
    );
    expect(config).toMatchObject({ tunName: 'podtun0', underlayMtu: 1500, logLevel: 'info' });
    expect(settingsOf(config, 'udp')).toMatchObject({ text: '0.0.0.0:8285' });
    expect(settingsOf(config, 'ws')).toEqual({ listen: undefined, tls: undefined, caFile: undefined });
    expect(config.transports.map((t) => t.kind)).toEqual(['udp', 'ws']);
    expect(config.proxy).toBeUndefined();
    expect(config.api.listen).toBeUndefined();
    expect(config.nodes[0]?.transports).toEqual(['udp', 'ws']);
    expect(config.nodes[0]?.endpoints).toEqual({});
    expect(config.nodes[0]?.mtu).toBeUndefined();
  });

  it('sizes the TUN MTU for an IPv6 underlay', () => {
    const raw = good();
    nodeAt(raw, 1)['endpoint'] = '[fd00:77::2]:8285';
    const config = validateConfig(raw, 'node.yaml');
    expect(config.nodes[1]?.endpoints['udp']).toBe('[fd00:77::2]:8285');
    expect(config.underlayFamily).toBe(6);
    expect(tunMtuOf(config)).toBe(1420);
  });

  it('lets an override win over the file log level', () => {
    expect(validateConfig(good(), 'node.yaml', { logLevel: 'debug' }).logLevel).toBe('debug');
  });

  // [what, edit, field path, reason]
  const cases: [string, (raw: Raw) => void, string, RegExp][] = [
    ['unknown top-level key', (r) => { r['nodname'] = 'x'; }, 'nodname', /unknown setting/],
    ['unknown node key', (r) => { nodeAt(r, 1)['endpont'] = 'x'; }, 'nodes[1].endpont', /unknown setting/],
    ['missing nodeName', (r) => { delete r['nodeName']; }, 'nodeName', /required/],
    ['nodeName not a string', (r) => { r['nodeName'] = 7; }, 'nodeName', /expected a string, got number 7/],
    ['nodeName not in nodes', (r) => { r['nodeName'] = 'node-z'; }, 'nodeName', /"node-z" is not in nodes \(node-a, node-b\)/],
    ['bad node name', (r) => { nodeAt(r, 1)['name'] = 'node b'; }, 'nodes[1].name', /not a node name/],
    ['duplicate node name', (r) => { nodeAt(r, 1)['name'] = 'node-a'; }, 'nodes[1].name', /"node-a" is already used by nodes\[0\]\.name/],
    ['missing clusterCidrs', (r) => { delete r['clusterCidrs']; }, 'clusterCidrs', /required/],
    ['clusterCidrs not a list', (r) => { r['clusterCidrs'] = '10.244.0.0/16'; }, 'clusterCidrs', /expected a list of CIDRs, got string "10.244.0.0\/16"/],
    ['no IPv4 cluster CIDR', (r) => { r['clusterCidrs'] = ['fd00:10:244::/48']; }, 'clusterCidrs', /needs one IPv4 CIDR/],
    ['two IPv4 cluster CIDRs', (r) => { r['clusterCidrs'] = ['10.244.0.0/16', '10.245.0.0/16']; }, 'clusterCidrs[1]', /a second IPv4 cluster CIDR/],
    ['cluster CIDR host bits', (r) => { r['clusterCidrs'] = ['10.244.0.1/16']; }, 'clusterCidrs[0]', /host bits set/],
    ['subnet host bits', (r) => { nodeAt(r, 1)['subnets'] = ['10.244.1.5/24']; }, 'nodes[1].subnets[0]', /"10\.244\.1\.5\/24" has host bits set/],
    ['subnet not a CIDR', (r) => { nodeAt(r, 1)['subnets'] = ['10.244.2.0']; }, 'nodes[1].subnets[0]', /no prefix length/],
    ['subnet not a string', (r) => { nodeAt(r, 1)['subnets'] = [24]; }, 'nodes[1].subnets[0]', /expected a CIDR string, got number 24/],
    ['subnet outside cluster', (r) => { nodeAt(r, 1)['subnets'] = ['10.99.2.0/24']; }, 'nodes[1].subnets[0]', /not inside the IPv4 cluster CIDR 10\.244\.0\.0\/16/],
    ['IPv6 subnet, no IPv6 cluster', (r) => { r['clusterCidrs'] = ['10.244.0.0/16']; }, 'nodes[0].subnets[1]', /no IPv6 cluster CIDR/],
    ['subnets overlap', (r) => { nodeAt(r, 1)['subnets'] = ['10.244.0.0/23']; }, 'nodes[1].subnets[0]', /overlaps nodes\[0\]\.subnets\[0\] \(10\.244\.1\.0\/24\)/],
    ['two IPv4 subnets on one node', (r) => { nodeAt(r, 1)['subnets'] = ['10.244.2.0/24', '10.244.3.0/24']; }, 'nodes[1].subnets[1]', /a second IPv4 subnet/],
    ['no IPv4 subnet', (r) => { nodeAt(r, 1)['subnets'] = ['fd00:10:244:2::/64']; }, 'nodes[1].subnets', /needs one IPv4 subnet/],
    ['subnet too small', (r) => { nodeAt(r, 1)['subnets'] = ['10.244.2.0/31']; }, 'nodes[1].subnets[0]', /too small/],
    ['missing subnets', (r) => { delete nodeAt(r, 1)['subnets']; }, 'nodes[1].subnets', /required/],
    ['endpoint without port', (r) => { nodeAt(r, 1)['endpoint'] = '192.168.77.2'; }, 'nodes[1].endpoint', /no port/],
    ['endpoint port 0', (r) => { nodeAt(r, 1)['endpoint'] = '192.168.77.2:0'; }, 'nodes[1].endpoint', /port "0"/],
    ['endpoint port too big', (r) => { nodeAt(r, 1)['endpoint'] = '192.168.77.2:65536'; }, 'nodes[1].endpoint', /port "65536"/],
    ['endpoint v6 without brackets', (r) => { nodeAt(r, 1)['endpoint'] = 'fd00::2:8285'; }, 'nodes[1].endpoint', /needs brackets/],
    ['endpoint bad host name', (r) => { nodeAt(r, 1)['endpoint'] = 'node_b.example:8285'; }, 'nodes[1].endpoint', /host "node_b.example" is neither an IP address nor a host name/],
    ['endpoint name without port', (r) => { nodeAt(r, 1)['endpoint'] = 'node-b.example'; }, 'nodes[1].endpoint', /no port/],
    ['duplicate named endpoint', (r) => { nodeAt(r, 0)['endpoint'] = 'Node-B.example:8285'; nodeAt(r, 1)['endpoint'] = 'node-b.example:8285'; }, 'nodes[1].endpoint', /already used by nodes\[0\]\.endpoint/],
    ['resolveSeconds zero', (r) => { r['resolveSeconds'] = 0; }, 'resolveSeconds', /0 is out of range \(1-86400\)/],
    ['resolveSeconds a string', (r) => { r['resolveSeconds'] = '60s'; }, 'resolveSeconds', /expected an integer, got string "60s"/],
    ['endpoint parsed as a YAML list', (r) => { nodeAt(r, 1)['endpoint'] = ['fd00::2']; }, 'nodes[1].endpoint', /quote IPv6 endpoints/],
    ['duplicate endpoint', (r) => { nodeAt(r, 1)['endpoint'] = '192.168.77.1:8285'; }, 'nodes[1].endpoint', /already used by nodes\[0\]\.endpoint/],
    ['node mtu too small', (r) => { nodeAt(r, 1)['mtu'] = 500; }, 'nodes[1].mtu', /500 is out of range \(576-65535\)/],
    ['node mtu not an integer', (r) => { nodeAt(r, 1)['mtu'] = 1400.5; }, 'nodes[1].mtu', /expected an integer/],
    ['node mtu on IPv6 underlay', (r) => { nodeAt(r, 1)['endpoint'] = '[fd00:77::2]:8285'; nodeAt(r, 1)['mtu'] = 1000; }, 'nodes[1].mtu', /out of range \(1280-65535 on an IPv6 underlay\)/],
    ['underlayMtu too big', (r) => { r['underlayMtu'] = 70000; }, 'underlayMtu', /out of range/],
    ['underlayMtu a string', (r) => { r['underlayMtu'] = '1500'; }, 'underlayMtu', /expected an integer, got string "1500"/],
    ['underlayMtu too small for IPv6 pods', (r) => { r['underlayMtu'] = 1300; }, 'underlayMtu', /tunnel MTU of 1240, below the 1280 IPv6 needs/],
    ['listen without port', (r) => { r['listen'] = '0.0.0.0'; }, 'listen', /no port/],
    ['listen hostname', (r) => { r['listen'] = 'localhost:8285'; }, 'listen', /not an IP address/],
    ['bad logLevel', (r) => { r['logLevel'] = 'verbose'; }, 'logLevel', /"verbose" is not one of trace\|debug\|info\|warn\|error/],
    ['tunName too long', (r) => { r['tunName'] = 'podtun-0123456789'; }, 'tunName', /1-15 characters/],
    ['tunName bad character', (r) => { r['tunName'] = 'pod/tun'; }, 'tunName', /may only use/],
    ['tunName dot', (r) => { r['tunName'] = '..'; }, 'tunName', /may only use/],
    ['nodes empty', (r) => { r['nodes'] = []; }, 'nodes', /empty/],
    ['nodes not a list', (r) => { r['nodes'] = { a: 1 }; }, 'nodes', /expected a list of nodes, got a mapping/],
    ['node not a mapping', (r) => { (r['nodes'] as unknown[]).push('node-c'); }, 'nodes[2]', /expected a mapping/],
    // cluster secret
    ['no cluster secret', (r) => { delete r['clusterSecret']; }, 'clusterSecret',
      /required \(or clusterSecretFile\).*head -c 32 \/dev\/urandom \| base64 > \/etc\/podtun\/secret/],
    ['both secret forms', (r) => { r['clusterSecretFile'] = '/etc/podtun/secret'; }, 'clusterSecret', /not both/],
    ['short cluster secret', (r) => { r['clusterSecret'] = 'fifteen bytes!!'; }, 'clusterSecret', /15 bytes is too short \(at least 16 bytes\).*urandom/],
    ['cluster secret not a string', (r) => { r['clusterSecret'] = 12345678901234567890; }, 'clusterSecret', /expected a string/],
    ['missing secret file', (r) => { delete r['clusterSecret']; r['clusterSecretFile'] = '/nonexistent/podtun-secret'; }, 'clusterSecretFile', /cannot read \/nonexistent\/podtun-secret: ENOENT/],
    // ws, proxy
    ['ws not a mapping', (r) => { r['ws'] = '0.0.0.0:8443'; }, 'ws', /expected a mapping \(listen, tls, caFile\)/],
    ['unknown ws key', (r) => { r['ws'] = { listen: '0.0.0.0:8443', port: 1 }; }, 'ws.port', /unknown setting \(known: listen, tls, caFile\)/],
    ['ws.listen hostname', (r) => { r['ws'] = { listen: 'localhost:8443' }; }, 'ws.listen', /not an IP address/],
    ['ws.tls without key', (r) => { r['ws'] = { listen: '0.0.0.0:8443', tls: { certFile: 'c.pem' } }; }, 'ws.tls.keyFile', /required/],
    ['ws.tls without listen', (r) => { r['ws'] = { tls: { certFile: 'c.pem', keyFile: 'k.pem' } }; }, 'ws.tls', /only used by the listener/],
    ['proxy socks4', (r) => { r['proxy'] = 'socks4://10.0.0.1:1080'; }, 'proxy',
      /scheme "socks4:" not supported; expected "http:\/\/", "https:\/\/", "socks5:\/\/" or "socks5h:\/\/" followed by "\[user:pass@\]host:port"/],
    ['proxy ftp', (r) => { r['proxy'] = 'ftp://10.0.0.1:21'; }, 'proxy', /scheme "ftp:" not supported/],
    ['proxy not a URL', (r) => { r['proxy'] = '10.0.0.1:3128'; }, 'proxy', /not a URL; expected "http:\/\/", "https:\/\/", "socks5:\/\/"/],
    ['proxy with a path', (r) => { r['proxy'] = 'http://10.0.0.1:3128/x'; }, 'proxy', /no path/],
    ['socks5 proxy with a query', (r) => { r['proxy'] = 'socks5://10.0.0.1:1080?x=1'; }, 'proxy', /no path/],
    ['socks5 proxy without a host', (r) => { r['proxy'] = 'socks5://'; }, 'proxy', /a host and port/],
    ['proxy not a string', (r) => { r['proxy'] = 3128; }, 'proxy', /got number 3128/],
    // api
    ['api not a mapping', (r) => { r['api'] = '127.0.0.1:9402'; }, 'api', /expected a mapping \(listen\), got string/],
    ['api unknown key', (r) => { r['api'] = { port: 9402 }; }, 'api.port', /unknown setting \(known: listen\)/],
    ['api.listen no port', (r) => { r['api'] = { listen: '127.0.0.1' }; }, 'api.listen', /.+/],
    ['api.listen a name', (r) => { r['api'] = { listen: 'localhost:9402' }; }, 'api.listen', /.+/],
    // per node
    ['wsEndpoint http', (r) => { nodeAt(r, 1)['wsEndpoint'] = 'http://192.168.77.2:8443'; }, 'nodes[1].wsEndpoint', /scheme must be ws or wss/],
    ['wsEndpoint not a URL', (r) => { nodeAt(r, 1)['wsEndpoint'] = '192.168.77.2:8443'; }, 'nodes[1].wsEndpoint', /not a URL; expected "ws:\/\/host:port" or "wss:\/\/host:port"/],
    ['wsEndpoint credentials', (r) => { nodeAt(r, 1)['wsEndpoint'] = 'wss://u:p@b.example:8443'; }, 'nodes[1].wsEndpoint', /no credentials/],
    ['wsEndpoint query', (r) => { nodeAt(r, 1)['wsEndpoint'] = 'wss://b.example:8443/?x=1'; }, 'nodes[1].wsEndpoint', /no query/],
    ['bad transport', (r) => { nodeAt(r, 1)['transport'] = 'tcp'; }, 'nodes[1].transport', /"tcp" is not one of udp\|ws\|auto/],
    ['transport listed twice', (r) => { nodeAt(r, 1)['transport'] = ['udp', 'udp']; }, 'nodes[1].transport', /"udp" is listed twice/],
    ['transport an empty list', (r) => { nodeAt(r, 1)['transport'] = []; }, 'nodes[1].transport', /an empty list/],
    ['ws peer nobody can dial', (r) => { nodeAt(r, 1)['transport'] = 'ws'; }, 'nodes[1].transport',
      /"ws" but node-b has no wsEndpoint and this node has no ws.listen: neither side can dial the other/],
    ['own wsEndpoint without ws.listen', (r) => { nodeAt(r, 0)['wsEndpoint'] = 'ws://192.168.77.1:8443'; }, 'nodes[0].wsEndpoint',
      /this node \(node-a\) has no ws.listen/],
  ];

  it.each(cases)('%s -> error with field path and reason', (_what, edit, path, reason) => {
    const err = errorOf(edit);
    expect(err.code).toBe('ERR_PODTUN_CONFIG');
    const found = err.issues.find((i) => i.path === path);
    expect(found, `issues: ${err.message}`).toBeDefined();
    expect(found?.reason).toMatch(reason);
    expect(err.message).toContain(`node.yaml: ${path}: `);
  });

  it('takes the WebSocket settings, proxy and per-node transport', () => {
    const raw = good();
    raw['ws'] = { listen: '0.0.0.0:8443', tls: { certFile: 'tls/cert.pem', keyFile: '/etc/podtun/key.pem' }, caFile: 'ca.pem' };
    raw['proxy'] = 'http://user:pass@10.0.0.1:3128';
    raw['api'] = { listen: '127.0.0.1:9402' };
    nodeAt(raw, 0)['wsEndpoint'] = 'wss://node-a.example:8443';
    nodeAt(raw, 1)['wsEndpoint'] = 'ws://192.168.77.2:8443';
    nodeAt(raw, 1)['transport'] = 'ws';
    delete nodeAt(raw, 1)['endpoint'];
    const config = validateConfig(raw, '/etc/podtun/node.yaml');
    expect(settingsOf(config, 'ws')).toEqual({
      listen: { host: '0.0.0.0', port: 8443, family: 4, text: '0.0.0.0:8443' },
      tls: { certFile: '/etc/podtun/tls/cert.pem', keyFile: '/etc/podtun/key.pem' },
      caFile: '/etc/podtun/ca.pem',
    });
    expect(config.proxy).toBe('http://user:pass@10.0.0.1:3128');
    expect(config.api.listen?.text).toBe('127.0.0.1:9402');
    expect(config.nodes.map((n) => [n.endpoints, n.transports])).toEqual([
      [{ udp: '192.168.77.1:8285', ws: 'wss://node-a.example:8443' }, ['udp', 'ws']],
      [{ ws: 'ws://192.168.77.2:8443' }, ['ws']],
    ]);
    expect(Object.isFrozen(settingsOf(config, 'ws'))).toBe(true);
  });

  it.each([
    'http://10.0.0.1:3128',
    'https://user:pass@proxy.example:443',
    'socks5://10.0.0.1:1080',
    'socks5h://user:pass@proxy.example:1080',
  ])('takes proxy %s', (proxy) => {
    const raw = good();
    raw['proxy'] = `  ${proxy} `;
    expect(validateConfig(raw, 'node.yaml').proxy).toBe(proxy);
  });

  it('takes endpoints that name a host, and how often they are looked up again', () => {
    const raw = good();
    nodeAt(raw, 1)['endpoint'] = 'Node-B.Example.NET.:8285';
    expect(validateConfig(raw, 'node.yaml').resolveSeconds).toBe(60);
    raw['resolveSeconds'] = 300;
    const config = validateConfig(raw, 'node.yaml');
    expect(config.nodes[1]?.endpoints).toEqual({ udp: 'node-b.example.net:8285' });
    expect(config.resolveSeconds).toBe(300);
    // A name says nothing of the underlay's family: the MTU stays sized for IPv4.
    expect(config.underlayFamily).toBe(4);
    // The transports are made with the interval once: a new one needs a restart; a peer's new name does not.
    expect(() => checkReloadable(validateConfig(good(), 'node.yaml'), config))
      .toThrow(/resolveSeconds: changed from 60 to 300; restart podtun to apply/);
    delete raw['resolveSeconds'];
    expect(() => checkReloadable(validateConfig(good(), 'node.yaml'), validateConfig(raw, 'node.yaml'))).not.toThrow();
  });

  it.each<[string, unknown, string[]]>([
    ['auto', 'auto', ['udp', 'ws']],
    ['one kind', 'udp', ['udp']],
    ['a list, WebSocket first', ['ws', 'udp'], ['ws', 'udp']],
  ])('reads transport: %s as a preference', (_what, value, want) => {
    const raw = good();
    nodeAt(raw, 1)['transport'] = value;
    expect(validateConfig(raw, 'node.yaml').nodes[1]?.transports).toEqual(want);
  });

  it.each([
    ['a peer with neither endpoint (it dials out)', (r: Raw) => { delete nodeAt(r, 1)['endpoint']; }],
    ['transport udp without endpoint (reached by its own probes)', (r: Raw) => { delete nodeAt(r, 1)['endpoint']; nodeAt(r, 1)['transport'] = 'udp'; }],
    ['transport ws with the peer\'s wsEndpoint', (r: Raw) => { nodeAt(r, 1)['transport'] = 'ws'; nodeAt(r, 1)['wsEndpoint'] = 'ws://192.168.77.2:8443'; }],
    ['transport ws, the peer dials us', (r: Raw) => { nodeAt(r, 1)['transport'] = 'ws'; r['ws'] = { listen: '0.0.0.0:8443' }; }],
    ['this node transport ws without wsEndpoint (it dials out)', (r: Raw) => { nodeAt(r, 0)['transport'] = 'ws'; }],
  ])('accepts %s', (_what, edit) => {
    const raw = good();
    edit(raw);
    expect(() => validateConfig(raw, 'node.yaml')).not.toThrow();
  });

  it('keeps the secret as bytes, never printed', () => {
    const config = validateConfig(good(), 'node.yaml');
    expect(config.clusterSecret.bytes()).toEqual(Buffer.from(SECRET, 'utf8'));
    expect(config.clusterSecret.length).toBe(SECRET.length);
    expect(JSON.stringify(config)).not.toContain(SECRET);
    expect(JSON.stringify(config)).toContain('"clusterSecret":"[redacted]"');
    expect(inspect(config, { depth: 5 })).not.toContain(SECRET);
    expect(`${String(config.clusterSecret)}`).toBe('[redacted]');
    // bytes() hands out a copy.
    config.clusterSecret.bytes().fill(0);
    expect(config.clusterSecret.bytes()).toEqual(Buffer.from(SECRET, 'utf8'));
  });

  it('rejects two names whose node ids collide', () => {
    const names = findCollidingNames();
    const err = errorOf((r) => {
      r['nodes'] = [
        { name: 'node-a', subnets: ['10.244.1.0/24'] },
        { name: names[0], subnets: ['10.244.2.0/24'], publicKey: testPublicKey(1) },
        { name: names[1], subnets: ['10.244.3.0/24'], publicKey: testPublicKey(2) },
      ];
    });
    expect(err.issues).toEqual([
      { path: 'nodes[2].name', reason: expect.stringMatching(/node id 0x[0-9a-f]{8}, the same as .*rename one/) as unknown },
    ]);
  });

  it('reports every problem at once', () => {
    const err = errorOf((r) => {
      r['tunName'] = 'x'.repeat(16);
      nodeAt(r, 1)['mtu'] = 1;
    });
    expect(err.issues.map((i) => i.path)).toEqual(['tunName', 'nodes[1].mtu']);
    expect(err.message.split('\n')).toHaveLength(2);
  });

  it('refuses a document that is not a mapping', () => {
    expect(() => validateConfig(['a'], 'node.yaml')).toThrow(/node\.yaml: expected a mapping of settings, got a list/);
  });
});

/** Two node names with the same FNV-1a 32-bit id (found by brute force over n0, n1, ... in base 36). */
function findCollidingNames(): [string, string] {
  const names: [string, string] = ['n3pvu', 'ne3ea'];
  expect(nodeIdOf(names[0])).toBe(nodeIdOf(names[1]));
  return names;
}

function etcdRaw(): Raw {
  const raw = good();
  delete raw['nodes'];
  raw['subnetManager'] = { type: 'etcd', endpoints: ['http://192.168.77.250:2379'] };
  return raw;
}

describe('validateConfig: encryption and node keys', () => {
  it('seals by default, with the key in /var/lib/podtun/node.key; a relative nodeKeyFile is read from the config dir', () => {
    const config = validateConfig(good(), '/etc/podtun/node.yaml');
    expect(config.encryption).toBe('sealed');
    expect(config.nodeKeyFile).toBe('/var/lib/podtun/node.key');
    expect(config.nodes[1]?.publicKey).toBe(testPublicKey(1));
    const raw = good();
    raw['nodeKeyFile'] = 'keys/node.key';
    expect(validateConfig(raw, '/etc/podtun/node.yaml').nodeKeyFile).toBe('/etc/podtun/keys/node.key');
  });

  it('needs every peer\'s publicKey when sealed (this node\'s own is optional), none with encryption: none', () => {
    const raw = good();
    delete nodeAt(raw, 0)['publicKey'];
    expect(validateConfig(raw, 'node.yaml').nodes[0]?.publicKey).toBeUndefined();
    delete nodeAt(raw, 1)['publicKey'];
    expect(errorOf(() => undefined, () => raw).issues).toEqual([
      { path: 'nodes[1].publicKey', reason: expect.stringMatching(/required with encryption: sealed.*podtun key public/) as unknown },
    ]);
    raw['encryption'] = 'none';
    expect(validateConfig(raw, 'node.yaml').encryption).toBe('none');
  });

  it.each<[string, (raw: Raw) => void, string, RegExp]>([
    ['unknown mode', (r) => { r['encryption'] = 'aes'; }, 'encryption', /"aes" is not one of sealed\|none/],
    ['key not base64', (r) => { nodeAt(r, 1)['publicKey'] = 'not a key'; }, 'nodes[1].publicKey', /expected 32 bytes in base64/],
    ['key too short', (r) => { nodeAt(r, 1)['publicKey'] = 'AAAA'; }, 'nodes[1].publicKey', /44 characters/],
    ['all-zero key', (r) => { nodeAt(r, 1)['publicKey'] = Buffer.alloc(32).toString('base64'); }, 'nodes[1].publicKey', /all-zero/],
    ['two nodes, one key', (r) => { nodeAt(r, 1)['publicKey'] = testPublicKey(0); }, 'nodes[1].publicKey', /the same key as nodes\[0\]\.publicKey/],
    ['empty key file path', (r) => { r['nodeKeyFile'] = ''; }, 'nodeKeyFile', /expected a file path/],
  ])('%s -> error with field path and reason', (_name, edit, path, reason) => {
    const err = errorOf(edit);
    expect(err.issues.map((i) => i.path)).toEqual([path]);
    expect(err.issues[0]?.reason).toMatch(reason);
  });

  it('a reload cannot change the encryption or the key file (both need a restart)', () => {
    const running = validateConfig(good(), 'node.yaml');
    const none = good();
    none['encryption'] = 'none';
    expect(() => checkReloadable(running, validateConfig(none, 'node.yaml'))).toThrow(/encryption/);
    const moved = good();
    moved['nodeKeyFile'] = '/tmp/other.key';
    expect(() => checkReloadable(running, validateConfig(moved, 'node.yaml'))).toThrow(/nodeKeyFile/);
    const rotated = good();
    nodeAt(rotated, 1)['publicKey'] = testPublicKey(2);
    expect(() => checkReloadable(running, validateConfig(rotated, 'node.yaml'))).not.toThrow();
  });
});

describe('validateConfig: etcd leases and CNI install', () => {
  it('defaults to the static manager and no CNI install', () => {
    const config = validateConfig(good(), 'node.yaml');
    expect(config.subnetManager).toMatchObject({ type: 'static', readsNodeList: true });
    expect(config.advertise).toBeUndefined();
    expect(config.cni).toBeUndefined();
  });

  it('takes an etcd manager with defaults, and the advertised endpoints', () => {
    const raw = etcdRaw();
    raw['advertise'] = { endpoint: '192.168.77.1:8285', transport: 'udp' };
    raw['cni'] = {};
    const config = validateConfig(raw, '/etc/podtun/node.yaml');
    expect(config.subnetManager).toMatchObject({ type: 'etcd', readsNodeList: false });
    expect(config.subnetManager.settings).toEqual({
      endpoints: ['http://192.168.77.250:2379'], prefix: '/podtun/', ttlSeconds: 60,
      subnetLengthV4: 24, subnetLengthV6: 64, tls: undefined,
    });
    expect(config.nodes).toEqual([]);
    expect(config.advertise).toEqual({ endpoints: { udp: '192.168.77.1:8285' }, transports: ['udp'], mtu: undefined });
    expect(config.cni).toEqual({
      binDir: '/opt/cni/bin', confDir: '/etc/cni/net.d', confFileName: '10-podtun.conflist', networkName: 'podtun',
      dataDir: '/var/lib/cni/networks', bridge: 'cni0',
    });
  });

  it('advertises a specific listen address when no endpoint is given, none for a wildcard', () => {
    const raw = etcdRaw();
    raw['listen'] = '192.168.77.3:8285';
    expect(validateConfig(raw, 'n.yaml').advertise?.endpoints).toEqual({ udp: '192.168.77.3:8285' });
    expect(validateConfig(etcdRaw(), 'n.yaml').advertise?.endpoints).toEqual({});
  });

  it('resolves TLS and CNI paths against the config file', () => {
    const raw = etcdRaw();
    (raw['subnetManager'] as Raw)['tls'] = { caFile: 'ca.pem', certFile: 'c.pem', keyFile: 'k.pem' };
    raw['cni'] = { binDir: 'bin', networkName: 'pods' };
    const config = validateConfig(raw, '/etc/podtun/node.yaml');
    expect((config.subnetManager.settings as { tls?: unknown }).tls).toEqual({
      caFile: '/etc/podtun/ca.pem', certFile: '/etc/podtun/c.pem', keyFile: '/etc/podtun/k.pem',
    });
    expect(config.cni).toMatchObject({ binDir: '/etc/podtun/bin', networkName: 'pods', confDir: '/etc/cni/net.d' });
  });

  const cases: [string, (raw: Raw) => void, string, RegExp][] = [
    ['unknown type', (r) => { r['subnetManager'] = { type: 'consul' }; }, 'subnetManager.type', /"consul" is not one of static\|etcd/],
    ['no endpoints', (r) => { r['subnetManager'] = { type: 'etcd' }; }, 'subnetManager.endpoints', /required: a list of etcd client URLs/],
    ['bad endpoint', (r) => { r['subnetManager'] = { type: 'etcd', endpoints: ['etcd:2379'] }; }, 'subnetManager.endpoints[0]', /scheme must be http or https/],
    ['ttl too short', (r) => { (r['subnetManager'] as Raw)['ttlSeconds'] = 1; }, 'subnetManager.ttlSeconds', /1 is out of range \(3-604800\)/],
    ['subnet wider than the cluster', (r) => { (r['subnetManager'] as Raw)['subnetLength'] = 16; }, 'subnetManager.subnetLength', /does not split the cluster CIDR 10\.244\.0\.0\/16/],
    ['subnet too small', (r) => { (r['subnetManager'] as Raw)['subnetLength'] = 31; }, 'subnetManager.subnetLength', /too small for a node subnet \(at most \/30\)/],
    ['bad prefix', (r) => { (r['subnetManager'] as Raw)['prefix'] = 'podtun'; }, 'subnetManager.prefix', /not a key prefix like "\/podtun\/"/],
    ['cert without key', (r) => { (r['subnetManager'] as Raw)['tls'] = { certFile: 'c.pem' }; }, 'subnetManager.tls', /certFile and keyFile go together/],
    ['nodes with etcd', (r) => { r['nodes'] = good()['nodes']; }, 'nodes', /not used with subnetManager.type etcd/],
    ['advertise unknown key', (r) => { r['advertise'] = { endpont: '1.2.3.4:1' }; }, 'advertise.endpont', /unknown setting/],
    ['wsEndpoint without ws.listen', (r) => { r['advertise'] = { wsEndpoint: 'ws://192.168.77.1:8443' }; }, 'advertise.wsEndpoint', /no ws.listen/],
    ['cni bad conf name', (r) => { r['cni'] = { confFileName: 'podtun.json' }; }, 'cni.confFileName', /ending in .conflist/],
    ['cni bad bridge', (r) => { r['cni'] = { bridge: 'a-very-long-bridge-name' }; }, 'cni.bridge', /Linux interface name/],
    ['cni not a mapping', (r) => { r['cni'] = true; }, 'cni', /expected a mapping/],
  ];
  it.each(cases)('%s -> error with field path and reason', (_what, edit, path, reason) => {
    const err = errorOf(edit, etcdRaw);
    const found = err.issues.find((i) => i.path === path);
    expect(found?.reason, err.message).toMatch(reason);
  });

  it('refuses advertise in static mode, and a static config without nodes names etcd as the alternative', () => {
    expect(errorOf((r) => { r['advertise'] = {}; }).issues[0]).toMatchObject({ path: 'advertise', reason: expect.stringMatching(/only used with subnetManager.type etcd/) });
    expect(errorOf((r) => { delete r['nodes']; }).issues[0]?.reason).toMatch(/or subnetManager: \{type: etcd/);
  });
});

describe('parseConfigText / loadConfig', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podtun-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the contract example (YAML)', async () => {
    const path = join(dir, 'node.yaml');
    await writeFile(path, `
nodeName: node-a
clusterSecret: "${SECRET}"
clusterCidrs: [10.244.0.0/16, fd00:10:244::/48]
tunName: podtun0
listen: 0.0.0.0:8285
underlayMtu: 1500
logLevel: info
nodes:
  - name: node-a
    subnets: [10.244.1.0/24, fd00:10:244:1::/64]
    endpoint: 192.168.77.1:8285
  - name: node-b
    subnets: [10.244.2.0/24]
    endpoint: "[fd00:77::2]:8285"
    mtu: 1400
    publicKey: ${testPublicKey(1)}
`);
    const config = await loadConfig(path);
    expect(config.source).toBe(path);
    expect(config.nodes.map((n) => n.endpoints['udp'])).toEqual(['192.168.77.1:8285', '[fd00:77::2]:8285']);
  });

  it('reads clusterSecretFile relative to the config file, trailing newline stripped', async () => {
    await writeFile(join(dir, 'secret'), `${SECRET}\n`);
    const raw = good();
    delete raw['clusterSecret'];
    raw['clusterSecretFile'] = 'secret';
    const path = join(dir, 'secret.json');
    await writeFile(path, JSON.stringify(raw));
    const config = await loadConfig(path);
    expect(config.clusterSecret.bytes().toString('utf8')).toBe(SECRET);
    expect(config.clusterSecret.equals(validateConfig(good(), 'x.yaml').clusterSecret)).toBe(true);

    await writeFile(join(dir, 'short'), 'short secret\n\n');
    raw['clusterSecretFile'] = join(dir, 'short');
    await writeFile(path, JSON.stringify(raw));
    await expect(loadConfig(path)).rejects.toThrow(/clusterSecretFile: .*short holds 12 bytes, too short \(at least 16 bytes\)/);
  });

  it('reads JSON', async () => {
    const path = join(dir, 'node.json');
    await writeFile(path, JSON.stringify(good()));
    expect((await loadConfig(path)).nodes).toHaveLength(2);
  });

  it('names the file when it cannot be read', async () => {
    await expect(loadConfig(join(dir, 'missing.yaml'))).rejects.toThrow(/missing\.yaml: cannot read: ENOENT/);
  });

  it.each([
    ['duplicate keys', 'nodeName: a\nnodeName: b\n', /not valid YAML: Map keys must be unique/],
    ['unquoted IPv6 endpoint', 'nodes:\n  - endpoint: [fd00::1]:8285\n', /quote IPv6 endpoints/],
    ['broken flow list', 'clusterCidrs: [10.244.0.0/16\n', /not valid YAML/],
  ])('reports bad YAML (%s) with the file name', (_what, text, reason) => {
    expect(() => parseConfigText(text, 'node.yaml')).toThrow(reason);
    expect(() => parseConfigText(text, 'node.yaml')).toThrow(/^node\.yaml: /);
  });

  it('reports bad JSON with the file name', () => {
    expect(() => parseConfigText('{"nodeName": ', 'node.json')).toThrow(/^node\.json: not valid JSON/);
  });
});

describe('resolveConfigSources', () => {
  it.each([
    [{ config: 'a.yaml' }, { PODTUN_CONFIG: 'b.yaml' }, 'a.yaml', undefined],
    [{}, { PODTUN_CONFIG: 'b.yaml', PODTUN_LOG_LEVEL: 'warn' }, 'b.yaml', 'warn'],
    [{ config: 'a.yaml', logLevel: 'debug' }, { PODTUN_LOG_LEVEL: 'warn' }, 'a.yaml', 'debug'],
  ])('flags win over the environment (%o, %o)', (flags, env, path, level) => {
    const sources = resolveConfigSources(flags, env);
    expect(sources.path).toBe(path);
    expect(sources.overrides.logLevel).toBe(level);
  });

  it('requires a config path', () => {
    expect(() => resolveConfigSources({}, {})).toThrow(/--config: required \(or set PODTUN_CONFIG\)/);
  });

  it('takes the node name from NODE_NAME when the file has none; the file\'s own wins', () => {
    const { overrides } = resolveConfigSources({ config: 'a.yaml' }, { NODE_NAME: 'node-b' });
    expect(overrides.nodeName).toBe('node-b');
    const raw = good();
    delete raw['nodeName'];
    expect(validateConfig(raw, 'node.yaml', overrides).nodeName).toBe('node-b');
    expect(validateConfig(good(), 'node.yaml', overrides).nodeName).toBe('node-a');
    expect(() => validateConfig(raw, 'node.yaml')).toThrow(/nodeName: required \(or set NODE_NAME/);
    expect(() => validateConfig(raw, 'node.yaml', { nodeName: 'bad name!' })).toThrow(/NODE_NAME: "bad name!" is not a node name/);
  });

  it.each([
    [{ config: 'a', logLevel: 'loud' }, {}, /^--log-level: "loud" is not one of/],
    [{ config: 'a' }, { PODTUN_LOG_LEVEL: 'loud' }, /^PODTUN_LOG_LEVEL: "loud" is not one of/],
  ])('names where a bad log level came from', (flags, env, reason) => {
    expect(() => resolveConfigSources(flags, env)).toThrow(reason);
  });
});
