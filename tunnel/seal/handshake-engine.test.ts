/**
 * Two engines back to back: a fake network between them (a queue, flushed by the test) and,
 * for each, a fake keypair table applying the addon's rules (native/src/seal.h): an initiator's
 * keypair is current at once (the old current, or a pending next, becomes previous); a
 * responder's is `next`, made current by the first data that opens with it. "Data" here is
 * the receiver index and the sealing key: it opens only where the receive key is the same.
 *
 *   node-a (slot 2 = b) --init--> node-b (slot 7 = a)
 *          <--response--
 *          --data (keepalive, as the transport sends after an initiator's install)-->
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { LogLine } from '../../test/recording-logger.js';
import { recordingLogger } from '../../test/recording-logger.js';
import { HandshakeEngine, RESPONDER_REKEY_DELAY_MS, SLOW_RETRY_MS } from './handshake-engine.js';
import type { HandshakeEngineOptions, HandshakeOutcome, HandshakeSource, KeypairInfo, KeypairInstall } from './handshake-engine.js';
import { createInitiation, derivePsk, noiseIdentity, noiseRemote, writeMacs } from './noise.js';
import {
  CAP_AES_HW,
  CIPHER_AES_256_GCM,
  CIPHER_CHACHA20_POLY1305,
  REJECT_AFTER_MS,
  REKEY_AFTER_MS,
  REKEY_ATTEMPT_MS,
  REKEY_TIMEOUT_MS,
  SEALED_INIT_LEN,
  SEALED_TYPE_INIT,
  SLOT_INDEX_MASK,
} from './sealed-format.js';
import { nextTimestamp } from './tai64n.js';
import { generateX25519 } from './x25519.js';
import type { X25519KeyPair } from './x25519.js';

const SECRET = Buffer.from('cluster secret for the engine tests');
const A_ADDR = '192.168.77.2:8285';
const B_ADDR = '192.168.77.3:8285';

interface Clock {
  now: number;
}

interface Keypair {
  localIndex: number;
  remoteIndex: number;
  sendKey: Buffer;
  recvKey: Buffer;
  cipher: number;
  createdAtMs: number;
  sendCounter: number;
}

interface SlotKeys {
  current?: Keypair | undefined;
  previous?: Keypair | undefined;
  next?: Keypair | undefined;
  confirmed: boolean;
  lastReceiveAtMs?: number;
}

/** A data message, as far as keys go. */
interface Sealed {
  receiverIndex: number;
  key: Buffer;
}

/** Stands in for the addon's keypair table. */
class FakeKeypairs {
  readonly slots = new Map<number, SlotKeys>();
  readonly installs: Array<{ slot: number; k: KeypairInstall }> = [];

  constructor(private readonly clock: Clock) {}

  install(slot: number, k: KeypairInstall): void {
    this.installs.push({ slot, k });
    const kp: Keypair = {
      localIndex: k.localIndex,
      remoteIndex: k.remoteIndex,
      sendKey: Buffer.from(k.sendKey),
      recvKey: Buffer.from(k.recvKey),
      cipher: k.cipher,
      createdAtMs: this.clock.now,
      sendCounter: 0,
    };
    const s = this.slots.get(slot) ?? { confirmed: false };
    if (k.initiator) {
      s.previous = s.next ?? s.current;
      s.next = undefined;
      s.current = kp;
      s.confirmed = false;
    } else {
      s.next = kp;
    }
    this.slots.set(slot, s);
  }

  info(slot: number): KeypairInfo | undefined {
    const s = this.slots.get(slot);
    if (s === undefined) return undefined;
    const age = s.current === undefined ? -1 : this.clock.now - s.current.createdAtMs;
    return {
      hasCurrent: s.current !== undefined && age < REJECT_AFTER_MS,
      currentAgeMs: age,
      sendCounter: s.current?.sendCounter ?? 0,
      hasNext: s.next !== undefined,
      lastReceiveAgeMs: s.lastReceiveAtMs === undefined ? -1 : this.clock.now - s.lastReceiveAtMs,
      confirmed: s.confirmed,
    };
  }

