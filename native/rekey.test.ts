/**
 * Rekeys at the addon level: which keypairs a slot keeps (native/src/seal.h), judged by counting
 * that every valid message opens. Two NativeSealers A and B, each with a slot for the other, run
 * the handshake's message flow over two FIFO queues (the wire, one per direction):
 *
 *   initiator --INIT--> responder: installs the keypair as next (before answering)
 *   initiator <--RESP-- responder
 *   initiator: installs it as current, then seals a keepalive with it (the transport's duty)
 *
 * Data messages are sealed when sent and opened when delivered, so a message in flight across a
 * rekey meets the keypairs its receiver holds by then. The cases: crossed initiations (both
 * nodes initiate at once, as nodes started together do) then a rekey by either side; both
 * sides rekeying at once; and random schedules of all of it.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { SEAL_OPEN_EXPIRED, SEAL_OPEN_UNKNOWN_INDEX, addon } from './addon.js';
import type { NativeSealer, SealCipher } from './addon.js';
import { REJECT_AFTER_MS, SLOT_A, SLOT_B, installA, installB } from './test-sealed.js';
import type { Session } from './test-sealed.js';

const sealers: NativeSealer[] = [];
afterEach(() => {
  for (const s of sealers.splice(0)) s.close();
});

let serial = 0;
/** A session with fresh keys; indexes unique in this process (random ones could collide in the random runs). */
function session(cipher: SealCipher): Session {
  serial++;
  return { cipher, aToB: randomBytes(32), bToA: randomBytes(32), aIndex: ((serial << 12) | SLOT_B) >>> 0, bIndex: ((serial << 12) | SLOT_A) >>> 0 };
}

type Msg =
  | { kind: 'init'; s: Session }
  | { kind: 'resp'; s: Session }
  /** `after`: the sender had read the keepalive of the receiver's `after`-th own install; `ks`: a keepalive of the sender's `ks`-th. */
  | { kind: 'data'; bytes: Buffer; after: number; ks?: number };

/** One node's side of the pair: its sealer, its queue toward the peer, its handshake state. */
class Node {
  readonly out: Msg[] = [];
  peer!: Node;
  attempt: Session | undefined;
  inits = 0;
  /** Own initiator installs so far, and the newest of the peer's this node read a keepalive of. */
  installs = 0;
  seenPeerInstall = 0;
  /** Since its last own install, a message opened that the peer sent after reading its keepalive. */
  roundTrip = true;
  sent = 0;
  opened = 0;

  constructor(
    readonly name: 'A' | 'B',
    readonly sealer: NativeSealer,
    readonly cipher: SealCipher,
    readonly refused: string[],
    readonly log: string[],
  ) {}

  /** The slot this node holds the peer's keypairs in (and open() returns). */
  get slot(): number {
    return this.name === 'A' ? SLOT_B : SLOT_A;
  }

  get keypairs(): number {
    return this.sealer.keypairInfo(this.slot).keypairs;
  }

  install(s: Session, initiator: boolean): void {
    if (this.name === 'A') installA(this.sealer, s, initiator);
    else installB(this.sealer, s, initiator);
  }

  initiate(): Session {
    const s = session(this.cipher);
    this.attempt = s;
    this.inits++;
    this.out.push({ kind: 'init', s });
    this.log.push(`${this.name} INIT ${serial}`);
    return s;
  }

  /** A data message sealed with the current keypair, not yet sent; undefined without one. */
  seal(text: string): Buffer | undefined {
    const plain = Buffer.from(text);
    const dst = Buffer.alloc(plain.length + 32);
    const n = this.sealer.seal(this.slot, plain, 0, plain.length, dst, 0);
    return n < 0 ? undefined : dst;
  }

  /** Seals and queues a data message; false without a keypair to seal with. */
  send(text = `${this.name}${this.out.length}`, ks?: number): boolean {
    const bytes = this.seal(text);
    if (bytes === undefined) return false;
    this.sent++;
    this.out.push(ks === undefined ? { kind: 'data', bytes, after: this.seenPeerInstall } : { kind: 'data', bytes, after: this.seenPeerInstall, ks });
    this.log.push(`${this.name} seals ${text} to index ${bytes.readUInt32BE(4) >>> 12}`);
    return true;
  }

