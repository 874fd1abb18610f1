/**
 * startNode wired with the real Router and StaticSubnetManager, over fakes for the OS edges: a
 * device and a transport that record what they are told, and a host whose `ip` and sysctls live
 * in memory. The real kernel side is in host-network/host-network.test.ts and the netns harness.
 */
import { testPublicKey } from '../../test/node-keys.js';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { loadOrCreateNodeKey } from '../../tunnel/seal/node-key.js';
import { publicKeyText } from '../../core/public-key.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PacketBatch } from '../../core/packet-batch.js';
import type { PacketDevice } from '../../core/packet-device.js';
import type { Logger } from '../../core/logger.js';
import { Router } from '../../router/router.js';
import type { InboundSink, PeerSpec, PeerStatus, Transport } from '../../core/transport.js';
import type { TransportChoice, TransportContext } from '../../tunnel/transport-type.js';
import { loadConfig } from '../config/load-config.js';
import type { HostOps } from '../host-network/host-ops.js';
import { fetchStatusReport } from '../../api/api-client.js';
import { runNode, startNode } from './run-node.js';
import type { NodeDeps, RunningNode } from './run-node.js';

interface LogLine {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

function memoryLogger(lines: LogLine[], bindings: Record<string, unknown> = {}): Logger {
  const at = (level: string) => (objOrMsg: object | string, msg?: string): void => {
    if (typeof objOrMsg === 'string') lines.push({ level, obj: { ...bindings }, msg: objOrMsg });
    else lines.push({ level, obj: { ...bindings, ...(objOrMsg as Record<string, unknown>) }, msg });
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => memoryLogger(lines, { ...bindings, ...more }),
    isLevelEnabled: () => true,
  };
}

class FakeDevice implements PacketDevice {
  started = false;
  closed = 0;
  constructor(readonly name: string) {}
  start(_onBatch: (batch: PacketBatch) => void): void {
    this.started = true;
  }
  write(_batch: PacketBatch, _idx: Int32Array, count: number): number {
    return count;
  }
  close(): void {
    this.closed++;
  }
}

class FakeTransport implements Transport {
  readonly peers = new Map<number, PeerSpec>();
  started = false;
  closed = 0;
  start(_sink: InboundSink): Promise<void> {
    this.started = true;
    return Promise.resolve();
  }
  setPeer(slot: number, peer: PeerSpec): void {
    this.peers.set(slot, peer);
  }
  removePeer(slot: number): void {
    this.peers.delete(slot);
  }
  send(): number {
    return 0;
  }
  peerStatus(): PeerStatus[] {
    return [...this.peers].map(([slot, p]) => ({
      slot, node: p.node, transport: this.kind, endpoint: p.endpoints[this.kind], state: 'up', rttMs: 0.1, lastSeenMs: undefined,
    }));
  }
  stats(): Record<string, number> {
    return { sent: 0 };
  }
  drops(): Record<string, number> {
    return {};
  }
  close(): Promise<void> {
    this.closed++;
    return Promise.resolve();
  }
  endpoints(): string[] {
    return [...this.peers.values()].map((p) => `${p.node}@${p.endpoints[this.kind] ?? '-'}`).sort();
  }

  constructor(readonly kind: string) {}
}

/** A host in memory: one link, its addresses, main-table routes, sysctls. */
class FakeHost implements HostOps {
  readonly commands: string[] = [];
  link = { name: 'podtun0', mtu: 1500, up: false, addresses: [] as string[] };
  routes = new Map<string, string>();
  sysctls = new Map<string, string>([
    ['net.ipv4.ip_forward', '0'],
    ['net.ipv6.conf.all.forwarding', '0'],
    ['net.ipv4.conf.all.rp_filter', '0'],
    ['net.ipv4.conf.podtun0.accept_local', '0'],
    ['net.ipv4.conf.podtun0.rp_filter', '1'],
    ['net.ipv6.conf.podtun0.disable_ipv6', '0'],
  ]);
  linkGone = false;