  seal(slot: number): Sealed | undefined {
    const s = this.slots.get(slot);
    const kp = s?.current;
    if (kp === undefined || this.clock.now - kp.createdAtMs >= REJECT_AFTER_MS) return undefined;
    kp.sendCounter++;
    return { receiverIndex: kp.remoteIndex, key: kp.sendKey };
  }

  /** The slot the message opened in, or undefined. */
  open(msg: Sealed | undefined): number | undefined {
    if (msg === undefined) return undefined;
    for (const [slot, s] of this.slots) {
      for (const kp of [s.current, s.previous, s.next]) {
        if (kp === undefined || kp.localIndex !== msg.receiverIndex) continue;
        if (!kp.recvKey.equals(msg.key)) return undefined;
        if (kp === s.next) {
          s.previous = s.current;
          s.current = kp;
          s.next = undefined;
        }
        if (kp === s.current) s.confirmed = true;
        s.lastReceiveAtMs = this.clock.now;
        return slot;
      }
    }
    return undefined;
  }

  currentIndex(slot: number): number | undefined {
    return this.slots.get(slot)?.current?.localIndex;
  }

  setCounter(slot: number, counter: number): void {
    const kp = this.slots.get(slot)?.current;
    if (kp !== undefined) kp.sendCounter = counter;
  }
}

interface Node {
  name: string;
  address: string;
  key: X25519KeyPair;
  engine: HandshakeEngine;
  table: FakeKeypairs;
  log: LogLine[];
  /** The slot this node gives the other node. */
  peerSlot: number;
}

interface Wire {
  from: string;
  to: string;
  msg: Buffer;
}

/** The network: messages queue until flushed; `drop` loses some. */
class Net {
  readonly queue: Array<() => void> = [];
  readonly sent: Wire[] = [];
  readonly nodes = new Map<string, Node>();
  drop: (w: Wire) => boolean = () => false;

  send(from: Node, to: Node, msg: Buffer): void {
    const w = { from: from.name, to: to.name, msg: Buffer.from(msg) };
    this.sent.push(w);
    if (this.drop(w)) return;
    this.queue.push(() => {
      to.engine.consume(w.msg, { slot: to.peerSlot, sourceText: from.address, reply: (m) => this.send(to, from, m) });
    });
  }

  flush(): void {
    for (let i = 0; this.queue.length > 0; i++) {
      if (i > 10_000) throw new Error('the network does not settle');
      this.queue.shift()?.();
    }
  }

  inits(from: string): Buffer[] {
    return this.sent.filter((w) => w.from === from && w.msg[1] === SEALED_TYPE_INIT).map((w) => w.msg);
  }
}

interface NodeSpec {
  name: string;
  address: string;
  peerSlot: number;
  key?: X25519KeyPair;
  secret?: Buffer;
  options?: Partial<HandshakeEngineOptions>;
}

function makeNode(net: Net, clock: Clock, spec: NodeSpec, other: () => Node): Node {
  const table = new FakeKeypairs(clock);
  const log: LogLine[] = [];
  const key = spec.key ?? generateX25519();
  const node: Node = {
    name: spec.name,
    address: spec.address,
    key,
    table,
    log,
    peerSlot: spec.peerSlot,
    engine: new HandshakeEngine({
      localKey: key,
      clusterSecret: spec.secret ?? SECRET,
      cpuHasAesHw: true,
      nowMs: () => clock.now,
      log: recordingLogger(log),
      io: {
        sendHandshake: (slot, message) => {
          if (slot === node.peerSlot) net.send(node, other(), message);
        },
        installKeypair: (slot, k) => {
          table.install(slot, k);
          // The transport's duty: data (a keepalive) under a new initiator's keypair.
          if (k.initiator) net.queue.push(() => other().table.open(table.seal(slot)));
        },
        keypairInfo: (slot) => table.info(slot),
      },
      ...spec.options,
    }),
  };
  net.nodes.set(spec.name, node);
  return node;
}

interface PairOptions {
  a?: Partial<NodeSpec>;
  b?: Partial<NodeSpec>;
}

