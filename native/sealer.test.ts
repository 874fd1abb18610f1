/**
 * NativeSealer: the sealed data plane without a socket (one WebSocket message = one transport
 * data message). Two sealers hold one session crosswise:
 *
 *   A (slot 5 = B) --seal--> bytes --open--> B (slot 9 = A)
 *
 * The bytes are checked against node:crypto (test-sealed.ts, independent of the C code), and
 * against a sealed NativeUdp holding the same keys: one format, one keypair code.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  SEAL_OPEN_AUTH_FAILED,
  SEAL_OPEN_EXPIRED,
  SEAL_OPEN_NOT_DATA,
  SEAL_OPEN_REPLAYED,
  SEAL_OPEN_UNKNOWN_INDEX,
  addon,
} from './addon.js';
import type { NativeSealer, NativeUdp, SealCipher } from './addon.js';
import {
  Inbox,
  OVERHEAD,
  REJECT_AFTER_MESSAGES,
  REJECT_AFTER_MS,
  SLOT_A,
  SLOT_B,
  WINDOW,
  indexFor,
  installA,
  installB,
  newSession,
  openJs,
  sealJs,
} from './test-sealed.js';
import type { Session } from './test-sealed.js';

const MiB = 1 << 20;
const GUARD = 0xee;

const opened: { close(): void }[] = [];

function openSealer(): NativeSealer {
  const s = addon.openSealer();
  opened.push(s);
  return s;
}

afterEach(() => {
  for (const o of opened.splice(0)) o.close();
});

/** A and B with one session installed both ways (both as initiators: current at once). */
function pair(cipher: SealCipher): { a: NativeSealer; b: NativeSealer; s: Session } {
  const a = openSealer();
  const b = openSealer();
  const s = newSession(cipher);
  installA(a, s);
  installB(b, s);
  return { a, b, s };
}

/** Seals `plain` from `from`'s `slot` into a fresh buffer at a ragged offset; returns a copy of the message. */
function seal(from: NativeSealer, slot: number, plain: Buffer): Buffer {
  const dstOff = 7;
  const dst = Buffer.alloc(dstOff + plain.length + OVERHEAD + 5, GUARD);
  const n = from.seal(slot, plain, 0, plain.length, dst, dstOff);
  expect(n).toBe(plain.length + OVERHEAD);
  expect(dst.subarray(0, dstOff).every((b) => b === GUARD)).toBe(true);
  expect(dst.subarray(dstOff + n).every((b) => b === GUARD)).toBe(true);
  return Buffer.from(dst.subarray(dstOff, dstOff + n));
}

/** Opens a copy of `msg` (open works in place) at a ragged offset: { code, plaintext }. */
function open(to: NativeSealer, msg: Buffer): { code: number; plaintext: Buffer } {
  const off = 3;
  const buf = Buffer.alloc(off + msg.length + 2, GUARD);
  msg.copy(buf, off);
  const code = to.open(buf, off, msg.length);
  return { code, plaintext: Buffer.from(buf.subarray(off + 16, off + msg.length - 16)) };
}

function expectOpens(to: NativeSealer, msg: Buffer, slot: number, plain: Buffer): void {
  const got = open(to, msg);
  expect(got.code).toBe(slot);
  expect(got.plaintext.equals(plain)).toBe(true);
}