  ip(args: readonly string[]): Promise<string> {
    const line = args.join(' ');
    this.commands.push(line);
    if (line.startsWith('-j addr show dev ')) {
      if (this.linkGone) return Promise.reject(new Error(`Device "${this.link.name}" does not exist.`));
      return Promise.resolve(JSON.stringify([{
        mtu: this.link.mtu,
        flags: this.link.up ? ['UP'] : [],
        addr_info: this.link.addresses.map((a) => ({ local: a.split('/')[0] })),
      }]));
    }
    const show = /^-j -[46] route show exact (\S+)$/.exec(line);
    if (show?.[1] !== undefined) {
      const dev = this.routes.get(show[1]);
      return Promise.resolve(JSON.stringify(dev === undefined ? [] : [{ dst: show[1], dev }]));
    }
    const mtu = /^link set dev \S+ mtu (\d+)$/.exec(line);
    if (mtu?.[1] !== undefined) this.link.mtu = Number(mtu[1]);
    else if (/^link set dev \S+ up$/.test(line)) this.link.up = true;
    else if (/^link set dev \S+ down$/.test(line)) this.link.up = false;
    else if (args.includes('addr') && args.includes('add')) this.link.addresses.push(args[3] ?? '');
    else if (args[0] === 'addr' && args[1] === 'del') this.link.addresses = this.link.addresses.filter((a) => a !== args[2]);
    else if (args[1] === 'route' && args[2] === 'replace') this.routes.set(args[3] ?? '', args[5] ?? '');
    else if (args[1] === 'route' && args[2] === 'del') this.routes.delete(args[3] ?? '');
    else return Promise.reject(new Error(`fake ip: unexpected ${line}`));
    return Promise.resolve('');
  }
  readSysctl(path: readonly string[]): Promise<string | undefined> {
    return Promise.resolve(this.sysctls.get(path.join('.')));
  }
  writeSysctl(path: readonly string[], value: string): Promise<void> {
    this.sysctls.set(path.join('.'), value);
    return Promise.resolve();
  }
}

const SECRET = 'a secret of the test cluster, 44 bytes long..';

const CONFIG = (extra: string[] = []): string => [
  'nodeName: node-a',
  `clusterSecret: "${SECRET}"`,
  'clusterCidrs: [10.244.0.0/16, fd00:10:244::/48]',
  // Relative to the config file: each test's own temp dir, made on first start.
  'nodeKeyFile: node.key',
  'nodes:',
  '  - name: node-a',
  '    subnets: [10.244.1.0/24, fd00:10:244:1::/64]',
  '    endpoint: 192.168.77.1:8285',
  '  - name: node-b',
  '    subnets: [10.244.2.0/24]',
  '    endpoint: 192.168.77.2:8285',
  `    publicKey: ${testPublicKey(1)}`,
  ...extra,
  '',
].join('\n');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('startNode', () => {
  let dir = '';
  let path = '';
  let lines: LogLine[];
  let host: FakeHost;
  let device: FakeDevice;
  let transport: FakeTransport;
  let wsTransport: FakeTransport;
  let made: { choice: TransportChoice; ctx: TransportContext }[];
  let routers: Router[];
  let deps: NodeDeps;
  let node: RunningNode | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podtun-run-'));
    path = join(dir, 'node.yaml');
    await writeFile(path, CONFIG());
    lines = [];
    host = new FakeHost();
    device = new FakeDevice('podtun0');
    transport = new FakeTransport('udp');
    wsTransport = new FakeTransport('ws');
    made = [];
    routers = [];
    deps = {
      openDevice: () => device,
      createTransport: (choice, ctx) => {
        made.push({ choice, ctx });
        return choice.kind === 'udp' ? transport : wsTransport;
      },
      createRouter: (options) => {
        const router = new Router(options);
        routers.push(router);
        return router;
      },
      hostOps: host,
    };
    node = undefined;
  });

