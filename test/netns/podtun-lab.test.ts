/**
 * `podtun lab` on the real kernel, through the built CLI as a user runs it: `lab up` exits and
 * leaves the demo's cluster running (each node's `podtun status`, run inside its namespace, shows
 * its peers up; pods on different nodes ping each other); a second `lab up` is refused; `lab down`
 * leaves no namespace, process, state or file of it. The same after `demo --keep`, after a
 * `lab up` killed (SIGKILL) midway, and `lab down` with nothing up is a clean no-op.
 *
 * ```
 *                  ptlab-u (bridge ul0, 192.168.77.0/24)
 *               /               |                \
 *    ptlab-n1 (podtun)     ptlab-n2 (podtun)     ptlab-n3 (podtun, UDP dropped: WebSocket)
 *     ptlab-p1a/p1b         ptlab-p2a/p2b         ptlab-p3a/p3b        (10.244.N.10/.11)
 * ```
 *
 * The lab is one per machine (fixed names): the file is skipped while someone's lab is up, so it
 * never removes a lab it did not make.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { harnessDir } from '../../lab/cleanup.js';
import { findRepoRoot, namespacesOfRun } from '../../lab/cluster.js';
import { LAB_DIR, LAB_RUN_DIR, LAB_RUN_ID, LAB_STATE_FILE, readLabState } from '../../lab/lab-state.js';
import type { UpLab } from '../../lab/lab-state.js';
import { isRunning } from '../../lab/process-start.js';
import { outcomeIn, pidsWhere, pollUntil, spawnIn, waitExit } from '../../lab/shell.js';
import type { Outcome } from '../../lab/shell.js';
import { netnsSkipReason, parsePing, podtunSkipReason, printSkip } from './support.js';

const labAlreadyUp = (): string | undefined =>
  existsSync(LAB_DIR) || namespacesOfRun(LAB_RUN_ID).length > 0
    ? `a podtun lab is up on this machine (${LAB_DIR}, namespaces pt${LAB_RUN_ID}-*): this file would remove it`
    : undefined;
const skipReason = netnsSkipReason(['ping', 'nft']) ?? podtunSkipReason() ?? labAlreadyUp();
printSkip('podtun-lab.test.ts', skipReason);

const BIN = join(findRepoRoot(), 'bin', 'podtun.js');

function podtun(args: readonly string[], timeoutMs: number, ns: string | null = null): Promise<Outcome> {
  return outcomeIn(ns, ['node', BIN, ...args], { timeoutMs });
}

function upState(): UpLab {
  const state = readLabState();
  if (state?.phase !== 'up') throw new Error(`lab state is ${state?.phase ?? 'absent'}, not up`);
  return state;
}

/** Nothing of the lab is left: namespaces, daemons, state, files, the harness's run record. */
function expectNothingLeft(daemons: UpLab['nodes']): void {
  expect(namespacesOfRun(LAB_RUN_ID)).toEqual([]);
  for (const node of daemons) expect(isRunning(node.daemon), `${node.name}'s daemon pid ${node.daemon.pid}`).toBe(false);
  // Also the daemons no state names (a build killed midway): every one runs with a config in LAB_DIR.
  expect(pidsWhere((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(LAB_DIR))).toEqual([]);
  expect(existsSync(LAB_STATE_FILE)).toBe(false);
  expect(existsSync(LAB_DIR)).toBe(false);
  expect(existsSync(join(harnessDir(), `${LAB_RUN_ID}.state.json`))).toBe(false);
}

async function expectPing(fromNs: string, to: string): Promise<void> {
  const ping = await outcomeIn(fromNs, ['ping', '-c', '3', '-i', '0.2', '-W', '2', to]);
  expect(parsePing(ping.stdout).received, `${fromNs} -> ${to}: ${ping.stdout}${ping.stderr}`).toBe(3);
}

describe.skipIf(skipReason !== undefined)('podtun lab (the built CLI, a cluster kept between commands)', () => {
  afterAll(async () => {
    // A failed test may have left its lab: it is this file's (the file skips when one was up).
    if (existsSync(LAB_DIR) || namespacesOfRun(LAB_RUN_ID).length > 0) await podtun(['lab', 'down'], 30_000);
  });

  it('lab down with nothing up is a clean no-op', async () => {
    const down = await podtun(['lab', 'down'], 20_000);
    expect(down.exitCode, down.stderr).toBe(0);
    expect(down.stdout).toBe('no lab is up: nothing to remove\n');
    expect(down.stderr).toBe('');
    expect(existsSync(LAB_DIR)).toBe(false);
    const status = await podtun(['lab', 'status'], 20_000);
    expect(status.exitCode).toBe(1);
    expect(status.stdout).toMatch(/^no lab is up/);
  });

  it('lab up leaves the cluster running after it exits; status, pings; a second up is refused; lab down leaves nothing', async () => {
    const up = await podtun(['lab', 'up'], 90_000);
    expect(up.exitCode, up.stderr + up.stdout).toBe(0);
    expect(up.stdout).toContain('lab down');
    const state = upState();
    expect(state.nodes.map((n) => n.name)).toEqual(['n1', 'n2', 'n3']);
    for (const node of state.nodes) {
      expect(isRunning(node.daemon), `${node.name}'s daemon`).toBe(true);
      // Detached: it leads a process group of its own (field 5 of /proc/PID/stat, after the name).
      const stat = readFileSync(`/proc/${node.daemon.pid}/stat`, 'utf8');
      expect(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]), `${node.name}'s process group`).toBe(node.daemon.pid);
    }
    const addresses = await outcomeIn(null, ['ip', '-o', 'addr', 'show']);
    expect(addresses.stdout, 'the root namespace gets no address in the test ranges').not.toMatch(/192\.168\.77\.|10\.244\.|fd77:|fd00:10:244:/);

    // The real `podtun status`, inside each node's namespace, on the socket the lab names.
    for (const node of state.nodes) {
      const status = await podtun(['status', '--socket', node.socket], 20_000, node.ns);
      expect(status.exitCode, status.stderr).toBe(0);
      for (const peer of state.nodes.filter((n) => n !== node)) {
        const transport = peer.udpBlocked || node.udpBlocked ? 'ws' : 'udp';
        expect(status.stdout, `${node.name}'s status`).toMatch(new RegExp(`^${peer.name} +${transport} +up `, 'm'));
      }
    }
    const pod = (name: string) => state.pods.find((p) => p.name === name);
    const [p1a, p2a, p3b] = [pod('p1a'), pod('p2a'), pod('p3b')];
    if (p1a === undefined || p2a === undefined || p3b === undefined) throw new Error('pods missing from the state');
    await expectPing(p1a.ns, p2a.ipv4);
    await expectPing(p3b.ns, p1a.ipv4);
    await expectPing(p2a.ns, p3b.ipv6 ?? '');

    const status = await podtun(['lab', 'status'], 30_000);
    expect(status.exitCode, status.stdout + status.stderr).toBe(0);
    for (const node of state.nodes) expect(status.stdout).toContain(`daemon pid ${node.daemon.pid} running`);

    const again = await podtun(['lab', 'up'], 30_000);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/a lab is already up .*`podtun lab down`/);
    expect(upState().upAt).toBe(state.upAt);

    const down = await podtun(['lab', 'down'], 30_000);
    expect(down.exitCode, down.stderr).toBe(0);
    expect(down.stdout).toContain('stopped the daemons of n1, n2, n3');
    expectNothingLeft(state.nodes);
  }, 150_000);

  it('demo --keep leaves the demo\'s cluster up as the lab; lab down removes it', async () => {
    const demo = await podtun(['demo', '--keep'], 150_000);
    expect(demo.exitCode, demo.stderr + demo.stdout).toBe(0);
    expect(demo.stdout).toContain('SHA-256 matches');
    expect(demo.stdout).toContain('cluster kept as the lab');
    const state = upState();
    expect(state.command).toBe('podtun demo --keep');
    for (const node of state.nodes) expect(isRunning(node.daemon), `${node.name}'s daemon`).toBe(true);
    const [from, to] = [state.pods.find((p) => p.node === 'n3'), state.pods.find((p) => p.node === 'n2')];
    if (from === undefined || to === undefined) throw new Error('pods missing from the state');
    await expectPing(from.ns, to.ipv4);

    const down = await podtun(['lab', 'down'], 30_000);
    expect(down.exitCode, down.stderr).toBe(0);
    expectNothingLeft(state.nodes);
  }, 200_000);

  it('lab down removes what a lab up killed midway left', async () => {
    const up = spawnIn(null, ['node', BIN, 'lab', 'up'], { stdio: 'ignore' });
    try {
      // Killed once it has recorded itself and started a daemon, which it leaves orphaned.
      await pollUntil(
        'lab up starting daemons',
        async () => (readLabState()?.phase === 'building' && existsSync(join(LAB_RUN_DIR, 'n1.log')) ? true : undefined),
        30_000,
        20,
      );
    } finally {
      up.kill('SIGKILL');
      await waitExit(up, 5_000);
    }
    const status = await podtun(['lab', 'status'], 20_000);
    expect(status.exitCode).toBe(1);
    expect(status.stdout).toMatch(/stopped before it finished; `podtun lab down` removes what it left/);

    const down = await podtun(['lab', 'down'], 30_000);
    expect(down.exitCode, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/deleted \d+ namespaces: ptlab-/);
    expectNothingLeft([]);
    const again = await podtun(['lab', 'down'], 20_000);
    expect(again.stdout).toBe('no lab is up: nothing to remove\n');
  }, 90_000);
});