describe.each([0, 1] as const)('NativeSealer, cipher %d', (cipher) => {
  it('round-trips 0 B, 1 B, 1500 B, 64 KiB and 4 MiB, laid out as sealed-format.ts, opened by node:crypto too', () => {
    const { a, b, s } = pair(cipher);
    const sizes = [0, 1, 1500, 65536, 4 * MiB];
    sizes.forEach((size, i) => {
      const plain = randomBytes(size);
      const msg = seal(a, SLOT_B, plain);
      expect([...msg.subarray(0, 4)]).toEqual([2, 4, 0, 0]);
      expect(msg.readUInt32BE(4)).toBe(s.bIndex);
      expect(msg.readBigUInt64LE(8)).toBe(BigInt(i));
      if (size >= 64) expect(msg.includes(plain.subarray(0, 64))).toBe(false);
      expect(openJs(cipher, s.aToB, msg).equals(plain)).toBe(true);
      expectOpens(b, msg, SLOT_A, plain);
    });
    // The other way, and a message sealed by node:crypto.
    const reply = randomBytes(3000);
    expectOpens(a, seal(b, SLOT_A, reply), SLOT_B, reply);
    const fromJs = randomBytes(70_000);
    expectOpens(b, sealJs(cipher, s.aToB, s.bIndex, 1000n, fromJs), SLOT_A, fromJs);
    expect(a.stats()).toMatchObject({ sealSealed: sizes.length, sealOpened: 1 });
    expect(b.stats()).toMatchObject({ sealSealed: 1, sealOpened: sizes.length + 1, sealAuthFailed: 0 });
    expect(a.keypairInfo(SLOT_B)).toMatchObject({ hasCurrent: true, sendCounter: sizes.length, confirmed: true });
    expect(b.keypairInfo(SLOT_A).lastReceiveAgeMs).toBeGreaterThanOrEqual(0);
  });

  it('seals in place (plaintext at dstOff + 16 of the same memory) and refuses any other overlap', () => {
    const { a, b, s } = pair(cipher);
    const plain = randomBytes(100_000);
    const buf = Buffer.alloc(16 + plain.length + 16);
    plain.copy(buf, 16);
    expect(a.seal(SLOT_B, buf, 16, plain.length, buf, 0)).toBe(plain.length + OVERHEAD);
    expect(openJs(cipher, s.aToB, buf).equals(plain)).toBe(true);
    expectOpens(b, buf, SLOT_A, plain);
    // A view of the same memory counts as the same memory.
    const view = buf.subarray(16);
    expect(() => a.seal(SLOT_B, buf, 0, 1000, buf, 0)).toThrow(RangeError);
    expect(() => a.seal(SLOT_B, buf, 8, 1000, buf, 0)).toThrow(RangeError);
    expect(() => a.seal(SLOT_B, view, 0, 1000, buf, 20)).toThrow(RangeError);
    expect(() => a.seal(SLOT_B, buf, 0, 1000, buf, 1000 - OVERHEAD)).toThrow(RangeError);
    expect(a.seal(SLOT_B, buf, 0, 1000, buf, 1000)).toBe(1000 + OVERHEAD); // adjacent: no overlap
    expect(a.stats()['sealSealed']).toBe(2);
  });

  it('refuses forged, bit-flipped, truncated, unknown-index, replayed, expired and non-data messages, each counted', () => {
    const { a, b, s } = pair(cipher);
    let counter = 100n; // apart from A's own counters (0, 1, ...)
    const valid = (text: string): Buffer => sealJs(cipher, s.aToB, s.bIndex, counter++, Buffer.from(text));
    const codes = new Map<number, number>();
    const refused = (msg: Buffer, code: number): void => {
      expect(open(b, msg).code).toBe(code);
      codes.set(code, (codes.get(code) ?? 0) + 1);
    };

    const first = valid('first');
    expectOpens(b, first, SLOT_A, Buffer.from('first'));

    const forged = valid('forged');
    randomBytes(16).copy(forged, forged.length - 16);
    refused(forged, SEAL_OPEN_AUTH_FAILED);

    const template = seal(a, SLOT_B, Buffer.from('bit flips everywhere'));
    for (let j = 0; j < template.length; j++) {
      const d = Buffer.from(template);
      d[j] = (d[j] ?? 0) ^ (1 << (j % 8));
      refused(d, j < 2 ? SEAL_OPEN_NOT_DATA : j >= 4 && j < 8 ? SEAL_OPEN_UNKNOWN_INDEX : SEAL_OPEN_AUTH_FAILED);
    }
    refused(first.subarray(0, OVERHEAD - 1), SEAL_OPEN_AUTH_FAILED);
    refused(first.subarray(0, first.length - 1), SEAL_OPEN_AUTH_FAILED);
    refused(Buffer.from([2, 4]), SEAL_OPEN_AUTH_FAILED);
    refused(sealJs(cipher, s.aToB, indexFor(SLOT_A), counter++, Buffer.from('other index')), SEAL_OPEN_UNKNOWN_INDEX);
    refused(sealJs(cipher, s.aToB, indexFor(77), counter++, Buffer.from('empty slot')), SEAL_OPEN_UNKNOWN_INDEX);
    refused(first, SEAL_OPEN_REPLAYED);
    refused(Buffer.alloc(0), SEAL_OPEN_NOT_DATA);
    refused(Buffer.from([2]), SEAL_OPEN_NOT_DATA);
    refused(Buffer.from([1, 1, 0, 0, 9, 9, 9]), SEAL_OPEN_NOT_DATA); // the unsealed format
    refused(Buffer.concat([Buffer.from([2, 1]), first.subarray(2)]), SEAL_OPEN_NOT_DATA); // a handshake type
    // The template (a valid message) was never accepted: every flip left the state alone.
    expectOpens(b, template, SLOT_A, Buffer.from('bit flips everywhere'));
    expectOpens(b, valid('after'), SLOT_A, Buffer.from('after'));

    // Expired: neither opens nor seals; a fresh keypair opens again.
    addon.ageKeypairsForTest(b, SLOT_A, REJECT_AFTER_MS);
    refused(valid('too old'), SEAL_OPEN_EXPIRED);
    addon.ageKeypairsForTest(a, SLOT_B, REJECT_AFTER_MS);
    expect(a.keypairInfo(SLOT_B).hasCurrent).toBe(false);
    expect(a.seal(SLOT_B, Buffer.alloc(10), 0, 10, Buffer.alloc(100), 0)).toBe(-1);
    const fresh = newSession(cipher);
    installB(b, fresh);
    expectOpens(b, sealJs(cipher, fresh.aToB, fresh.bIndex, 0n, Buffer.from('fresh')), SLOT_A, Buffer.from('fresh'));

    expect(b.stats()).toEqual({
      sealNotData: codes.get(SEAL_OPEN_NOT_DATA),
      errorDrops: 0,
      noKeypairDrops: 0,
      sealSealed: 0,
      sealOpened: 4,
      sealUnknownIndex: codes.get(SEAL_OPEN_UNKNOWN_INDEX),
      sealAuthFailed: codes.get(SEAL_OPEN_AUTH_FAILED),
      sealReplayed: 1,
      sealExpired: 1,
    });
    expect(codes.get(SEAL_OPEN_UNKNOWN_INDEX)).toBe(4 + 2);
    expect(a.stats()).toMatchObject({ noKeypairDrops: 1, sealSealed: 1 });
  });

  it('keeps a replay window: out of order accepted once, too far behind rejected', () => {
    const { b, s } = pair(cipher);
    const sequence: [bigint, boolean][] = [
      [10_000n, true],
      [9_000n, true],
      [9_000n, false],
      [10_000n - BigInt(WINDOW), true],
      [10_000n - BigInt(WINDOW) - 1n, false],
      [10_001n, true],
      [0n, false],
      [30_000n, true],
      [10_001n, false],
    ];
    for (const [ctr, ok] of sequence) {
      const text = Buffer.from(`#${ctr}`);
      const got = open(b, sealJs(cipher, s.aToB, s.bIndex, ctr, text));
      expect([ctr, got.code]).toEqual([ctr, ok ? SLOT_A : SEAL_OPEN_REPLAYED]);
    }
    expect(b.stats()['sealReplayed']).toBe(sequence.filter(([, ok]) => !ok).length);
  });

  it("promotes a responder's next keypair on the first message that opens with it", () => {
    const { a, b, s } = pair(cipher);
    expectOpens(b, seal(a, SLOT_B, Buffer.from('k1')), SLOT_A, Buffer.from('k1'));

    const s2 = newSession(cipher);
    installA(a, s2, true); // A initiated: seals with s2 at once, s opens as previous
    installB(b, s2, false); // B responded: s2 waits as next
    expect(b.keypairInfo(SLOT_A)).toMatchObject({ hasCurrent: true, hasNext: true, sendCounter: 0, confirmed: true });

    const old = seal(b, SLOT_A, Buffer.from('still k1'));
    expect(old.readUInt32BE(4)).toBe(s.aIndex);
    expectOpens(a, old, SLOT_B, Buffer.from('still k1')); // A holds s as previous

    const k2 = seal(a, SLOT_B, Buffer.from('k2'));
    expect(k2.readUInt32BE(4)).toBe(s2.bIndex);
    expect(k2.readBigUInt64LE(8)).toBe(0n);
    expectOpens(b, k2, SLOT_A, Buffer.from('k2'));
    expect(b.keypairInfo(SLOT_A)).toMatchObject({ hasCurrent: true, hasNext: false, sendCounter: 0, confirmed: true });

    const neu = seal(b, SLOT_A, Buffer.from('now k2'));
    expect(neu.readUInt32BE(4)).toBe(s2.aIndex);
    expect(neu.readBigUInt64LE(8)).toBe(0n);
    expect(openJs(cipher, s2.bToA, neu).toString()).toBe('now k2');
    expectOpens(a, neu, SLOT_B, Buffer.from('now k2'));

    // The old keypair is B's previous now: a late message sealed with it still opens.
    expectOpens(b, sealJs(cipher, s.aToB, s.bIndex, 500n, Buffer.from('late k1')), SLOT_A, Buffer.from('late k1'));
    expect(b.keypairInfo(SLOT_A).sendCounter).toBe(1); // opening with previous does not demote current
  });

  it('stops sealing at REJECT_AFTER_MESSAGES and rejects counters past it', () => {
    const { a, b, s } = pair(cipher);
    addon.setSendCounterForTest(a, SLOT_B, REJECT_AFTER_MESSAGES - 1n);
    const last = seal(a, SLOT_B, Buffer.from('last'));
    expect(last.readBigUInt64LE(8)).toBe(REJECT_AFTER_MESSAGES - 1n);
    expect(a.keypairInfo(SLOT_B).hasCurrent).toBe(false);
    expect(a.seal(SLOT_B, Buffer.from('over'), 0, 4, Buffer.alloc(64), 0)).toBe(-1);
    expect(a.stats()['noKeypairDrops']).toBe(1);
    expectOpens(b, last, SLOT_A, Buffer.from('last'));
    expect(open(b, sealJs(cipher, s.aToB, s.bIndex, REJECT_AFTER_MESSAGES, Buffer.from('over'))).code).toBe(SEAL_OPEN_EXPIRED);
    expect(b.stats()['sealExpired']).toBe(1);
  });
});