  afterEach(async () => {
    await node?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('brings the node up: host network, router with every lease, one `node ready` line', async () => {
    node = await startNode({ config: await loadConfig(path), log: memoryLogger(lines) }, deps);
    expect(node.tunnelMtu).toBe(1440);
    expect(host.link).toMatchObject({ mtu: 1440, up: true, addresses: ['10.244.1.0/32', 'fd00:10:244:1::/128'] });
    expect([...host.routes]).toEqual([['10.244.0.0/16', 'podtun0'], ['fd00:10:244::/48', 'podtun0']]);
    expect(host.sysctls.get('net.ipv4.ip_forward')).toBe('1');
    expect(host.sysctls.get('net.ipv4.conf.podtun0.rp_filter')).toBe('0');
    expect(device.started && transport.started).toBe(true);
    expect(transport.endpoints()).toEqual(['node-b@192.168.77.2:8285']);
    expect(node.stats().localSubnets).toEqual(['10.244.1.0/24', 'fd00:10:244:1::/64']);

    const ready = lines.filter((l) => l.msg === 'node ready');
    expect(ready).toHaveLength(1);
    expect(ready[0]?.level).toBe('info');
    expect(ready[0]?.obj).toEqual({
      node: 'node-a',
      subnets: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
      tun: 'podtun0',
      mtu: 1440,
      listen: { udp: '0.0.0.0:8285', ws: 'dial-out only' },
    });
    // Components log through children that name themselves.
    expect(lines.find((l) => l.msg === 'peer added')?.obj).toMatchObject({ component: 'router', peer: 'node-b' });
  });

  it('closes the router and restores the host exactly; close is safe twice', async () => {
    node = await startNode({ config: await loadConfig(path), log: memoryLogger(lines) }, deps);
    await node.close();
    await node.close();
    expect(transport.closed).toBe(1);
    expect(wsTransport.closed).toBe(1);
    expect(device.closed).toBe(1);
    expect(host.link).toMatchObject({ mtu: 1500, up: false, addresses: [] });
    expect(host.routes.size).toBe(0);
    expect(host.sysctls.get('net.ipv4.ip_forward')).toBe('0');
    expect(host.sysctls.get('net.ipv4.conf.podtun0.rp_filter')).toBe('1');
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('applies a config edit as lease diffs, and refuses edits that need a restart', async () => {
    node = await startNode({ config: await loadConfig(path), log: memoryLogger(lines), watchConfig: false }, deps);
    await writeFile(path, CONFIG(['  - name: node-c', '    subnets: [10.244.3.0/24]', '    endpoint: 192.168.77.3:8285', `    publicKey: ${testPublicKey(2)}`]));
    expect(await node.reload()).toBe(true);
    expect(transport.endpoints()).toEqual(['node-b@192.168.77.2:8285', 'node-c@192.168.77.3:8285']);

    await writeFile(path, CONFIG().replace('nodeName: node-a', 'nodeName: node-a\ntunName: podtun9'));
    expect(await node.reload()).toBe(false);
    const refused = lines.find((l) => l.msg === 'config reload rejected; keeping the running config');
    expect(refused?.obj['reason']).toMatch(/tunName: changed from "podtun0" to "podtun9"; restart podtun to apply/);
    expect(transport.endpoints()).toEqual(['node-b@192.168.77.2:8285', 'node-c@192.168.77.3:8285']);

    await writeFile(path, CONFIG().replace('10.244.1.0/24', '10.244.9.0/24'));
    expect(await node.reload()).toBe(false);
    expect(lines.filter((l) => l.msg === 'config reload rejected; keeping the running config').at(-1)?.obj['reason'])
      .toMatch(/nodes\[0\]\.subnets: changed from/);
  });

  it('refuses a reload that changes the secret, the ws block or the proxy, without printing them', async () => {
    node = await startNode({ config: await loadConfig(path), log: memoryLogger(lines), watchConfig: false }, deps);
    await writeFile(path, CONFIG().replace(SECRET, 'another secret, also long enough').replace('nodes:', 'proxy: http://u:pw@10.0.0.1:3128\nws: { listen: 0.0.0.0:8443 }\nnodes:'));
    expect(await node.reload()).toBe(false);
    const reason = String(lines.find((l) => l.msg === 'config reload rejected; keeping the running config')?.obj['reason']);
    expect(reason).toMatch(/ws: changed from .*restart podtun to apply/);
    expect(reason).toMatch(/clusterSecret: changed; restart podtun to apply/);
    expect(reason).toMatch(/proxy: changed; restart podtun to apply/);
    expect(reason).not.toMatch(/another secret|u:pw/);
    // A peer's transport and WebSocket endpoint are live edits.
    await writeFile(path, CONFIG().replace('    endpoint: 192.168.77.2:8285', '    endpoint: 192.168.77.2:8285\n    transport: udp\n    wsEndpoint: ws://192.168.77.2:8443'));
    expect(await node.reload()).toBe(true);
    expect(wsTransport.peers.get(0)).toMatchObject({ node: 'node-b', transports: ['udp'], endpoints: { ws: 'ws://192.168.77.2:8443' } });
  });

  it('passes a new log level on to the root logger', async () => {
    const levels: string[] = [];
    node = await startNode({ config: await loadConfig(path), log: memoryLogger(lines), watchConfig: false, onLogLevel: (l) => levels.push(l) }, deps);
    await writeFile(path, `logLevel: debug\n${CONFIG()}`);
    await node.reload();
    await node.reload();
    expect(levels).toEqual(['debug']);
  });

  it('watches the config file', async () => {
    node = await startNode({ config: await loadConfig(path), log: memoryLogger(lines) }, deps);
    await writeFile(path, CONFIG().replace('192.168.77.2:8285', '192.168.77.22:8285'));
    for (let i = 0; i < 100 && !transport.endpoints().includes('node-b@192.168.77.22:8285'); i++) await sleep(20);
    expect(transport.endpoints()).toEqual(['node-b@192.168.77.22:8285']);
  });

  it('undoes what it did when a later step fails', async () => {
    deps.createRouter = () => {
      throw new Error('router refused');
    };
    await expect(startNode({ config: await loadConfig(path), log: memoryLogger(lines) }, deps)).rejects.toThrow('router refused');
    expect(host.link).toMatchObject({ mtu: 1500, up: false, addresses: [] });
    expect(host.routes.size).toBe(0);
    expect(host.sysctls.get('net.ipv4.ip_forward')).toBe('0');
    expect(device.closed).toBe(1);
    expect(transport.closed).toBe(1);
    expect(wsTransport.closed).toBe(1);
  });

  it('closes the UDP transport when the WebSocket one cannot be created', async () => {
    deps.createTransport = (choice) => {
      if (choice.kind === 'ws') throw new Error('bad tls');
      return transport;
    };
    await expect(startNode({ config: await loadConfig(path), log: memoryLogger(lines) }, deps)).rejects.toThrow('bad tls');
    expect(transport.closed).toBe(1);
    expect(device.closed).toBe(1);
  });

  it('refuses to start when this node\'s listed public key is not its key file\'s, naming both', async () => {
    await writeFile(path, CONFIG().replace('    endpoint: 192.168.77.1:8285', `    endpoint: 192.168.77.1:8285\n    publicKey: ${testPublicKey(3)}`));
    const key = publicKeyText((await loadOrCreateNodeKey(join(dir, 'node.key'))).publicKey);
    await expect(startNode({ config: await loadConfig(path), log: memoryLogger(lines), watchConfig: false }, deps))
      .rejects.toThrow(new RegExp(`nodes\\[0\\]\\.publicKey: ${testPublicKey(3).replace(/[+/=]/g, '\\$&')} is not the key in .*node\\.key \\(${key.replace(/[+/=]/g, '\\$&')}\\)`));
    expect(host.commands).toEqual([]);
  });

  it('builds both transports from the config and selects per peer', async () => {
    await writeFile(path, CONFIG().replace('nodes:', [
      'ws:',
      '  listen: 0.0.0.0:8443',
      '  caFile: ca.pem',
      'proxy: http://u:p@10.0.0.1:3128',
      'nodes:',
    ].join('\n')).replace('    endpoint: 192.168.77.2:8285', [
      '    endpoint: 192.168.77.2:8285',
      '    wsEndpoint: wss://node-b.example:8443',
      '    transport: ws',
    ].join('\n')));
    node = await startNode({ config: await loadConfig(path), log: memoryLogger(lines) }, deps);
    expect(made.map((m) => m.choice.kind)).toEqual(['udp', 'ws']);
    const [udp, ws] = made;
    expect(udp?.choice.settings).toMatchObject({ text: '0.0.0.0:8285' });
    expect(udp?.ctx.localNode).toBe('node-a');
    expect(Buffer.from(udp?.ctx.clusterSecret ?? [])).toEqual(Buffer.from(SECRET));
    expect(ws?.choice.settings).toMatchObject({ listen: { text: '0.0.0.0:8443' }, caFile: join(dir, 'ca.pem'), tls: undefined });
    expect(Buffer.from(ws?.ctx.clusterSecret ?? [])).toEqual(Buffer.from(SECRET));
    expect(ws?.ctx.proxyFor('wss://node-b.example:8443')).toBe('http://u:p@10.0.0.1:3128');
    // Both transports know the peer, with its endpoints and preference.
    expect(wsTransport.peers.get(0)).toMatchObject({
      node: 'node-b', endpoints: { udp: '192.168.77.2:8285', ws: 'wss://node-b.example:8443' }, transports: ['ws'],
    });
    expect(transport.peers.get(0)).toMatchObject({ node: 'node-b', transports: ['ws'], publicKey: testPublicKey(1) });
    // Sealed by default: the node key was made in nodeKeyFile on first start, and every transport has it.
    const key = await loadOrCreateNodeKey(join(dir, 'node.key'));
    expect(udp?.ctx.nodeKey?.publicKey).toEqual(key.publicKey);
    expect(ws?.ctx.nodeKey?.publicKey).toEqual(key.publicKey);
    expect((await stat(join(dir, 'node.key'))).mode & 0o777).toBe(0o600);
    expect(lines.find((l) => l.msg === 'node key loaded')?.obj).toMatchObject({ publicKey: publicKeyText(key.publicKey) });
    expect(lines.find((l) => l.msg === 'node ready')?.obj).toMatchObject({ listen: { udp: '0.0.0.0:8285', ws: '0.0.0.0:8443' }, mtu: 1440 });
    // Status: per peer the carrying transport; counters of both under prefixes.
    const stats = node.stats();
    expect(stats.peers).toMatchObject([{ node: 'node-b', transport: 'ws', state: 'up' }]);
    expect(stats.transport).toEqual({ 'udp.sent': 0, 'ws.sent': 0, switches: 0 });
    // Nothing logged carries the secret or the proxy password.
    expect(JSON.stringify(lines)).not.toContain(SECRET);
    expect(JSON.stringify(lines)).not.toContain('u:p@');
  });

  it('serves the router stats on the status socket', async () => {
    const socketPath = join(dir, 'status.sock');
    node = await startNode({ config: await loadConfig(path), log: memoryLogger(lines), statusSocket: socketPath }, deps);
    expect(await fetchStatusReport(socketPath)).toMatchObject({ node: 'node-a', peers: [{ node: 'node-b' }] });
    await node.close();
    const { existsSync } = await import('node:fs');
    expect(existsSync(socketPath)).toBe(false);
  });
});

describe('runNode (process wiring)', () => {
  let dir = '';
  let path = '';
  let out: string[];
  let host: FakeHost;
  let transport: FakeTransport;
  let device: FakeDevice;
  let closeHangs: boolean;

  const stream = { write: (line: string): void => void out.push(line) };
  const deps = (): NodeDeps => ({
    openDevice: () => device,
    createTransport: (choice) => (choice.kind === 'udp' ? transport : new FakeTransport(choice.kind)),
    createRouter: (options) => {
      const router = new Router(options);
      return {
        start: () => router.start(),
        applyLeaseEvents: (events) => router.applyLeaseEvents(events),
        stats: () => router.stats(),
        dropCounts: () => router.dropCounts(),
        lastDropped: (reason) => router.lastDropped(reason),
        close: () => (closeHangs ? new Promise<void>(() => undefined) : router.close()),
      };
    },
    hostOps: host,
  });
  const messages = (): string[] => out.map((l) => (JSON.parse(l) as { msg: string }).msg);
  const until = async (msg: string): Promise<void> => {
    for (let i = 0; i < 200 && !messages().includes(msg); i++) await sleep(10);
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podtun-runnode-'));
    path = join(dir, 'node.yaml');
    await writeFile(path, CONFIG());
    out = [];
    host = new FakeHost();
    transport = new FakeTransport('udp');
    device = new FakeDevice('podtun0');
    closeHangs = false;
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('SIGTERM: closes, restores the host, resolves 0 and removes its handlers', async () => {
    const listeners = process.listenerCount('SIGTERM');
    const exit = runNode({ configPath: path, overrides: {}, statusSocket: undefined, logStream: stream }, () => Promise.resolve(deps()));
    await until('node ready');
    expect(process.listenerCount('SIGTERM')).toBe(listeners + 1);
    process.emit('SIGTERM', 'SIGTERM');
    expect(await exit).toBe(0);
    expect(process.listenerCount('SIGTERM')).toBe(listeners);
    expect(host.sysctls.get('net.ipv4.ip_forward')).toBe('0');
    expect(transport.closed).toBe(1);
    expect(messages()).toEqual(expect.arrayContaining(['node ready', 'shutting down', 'host network restored']));
    expect(out.filter((l) => l.includes('"level":"error"'))).toEqual([]);
  });

  it('a second signal exits at once when shutdown hangs', async () => {
    closeHangs = true;
    const exit = runNode({ configPath: path, overrides: {}, statusSocket: undefined, logStream: stream }, () => Promise.resolve(deps()));
    await until('node ready');
    process.emit('SIGINT', 'SIGINT');
    await sleep(20);
    process.emit('SIGINT', 'SIGINT');
    expect(await exit).toBe(130);
    expect(messages()).toContain('second signal: exiting without cleanup');
  });

  it('a signal during startup: closes once started (exit 0); a second one does not wait (143)', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = (): NodeDeps => ({ ...deps(), openDevice: async () => { await gate; return device; } });
    const exit = runNode({ configPath: path, overrides: {}, statusSocket: undefined, logStream: stream }, () => Promise.resolve(slow()));
    await sleep(20);
    process.emit('SIGTERM', 'SIGTERM');
    release();
    expect(await exit).toBe(0);
    expect(device.closed).toBe(1);
    expect(host.sysctls.get('net.ipv4.ip_forward')).toBe('0');

    const stuck = (): NodeDeps => ({ ...deps(), openDevice: () => new Promise<never>(() => undefined) });
    const exit2 = runNode({ configPath: path, overrides: {}, statusSocket: undefined, logStream: stream }, () => Promise.resolve(stuck()));
    await sleep(20);
    process.emit('SIGTERM', 'SIGTERM');
    process.emit('SIGTERM', 'SIGTERM');
    expect(await exit2).toBe(143);
  });

  it('SIGHUP reloads the config', async () => {
    const exit = runNode({ configPath: path, overrides: {}, statusSocket: undefined, logStream: stream }, () => Promise.resolve(deps()));
    await until('node ready');
    await writeFile(path, CONFIG(['  - name: node-c', '    subnets: [10.244.3.0/24]', '    endpoint: 192.168.77.3:8285', `    publicKey: ${testPublicKey(2)}`]));
    process.emit('SIGHUP', 'SIGHUP');
    for (let i = 0; i < 100 && transport.endpoints().length < 2; i++) await sleep(10);
    expect(transport.endpoints()).toEqual(['node-b@192.168.77.2:8285', 'node-c@192.168.77.3:8285']);
    process.emit('SIGTERM', 'SIGTERM');
    expect(await exit).toBe(0);
  });

  it('a startup failure is logged with err and resolves 1, the host untouched', async () => {
    const failing = (): NodeDeps => ({ ...deps(), createTransport: () => { throw new Error('port in use'); } });
    const code = await runNode({ configPath: path, overrides: { logLevel: 'warn' }, statusSocket: undefined, logStream: stream }, () => Promise.resolve(failing()));
    expect(code).toBe(1);
    const failed = out.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'failed to start');
    expect(failed).toMatchObject({ level: 'error', err: { message: 'port in use' } });
    expect(host.commands).toEqual([]);
    expect(device.closed).toBe(1);
  });
});
