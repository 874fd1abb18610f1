import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, packageVersion } from './cli.js';
import { DEFAULT_API_SOCKET } from '../../api/api-client.js';
import { skipUnlessMet } from '../../test/requirement.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './command.js';

async function cli(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, env, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe('podtun CLI', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podtun-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([['--help'], ['-h'], ['help'], ['run', '--help']])('%s prints usage, exit 0', async (...argv) => {
    const r = await cli(argv);
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toMatch(/^Usage:\n {2}podtun run --config FILE/);
  });

  it('install-cni puts podtun, podtun-ipam and the reference plugins into --bin-dir; a bad name is a usage error', async () => {
    const binDir = join(dir, 'opt-cni-bin');
    const r = await cli(['install-cni', '--bin-dir', binDir]);
    expect(r.err).toBe('');
    expect(r.code).toBe(EXIT_OK);
    expect((await readdir(binDir)).sort()).toEqual(['bridge', 'host-local', 'loopback', 'podtun', 'podtun-ipam', 'portmap']);
    const version = execFileSync(join(binDir, 'bridge'), [], { env: { CNI_COMMAND: 'VERSION' }, input: '' }).toString();
    expect(JSON.parse(version)).toMatchObject({ supportedVersions: expect.arrayContaining(['1.0.0']) as unknown });
    expect((await cli(['install-cni', '--bin-dir', binDir])).out).toMatch(/^unchanged /);
    expect((await cli(['install-cni', '--plugins', '../etc/passwd'])).code).toBe(EXIT_USAGE);
    const missing = await cli(['install-cni', '--bin-dir', binDir, '--plugin-dir', join(dir, 'none')]);
    expect(missing.code).toBe(EXIT_FAILURE);
    expect(missing.err).toMatch(/bridge is missing \(Debian package containernetworking-plugins, or --plugin-dir\)/);
  });

  it('key public makes the node key on first use and prints its public half, the same each time; key generate prints a new private key', async () => {
    const keyFile = join(dir, 'keys', 'node.key');
    const first = await cli(['key', 'public', '--key-file', keyFile]);
    expect(first).toMatchObject({ code: EXIT_OK, err: '' });
    expect(first.out).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect((await cli(['key', 'public', '--key-file', keyFile])).out).toBe(first.out);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const config = join(dir, 'key.yaml');
    await writeFile(config, 'nodeName: a\nclusterSecret: "a secret of the cli key test"\nclusterCidrs: [10.244.0.0/16]\nnodeKeyFile: keys/node.key\nnodes: [{ name: a, subnets: [10.244.1.0/24] }]\n');
    expect((await cli(['key', 'public', '--config', config])).out).toBe(first.out);
    const generated = await cli(['key', 'generate']);
    expect(generated.out).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(generated.out).not.toBe(first.out);
    expect((await cli(['key'])).code).toBe(EXIT_USAGE);
    expect((await cli(['key', 'public', '--config', config, '--key-file', keyFile])).code).toBe(EXIT_USAGE);
    await chmod(keyFile, 0o644);
    const open = await cli(['key', 'public', '--key-file', keyFile]);
    expect(open.code).toBe(EXIT_FAILURE);
    expect(open.err).toContain(keyFile);
  });

  it('prints the package version', async () => {
    const r = await cli(['version']);
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toBe(`podtun ${packageVersion()}\n`);
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.each<[string[], RegExp]>([
    [[], /^$/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['run', '--config', 'x.yaml', '--verbose'], /Unknown option '--verbose'/],
    [['run', 'x.yaml'], /positional argument/],
    [['run'], /--config: required \(or set PODTUN_CONFIG\)/],
    [['run', '--config', 'x.yaml', '--log-level', 'loud'], /--log-level: "loud" is not one of/],
    [['version', 'extra'], /unexpected argument "extra"/],
  ])('%j -> usage, exit 2', async (argv, reason) => {
    const r = await cli(argv);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toMatch(reason);
    expect(r.err).not.toContain('podtun: podtun:');
    expect(r.err + r.out).toContain('Usage:');
  });

  // A real unprivileged process (nobody, no capabilities) running the built CLI.
  it.skipIf(skipUnlessMet('node-bootstrap/cli/cli.test.ts (run as nobody)', process.getuid?.() === 0 ? undefined : 'needs root to start a process as nobody'))(
    'run without root or CAP_NET_ADMIN, on a valid config, says so in one line, exit 1, before touching anything', async () => {
      const path = join(dir, 'unprivileged.yaml');
      await writeFile(path, 'nodeName: a\nclusterCidrs: [10.244.0.0/16]\nclusterSecret: "0123456789abcdef0123456789abcdef"\nnodes:\n  - { name: a, subnets: [10.244.1.0/24], endpoint: "192.0.2.1:8285" }\n', { mode: 0o644 });
      await chmod(dir, 0o755);
      const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'podtun.js');
      const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, bin, 'run', '--config', path], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status).toBe(EXIT_FAILURE);
      expect(r.stderr).toBe('podtun run needs root or CAP_NET_ADMIN (it opens a TUN and sets routes and sysctls): run it with sudo\n');
      expect(r.stdout).toBe('');
    });

  it('doctor without --socket asks the default socket, as podtun status does; no daemon there is the one failure', async () => {
    const path = join(dir, 'doctor.yaml');
    await writeFile(path, 'nodeName: a\nclusterCidrs: [10.244.0.0/16]\nclusterSecret: "0123456789abcdef0123456789abcdef"\nnodes:\n  - { name: a, subnets: [10.244.1.0/24], endpoint: "192.0.2.1:8285" }\n');
    const socket = join(dir, 'no-daemon.sock');
    const viaEnv = await cli(['doctor', '--config', path, '--json'], { PODTUN_STATUS_SOCKET: socket });
    const checks = (JSON.parse(viaEnv.out) as { checks: Array<{ layer: string; name: string; ok: boolean; detail: string }> }).checks;
    expect(viaEnv.code).toBe(EXIT_FAILURE);
    expect(checks.filter((c) => !c.ok).map((c) => `${c.layer} ${c.name}`)).toEqual(['daemon status']);
    expect(checks.find((c) => c.name === 'status')?.detail).toContain(`${socket}:`);
    const byDefault = await cli(['doctor', '--config', path, '--json']);
    expect(byDefault.out).toContain(`"detail": "${DEFAULT_API_SOCKET}:`);
  });

  it('run reports a bad config with file, field and reason, exit 1', async () => {
    const path = join(dir, 'node.yaml');
    await writeFile(path, 'nodeName: a\nclusterCidrs: [10.244.0.0/16]\nnodes:\n  - name: a\n    subnets: [10.244.1.5/24]\n');
    const stderr: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      stderr.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      const r = await cli(['run'], { PODTUN_CONFIG: path });
      expect(r.code).toBe(EXIT_FAILURE);
    } finally {
      process.stderr.write = write;
    }
    expect(stderr.join('')).toContain(`${path}: nodes[0].subnets[0]: "10.244.1.5/24" has host bits set`);
  });
});
