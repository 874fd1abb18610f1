/**
 * The doctor's daemon and peer layers over fake host probes: what each reads from the daemon's
 * /status report, and how an unreachable, starting or foreign daemon is named. The host, TUN,
 * route and MTU layers against a real kernel: test/netns/podtun-doctor.test.ts.
 */
import { testPublicKey } from '../../test/node-keys.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StatusUnavailableError } from '../../api/api-client.js';
import { StatusSchemaError } from '../../api/status-schema.js';
import type { PeerReport, StatusReport } from '../../api/status-schema.js';
import { runDoctor } from './doctor.js';
import type { DoctorCheck } from './doctor-check.js';
import type { DoctorProbes } from './doctor-probes.js';

const CONFIG = [
  'nodeName: node-a',
  'clusterSecret: "a secret of the test cluster, 44 bytes long.."',
  'clusterCidrs: [10.244.0.0/16]',
  'nodes:',
  '  - name: node-a',
  '    subnets: [10.244.1.0/24]',
  '    endpoint: 192.168.77.1:8285',
  '  - name: node-b',
  '    subnets: [10.244.2.0/24]',
  '    endpoint: 192.168.77.2:8285',
  `    publicKey: ${testPublicKey(1)}`,
  '',
].join('\n');

function peerB(fields: Partial<PeerReport>): PeerReport {
  return {
    node: 'node-b', subnets: ['10.244.2.0/24'], endpoint: '192.168.77.2:8285', endpoints: { udp: '192.168.77.2:8285' },
    tunnelMtu: 1420, mtu: 1420, txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, spoofed: 0,
    state: 'up', rttMs: 0.4, transport: 'udp', ...fields,
  };
}

function report(peers: PeerReport[], node = 'node-a'): StatusReport {
  return { node, localSubnets: ['10.244.1.0/24'], drops: {}, icmpSuppressed: 0, peers, transport: {}, lease: ['10.244.1.0/24'], routes: [] };
}

/** A host where nothing answers; the daemon's answer is `status`. */
function probes(status: () => Promise<StatusReport>): DoctorProbes {
  return {
    exec: () => Promise.resolve({ code: 1, stdout: '', stderr: 'not here' }),
    sysctl: () => Promise.resolve(undefined),
    tcpConnect: () => Promise.resolve(undefined),
    status,
  };
}

describe('runDoctor: daemon and peer layers', () => {
  let dir = '';
  let configPath = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podtun-doctor-'));
    configPath = join(dir, 'node.yaml');
    await writeFile(configPath, CONFIG);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function checks(status: () => Promise<StatusReport>): Promise<Map<string, DoctorCheck>> {
    const result = await runDoctor({ configPath, socketPath: '/run/test.sock', probes: probes(status) });
    return new Map(result.checks.map((c) => [`${c.layer} ${c.name}`, c]));
  }

  it('passes the daemon and the peer on UDP', async () => {
    const got = await checks(() => Promise.resolve(report([peerB({})])));
    expect(got.get('daemon status')).toMatchObject({ ok: true, detail: '/run/test.sock: node node-a, 1 peers' });
    expect(got.get('daemon peers')).toMatchObject({ ok: true, detail: '1 listed: node-b' });
    expect(got.get('peer:node-b state')).toMatchObject({ ok: true, detail: 'up, rtt 0.4 ms' });
    expect(got.get('peer:node-b udp')).toMatchObject({ ok: true, detail: 'up on 192.168.77.2:8285, rtt 0.4 ms' });
  });

  it('warns, without failing, when the peer is up over WebSocket because UDP does not answer', async () => {
    const got = await checks(() => Promise.resolve(report([peerB({ transport: 'ws', lastSwitch: { atMs: Date.now(), from: 'udp', to: 'ws', reason: 'udp silent 3s' } })])));
    expect(got.get('peer:node-b transport')).toMatchObject({ ok: true });
    expect(got.get('peer:node-b udp')).toMatchObject({ ok: true, warning: true, detail: expect.stringContaining('traffic carried over WebSocket') });
    expect(got.get('peer:node-b udp')?.hint).toContain('allow UDP 8285');
    expect([...got.values()].filter((c) => c.layer === 'peer:node-b' && !c.ok)).toEqual([]);
  });

  it('fails UDP when the peer is on WebSocket but not up', async () => {
    const got = await checks(() => Promise.resolve(report([peerB({ transport: 'ws', state: 'down' })])));
    expect(got.get('peer:node-b udp')).toMatchObject({ ok: false, detail: expect.stringContaining('traffic carried over WebSocket') });
  });

  it.each([
    ['authentication failed', /do not share the cluster secret/],
    ['no handshake answer', /encryption: sealed/],
    ['key unknown: its lease names no public key', /podtun key public/],
  ])('names a sealed peer\'s reason for being down (%s) and what to do', async (reason, hint) => {
    const got = await checks(() => Promise.resolve(report([peerB({ state: 'down', downReason: reason })])));
    const state = got.get('peer:node-b state');
    expect(state).toMatchObject({ ok: false, detail: `down: ${reason}, never heard from` });
    expect(state?.hint).toMatch(hint);
  });

  it('names a peer missing from /status and a daemon of another node', async () => {
    const got = await checks(() => Promise.resolve(report([], 'node-z')));
    expect(got.get('daemon peers')).toMatchObject({ ok: false, detail: 'in the config but not in /status: node-b' });
    expect(got.get('daemon node')).toMatchObject({ ok: false, detail: 'the daemon is node-z, the config says node-a' });
    expect(got.get('peer:node-b state')).toMatchObject({ ok: false, detail: 'not in /status' });
  });

  it.each([
    ['not ready', new StatusUnavailableError('/run/test.sock', { status: 503, body: { error: 'tun not up' } }), 'is podtun run running'],
    ['not podtun', new StatusSchemaError('node', 'is missing'), 'is this the socket of podtun run?'],
  ])('when the daemon is %s, that is the one failure reported', async (_name, error, hint) => {
    const got = await checks(() => Promise.reject(error));
    expect(got.get('daemon status')).toMatchObject({ ok: false, detail: `/run/test.sock: ${error.message}`, hint: expect.stringContaining(hint) });
    expect([...got.values()].filter((c) => !c.ok).map((c) => `${c.layer} ${c.name}`)).toEqual(['daemon status']);
    expect(got.get('peer:node-b state')).toBeUndefined();
  });
});
