import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FAKE_STATS } from '../../test/fake-router-stats.js';
import { quietLogger } from '../../test/recording-logger.js';
import { startLocalApi } from '../local-api/local-api.js';
import type { LocalApi } from '../local-api/local-api.js';
import { createMetrics } from '../local-api/metrics.js';
import { Readiness } from '../local-api/readiness.js';
import { main } from './cli.js';
import type { CliIo } from './command.js';

function captureIo(): CliIo & { stdout: string; stderr: string } {
  const io = { stdout: '', stderr: '', out: (t: string) => { io.stdout += t; }, err: (t: string) => { io.stderr += t; } };
  return io;
}

describe('podtun status, routes, peers against the local API', () => {
  let api: LocalApi | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  /** The daemon's real local API on a fresh socket; `built` false: the router is not built yet. */
  async function start(built = true): Promise<string> {
    const socket = join(mkdtempSync(join(tmpdir(), 'podtun-view-')), 'podtun.sock');
    const stats = (): typeof FAKE_STATS | undefined => (built ? FAKE_STATS : undefined);
    api = await startLocalApi({
      socketPath: socket,
      tcp: undefined,
      stats,
      readiness: new Readiness(),
      metrics: createMetrics({ stats, processMetrics: false }),
      podNetwork: () => undefined,
      log: quietLogger,
    });
    return socket;
  }

  it.each([
    [['status'], /^node {3}n1\nlease {2}10\.244\.1\.0\/24\n\nPEER/],
    [['routes'], /^SUBNET +NODE +TRANSPORT +STATE\n10\.244\.1\.0\/24 +n1 +local +local\n/],
    [['peers'], /^PEER .*\nn2 +udp +up /],
    [['peers', '--watch', '--count', '2'], /^PEER[^]*\n\nPEER/],
  ])('podtun %j prints plain text', async (argv, want) => {
    const socket = await start();
    const io = captureIo();
    expect(await main([...argv, '--socket', socket], {}, io)).toBe(0);
    expect(io.stdout).toMatch(want);
    // eslint-disable-next-line no-control-regex
    expect(io.stdout).not.toMatch(/\x1b/);
  });

  it('podtun status --json prints the report (socket from PODTUN_STATUS_SOCKET)', async () => {
    const socket = await start();
    const io = captureIo();
    expect(await main(['status', '--json'], { PODTUN_STATUS_SOCKET: socket }, io)).toBe(0);
    expect(JSON.parse(io.stdout)).toMatchObject({ node: 'n1', peers: [{ node: 'n2', mtu: 1460 }, { node: 'n3' }] });
  });

  it.each([[['status']], [['status', '--json']]])('podtun %j exits 1 while the router is not built', async (argv) => {
    const socket = await start(false);
    const io = captureIo();
    expect(await main([...argv, '--socket', socket], {}, io)).toBe(1);
    expect(io.stderr).toBe(`podtun at ${socket} is not serving status yet (HTTP 503): {"error":"tun not up"}\n`);
  });
});

describe('podtun status without a daemon', () => {
  it.each([
    [['status'], 1, /^cannot reach podtun at \/nonexistent\/podtun\.sock: .*ENOENT/],
    [['routes', '--watch'], 2, /--watch and --count are for `podtun peers`/],
    [['peers', '--count', '0', '--watch'], 2, /--count: "0" is not a positive integer/],
  ])('%j exits %d', async (argv, code, message) => {
    const io = captureIo();
    expect(await main([...argv, '--socket', '/nonexistent/podtun.sock'], {}, io)).toBe(code);
    expect(io.stderr).toMatch(message);
  });
});