describe.each([0, 1] as const)('NativeSealer and a sealed NativeUdp, cipher %d', (cipher) => {
  const udps: NativeUdp[] = [];
  afterEach(() => {
    for (const u of udps.splice(0)) u.close();
  });
  function openUdp(sealed: boolean): NativeUdp {
    const u = addon.openUdp({ host: '127.0.0.1', port: 0, recvBufferBytes: 1 << 20, sendBufferBytes: 1 << 20, sealed });
    udps.push(u);
    return u;
  }

  it('speak one format: what the socket seals opens in the sealer, and the other way', async () => {
    const a = openUdp(true); // A's side on UDP
    const capture = openUdp(false); // stands for the wire
    const b = openSealer(); // B's side: a sealer
    const s = newSession(cipher);
    installA(a, s);
    installB(b, s);
    a.setPeer(SLOT_B, '127.0.0.1', capture.port);
    const wire = new Inbox(capture);
    const aInbox = new Inbox(a);

    const plain = randomBytes(1200);
    expect(a.sealTo(SLOT_B, plain, plain.length)).toBe(true);
    expect(a.sealTo(SLOT_B, Buffer.alloc(0), 0)).toBe(true); // keepalive
    const [d0, d1] = await wire.take(2);
    expectOpens(b, d0?.data ?? Buffer.alloc(0), SLOT_A, plain);
    expectOpens(b, d1?.data ?? Buffer.alloc(0), SLOT_A, Buffer.alloc(0));
    expect(open(b, d0?.data ?? Buffer.alloc(0)).code).toBe(SEAL_OPEN_REPLAYED);

    const reply = randomBytes(900);
    const msg = seal(b, SLOT_A, reply);
    expect(capture.sendToAddress('127.0.0.1', a.port, msg, msg.length)).toBe(true);
    const [got] = await aInbox.take(1);
    expect(got).toMatchObject({ slot: SLOT_B, data: reply });
    expect(a.stats()).toMatchObject({ sealSealed: 2, sealOpened: 1 });
    expect(b.stats()).toMatchObject({ sealSealed: 1, sealOpened: 2, sealReplayed: 1 });
  });
});

