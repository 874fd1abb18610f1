/**
 * An attacker on the underlay: a namespace of the run with a veth into the underlay bridge at
 * ATTACKER_IP, sending IPv4/UDP datagrams with whatever source address and port it likes (raw
 * sockets, through raw-udp.py: Node has none), e.g. a real node's underlay address and tunnel
 * port. What it cannot do is what the tests are about: read or produce sealed messages.
 *
 * ```
 *            underlay ns (bridge ul0, 192.168.77.0/24)
 *          /            |                  \
 *   n1 .1:8285    n2 .2:8285      attacker ns pt<id>-atk, eth0 192.168.77.66
 *                                   python3 raw-udp.py: src 192.168.77.2:8285 -> 192.168.77.1:8285
 * ```
 */
import { join } from 'node:path';
import type { Cluster } from '../../lab/cluster.js';
import { missingCommand } from '../../lab/requirements.js';

export const ATTACKER_IP = '192.168.77.66';

/** Why no attacker can be made here (python3 for raw sockets), or undefined. */
export function attackerSkipReason(): string | undefined {
  return missingCommand(['python3']);
}

export interface RawDatagram {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  payload: Buffer;
}

export interface FloodSpec {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** The first bytes of every datagram; the rest is fresh random bytes. */
  prefix: Buffer;
  /** Bytes of UDP payload per datagram. */
  length: number;
  durationMs: number;
  /** At most this many a second; 0: as fast as one Python process can. */
  maxPps: number;
}

export interface FloodResult {
  sent: number;
  seconds: number;
}

export interface Attacker {
  ns: string;
  ip: string;
  /** Sends every datagram `repeat` times (in order, `intervalMs` apart); resolves with how many left. */
  send(datagrams: readonly RawDatagram[], options?: { repeat?: number; intervalMs?: number }): Promise<number>;
  /** Floods until `durationMs` has passed; resolves with the count. */
  flood(spec: FloodSpec): Promise<FloodResult>;
}

/** Adds the attacker's namespace to the cluster's underlay (removed with the cluster). */
export async function createAttacker(c: Cluster, suffix = 'atk', ip = ATTACKER_IP): Promise<Attacker> {
  const ns = await c.createNamespace(suffix);
  const link = suffix.slice(0, 15);
  await c.exec(c.underlayNs, ['ip', 'link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await c.exec(c.underlayNs, ['ip', 'link', 'set', link, 'master', 'ul0', 'up']);
  await c.exec(ns, ['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await c.exec(ns, ['ip', 'link', 'set', 'eth0', 'up']);
  const script = join(c.repoRoot, 'test', 'netns', 'raw-udp.py');
  const run = async (job: object, timeoutMs: number): Promise<unknown> => {
    const out = await c.exec(ns, ['python3', script], { input: JSON.stringify(job), timeoutMs });
    const line = out.stdout.trim().split('\n').pop() ?? '';
    return JSON.parse(line) as unknown;
  };
  return {
    ns,
    ip,
    async send(datagrams, options = {}) {
      const repeat = options.repeat ?? 1;
      const intervalMs = options.intervalMs ?? 0;
      const job = {
        mode: 'send',
        repeat,
        intervalMs,
        datagrams: datagrams.map((d) => ({ src: d.src, sport: d.sport, dst: d.dst, dport: d.dport, hex: d.payload.toString('hex') })),
      };
      const result = (await run(job, 30_000 + datagrams.length * repeat * (intervalMs + 1))) as { sent: number };
      return result.sent;
    },
    async flood(spec) {
      const job = {
        mode: 'flood',
        src: spec.src,
        sport: spec.sport,
        dst: spec.dst,
        dport: spec.dport,
        prefixHex: spec.prefix.toString('hex'),
        length: spec.length,
        durationMs: spec.durationMs,
        maxPps: spec.maxPps,
      };
      return (await run(job, spec.durationMs + 30_000)) as FloodResult;
    },
  };
}
