/**
 * The built CNI entry as a process (dist/cni/cni-entry.js, plugin chosen by its
 * first argument): usage, the by-hand banner, and protocol answers on stdout with exit codes.
 * Choosing the plugin by executable name is the single-executable build's to test
 * (build-executables.mjs); the namespace test runs both plugins through the real bridge.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { skipUnlessMet } from '../test/requirement.js';

const entry = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cni', 'cni-entry.js');
const skipReason = existsSync(entry) ? undefined : 'dist/cni/cni-entry.js is missing: run `npm run build` first';
const skip = skipUnlessMet('cni/cni-entry.test.ts', skipReason);

interface Run {
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

function runEntry(args: readonly string[], env: Record<string, string>, stdin: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, exitCode });
    });
    child.stdin.end(stdin);
  });
}

describe.skipIf(skip)('cni-entry (built)', () => {
  it('without a plugin name: usage on stderr, exit 2, nothing on stdout', async () => {
    const run = await runEntry(['nonsense'], { CNI_COMMAND: 'VERSION' }, '');
    expect(run).toMatchObject({ exitCode: 2, stdout: '' });
    expect(run.stderr).toMatch(/^usage: run as podtun or podtun-ipam/);
  });

  it('run by hand without CNI_COMMAND: what it is on stderr, exit 0, stdin not read', async () => {
    const run = await runEntry(['podtun-ipam'], {}, 'not read');
    expect(run).toMatchObject({ exitCode: 0, stdout: '' });
    expect(run.stderr).toContain('CNI podtun-ipam plugin');
    expect(run.stderr).toContain('CNI protocol versions supported: 0.3.1, 0.4.0, 1.0.0, 1.1.0');
  });

  it.each(['podtun', 'podtun-ipam'])('%s VERSION: the versions on stdout in the requested version', async (plugin) => {
    const run = await runEntry([plugin], { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
    expect(run.exitCode).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ cniVersion: '1.0.0', supportedVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });

  it.each(['podtun', 'podtun-ipam'])('%s: a protocol error is JSON on stdout and exit 1', async (plugin) => {
    const noStdin = await runEntry([plugin], { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0' }, '');
    expect(noStdin.exitCode).toBe(1);
    expect(JSON.parse(noStdin.stdout)).toMatchObject({ code: 6, msg: 'no network config on stdin' });
    const badCommand = await runEntry([plugin], { CNI_COMMAND: 'FROB' }, '{}');
    expect(badCommand.exitCode).toBe(1);
    expect(JSON.parse(badCommand.stdout)).toMatchObject({ code: 4 });
  });

  it('podtun ADD with the daemon socket absent: error 11 naming the socket', async () => {
    const stdin = JSON.stringify({ cniVersion: '1.1.0', name: 'podtun', type: 'podtun', daemonSocket: '/nonexistent/podtun.sock' });
    const run = await runEntry(['podtun'], { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' }, stdin);
    expect(run.exitCode).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ cniVersion: '1.1.0', code: 11, msg: expect.stringContaining('cannot reach /nonexistent/podtun.sock (ENOENT)') });
  });
});