function pair(options: PairOptions = {}) {
  const net = new Net();
  const clock: Clock = { now: 1_000_000 };
  // Tests may replace a node (a restart, a new key): messages and ticks go to the one here.
  const nodes: { a?: Node; b?: Node } = {};
  const a = makeNode(net, clock, { name: 'node-a', address: A_ADDR, peerSlot: 2, ...options.a }, () => nodes.b as Node);
  const b = makeNode(net, clock, { name: 'node-b', address: B_ADDR, peerSlot: 7, ...options.b }, () => nodes.a as Node);
  nodes.a = a;
  nodes.b = b;
  a.engine.setPeer(a.peerSlot, b.name, b.key.publicKey);
  b.engine.setPeer(b.peerSlot, a.name, a.key.publicKey);
  const tick = (): void => {
    nodes.a?.engine.tick();
    nodes.b?.engine.tick();
  };
  /** Advances the clock in `stepMs` steps, ticking both and flushing the network each time. */
  const run = (ms: number, stepMs = 250): void => {
    for (let t = 0; t < ms; t += stepMs) {
      clock.now += stepMs;
      tick();
      net.flush();
    }
  };
  const up = (): void => {
    a.engine.wantSession(a.peerSlot);
    tick();
    net.flush();
  };
  return { net, clock, nodes, a, b, tick, run, up };
}

/** Data from `from` to `to` opens. */
function flows(from: Node, to: Node): boolean {
  return to.table.open(from.table.seal(from.peerSlot)) === to.peerSlot;
}