  /** Delivers the oldest `n` messages of this node's queue to the peer. */
  deliver(n = this.out.length): void {
    for (let i = 0; i < n; i++) {
      const m = this.out.shift();
      if (m === undefined) throw new Error(`${this.name}: nothing left to deliver`);
      this.peer.receive(m);
    }
  }

  /** Opens a copy of a message outside the queues (a late one); returns open()'s result. */
  open(bytes: Buffer | undefined): number {
    if (bytes === undefined) throw new Error('nothing sealed');
    return this.sealer.open(Buffer.from(bytes), 0, bytes.length);
  }

  private receive(m: Msg): void {
    if (m.kind === 'init') {
      this.install(m.s, false);
      this.out.push({ kind: 'resp', s: m.s });
      this.log.push(`${this.name} answers, next ${m.s.aIndex >>> 12}`);
    } else if (m.kind === 'resp') {
      if (this.attempt !== m.s) {
        this.log.push(`${this.name} ignores RESP ${m.s.aIndex >>> 12}`);
        return;
      }
      this.attempt = undefined;
      this.install(m.s, true);
      this.installs++;
      this.roundTrip = false;
      this.log.push(`${this.name} installs ${m.s.aIndex >>> 12} as current`);
      this.send(`${this.name} keepalive`, this.installs);
    } else {
      const code = this.sealer.open(m.bytes, 0, m.bytes.length); // in place: the plaintext at 16
      const text = code === this.slot ? m.bytes.subarray(16, m.bytes.length - 16).toString() : `a message of ${this.peer.name}`;
      this.log.push(`${this.name} opens ${text}: ${code}`);
      if (code !== this.slot) this.refused.push(`${this.name} refused ${text} (index ${m.bytes.readUInt32BE(4) >>> 12}): ${code}`);
      else this.opened++;
      if (m.ks !== undefined) this.seenPeerInstall = m.ks;
      if (m.after === this.installs) this.roundTrip = true;
    }
  }
}

/** A and B over empty queues. */
function pair(cipher: SealCipher): { a: Node; b: Node; refused: string[]; log: string[] } {
  const refused: string[] = [];
  const log: string[] = [];
  const sa = addon.openSealer();
  const sb = addon.openSealer();
  sealers.push(sa, sb);
  const a = new Node('A', sa, cipher, refused, log);
  const b = new Node('B', sb, cipher, refused, log);
  a.peer = b;
  b.peer = a;
  return { a, b, refused, log };
}

/** x initiates, y answers, x installs and its keepalive makes the keypair y's current. */
function handshake(x: Node, y: Node): Session {
  const s = x.initiate();
  x.deliver(); // INIT: y's next
  y.deliver(); // RESP: x's current, keepalive queued
  x.deliver(); // keepalive: y's current
  return s;
}

/**
 * Both initiate at once and each answers the other before its own answer arrives: each seals
 * with the keypair it initiated and holds the other's as previous.
 */
function crossed(a: Node, b: Node): { kA: Session; kB: Session } {
  const kA = a.initiate();
  const kB = b.initiate();
  a.deliver(); // INIT kA: B's next
  b.deliver(); // INIT kB: A's next
  a.deliver(); // RESP kB: B's current kB, previous kA
  b.deliver(); // RESP kA: A's current kA, previous kB
  a.deliver();
  b.deliver(); // the keepalives open with the previous keypairs
  return { kA, kB };
}

/** Every data message either sent was delivered and opened. */
function expectAllOpened(a: Node, b: Node, refused: string[]): void {
  expect(refused).toEqual([]);
  expect([a.out.length, b.out.length]).toEqual([0, 0]);
  expect([a.opened, b.opened]).toEqual([b.sent, a.sent]);
}

/** The receiver index of a sealed message, as the serial of its session. */
const sessionOf = (bytes: Buffer | undefined): number => (bytes?.readUInt32BE(4) ?? 0) >>> 12;
const serialOf = (s: Session): number => s.aIndex >>> 12;

