/**
 * Rekeying under a live stream loses nothing: two real SealedUdpTransports on loopback (the
 * native addon sealing and opening), `rekeyAfterMessages` low so that a stream of numbered
 * packets crosses many rekeys. Every packet must arrive exactly once, judged by counting
 * sequence numbers, not by timing; the rekeys are counted by `handshake.keypairsInstalled`.
 *
 *   a 127.0.0.1:pA  --- 50,000 numbered packets, sealed ------------->  b 127.0.0.1:pB
 *                   <-- 12,500 numbered packets (one per 4: the ACKs) --
 *   rekey after 2,000 messages; at most WINDOW packets in flight and RATE_PPS (no loss to the
 *   socket buffers, no handshake over the responder's per-source rate: a loss here can only be
 *   the rekey's)
 *
 * The stream is one-sided, as a transfer is: the sender reaches the message limit first and
 * initiates each rekey. The second case starts the way two nodes started together do, each
 * having initiated a session while the other's initiation was in flight (a relay delays both
 * directions by RELAY_DELAY_MS), and then rekeys once.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { InboundBatch, PacketBatch } from '../../core/packet-batch.js';
import { VNET_HDR_LEN } from '../../core/packet-batch.js';
import { publicKeyText } from '../../core/public-key.js';
import { batchOf, ipv4, udp, withVnetHdr } from '../../test/packet-fixtures.js';
import { quietLogger } from '../../test/recording-logger.js';
import { waitFor } from '../../test/registry-contract.js';
import { skipUnlessMet } from '../../test/requirement.js';
import { generateX25519 } from '../seal/x25519.js';
import { SealedUdpTransport } from './sealed-udp-transport.js';
import { STAGE_PACKETS } from './session-staging.js';
import { UdpTransport } from './udp-transport.js';

const nativeMissing = skipUnlessMet('tunnel/udp/sealed-udp-transport.test.ts',
  existsSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'Release', 'podtun.node')) ? undefined : 'the native addon is not built (npm ci builds it)');

const SECRET = Buffer.from('sealed transport test secret, 32 bytes');
const SLOT_OF_B = 3;
const SLOT_OF_A = 5;
const REKEY_AFTER_MESSAGES = 2_000;
const BATCH = 64;
/** b sends one packet per this many of a's. */
const ACK_EVERY = 4;
/** Packets a has sent that b has not yet received, at most, before a waits. */
const WINDOW = 512;
/**
 * a's rate: a rekey per 2,000 packets stays at 4 a second, under the responder's 5 handshakes
 * a second per source (handshake-engine.ts), so no initiation is answered with a cookie.
 */
const RATE_PPS = 8_000;
const RELAY_DELAY_MS = 20;
/** Where the sequence number sits: the UDP payload of the packet (after IPv4 and UDP headers). */
const SEQ_OFFSET_IN_IP = 20 + 8;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** BATCH numbered IPv4/UDP packets in one batch, renumbered in place for each send. */
function numberedBatch(src: string, dst: string): (first: number, count: number) => { batch: PacketBatch; idx: Int32Array } {
  const packet = withVnetHdr(ipv4({ src, dst, payload: udp(5000, 6000, Buffer.alloc(64, 0x5a)) }));
  const { batch, idx } = batchOf(Array.from({ length: BATCH }, () => packet), 16);
  return (first, count) => {
    for (let i = 0; i < count; i++) batch.buf.writeUInt32BE(first + i, (batch.offs[2 * i] ?? 0) + VNET_HDR_LEN + SEQ_OFFSET_IN_IP);
    batch.count = count;
    return { batch, idx };
  };
}

interface SeqCounter {
  sink: (b: InboundBatch) => void;
  received(): number;
  duplicates(): number;
  /** The first (up to 20) sequence numbers below `total` never seen. */
  missing(): number[];
}

