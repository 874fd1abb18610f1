/**
 * UdpTransport end to end on loopback, against the in-memory fake socket and, once it is built,
 * the real addon (same tests).
 *
 *   transport A (node-a)  127.0.0.1:pA  <---- UDP ---->  127.0.0.1:pB  transport B (node-b)
 *     slot 3 = node-b                                                 slot 5 = node-a
 *                        raw socket 127.0.0.1:pR (sends junk / probes, reads replies)
 *
 * What every transport does (delivery, unknown and removed slots, a closed peer, close twice
 * without leftovers) is the contract's, checked in tunnel/transport-contract.test.ts; here, what
 * is UDP's own.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { NativeUdp, UdpOpenOptions } from '../../native/addon.js';
import { VNET_HDR_LEN } from '../../core/packet-batch.js';
import { FakeUdpNetwork } from '../../test/fake-native-udp.js';
import { nodeIdOf } from './node-id.js';
import { verifyAuthTag } from '../cluster-auth.js';
import {
  FLAG_AUTHENTICATED,
  HEADER_LEN,
  MSG_DATA,
  MSG_PROBE,
  MSG_PROBE_REPLY,
  PROBE_LEN,
  PROBE_MIN_LEN,
  PROBE_OFFSET_TAG,
  PROBE_TAG_PURPOSE,
  REPLY_TAG_PURPOSE,
  checkHeader,
  readFlags,
  readProbeTimestamp,
  readSenderId,
  readSeq,
  writeHeader,
  writeProbeTimestamp,
} from './udp-header.js';
import { writeProbeTag } from './udp-probe-auth.js';
import { UdpTransport } from './udp-transport.js';
import { TransportError } from '../transport-error.js';
import { udpTransportType } from './udp-transport-type.js';
import type { UdpOpener, UdpTransportOptions } from './udp-transport.js';
import { recordingLogger } from '../../test/recording-logger.js';
import type { LogLine } from '../../test/recording-logger.js';
import { collector } from '../../test/inbound-collector.js';
import { batchOf } from '../../test/packet-fixtures.js';
import { skipUnlessMet } from '../../test/requirement.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const nativeMissing = skipUnlessMet('tunnel/udp/udp-transport.test.ts (native addon half)',
  existsSync(join(root, 'build', 'Release', 'podtun.node')) ? undefined : 'the native addon is not built (npm ci builds it)');

const PROBE_INTERVAL_MS = 50;
const DEAD_AFTER_MS = 200;
const SLOT_B = 3;
const SLOT_A = 5;
const SECRET = Buffer.from('the test cluster secret, 32 byte');
const OTHER_SECRET = Buffer.from('another cluster entirely, 32 byt');

/** An authenticated probe from `sender` as podtun sends it (tagged with `secret`). */
function signedProbe(sender: string, seq: number, timestampMs: number, secret: Uint8Array = SECRET): Buffer {
  const probe = Buffer.alloc(PROBE_LEN);
  writeHeader(probe, 0, MSG_PROBE, nodeIdOf(sender), seq, FLAG_AUTHENTICATED);
  writeProbeTimestamp(probe, 0, timestampMs);
  writeProbeTag(secret, PROBE_TAG_PURPOSE, probe, 0);
  return probe;
}

// --- test packets: 10-byte zero virtio header + IPv4/UDP with correct checksums ---