describe.each([0, 1] as const)('rekeys between two sealers, cipher %d', (cipher) => {
  it.each(['A', 'B'] as const)('crossed initiations, then %s rekeys: the other keeps sealing with its own keypair until the new one reaches it, and all of it opens', (who) => {
    const { a, b, refused } = pair(cipher);
    const { kA, kB } = crossed(a, b);
    const [x, y, kY] = who === 'A' ? [a, b, kB] : [b, a, kA];
    expect(sessionOf(y.seal('y seals its own'))).toBe(serialOf(kY));
    expect([x.keypairs, y.keypairs]).toEqual([2, 2]);

    for (let i = 0; i < 3; i++) y.send(); // in flight across x's rekey
    const kC = x.initiate();
    x.deliver(); // INIT kC: y's next, RESP queued behind y's data
    for (let i = 0; i < 3; i++) y.send(); // still with kY: y has no message under kC yet
    y.deliver(4); // y's data (opens with x's previous), then RESP: x's current kC; kY is retired
    expect(x.sealer.keypairInfo(x.slot)).toMatchObject({ hasCurrent: true, hasNext: false, sendCounter: 1, keypairs: 3 });
    const late = y.seal('late, sealed with the old keypair');
    expect(sessionOf(late)).toBe(serialOf(kY));
    y.deliver(); // y's data of that round trip: kY was x's previous, now kept (WireGuard wipes it)
    x.deliver(); // x's keepalive under kC: y's next becomes current
    expect(y.send('now kC')).toBe(true);
    const now = y.out.at(-1);
    expect(now?.kind === 'data' && sessionOf(now.bytes)).toBe(serialOf(kC));
    y.deliver();
    expectAllOpened(a, b, refused);
    expect(x.opened).toBe(1 + 3 + 3 + 1);

    // kY stays until x's next rekey: a message reordered behind the switch still opens (and, the
    // peer having moved on, does not make kY `last` again) ...
    expect(x.open(late)).toBe(x.slot);
    const later = y.seal('later');
    handshake(x, y);
    // ... which wipes it: the peer moved on (kC opened since).
    expect(x.keypairs).toBe(2);
    expect(x.open(late)).toBe(SEAL_OPEN_UNKNOWN_INDEX);
    expect(x.open(later)).toBe(x.slot); // kC: previous now
    expect(refused).toEqual([]);
  });

  it('crossed initiations, then both rekey at once: each answers the other first, then installs its own', () => {
    const { a, b, refused } = pair(cipher);
    crossed(a, b); // A: current kA, previous kB; B: current kB, previous kA
    a.send();
    b.send();
    a.initiate(); // kC
    b.initiate(); // kD
    a.send();
    b.send();
    a.deliver(); // B: data (kA), INIT kC: next, data; RESP kC queued behind B's data
    b.deliver(); // A: data (kB), INIT kD: next, data, RESP kC: current kC, previous kD, kept kB
    expect(a.sealer.keypairInfo(a.slot)).toMatchObject({ hasNext: false, keypairs: 3 });
    a.send(); // kC
    b.send(); // still kB
    a.deliver(); // B: RESP kD: current kD, previous kC, kept kA; A's keepalive and data (kC)
    expect(b.sealer.keypairInfo(b.slot)).toMatchObject({ hasNext: false, keypairs: 3 });
    b.deliver(); // A: data (kB: kept), B's keepalive (kD): crossed again
    for (let i = 0; i < 3; i++) {
      a.send();
      b.send();
      a.deliver();
      b.deliver();
    }
    expectAllOpened(a, b, refused);
  });

  it("both rekey at once from one side's session, answers crossing: the old current, the peer's sender, is kept", () => {
    const { a, b, refused } = pair(cipher);
    handshake(a, b); // A initiated k1; B made it current
    a.send();
    b.send();
    a.initiate(); // kC
    b.initiate(); // kD
    a.send(); // still k1
    b.send();
    a.deliver(); // B: data (k1), INIT kC: next, data; RESP kC queued behind B's data
    b.deliver(); // A: data (k1), INIT kD: next, data, RESP kC: current kC, previous kD, kept k1
    expect(a.keypairs).toBe(3);
    b.send(); // still k1
    a.send(); // kC
    a.deliver(); // B: RESP kD: current kD, previous kC, kept k1; A's keepalive and data (kC)
    expect(b.keypairs).toBe(3);
    b.deliver(); // A: data (k1: kept), B's keepalive (kD, previous): crossed now
    for (let i = 0; i < 3; i++) {
      a.send();
      b.send();
      a.deliver();
      b.deliver();
    }
    expectAllOpened(a, b, refused);
  });

  it('both rekey at once from one side\'s session, one answer first', () => {
    const { a, b, refused } = pair(cipher);
    handshake(a, b);
    a.send();
    b.send();
    a.initiate();
    a.deliver(); // B: data, INIT kC: next
    b.initiate(); // behind B's RESP kC
    b.send();
    b.deliver(); // A: data, RESP kC: current kC (k1 previous), INIT kD: next, data (k1)
    b.send();
    a.send();
    a.deliver(); // B: keepalive kC: current (k1 previous), RESP kD: current kD, kC previous, data
    b.deliver(); // A: data (k1), keepalive kD: next becomes current, kC previous, k1 kept
    for (let i = 0; i < 3; i++) {
      a.send();
      b.send();
      a.deliver();
      b.deliver();
    }
    expectAllOpened(a, b, refused);
    for (const n of [a, b]) expect(n.keypairs).toBeLessThanOrEqual(4);
  });

  it('expired, a kept keypair refuses as expired and goes at the next rekey', () => {
    const { a, b, refused } = pair(cipher);
    crossed(a, b);
    a.initiate();
    a.deliver();
    b.deliver(); // A: current kC, previous kA, kept kB
    expect(a.keypairs).toBe(3);
    const old = b.seal('old'); // kB
    a.deliver(); // A's keepalive: B seals with kC from now on (nothing yet)
    addon.ageKeypairsForTest(a.sealer, a.slot, REJECT_AFTER_MS);
    addon.ageKeypairsForTest(b.sealer, b.slot, REJECT_AFTER_MS);
    expect(a.open(old)).toBe(SEAL_OPEN_EXPIRED);
    handshake(a, b); // kB is still `last`, but expired: wiped
    expect(a.keypairs).toBe(2);
    expect(a.open(old)).toBe(SEAL_OPEN_UNKNOWN_INDEX);
    expect(refused).toEqual([]);
  });

  /*
   * Random schedules over the FIFO wires: initiations (both sides, crossing or not), retries
   * (a new initiation replaces the outstanding one; its late answer is ignored), data both ways
   * and deliveries in any interleaving. One assumption, the engine's: a node initiates again only
   * after a round trip since its own last install (it opened a message the peer sent after
   * reading that install's keepalive); its rekey intervals (REKEY_AFTER_MS, rekeyAfterMessages)
   * are far longer than a round trip. Without it a node could install twice before any message
   * from the peer under the first install arrives, which no rule of a few keypairs follows.
   * WireGuard's rule (wipe previous on an initiator's install) loses messages in about half
   * of these runs.
   */
  it('random schedules of crossed and simultaneous rekeys, retries and data: no valid message refused, at most 4 keypairs', () => {
    const RUNS = 500;
    let seed = 0x9e3779b9 + cipher;
    const rand = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const { a, b, refused, log } = pair(cipher);
    let maxKeypairs = 0;
    let runsWithFour = 0;
    let opened = 0;
    for (let run = 0; run < RUNS; run++) {
      for (const n of [a, b]) {
        n.sealer.clearKeypairs(n.slot);
        n.out.length = 0;
        n.attempt = undefined;
        n.inits = n.installs = n.seenPeerInstall = n.opened = n.sent = 0;
        n.roundTrip = true;
      }
      log.length = 0;
      const maxInits = 1 + rand(5);
      let four = false;
      for (let step = 0; step < 200; step++) {
        const events: (() => void)[] = [];
        for (const n of [a, b]) {
          if (n.sealer.keypairInfo(n.slot).hasCurrent) events.push(() => n.send());
          if (n.inits < maxInits && (n.attempt === undefined ? n.roundTrip : rand(4) === 0)) events.push(() => n.initiate());
          if (n.out.length > 0) events.push(() => n.deliver(1), () => n.deliver(1));
        }
        if (events.length === 0) break;
        events[rand(events.length)]?.();
        const k = Math.max(a.keypairs, b.keypairs);
        maxKeypairs = Math.max(maxKeypairs, k);
        if (k === 4) four = true;
        if (refused.length > 0) break;
      }
      opened += a.opened + b.opened;
      if (four) runsWithFour++;
      expect(refused, `run ${run}:\n${log.join('\n')}`).toEqual([]);
    }
    expect(maxKeypairs).toBe(4);
    expect(runsWithFour).toBeGreaterThan(0);
    expect(opened).toBeGreaterThan(RUNS * 20);
    expect(a.sealer.stats()['sealUnknownIndex']).toBe(0);
    expect(b.sealer.stats()['sealUnknownIndex']).toBe(0);
  });
});