/** A sink that counts each sequence number it sees (borrowed batches: nothing kept). */
function seqCounter(total: number): SeqCounter {
  const seen = new Uint8Array(total);
  let received = 0;
  let duplicates = 0;
  return {
    sink(b) {
      for (let i = 0; i < b.count; i++) {
        const off = (b.offs[2 * i] ?? 0) + (b.vnetHdr ? VNET_HDR_LEN : 0);
        const seq = b.buf.readUInt32BE(off + SEQ_OFFSET_IN_IP);
        if (seq >= total) throw new Error(`sequence number ${seq} out of range`);
        if (seen[seq] === 0) {
          seen[seq] = 1;
          received++;
        } else {
          duplicates++;
        }
      }
    },
    received: () => received,
    duplicates: () => duplicates,
    missing() {
      const out: number[] = [];
      for (let i = 0; i < total && out.length < 20; i++) if (seen[i] === 0) out.push(i);
      return out;
    },
  };
}

/** Two UDP sockets forwarding a <-> b, each datagram `delayMs` later; a and b address each other at it. */
async function delayRelay(delayMs: number, aPort: number, bPort: number): Promise<{ towardB: number; towardA: number; close(): void }> {
  const bind = (s: Socket): Promise<void> => new Promise((resolve) => s.bind(0, '127.0.0.1', resolve));
  // Buffers for every datagram of a window: the relay must lose none itself.
  const options = { type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 } as const;
  const facingA = createSocket(options);
  const facingB = createSocket(options);
  await bind(facingA);
  await bind(facingB);
  const timers = new Set<NodeJS.Timeout>();
  const later = (send: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      send();
    }, delayMs);
    timers.add(t);
  };
  // a sends to facingA (its endpoint for b); b sends to facingB (its endpoint for a).
  facingA.on('message', (msg) => later(() => facingB.send(msg, bPort, '127.0.0.1')));
  facingB.on('message', (msg) => later(() => facingA.send(msg, aPort, '127.0.0.1')));
  return {
    towardB: facingA.address().port,
    towardA: facingB.address().port,
    close() {
      for (const t of timers) clearTimeout(t);
      facingA.close();
      facingB.close();
    },
  };
}

interface Pair {
  a: SealedUdpTransport;
  b: SealedUdpTransport;
  atA: SeqCounter;
  atB: SeqCounter;
}