function checksum(buf: Buffer, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i + 1 < end; i += 2) sum += buf.readUInt16BE(i);
  if ((end - start) % 2 === 1) sum += (buf[end - 1] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** IPv4/UDP 10.244.1.2:5000 -> 10.244.2.2:6000 carrying `payload`, virtio header first. */
function testPacket(payload: string): Buffer {
  const data = Buffer.from(payload, 'utf8');
  const ipLen = 20 + 8 + data.length;
  const pkt = Buffer.alloc(VNET_HDR_LEN + ipLen);
  const ip = VNET_HDR_LEN;
  pkt[ip] = 0x45;
  pkt.writeUInt16BE(ipLen, ip + 2);
  pkt[ip + 8] = 64;
  pkt[ip + 9] = 17;
  Buffer.from([10, 244, 1, 2, 10, 244, 2, 2]).copy(pkt, ip + 12);
  pkt.writeUInt16BE(~checksum(pkt, ip, ip + 20) & 0xffff, ip + 10);
  const udp = ip + 20;
  pkt.writeUInt16BE(5000, udp);
  pkt.writeUInt16BE(6000, udp + 2);
  pkt.writeUInt16BE(8 + data.length, udp + 4);
  data.copy(pkt, udp + 8);
  const pseudo = checksum(pkt, ip + 12, ip + 20) + 17 + 8 + data.length;
  const sum = ~checksum(pkt, udp, udp + 8 + data.length, pseudo) & 0xffff;
  pkt.writeUInt16BE(sum === 0 ? 0xffff : sum, udp + 6);
  return pkt;
}

// --- recording logger and sink ---



async function until(what: string, cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A bare socket for sending hand-made datagrams and reading what comes back. */
interface RawSocket { port: number; send(port: number, data: Buffer): void; got: Buffer[]; close(): void }

function rawSocket(open: UdpOpener): RawSocket {
  const udp: NativeUdp = open({ host: '127.0.0.1', port: 0, recvBufferBytes: 1 << 20, sendBufferBytes: 1 << 20 });
  const buf = Buffer.alloc(1 << 20);
  const offs = new Int32Array(128);
  const got: Buffer[] = [];
  udp.start(buf, offs, 64, (count) => {
    for (let i = 0; i < count; i++) {
      const off = offs[2 * i] ?? 0;
      got.push(Buffer.from(buf.subarray(off, off + (offs[2 * i + 1] ?? 0))));
    }
  });
  return {
    port: udp.port,
    send: (port, data) => {
      expect(udp.sendToAddress('127.0.0.1', port, data, data.length)).toBe(true);
    },
    got,
    close: () => udp.close(),
  };
}

const implementations = [
  { name: 'fake socket', native: false },
  { name: 'native addon', native: true },
];

describe.each(implementations)('UdpTransport over the $name', ({ native }) => {
  const lines: LogLine[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];
  let open: UdpOpener;
  let net: FakeUdpNetwork | undefined;

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    lines.length = 0;
  });

  async function opener(): Promise<UdpOpener> {
    if (!native) {
      net = new FakeUdpNetwork();
      return net.open;
    }
    const { addon } = await import('../../native/addon.js');
    return (opts: UdpOpenOptions) => addon.openUdp(opts);
  }

  function transport(node: string, extra: Partial<UdpTransportOptions> = {}): UdpTransport {
    const t = new UdpTransport({
      listen: '127.0.0.1:0',
      localNode: node,
      clusterSecret: SECRET,
      log: recordingLogger(lines, { node: node }),
      probeIntervalMs: PROBE_INTERVAL_MS,
      deadAfterMs: DEAD_AFTER_MS,
      ...(native ? {} : { openUdp: open }),
      ...extra,
    });
    cleanups.push(() => t.close());
    return t;
  }

  async function pair(opts: { aEndpointKnown?: boolean; settle?: boolean; aKnowsB?: boolean } = {}): Promise<{
    a: UdpTransport; b: UdpTransport; atA: ReturnType<typeof collector>; atB: ReturnType<typeof collector>;
  }> {
    open = await opener();
    const a = transport('node-a');
    const b = transport('node-b');
    const atA = collector();
    const atB = collector();
    await a.start(atA.sink);
    await b.start(atB.sink);
    if (opts.aKnowsB !== false) setB(a, b);
    b.setPeer(SLOT_A, {
      node: 'node-a',
      endpoints: opts.aEndpointKnown === false ? {} : { udp: `127.0.0.1:${a.port}` },
      transports: ['udp'],
    });
    // Data is accepted only from peers that have shown the secret: let the probes do that first.
    if (opts.aEndpointKnown !== false && opts.settle !== false && opts.aKnowsB !== false) {
      await until('a and b authenticated each other', () => statusOf(a, SLOT_B).state === 'up' && statusOf(b, SLOT_A).state === 'up');
    }
    return { a, b, atA, atB };
  }

  /** Tells `a` about node-b in SLOT_B (it then probes b at once). */
  function setB(a: UdpTransport, b: UdpTransport): void {
    a.setPeer(SLOT_B, { node: 'node-b', endpoints: { udp: `127.0.0.1:${b.port}` }, transports: ['udp'] });
  }

  function raw(): RawSocket {
    const r = rawSocket(open);
    cleanups.push(() => r.close());
    return r;
  }

  function statusOf(t: UdpTransport, slot: number) {
    const s = t.peerStatus().find((p) => p.slot === slot);
    if (s === undefined) throw new Error(`no peer in slot ${slot}`);
    return s;
  }

  describe.skipIf(native && nativeMissing)('', () => {
    it('registers its overhead per underlay family and its kind', () => {
      const log = recordingLogger(lines);
      // The sealed format's overhead, sealed or not: the TUN MTU does not depend on `encryption`.
      expect(udpTransportType.overheadBytes(4)).toBe(60);
      expect(udpTransportType.overheadBytes(6)).toBe(80);
      expect(new UdpTransport({ listen: '0.0.0.0:8285', localNode: 'x', clusterSecret: SECRET, log }).kind).toBe('udp');
    });

    it('delivers bare IP packets (virtio header stripped), counted in packetsOut', async () => {
      const { a, atB } = await pair();
      const packets = [testPacket('hello from a'), testPacket('second packet, a bit longer')];
      const { batch, idx } = batchOf(packets);
      expect(a.send(SLOT_B, batch, idx, 2)).toBe(0);
      await until('2 packets at b', () => atB.got.length >= 2);
      expect(atB.got.every((r) => !r.vnetHdr)).toBe(true);
      expect(atB.got.map((r) => r.packet)).toEqual(packets.map((p) => p.subarray(VNET_HDR_LEN)));
      if (!native) expect(atB.calls).toEqual([2]);
      expect(a.stats()['packetsOut']).toBe(2);
    });

    it('carries a large batch of equal-size packets (GSO / recvmmsg batching) intact', async () => {
      const { a, atB } = await pair();
      const packets = Array.from({ length: 300 }, (_, i) => testPacket(`packet ${String(i).padStart(4, '0')}`));
      const { batch, idx } = batchOf(packets);
      expect(a.send(SLOT_B, batch, idx, packets.length)).toBe(0);
      await until('300 packets at b', () => atB.got.length >= packets.length);
      expect(atB.got.map((r) => r.packet)).toEqual(packets.map((p) => p.subarray(VNET_HDR_LEN)));
      expect(atB.got.every((r) => r.slot === SLOT_A)).toBe(true);
      expect(atB.calls.length).toBeLessThan(packets.length);
    });

    it('drops data from a peer that has not shown the secret yet, as unauthenticated', async () => {
      const { a, b, atB } = await pair({ aKnowsB: false });
      const r = raw();
      const packet = testPacket('too early').subarray(VNET_HDR_LEN);
      const early = Buffer.alloc(HEADER_LEN + packet.length);
      writeHeader(early, 0, MSG_DATA, nodeIdOf('node-a'), 0);
      packet.copy(early, HEADER_LEN);
      r.send(b.port, early);
      await until('counted at b', () => (b.stats()['drop.unauthenticated'] ?? 0) >= 1);
      expect(atB.got).toEqual([]);
      setB(a, b);
      await until('authenticated', () => statusOf(a, SLOT_B).state === 'up' && statusOf(b, SLOT_A).state === 'up');
      const { batch, idx } = batchOf([testPacket('on time')]);
      a.send(SLOT_B, batch, idx, 1);
      await until('data at b', () => atB.got.length >= 1);
    });

    it('counts and drops junk and unknown senders, and keeps forwarding', async () => {
      const { a, b, atB } = await pair();
      const r = raw();
      const packet = testPacket('payload').subarray(VNET_HDR_LEN);
      const fromStranger = Buffer.alloc(HEADER_LEN + packet.length);
      writeHeader(fromStranger, 0, MSG_DATA, nodeIdOf('node-x'), 0);
      packet.copy(fromStranger, HEADER_LEN);
      const probeFromStranger = Buffer.alloc(PROBE_LEN);
      writeHeader(probeFromStranger, 0, MSG_PROBE, nodeIdOf('node-x'), 1);
      const random = Buffer.alloc(64);
      for (let i = 0; i < random.length; i++) random[i] = Math.floor(Math.random() * 256);
      random[0] = 0xff;
      const truncated = Buffer.from(fromStranger.subarray(0, HEADER_LEN + 5));
      writeHeader(truncated, 0, MSG_DATA, nodeIdOf('node-a'), 0);
      const version2 = Buffer.from(fromStranger);
      writeHeader(version2, 0, MSG_DATA, nodeIdOf('node-a'), 0);
      version2[0] = 2;
      for (const junk of [fromStranger, probeFromStranger, random, truncated, version2]) r.send(b.port, junk);

      const { batch, idx } = batchOf([testPacket('after the junk')]);
      await until('junk counted', () => (b.stats()['datagramsIn'] ?? 0) >= 5);
      expect(a.send(SLOT_B, batch, idx, 1)).toBe(0);
      await until('data at b', () => atB.got.length >= 1);
      expect(atB.got).toHaveLength(1);
      expect(atB.got[0]?.slot).toBe(SLOT_A);
      expect(b.stats()).toMatchObject({ 'drop.bad_header': 3, 'drop.unknown_peer': 2 });
      await new Promise((res) => setTimeout(res, 20));
      expect(r.got).toEqual([]);
    });

    it('answers a probe at its source address, echoing sequence and timestamp, with its own tag', async () => {
      const { a, b, atA } = await pair();
      const r = raw();
      // Padding after the tag is allowed.
      const probe = Buffer.concat([signedProbe('node-a', 0xdeadbeef, 123_456.789), Buffer.alloc(16)]);
      r.send(b.port, probe);
      await until('reply', () => r.got.length >= 1);
      const reply = r.got[0] as Buffer;
      expect(checkHeader(reply, 0, reply.length)).toBe(MSG_PROBE_REPLY);
      expect(reply.length).toBe(PROBE_LEN);
      expect(readFlags(reply, 0)).toBe(FLAG_AUTHENTICATED);
      expect(readSenderId(reply, 0)).toBe(nodeIdOf('node-b'));
      expect(readSeq(reply, 0)).toBe(0xdeadbeef);
      expect(readProbeTimestamp(reply, 0)).toBe(123_456.789);
      expect(verifyAuthTag(SECRET, reply.subarray(PROBE_OFFSET_TAG), REPLY_TAG_PURPOSE,
        reply.subarray(4, 8), reply.subarray(8, 12), reply.subarray(12, 20))).toBe(true);
      // node-a has a configured endpoint: b keeps sending there, not to the probe's source.
      expect(statusOf(b, SLOT_A).endpoint).toBe(`127.0.0.1:${a.port}`);
      const { batch, idx } = batchOf([testPacket('b to a')]);
      expect(b.send(SLOT_A, batch, idx, 1)).toBe(0);
      await until('data at a', () => atA.got.length >= 1);
      expect(r.got.filter((d) => d[1] === MSG_DATA)).toEqual([]);
    });

    it('drops probes and replies without a valid tag: unanswered, counted, nothing learned', async () => {
      const { b } = await pair({ aEndpointKnown: false, aKnowsB: false });
      const r = raw();
      const untagged = Buffer.alloc(PROBE_MIN_LEN);
      writeHeader(untagged, 0, MSG_PROBE, nodeIdOf('node-a'), 1);
      writeProbeTimestamp(untagged, 0, Date.now());
      const wrongSecret = signedProbe('node-a', 2, Date.now(), OTHER_SECRET);
      const flippedTag = signedProbe('node-a', 3, Date.now());
      flippedTag[PROBE_OFFSET_TAG] = (flippedTag[PROBE_OFFSET_TAG] ?? 0) ^ 1;
      const otherSeq = signedProbe('node-a', 4, Date.now());
      otherSeq.writeUInt32BE(5, 8); // the tag covered seq 4
      const forgedReply = signedProbe('node-a', 1, Date.now());
      forgedReply[1] = MSG_PROBE_REPLY; // a probe's tag does not pass for a reply's
      const flagOff = signedProbe('node-a', 6, Date.now());
      flagOff.writeUInt16BE(0, 2);
      const junk = [untagged, wrongSecret, flippedTag, otherSeq, forgedReply, flagOff];
      for (const d of junk) r.send(b.port, d);
      await until('all counted', () => (b.stats()['drop.unauthenticated'] ?? 0) >= junk.length);
      await new Promise((res) => setTimeout(res, 20));
      expect(b.stats()).toMatchObject({ 'drop.unauthenticated': junk.length, probesIn: 0, probeRepliesIn: 0, probeRepliesOut: 0 });
      expect(r.got).toEqual([]);
      expect(statusOf(b, SLOT_A).endpoint).toBeUndefined();
      expect(statusOf(b, SLOT_A).state).not.toBe('up');
      expect(lines.filter((l) => l.msg === 'peer address learned')).toEqual([]);
    });

    it('does not follow a replayed probe to another address', async () => {
      const { b } = await pair({ aEndpointKnown: false, aKnowsB: false });
      const r1 = raw();
      const r2 = raw();
      const probe = signedProbe('node-a', 1, Date.now());
      r1.send(b.port, probe);
      await until('learned r1', () => statusOf(b, SLOT_A).endpoint === `127.0.0.1:${r1.port}`);
      r2.send(b.port, probe);
      await until('replay answered', () => r2.got.length >= 1);
      expect(statusOf(b, SLOT_A).endpoint).toBe(`127.0.0.1:${r1.port}`);
      expect(b.stats()['staleProbes']).toBe(1);
      r2.send(b.port, signedProbe('node-a', 2, Date.now() + 1));
      await until('learned r2', () => statusOf(b, SLOT_A).endpoint === `127.0.0.1:${r2.port}`);
    });

    it('with another cluster secret, peers never come up and every probe is counted', async () => {
      open = await opener();
      const a = transport('node-a');
      const b = transport('node-b', { clusterSecret: OTHER_SECRET });
      await a.start(() => {});
      await b.start(() => {});
      a.setPeer(SLOT_B, { node: 'node-b', endpoints: { udp: `127.0.0.1:${b.port}` }, transports: ['udp'] });
      b.setPeer(SLOT_A, { node: 'node-a', endpoints: { udp: `127.0.0.1:${a.port}` }, transports: ['udp'] });
      await until('both down', () => statusOf(a, SLOT_B).state === 'down' && statusOf(b, SLOT_A).state === 'down', 4 * DEAD_AFTER_MS);
      for (const t of [a, b]) {
        expect(t.stats()['drop.unauthenticated']).toBeGreaterThan(0);
        expect(t.stats()).toMatchObject({ probesIn: 0, probeRepliesOut: 0, probeRepliesIn: 0 });
      }
      expect(lines.filter((l) => l.msg === 'peer up')).toEqual([]);
    });

    it('refuses a missing or short cluster secret', () => {
      const log = recordingLogger(lines);
      expect(() => new UdpTransport({ listen: '127.0.0.1:0', localNode: 'x', clusterSecret: Buffer.alloc(15), log }))
        .toThrow(/clusterSecret must be at least 16 bytes/);
    });

    it('brings peers up with an RTT, and down after deadAfterMs of silence', async () => {
      const { a, b } = await pair({ settle: false });
      expect(statusOf(a, SLOT_B).state).toBe('unknown');
      await until('both up', () => statusOf(a, SLOT_B).state === 'up' && statusOf(b, SLOT_A).state === 'up');
      for (const [t, slot] of [[a, SLOT_B], [b, SLOT_A]] as const) {
        const s = statusOf(t, slot);
        expect(s.transport).toBe('udp');
        expect(s.rttMs).toBeGreaterThanOrEqual(0);
        expect(s.rttMs).toBeLessThan(DEAD_AFTER_MS);
        expect(s.lastSeenMs).toBeGreaterThan(0);
      }
      const up = lines.find((l) => l.msg === 'peer up' && l.obj['peer'] === 'node-b');
      expect(up?.obj).toMatchObject({ endpoint: `127.0.0.1:${b.port}` });
      expect(typeof up?.obj['rttMs']).toBe('number');
      expect(a.stats()['probeRepliesIn']).toBeGreaterThan(0);

      const stoppedAt = Date.now();
      await a.close();
      await until('a down at b', () => statusOf(b, SLOT_A).state === 'down', 2 * DEAD_AFTER_MS);
      const elapsed = Date.now() - stoppedAt;
      // deadAfterMs after the last reply, noticed within one tick, plus scheduling slack.
      expect(elapsed).toBeLessThanOrEqual(DEAD_AFTER_MS + PROBE_INTERVAL_MS + 100);
      expect(lines.find((l) => l.msg === 'peer down')?.obj).toMatchObject({ peer: 'node-a', endpoint: `127.0.0.1:${a.port}` });
    });

    it('keeps liveness when the same peer is set again (lease refresh)', async () => {
      const { a, b } = await pair();
      await until('b up at a', () => statusOf(a, SLOT_B).state === 'up');
      a.setPeer(SLOT_B, { node: 'node-b', endpoints: { udp: `127.0.0.1:${b.port}` }, transports: ['udp'] });
      expect(statusOf(a, SLOT_B).state).toBe('up');
      expect(lines.filter((l) => l.msg === 'peer up' && l.obj['peer'] === 'node-b')).toHaveLength(1);
    });

    it('learns the address of a peer without endpoint from its probes, and follows it (roaming)', async () => {
      const { a, b, atA } = await pair({ aEndpointKnown: false });
      expect(statusOf(b, SLOT_A).endpoint).toBeUndefined();
      const { batch, idx } = batchOf([testPacket('b to a')]);
      expect(b.send(SLOT_A, batch, idx, 1)).toBe(1);
      await until('both up', () => statusOf(a, SLOT_B).state === 'up' && statusOf(b, SLOT_A).state === 'up');
      expect(statusOf(b, SLOT_A).endpoint).toBe(`127.0.0.1:${a.port}`);
      expect(b.send(SLOT_A, batch, idx, 1)).toBe(0);
      await until('data at a', () => atA.got.length >= 1);

      // node-a comes back on another port (NAT rebinding): b follows its probes.
      await a.close();
      const a2 = transport('node-a');
      const atA2 = collector();
      await a2.start(atA2.sink);
      a2.setPeer(SLOT_B, { node: 'node-b', endpoints: { udp: `127.0.0.1:${b.port}` }, transports: ['udp'] });
      await until('b follows a', () => statusOf(b, SLOT_A).endpoint === `127.0.0.1:${a2.port}`);
      expect(b.send(SLOT_A, batch, idx, 1)).toBe(0);
      await until('data at a2', () => atA2.got.length >= 1);
      expect(atA2.got[0]?.slot).toBe(SLOT_B);
      expect(lines.filter((l) => l.msg === 'peer address learned').map((l) => l.obj['endpoint']))
        .toEqual([`127.0.0.1:${a.port}`, `127.0.0.1:${a2.port}`]);
    });

    it('keeps a peer whose endpoint this socket cannot reach, unaddressed and logged', async () => {
      const { a } = await pair();
      a.setPeer(7, { node: 'node-v6', endpoints: { udp: '[fd00::7]:8285' }, transports: ['udp'] });
      expect(lines.find((l) => l.msg.startsWith('peer endpoint unusable'))?.obj).toMatchObject({ peer: 'node-v6' });
      const { batch, idx } = batchOf([testPacket('x')]);
      expect(a.send(7, batch, idx, 1)).toBe(1);
      expect(a.stats()['drop.peer_down']).toBe(1);
      expect(statusOf(a, 7).endpoint).toBe('[fd00::7]:8285');
    });

    // The fake socket delivers by port whatever the host: moving between hosts needs the kernel.
    it.skipIf(!native)('follows a peer named by host name to its new address once it goes silent', async () => {
      open = await opener();
      let bHost = '127.0.0.1';
      const lookups: string[] = [];
      const a = transport('node-a', {
        lookupHost: async (name, family) => {
          lookups.push(`${name} v${family ?? 'any'}`);
          return bHost;
        },
      });
      const b = transport('node-b');
      await a.start(() => {});
      await b.start(() => {});
      const port = b.port;
      a.setPeer(SLOT_B, { node: 'node-b', endpoints: { udp: `node-b.test:${port}` }, transports: ['udp'] });
      b.setPeer(SLOT_A, { node: 'node-a', endpoints: { udp: `127.0.0.1:${a.port}` }, transports: ['udp'] });
      await until('b up at a through its name', () => statusOf(a, SLOT_B).state === 'up');
      expect(statusOf(a, SLOT_B).endpoint).toBe(`127.0.0.1:${port}`);
      expect(lookups).toEqual(['node-b.test v4']);

      // node-b comes back at another address, same port; its name now says so.
      await b.close();
      bHost = '127.0.0.2';
      const b2 = transport('node-b', { listen: `127.0.0.2:${port}` });
      const atB2 = collector();
      await b2.start(atB2.sink);
      b2.setPeer(SLOT_A, { node: 'node-a', endpoints: { udp: `127.0.0.1:${a.port}` }, transports: ['udp'] });
      const movedAt = Date.now();
      await until('b up at a at its new address',
        () => statusOf(a, SLOT_B).state === 'up' && statusOf(a, SLOT_B).endpoint === `127.0.0.2:${port}`, 2_000);
      // Silent for deadAfterMs, looked up again at once, then one probe round trip.
      expect(Date.now() - movedAt).toBeLessThan(DEAD_AFTER_MS + 4 * PROBE_INTERVAL_MS + 200);
      expect(lookups).toHaveLength(2);
      expect(lines.find((l) => l.msg === 'peer endpoint moved')?.obj).toMatchObject({ peer: 'node-b', address: '127.0.0.2' });
      const { batch, idx } = batchOf([testPacket('to the new address')]);
      expect(a.send(SLOT_B, batch, idx, 1)).toBe(0);
      await until('data at b2', () => atB2.got.length >= 1);
    });

    it('keeps a peer whose name does not resolve unaddressed, warns, and looks again', async () => {
      open = await opener();
      let asked = 0;
      const a = transport('node-a', {
        lookupHost: () => {
          asked++;
          return Promise.reject(new Error('getaddrinfo ENOTFOUND nowhere.test'));
        },
      });
      await a.start(() => {});
      a.setPeer(SLOT_B, { node: 'node-b', endpoints: { udp: 'nowhere.test:8285' }, transports: ['udp'] });
      await until('warned', () => lines.some((l) => l.level === 'warn' && l.msg.startsWith('cannot resolve peer endpoint')));
      expect(lines.find((l) => l.msg.startsWith('cannot resolve'))?.obj).toMatchObject({ peer: 'node-b', endpoint: 'nowhere.test:8285' });
      const { batch, idx } = batchOf([testPacket('x')]);
      expect(a.send(SLOT_B, batch, idx, 1)).toBe(1);
      expect(a.stats()['drop.peer_down']).toBe(1);
      expect(statusOf(a, SLOT_B).endpoint).toBeUndefined();
      // Down after deadAfterMs: looked up again without waiting for the interval.
      await until('asked again', () => asked >= 2, 4 * DEAD_AFTER_MS);
      expect(statusOf(a, SLOT_B)).toMatchObject({ state: 'down', downReason: 'host name not resolved' });
      a.removePeer(SLOT_B);
    });

    it.skipIf(native)('counts packets the socket refuses as congested', async () => {
      const { a } = await pair();
      const socket = net?.sockets.get(a.port);
      if (socket === undefined) throw new Error('no fake socket');
      socket.refuseNext = 2;
      const { batch, idx } = batchOf([testPacket('1'), testPacket('2'), testPacket('3')]);
      expect(a.send(SLOT_B, batch, idx, 3)).toBe(2);
      expect(a.stats()).toMatchObject({ packetsOut: 1, 'drop.congested': 2 });
    });

    it('fails to start on a port in use with a typed error', async () => {
      const { b } = await pair();
      const again = transport('node-c', { listen: `127.0.0.1:${b.port}` });
      const err: unknown = await again.start(() => {}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransportError);
      expect((err as TransportError).code).toBe('ERR_PODTUN_UDP_LISTEN');
      expect((err as TransportError).message).toMatch(
        new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${b.port}: address (already )?in use`, 'i'));
      expect((err as TransportError).cause).toBeDefined();
      expect(() => new UdpTransport({ listen: 'localhost:8285', localNode: 'x', clusterSecret: SECRET, log: recordingLogger(lines) }))
        .toThrow(/^cannot listen on localhost:8285: .*not an IP address/);
    });

    it('after close, refuses to start again and has released its port', async () => {
      const { a, b } = await pair();
      await a.close();
      await b.close();
      await expect(a.start(() => {})).rejects.toMatchObject({ code: 'ERR_PODTUN_UDP_CLOSED' });
      expect(lines.filter((l) => l.level === 'error')).toEqual([]);
      for (const port of [a.port, b.port]) {
        const again = transport('node-c', { listen: `127.0.0.1:${port}` });
        await again.start(() => {});
        expect(again.port).toBe(port);
        await again.close();
      }
    });
  });
});