describe('handshake engine', () => {
  it('brings a session up: keys match, indexes carry the slot, keys are wiped after install', () => {
    const { a, b, up } = pair();
    up();
    expect(a.engine.peerState(a.peerSlot)).toMatchObject({ state: 'up', reason: 'up', lastHandshakeAgeMs: 0, rttMs: 0 });
    expect(b.engine.peerState(b.peerSlot)).toMatchObject({ state: 'up', reason: 'up' });
    expect(a.engine.hasSession(a.peerSlot)).toBe(true);
    expect(flows(a, b)).toBe(true);
    expect(flows(b, a)).toBe(true);

    const [aInstall] = a.table.installs;
    const [bInstall] = b.table.installs;
    expect(aInstall?.k.initiator).toBe(true);
    expect(bInstall?.k.initiator).toBe(false);
    expect((aInstall?.k.localIndex ?? 0) & SLOT_INDEX_MASK).toBe(a.peerSlot);
    expect((bInstall?.k.localIndex ?? 0) & SLOT_INDEX_MASK).toBe(b.peerSlot);
    expect(aInstall?.k.remoteIndex).toBe(bInstall?.k.localIndex);
    expect(aInstall?.k.cipher).toBe(CIPHER_AES_256_GCM);
    expect(aInstall?.k.sendKey.every((byte) => byte === 0)).toBe(true);

    expect(a.engine.stats()).toMatchObject({ initsSent: 1, responsesReceived: 1, keypairsInstalled: 1 });
    expect(b.engine.stats()).toMatchObject({ initsReceived: 1, responsesSent: 1, keypairsInstalled: 1, cookiesSent: 0 });
    for (const node of [a, b]) {
      for (const [name, count] of Object.entries(node.engine.stats())) if (name.startsWith('refused.')) expect(count, name).toBe(0);
    }
  });

  it.each([
    [true, true, CIPHER_AES_256_GCM],
    [true, false, CIPHER_CHACHA20_POLY1305],
    [false, true, CIPHER_CHACHA20_POLY1305],
  ])('agrees on the cipher: AES in hardware at a %s, at b %s', (aHw, bHw, cipher) => {
    const { a, b, up } = pair({ a: { options: { cpuHasAesHw: aHw } }, b: { options: { cpuHasAesHw: bHw } } });
    up();
    expect(a.table.installs[0]?.k.cipher).toBe(cipher);
    expect(b.table.installs[0]?.k.cipher).toBe(cipher);
  });

  it('rekeys after rekeyAfterMessages; data sealed under the old keys still opens', () => {
    const { a, b, up, tick, net } = pair({ a: { options: { rekeyAfterMessages: 10 } } });
    up();
    const oldIndex = a.table.currentIndex(a.peerSlot);
    const inFlight = a.table.seal(a.peerSlot);
    a.table.setCounter(a.peerSlot, 10);
    tick();
    net.flush();
    expect(a.engine.stats().initsSent).toBe(2);
    expect(a.table.currentIndex(a.peerSlot)).not.toBe(oldIndex);
    expect(b.table.open(inFlight)).toBe(b.peerSlot);
    expect(flows(a, b)).toBe(true);
    expect(flows(b, a)).toBe(true);
    tick();
    expect(a.engine.stats().initsSent).toBe(2);
  });

  it('retries an unanswered rekey every REKEY_TIMEOUT_MS, not every tick', () => {
    const { a, up, net, run } = pair({ a: { options: { rekeyAfterMessages: 1 } } });
    up();
    net.drop = (w) => w.from === 'node-a';
    a.table.setCounter(a.peerSlot, 5);
    run(4 * REKEY_TIMEOUT_MS);
    expect(a.engine.stats().initsSent).toBe(1 + 4);
    expect(a.engine.peerState(a.peerSlot)?.state).toBe('up');
  });

  it('rekeys by time: the initiator after REKEY_AFTER_MS, old keys still open', () => {
    const { a, b, up, clock, tick, net } = pair();
    up();
    const inFlight = b.table.seal(b.peerSlot);
    clock.now += REKEY_AFTER_MS - 1_000;
    tick();
    expect(a.engine.stats().initsSent).toBe(1);
    clock.now += 1_000;
    tick();
    net.flush();
    expect(a.engine.stats().initsSent).toBe(2);
    expect(b.engine.stats().initsSent).toBe(0);
    expect(a.engine.stats().keypairsInstalled).toBe(2);
    expect(a.table.open(inFlight)).toBe(a.peerSlot);
    expect(flows(a, b)).toBe(true);
    expect(flows(b, a)).toBe(true);
  });

  it('rekeys from the responder side when the initiator does not', () => {
    const { b, up, clock, tick, net } = pair();
    up();
    net.drop = (w) => w.from === 'node-a';
    clock.now += REKEY_AFTER_MS + 1_000;
    tick();
    expect(b.engine.stats().initsSent).toBe(0);
    clock.now += RESPONDER_REKEY_DELAY_MS;
    tick();
    net.flush();
    expect(b.engine.stats().initsSent).toBe(1);
  });

  it('refuses a replayed initiation in the same process', () => {
    const { b, up, net } = pair();
    up();
    const [recorded] = net.inits('node-a');
    const replies: Buffer[] = [];
    const outcome = b.engine.consume(recorded as Buffer, { sourceText: '203.0.113.9:4444', reply: (m) => replies.push(m) });
    expect(outcome).toEqual({ accepted: false, reason: 'replayed' });
    expect(replies).toHaveLength(0);
    expect(b.table.installs).toHaveLength(1);
    expect(b.engine.stats()['refused.replayed']).toBe(1);
  });

  it('answers an initiation replayed to a restarted node with a `next` keypair that never becomes current', () => {
    const { a, b, nodes, up, net, clock, tick } = pair();
    up();
    const [recorded] = net.inits('node-a');
    const oldData = a.table.seal(a.peerSlot);

    // node-b restarts: same key, no memory; the attacker replays node-a's initiation.
    b.engine.close();
    const b2 = makeNode(net, clock, { name: 'node-b', address: B_ADDR, peerSlot: 7, key: b.key }, () => a);
    b2.engine.setPeer(b2.peerSlot, a.name, a.key.publicKey);
    nodes.b = b2;
    const toAttacker: Buffer[] = [];
    const outcome = b2.engine.consume(recorded as Buffer, { sourceText: '203.0.113.9:4444', reply: (m) => toAttacker.push(m) });
    expect(outcome).toEqual({ accepted: true, type: 'init', slot: b2.peerSlot, fresh: false });
    expect(toAttacker).toHaveLength(1);
    expect(b2.table.installs[0]?.k.initiator).toBe(false);
    expect(b2.table.info(b2.peerSlot)).toMatchObject({ hasCurrent: false, hasNext: true });

    // What the attacker has: old data of the session it recorded, and the response, to nobody.
    expect(b2.table.open(oldData)).toBeUndefined();
    expect(a.engine.consume(toAttacker[0] as Buffer, { sourceText: '203.0.113.9:4444', reply: () => undefined })).toEqual({
      accepted: false,
      reason: 'unexpected_response',
    });
    for (let i = 0; i < 8; i++) {
      clock.now += 1_000;
      b2.engine.tick();
    }
    expect(b2.table.info(b2.peerSlot)?.hasCurrent).toBe(false);
    expect(b2.engine.peerState(b2.peerSlot)).toMatchObject({ state: 'down' });

    // node-a's own next handshake (its session is gone on b2's side) still comes through.
    a.table.slots.clear();
    tick();
    net.flush();
    expect(b2.engine.peerState(b2.peerSlot)?.state).toBe('up');
    expect(flows(a, b2)).toBe(true);
    expect(flows(b2, a)).toBe(true);
  });

  it('refuses a flood of 10,000 forged initiations cheaply while a real peer gets through', () => {
    const { a, b, net, tick } = pair();
    const bPsk = derivePsk(SECRET);
    const bIdentity = noiseIdentity(b.key, bPsk);
    const stranger = noiseIdentity(generateX25519(), bPsk);
    const strangerToB = noiseRemote(stranger, b.key.publicKey);
    const cookieReplies: Buffer[] = [];
    const outcomes = new Map<string, number>();
    const flood = (from: number, to: number, make: (i: number) => Buffer): void => {
      for (let i = from; i < to; i++) {
        const source: HandshakeSource = {
          sourceText: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${1024 + i}`, // spoofed: one per message
          reply: (m) => cookieReplies.push(m),
        };
        const o: HandshakeOutcome = b.engine.consume(make(i), source);
        const key = o.accepted ? 'accepted' : o.reason;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
    };
    const randomInit = (): Buffer => {
      const msg = randomBytes(SEALED_INIT_LEN);
      msg.set([2, SEALED_TYPE_INIT, 0, 0]);
      return msg;
    };
    const withMac1 = (): Buffer => {
      const msg = randomInit();
      writeMacs(msg, bIdentity.mac1Key, undefined); // the forger holds the cluster secret
      return msg;
    };
    const fromStranger = (i: number): Buffer =>
      createInitiation(stranger, strangerToB, i, nextTimestamp(Date.now()), CAP_AES_HW, undefined).message;

    // The clock stands still: no token comes back during the flood.
    flood(0, 5_000, randomInit);
    flood(5_000, 7_000, withMac1);
    a.engine.wantSession(a.peerSlot);
    tick();
    net.flush();
    expect(a.engine.stats().cookiesReceived).toBe(1);
    expect(a.engine.peerState(a.peerSlot)?.state).toBe('handshaking');
    flood(7_000, 9_900, withMac1);
    flood(9_900, 10_000, fromStranger); // genuine initiations from a key node-b does not know
    tick(); // node-a retries at once, with the cookie's mac2
    net.flush();

    expect(a.engine.peerState(a.peerSlot)?.state).toBe('up');
    expect(b.engine.peerState(b.peerSlot)?.state).toBe('up');
    expect(flows(b, a)).toBe(true);

    const stats = b.engine.stats();
    expect(stats['refused.mac1']).toBe(5_000);
    // Only the limiter's burst (200) reached a Diffie-Hellman; the rest got cookies instead.
    expect((stats['refused.decrypt'] ?? 0) + (stats['refused.key_unknown'] ?? 0)).toBe(200);
    expect(stats['refused.rate_limited']).toBe(4_800 + 1); // and node-a's first initiation
    expect(stats.cookiesSent).toBe(4_800 + 1);
    expect(cookieReplies).toHaveLength(4_800);
    expect(stats.initsReceived).toBe(10_002);
    expect(stats.responsesSent).toBe(1);
    expect(outcomes.get('accepted')).toBeUndefined();
  });

  it('converges when both sides initiate at once', () => {
    const { a, b, tick, net, run } = pair();
    a.engine.wantSession(a.peerSlot);
    b.engine.wantSession(b.peerSlot);
    tick();
    expect(net.queue).toHaveLength(2);
    net.flush();
    expect(a.engine.peerState(a.peerSlot)?.state).toBe('up');
    expect(b.engine.peerState(b.peerSlot)?.state).toBe('up');
    expect(flows(a, b)).toBe(true);
    expect(flows(b, a)).toBe(true);
    run(20_000);
    expect(a.engine.stats().initsSent).toBe(1);
    expect(b.engine.stats().initsSent).toBe(1);
    expect(flows(a, b)).toBe(true);
    expect(flows(b, a)).toBe(true);
  });

  it('stops its own retries once the peer brings the session up', () => {
    const { a, b, net, run } = pair();
    net.drop = (w) => w.from === 'node-a' && w.msg[1] === SEALED_TYPE_INIT;
    a.engine.wantSession(a.peerSlot);
    b.engine.wantSession(b.peerSlot);
    run(1_000);
    expect(a.engine.peerState(a.peerSlot)?.state).toBe('up');
    const sent = a.engine.stats().initsSent;
    run(30_000);
    expect(a.engine.stats().initsSent).toBe(sent);
  });

  it('reports no_handshake_answer when the peer never answers, and retries slowly after REKEY_ATTEMPT_MS', () => {
    const { a, net, run } = pair();
    net.drop = (w) => w.from === 'node-a';
    a.engine.wantSession(a.peerSlot);
    run(1_000);
    expect(a.engine.peerState(a.peerSlot)).toEqual({ state: 'handshaking' });
    run(2 * REKEY_TIMEOUT_MS);
    expect(a.engine.peerState(a.peerSlot)).toEqual({ state: 'down', reason: 'no_handshake_answer' });
    const inits = (): number => a.engine.stats().initsSent ?? 0;
    expect(inits()).toBeGreaterThanOrEqual(2);
    run(REKEY_ATTEMPT_MS, 1_000);
    const beforeSlow = inits();
    run(2 * SLOW_RETRY_MS, 1_000);
    expect(inits() - beforeSlow).toBeLessThanOrEqual(2);
    // Right after a slow retry, data waiting brings the next one forward to REKEY_TIMEOUT_MS.
    const last = inits();
    while (inits() === last) run(1_000, 1_000);
    const afterSlowRetry = inits();
    a.engine.wantSession(a.peerSlot);
    run(REKEY_TIMEOUT_MS + 500);
    expect(inits()).toBe(afterSlowRetry + 1);
  });

  it('reports authentication_failed on both sides when their cluster secrets differ', () => {
    const { a, b, tick, net } = pair({ b: { secret: Buffer.from('not the secret node-a has, at all') } });
    a.engine.wantSession(a.peerSlot);
    b.engine.wantSession(b.peerSlot);
    tick();
    net.flush();
    expect(a.engine.peerState(a.peerSlot)).toEqual({ state: 'down', reason: 'authentication_failed' });
    expect(b.engine.peerState(b.peerSlot)).toEqual({ state: 'down', reason: 'authentication_failed' });
    expect(a.engine.stats()['refused.mac1']).toBe(1);
    expect(a.log).toContainEqual(
      expect.objectContaining({ level: 'warn', msg: 'sealed handshake refused', obj: { peer: 'node-b', reason: 'authentication_failed', remote: B_ADDR } }),
    );
  });

  it('reports key_unknown when the peer presents a key not configured here', () => {
    const { a, b, tick, net, clock } = pair();
    // node-a got a new key; node-b still has the old one.
    const a2 = makeNode(net, clock, { name: 'node-a', address: A_ADDR, peerSlot: 2 }, () => b);
    a2.engine.setPeer(a2.peerSlot, b.name, b.key.publicKey);
    b.engine.wantSession(b.peerSlot);
    a2.engine.wantSession(a2.peerSlot);
    a2.engine.tick();
    net.flush();
    expect(b.engine.stats()['refused.key_unknown']).toBe(1);
    expect(b.engine.peerState(b.peerSlot)).toEqual({ state: 'down', reason: 'key_unknown' });
    tick();
    expect(a.engine.stats().initsReceived).toBe(0);
  });

  it('refuses responses and cookie replies that answer nothing, and malformed messages', () => {
    const { a, up, net } = pair();
    up();
    const response = net.sent.find((w) => w.from === 'node-b')?.msg as Buffer;
    const source = { slot: a.peerSlot, sourceText: B_ADDR, reply: () => undefined };
    expect(a.engine.consume(response, source)).toEqual({ accepted: false, reason: 'unexpected_response' });
    const cookie = Buffer.alloc(52);
    cookie.set([2, 3, 0, 0]);
    expect(a.engine.consume(cookie, source)).toEqual({ accepted: false, reason: 'unexpected_response' });
    expect(a.engine.consume(Buffer.of(2, 1, 0, 0, 9), source)).toEqual({ accepted: false, reason: 'malformed' });
    expect(a.engine.stats()).toMatchObject({
      'refused.unexpected_response': 2,
      'refused.malformed': 1,
      responsesReceived: 2,
      cookiesReceived: 1,
      initsReceived: 1,
    });
  });

  it('refuses bad peers with typed errors', () => {
    const { a, b } = pair();
    const code = (f: () => void): unknown => {
      try {
        f();
      } catch (err: unknown) {
        return (err as { code?: unknown }).code;
      }
      return undefined;
    };
    expect(code(() => a.engine.setPeer(3, 'self', a.key.publicKey))).toBe('ERR_PODTUN_SEAL_PEER');
    expect(code(() => a.engine.setPeer(3, 'twin', b.key.publicKey))).toBe('ERR_PODTUN_SEAL_PEER');
    expect(code(() => a.engine.setPeer(3, 'short', Buffer.alloc(31)))).toBe('ERR_PODTUN_SEAL_PEER');
    expect(code(() => a.engine.setPeer(3, 'small order', Buffer.alloc(32)))).toBe('ERR_PODTUN_SEAL_PEER');
    expect(code(() => a.engine.setPeer(4096, 'far', generateX25519().publicKey))).toBe('ERR_PODTUN_SEAL_SLOT');
    expect(code(() => new HandshakeEngine({ localKey: a.key, clusterSecret: Buffer.alloc(8), cpuHasAesHw: false, io: fakeIo(), log: recordingLogger([]) }))).toBe(
      'ERR_PODTUN_SEAL_OPTIONS',
    );
  });

  it('forgets a removed peer and starts afresh when a slot gets a new key', () => {
    const { a, b, up, net } = pair();
    up();
    a.engine.removePeer(a.peerSlot);
    expect(a.engine.peerState(a.peerSlot)).toBeUndefined();
    expect(a.engine.hasSession(a.peerSlot)).toBe(false);
    const [recorded] = net.inits('node-a');
    const newKey = generateX25519();
    b.engine.setPeer(b.peerSlot, 'node-a', newKey.publicKey);
    expect(b.engine.consume(recorded as Buffer, { sourceText: A_ADDR, reply: () => undefined })).toEqual({ accepted: false, reason: 'key_unknown' });
  });

  it('closes safely twice and does nothing after', () => {
    const { a } = pair();
    a.engine.close();
    a.engine.close();
    a.engine.tick();
    a.engine.wantSession(a.peerSlot);
    expect(a.engine.consume(Buffer.alloc(SEALED_INIT_LEN), { sourceText: B_ADDR, reply: () => undefined })).toEqual({ accepted: false, reason: 'closed' });
    expect(a.engine.peerState(a.peerSlot)).toBeUndefined();
    expect(() => a.engine.setPeer(1, 'x', generateX25519().publicKey)).toThrow(/closed/);
  });
});

function fakeIo() {
  return { sendHandshake: () => undefined, installKeypair: () => undefined, keypairInfo: () => undefined };
}