describe.skipIf(nativeMissing)('SealedUdpTransport: rekeying under a live stream', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function transport(node: string, nodeKey: ReturnType<typeof generateX25519>, aesHw: boolean): SealedUdpTransport {
    const t = new SealedUdpTransport({
      listen: '127.0.0.1:0', localNode: node, clusterSecret: SECRET, log: quietLogger, nodeKey, cpuHasAesHw: aesHw,
      probeIntervalMs: 50, deadAfterMs: 2_000, rekeyAfterMessages: REKEY_AFTER_MESSAGES,
    });
    cleanups.push(() => t.close());
    return t;
  }

  /**
   * a and b, started and up. `route` 'direct': a has b's endpoint, b has none for a (it follows
   * a's authenticated data), so a alone initiates. 'crossed': each has the other's endpoint at a
   * relay delaying both ways, so both initiate at start and each initiation arrives while the
   * other's is in flight.
   */
  async function pair(aesHw: boolean, route: 'direct' | 'crossed', packets: number): Promise<Pair> {
    const keyA = generateX25519();
    const keyB = generateX25519();
    const a = transport('node-a', keyA, aesHw);
    const b = transport('node-b', keyB, aesHw);
    const atA = seqCounter(packets / ACK_EVERY);
    const atB = seqCounter(packets);
    await a.start(atA.sink);
    await b.start(atB.sink);
    let towardB = b.port;
    let towardA: number | undefined;
    if (route === 'crossed') {
      const relay = await delayRelay(RELAY_DELAY_MS, a.port, b.port);
      cleanups.push(() => relay.close());
      towardB = relay.towardB;
      towardA = relay.towardA;
    }
    a.setPeer(SLOT_OF_B, { node: 'node-b', endpoints: { udp: `127.0.0.1:${towardB}` }, transports: ['udp'], publicKey: publicKeyText(keyB.publicKey) });
    b.setPeer(SLOT_OF_A, { node: 'node-a', endpoints: towardA === undefined ? {} : { udp: `127.0.0.1:${towardA}` }, transports: ['udp'], publicKey: publicKeyText(keyA.publicKey) });
    const up = (t: SealedUdpTransport, slot: number): boolean => t.peerStatus().find((p) => p.slot === slot)?.state === 'up';
    await waitFor('both up', () => up(a, SLOT_OF_B) && up(b, SLOT_OF_A), 5_000);
    return { a, b, atA, atB };
  }

  /** a streams `packets` numbered packets to b at RATE_PPS, b one per ACK_EVERY back; then every count is checked. */
  async function streamExactlyOnce({ a, b, atA, atB }: Pair, packets: number): Promise<[number, number]> {
    const acks = packets / ACK_EVERY;
    const installed = (t: SealedUdpTransport): number => t.stats()['handshake.keypairsInstalled'] ?? 0;
    const installedBefore = [installed(a), installed(b)] as const;
    const dropsBefore = { a: a.drops(), b: b.drops() };
    const fromA = numberedBatch('10.244.1.2', '10.244.2.2');
    const fromB = numberedBatch('10.244.2.2', '10.244.1.2');
    const startedAt = performance.now();
    let sent = 0;
    while (sent < packets) {
      const count = Math.min(BATCH, packets - sent);
      const ab = fromA(sent, count);
      expect(a.send(SLOT_OF_B, ab.batch, ab.idx, count)).toBe(0);
      const ackCount = Math.ceil((sent + count) / ACK_EVERY) - Math.ceil(sent / ACK_EVERY);
      const ba = fromB(Math.ceil(sent / ACK_EVERY), ackCount);
      expect(b.send(SLOT_OF_A, ba.batch, ba.idx, ackCount)).toBe(0);
      sent += count;
      const aheadMs = (sent / RATE_PPS) * 1000 - (performance.now() - startedAt);
      if (aheadMs > 0) await sleep(aheadMs);
      if (atB.received() < sent - WINDOW) {
        await waitFor(`b within ${WINDOW} of ${sent}`, () => atB.received() >= sent - WINDOW, 5_000).catch((err: unknown) => {
          throw new Error(`${(err as Error).message}: b got ${atB.received()}, first missing ${atB.missing().join(',')}; drops at b ${JSON.stringify(b.drops())}`);
        });
      }
    }
    await waitFor('every packet', () => atB.received() === packets && atA.received() === acks, 3_000).catch(() => undefined);

    const counters = (t: SealedUdpTransport): string => JSON.stringify(Object.fromEntries(Object.entries(t.stats()).filter(([k, v]) => /^(handshake\.|drop\.|native\.seal)/.test(k) && v > 0)));
    const detail = `a ${counters(a)}\nb ${counters(b)}`;
    expect({ missingAtB: atB.missing(), missingAtA: atA.missing() }, detail).toEqual({ missingAtB: [], missingAtA: [] });
    expect([atB.received(), atA.received()]).toEqual([packets, acks]);
    expect(atB.duplicates() + atA.duplicates()).toBe(0);
    expect({ a: a.drops(), b: b.drops() }, detail).toEqual(dropsBefore);
    return [installed(a) - installedBefore[0], installed(b) - installedBefore[1]];
  }

  it.each([
    { cipher: 'AES-256-GCM', aesHw: true },
    { cipher: 'ChaCha20-Poly1305', aesHw: false },
  ])('$cipher: 50,000 numbered packets (and 12,500 back) across some 20 rekeys arrive exactly once', { timeout: 60_000 }, async ({ aesHw }) => {
    const packets = 50_000;
    const rekeys = await streamExactlyOnce(await pair(aesHw, 'direct', packets), packets);
    // a initiates at its tick once it sealed 2,000 (a few more by then); each handshake installs
    // a keypair on both sides.
    process.stdout.write(`  keypairs installed during the stream: a ${rekeys[0]}, b ${rekeys[1]}\n`);
    expect(Math.min(...rekeys)).toBeGreaterThanOrEqual(15);
  });

  /*
   * After crossed initiations each side seals with the keypair it initiated and holds the
   * other's as `previous`. At a's next rekey, WireGuard's rule (add_new_keypair) would wipe a's
   * `previous` — the keypair b still seals with until a's first message under the new one
   * reaches it — and b's packets of that round trip would die as unknown_session at a. Real
   * nodes started together get there at their first time-based rekey (both initiated their
   * current session, so both rekey at REKEY_AFTER_MS). The addon keeps the keypair the last
   * opened message used past the rekey (`kept`, native/src/seal.h): nothing is lost.
   */
  it('after crossed initiations at start, the first rekey loses none of the packets coming back', { timeout: 30_000 }, async () => {
    const packets = 4 * REKEY_AFTER_MESSAGES;
    const p = await pair(true, 'crossed', packets);
    // The start was crossed: each side initiated and answered the other before any rekey.
    for (const t of [p.a, p.b]) expect(t.stats()).toMatchObject({ 'handshake.initsSent': 1, 'handshake.responsesSent': 1, 'handshake.keypairsInstalled': 2 });
    const rekeys = await streamExactlyOnce(p, packets);
    expect(Math.min(...rekeys)).toBeGreaterThanOrEqual(1);
  });
});