describe('NativeSealer', () => {
  it('seals nothing without a keypair that may seal, and counts it', () => {
    const a = openSealer();
    const dst = Buffer.alloc(64);
    expect(a.seal(SLOT_B, Buffer.alloc(1), 0, 1, dst, 0)).toBe(-1);
    expect(a.keypairInfo(SLOT_B)).toEqual({
      hasCurrent: false, currentAgeMs: -1, sendCounter: 0, hasNext: false, lastReceiveAgeMs: -1, confirmed: false, keypairs: 0,
    });
    installA(a, newSession(0), false); // a next alone does not seal
    expect(a.keypairInfo(SLOT_B)).toMatchObject({ hasCurrent: false, hasNext: true });
    expect(a.seal(SLOT_B, Buffer.alloc(1), 0, 1, dst, 0)).toBe(-1);
    installA(a, newSession(1));
    expect(a.seal(SLOT_B, Buffer.alloc(1), 0, 1, dst, 0)).toBe(1 + OVERHEAD);
    a.clearKeypairs(SLOT_B);
    expect(a.seal(SLOT_B, Buffer.alloc(1), 0, 1, dst, 0)).toBe(-1);
    expect(a.stats()).toMatchObject({ noKeypairDrops: 3, sealSealed: 1 });
  });

  it('rejects bad arguments with RangeError, TypeError or a stable code', () => {
    const a = openSealer();
    const key = randomBytes(32);
    const src = Buffer.alloc(100);
    a.installKeypair(1, 0x1001, 2, key, key, 1, true);
    expect(() => a.seal(1, src, 0, 101, Buffer.alloc(200), 0)).toThrow(RangeError);
    expect(() => a.seal(1, src, 50, 51, Buffer.alloc(200), 0)).toThrow(RangeError);
    expect(() => a.seal(1, src, 0, 100, Buffer.alloc(131), 0)).toThrow(RangeError);
    expect(() => a.seal(1, src, 0, 100, Buffer.alloc(200), 69)).toThrow(RangeError);
    expect(a.seal(1, src, 0, 100, Buffer.alloc(200), 68)).toBe(132);
    expect(() => a.seal(4096, src, 0, 1, Buffer.alloc(200), 0)).toThrow(RangeError);
    expect(() => a.seal(1, src, -1, 1, Buffer.alloc(200), 0)).toThrow(RangeError);
    expect(() => a.seal(1, 'text' as unknown as Buffer, 0, 1, Buffer.alloc(200), 0)).toThrow(TypeError);
    expect(() => a.open(src, 90, 11)).toThrow(RangeError);
    expect(() => a.open(src, 101, 0)).toThrow(RangeError);
    expect(() => a.installKeypair(1, 0x1002, 2, key, key, 0, true)).toThrow(RangeError);
    expect(() => a.installKeypair(1, 0x2001, 2, key.subarray(0, 31), key, 0, true)).toThrow(RangeError);
    expect(() => a.installKeypair(1, 0x2001, 2, key, key, 2 as SealCipher, true)).toThrow(RangeError);
    expect(() => a.installKeypair(1, 0x1001, 3, key, key, 1, false)).toThrow(
      expect.objectContaining({ code: 'ERR_PODTUN_SEAL_INDEX_IN_USE' }),
    );
    expect(() => addon.ageKeypairsForTest({} as NativeSealer, 1, 1)).toThrow(TypeError);
    expect(() => addon.setSendCounterForTest(a, 2, 1n)).toThrow(expect.objectContaining({ code: 'ERR_PODTUN_NO_KEYPAIR' }));
  });

  it('close() wipes the keys at once; every later call but stats() throws ERR_PODTUN_CLOSED; safe twice', () => {
    const { a, b } = pair(0);
    const msg = seal(a, SLOT_B, Buffer.from('before'));
    a.close();
    a.close();
    const closed = expect.objectContaining({ code: 'ERR_PODTUN_CLOSED' });
    const key = randomBytes(32);
    expect(() => a.seal(SLOT_B, Buffer.alloc(1), 0, 1, Buffer.alloc(64), 0)).toThrow(closed);
    expect(() => a.open(msg, 0, msg.length)).toThrow(closed);
    expect(() => a.keypairInfo(SLOT_B)).toThrow(closed);
    expect(() => a.clearKeypairs(SLOT_B)).toThrow(closed);
    expect(() => a.installKeypair(SLOT_B, 0x1005, 1, key, key, 0, true)).toThrow(closed);
    expect(() => addon.ageKeypairsForTest(a, SLOT_B, 1)).toThrow(closed);
    expect(a.stats()).toMatchObject({ sealSealed: 1 });
    expectOpens(b, msg, SLOT_A, Buffer.from('before')); // the peer is unaffected
  });

  it('costs memory only for the slots in use (the table is address space until written)', () => {
    const before = process.memoryUsage().rss;
    const many: NativeSealer[] = [];
    for (let i = 0; i < 64; i++) {
      const s = openSealer();
      installA(s, newSession(1));
      many.push(s);
    }
    // 64 tables of ~17 MiB: 1.1 GiB if they were touched; a few pages each when they are not.
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * MiB);
    for (const s of many) s.close();
  });
});
