/**
 * `podtun run` as a process (the built bin/podtun.js, real TUN addon, real `ip`), in a namespace
 * of its own: the exit codes and the host left behind for each way the process ends.
 *
 * ```
 *   netns ptboot-<random>
 *     ul0 192.168.77.1/24 (veth, peer ul1)     podtun listens on 0.0.0.0:8285
 *     podtun0 (TUN, made by podtun)            10.244.1.0/32, fd00:10:244:1::/128, routes to /16, /48
 * ```
 *
 * Needs root and dist/ (`npm run build`, which `npm test` runs first).
 */
import { testPublicKey } from '../../test/node-keys.js';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipUnlessMet } from '../../test/requirement.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'podtun.js');

function run(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || err.message}`, { cause: err }));
    });
  });
}

const skipReason =
  process.getuid?.() !== 0
    ? 'not root'
    : !existsSync(join(root, 'dist', 'node-bootstrap', 'cli', 'cli.js'))
      ? 'dist/ missing (npm run build)'
      : !existsSync(join(root, 'build', 'Release', 'podtun.node'))
        ? 'native addon not built'
        : undefined;
const skip = skipUnlessMet('node-bootstrap/daemon/podtun-run.test.ts', skipReason);

const CONFIG = `nodeName: node-a
clusterSecret: "podtun-run test cluster secret"
clusterCidrs: [10.244.0.0/16, fd00:10:244::/48]
nodeKeyFile: node.key
nodes:
  - name: node-a
    subnets: [10.244.1.0/24, fd00:10:244:1::/64]
    endpoint: 192.168.77.1:8285
  - name: node-b
    subnets: [10.244.2.0/24]
    endpoint: 192.168.77.2:8285
    publicKey: ${testPublicKey(1)}
`;

describe.skipIf(skip)('podtun run (process)', () => {
  const ns = `ptboot-${randomBytes(4).toString('hex')}`;
  let dir = '';
  const children = new Set<ChildProcess>();

  const sysctl = async (key: string): Promise<string> => (await run('ip', ['netns', 'exec', ns, 'sysctl', '-n', key])).trim();

  /** Starts podtun in the namespace; resolves once it logged `node ready` (or exited). */
  async function start(config: string, logName: string): Promise<{ child: ChildProcess; log: () => Promise<string>; exit: Promise<number | null> }> {
    const logPath = join(dir, logName);
    await writeFile(join(dir, 'node.yaml'), config);
    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync(logPath, 'w');
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, bin, 'run', '--config', join(dir, 'node.yaml')], {
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    children.add(child);
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }));
    const log = (): Promise<string> => readFile(logPath, 'utf8');
    for (let i = 0; i < 200; i++) {
      if ((await log()).includes('node ready') || child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return { child, log, exit };
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podtun-run-proc-'));
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', ns, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul1']);
    await run('ip', ['-n', ns, 'addr', 'add', '192.168.77.1/24', 'dev', 'ul0']);
    await run('ip', ['-n', ns, 'link', 'set', 'ul0', 'up']);
  });

  afterAll(async () => {
    try {
      for (const child of children) if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    } finally {
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('SIGTERM: a clean shutdown, exit 0, the host as it was, no error logged', async () => {
    const before = [await sysctl('net.ipv4.ip_forward'), await sysctl('net.ipv6.conf.all.forwarding')];
    const node = await start(CONFIG, 'term.log');
    const ready = (await node.log()).split('\n').find((l) => l.includes('"node ready"'));
    expect(JSON.parse(ready ?? '{}')).toMatchObject({ level: 'info', node: 'node-a', tun: 'podtun0', mtu: 1440, listen: { udp: '0.0.0.0:8285', ws: 'dial-out only' } });
    expect(await run('ip', ['-n', ns, 'route', 'show', 'exact', '10.244.0.0/16'])).toContain('dev podtun0');
    expect(await sysctl('net.ipv4.ip_forward')).toBe('1');

    node.child.kill('SIGTERM');
    expect(await node.exit).toBe(0);
    expect([await sysctl('net.ipv4.ip_forward'), await sysctl('net.ipv6.conf.all.forwarding')]).toEqual(before);
    expect(await run('ip', ['-n', ns, 'route', 'show', 'exact', '10.244.0.0/16'])).toBe('');
    const lines = (await node.log()).trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
    expect(lines.at(-1)?.msg).toBe('host network restored');
  });

  it('a bad config: exit 1 naming file, field and reason, nothing touched', async () => {
    const node = await start(CONFIG.replace('10.244.2.0/24', '10.244.2.7/24'), 'bad.log');
    expect(await node.exit).toBe(1);
    expect(await node.log()).toContain('node.yaml: nodes[1].subnets[0]: "10.244.2.7/24" has host bits set');
    expect(await sysctl('net.ipv4.ip_forward')).toBe('0');
  });

  it('a startup failure: exit 1, logged with err, nothing left behind', async () => {
    const node = await start(CONFIG.replace('nodeName: node-a', 'nodeName: node-a\ntunName: ul0'), 'fail.log');
    expect(await node.exit).toBe(1);
    const failed = (await node.log()).split('\n').find((l) => l.includes('"failed to start"'));
    expect(JSON.parse(failed ?? '{}')).toMatchObject({ level: 'error', err: { message: expect.stringMatching(/ul0/) as unknown } });
    expect(await sysctl('net.ipv4.ip_forward')).toBe('0');
  });
});