describe.skipIf(nativeMissing)('SealedUdpTransport: packets sent before the session exists', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('waits for the first handshake instead of dropping, up to STAGE_PACKETS; the rest are no_session', async () => {
    const keyA = generateX25519();
    const keyB = generateX25519();
    const make = (node: string, nodeKey: ReturnType<typeof generateX25519>): SealedUdpTransport => {
      const t = new SealedUdpTransport({ listen: '127.0.0.1:0', localNode: node, clusterSecret: SECRET, log: quietLogger, nodeKey, cpuHasAesHw: true });
      cleanups.push(() => t.close());
      return t;
    };
    const a = make('node-a', keyA);
    const b = make('node-b', keyB);
    const total = STAGE_PACKETS + BATCH;
    const atB = seqCounter(total);
    await a.start(() => undefined);
    await b.start(atB.sink);
    b.setPeer(SLOT_OF_A, { node: 'node-a', endpoints: {}, transports: ['udp'], publicKey: publicKeyText(keyA.publicKey) });
    a.setPeer(SLOT_OF_B, { node: 'node-b', endpoints: { udp: `127.0.0.1:${b.port}` }, transports: ['udp'], publicKey: publicKeyText(keyB.publicKey) });
    // Sent in the same turn as setPeer: the handshake has only just been sent.
    const numbered = numberedBatch('10.244.1.2', '10.244.2.2');
    let refused = 0;
    for (let first = 0; first < total; first += BATCH) {
      const { batch, idx } = numbered(first, BATCH);
      refused += a.send(SLOT_OF_B, batch, idx, BATCH);
    }
    expect(refused).toBe(total - STAGE_PACKETS);
    expect(a.drops()['no_session']).toBe(total - STAGE_PACKETS);
    await waitFor('the staged packets at b', () => atB.received() === STAGE_PACKETS, 5_000);
    expect(atB.missing()[0]).toBe(STAGE_PACKETS);
    expect(atB.duplicates()).toBe(0);
    expect(a.stats()['packetsStaged']).toBe(STAGE_PACKETS);
  });
});

describe.skipIf(nativeMissing)('SealedUdpTransport: a peer with encryption: none', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('is refused, its datagrams counted as unsealed, and status says why', async () => {
    const keyA = generateX25519();
    const a = new SealedUdpTransport({ listen: '127.0.0.1:0', localNode: 'node-a', clusterSecret: SECRET, log: quietLogger, nodeKey: keyA, cpuHasAesHw: true, probeIntervalMs: 50, deadAfterMs: 300 });
    const b = new UdpTransport({ listen: '127.0.0.1:0', localNode: 'node-b', clusterSecret: SECRET, log: quietLogger, probeIntervalMs: 50, deadAfterMs: 300 });
    cleanups.push(() => a.close(), () => b.close());
    const atA = seqCounter(1);
    await a.start(atA.sink);
    await b.start(() => undefined);
    a.setPeer(SLOT_OF_B, { node: 'node-b', endpoints: { udp: `127.0.0.1:${b.port}` }, transports: ['udp'], publicKey: publicKeyText(generateX25519().publicKey) });
    b.setPeer(SLOT_OF_A, { node: 'node-a', endpoints: { udp: `127.0.0.1:${a.port}` }, transports: ['udp'] });
    await waitFor('b\'s unsealed probes refused at a', () => (a.drops()['unsealed'] ?? 0) >= 3, 3_000);
    await waitFor('a says why b is down', () => {
      const seen = a.peerStatus().find((p) => p.slot === SLOT_OF_B);
      return seen?.state === 'down' && seen.downReason !== undefined;
    }, 3_000);
    expect(a.peerStatus().find((p) => p.slot === SLOT_OF_B)).toMatchObject({ state: 'down', sealed: true, downReason: 'unsealed: it sends encryption: none traffic' });
    expect(b.peerStatus().find((p) => p.slot === SLOT_OF_A)?.state).not.toBe('up');
    expect(atA.received()).toBe(0);
  });
});

/**
 * a reaches b through its name, "node-b.test:R", which first resolves to a relay at 127.0.0.1:R
 * and then (b "moved") to one at 127.0.0.2:R; both relay a <-> b. b reaches a directly.
 *
 *   a 127.0.0.1:pA --> 127.0.0.1:R (relay 1, closed at the move) --> b 127.0.0.1:pB
 *                  \-> 127.0.0.2:R (relay 2) ----------------------/
 */
describe.skipIf(nativeMissing)('SealedUdpTransport: a peer named by host name moves', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A socket at host:port passing datagrams between a and b (whichever sent, to the other). */
  async function relay(host: string, port: number, aPort: number, bPort: number): Promise<{ port: number; close(): void }> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(port, host, resolve));
    socket.on('message', (msg, from) => socket.send(msg, from.port === aPort ? bPort : aPort, '127.0.0.1'));
    let open = true;
    const close = (): void => {
      if (open) socket.close();
      open = false;
    };
    cleanups.push(close);
    return { port: socket.address().port, close };
  }

  it('is followed to its new address with the same session: no new handshake', async () => {
    const keyA = generateX25519();
    const keyB = generateX25519();
    let answer = '127.0.0.1';
    const make = (node: string, nodeKey: ReturnType<typeof generateX25519>): SealedUdpTransport => {
      const t = new SealedUdpTransport({
        listen: '127.0.0.1:0', localNode: node, clusterSecret: SECRET, log: quietLogger, nodeKey, cpuHasAesHw: true,
        probeIntervalMs: 50, deadAfterMs: 300, lookupHost: () => Promise.resolve(answer),
      });
      cleanups.push(() => t.close());
      return t;
    };
    const a = make('node-a', keyA);
    const b = make('node-b', keyB);
    const atB = seqCounter(2 * BATCH);
    await a.start(() => undefined);
    await b.start(atB.sink);
    const first = await relay('127.0.0.1', 0, a.port, b.port);
    a.setPeer(SLOT_OF_B, { node: 'node-b', endpoints: { udp: `node-b.test:${first.port}` }, transports: ['udp'], publicKey: publicKeyText(keyB.publicKey) });
    b.setPeer(SLOT_OF_A, { node: 'node-a', endpoints: { udp: `127.0.0.1:${a.port}` }, transports: ['udp'], publicKey: publicKeyText(keyA.publicKey) });
    const seen = (): { state: string; endpoint: string | undefined } | undefined => a.peerStatus().find((p) => p.slot === SLOT_OF_B);
    await waitFor('b up at a through relay 1', () => seen()?.state === 'up', 5_000);
    expect(seen()?.endpoint).toBe(`127.0.0.1:${first.port}`);
    const numbered = numberedBatch('10.244.1.2', '10.244.2.2');
    const before = numbered(0, BATCH);
    expect(a.send(SLOT_OF_B, before.batch, before.idx, BATCH)).toBe(0);
    await waitFor('the first batch at b', () => atB.received() === BATCH, 3_000);
    const handshakes = a.stats()['handshake.initsSent'];

    await relay('127.0.0.2', first.port, a.port, b.port);
    first.close();
    answer = '127.0.0.2';
    await waitFor('b up at a at 127.0.0.2', () => seen()?.state === 'up' && seen()?.endpoint === `127.0.0.2:${first.port}`, 3_000);
    const after = numbered(BATCH, BATCH);
    expect(a.send(SLOT_OF_B, after.batch, after.idx, BATCH)).toBe(0);
    await waitFor('the second batch at b', () => atB.received() === 2 * BATCH, 3_000);
    expect(a.stats()['handshake.initsSent']).toBe(handshakes);
    expect(handshakes).toBeGreaterThan(0);
  });
});
