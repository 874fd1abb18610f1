/**
 * The sealed data plane of the addon's UDP socket, over real loopback sockets:
 *
 *   A (sealed, slot 5 = B) --data messages--> B (sealed, slot 9 = A)
 *                    \                          ^
 *                     `--> C (plain: captures)  |  C, D (plain: replay, forge, roam)
 *
 * The AEAD is checked against node:crypto (an independent implementation of the wire format of
 * tunnel/seal/sealed-format.ts): captured datagrams open in JS, and datagrams sealed in JS open
 * in the addon. Rejected messages never reach JS; each is counted under its own reason.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { addon } from './addon.js';
import type { NativeUdp, SealCipher } from './addon.js';
import {
  F_NEEDS_CSUM,
  GSO_NONE,
  TCP_ACK,
  VNET_HDR_LEN,
  fold,
  ipv4Addr,
  ipv6Addr,
  packBatch,
  pseudoSum,
  superPacket,
  tcpPacket,
  vnetHeader,
} from './test-packets.js';
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

const open: NativeUdp[] = [];

function openUdp(host: string, sealed: boolean): NativeUdp {
  const u = addon.openUdp({ host, port: 0, recvBufferBytes: 4 << 20, sendBufferBytes: 4 << 20, sealed });
  open.push(u);
  return u;
}

afterEach(() => {
  for (const u of open.splice(0)) u.close();
});

const flow4 = { src: ipv4Addr('10.1.0.1'), dst: ipv4Addr('10.2.0.1'), sport: 1234, dport: 80 };
const flow6 = { src: ipv6Addr('fd00::1'), dst: ipv6Addr('fd00::2'), sport: 1234, dport: 443 };
const bigPayload = randomBytes(20 * 1400 + 300);
const v6Payload = randomBytes(3 * 1200);
const smallPayloads = [randomBytes(100), randomBytes(100), randomBytes(100), randomBytes(1400 - 40)];
const partialPayload = randomBytes(10);

/**
 * A mixed batch, fresh each call (sendPackets patches its input): a v4 super-packet (20 equal
 * segments and a short one), equal small packets, one with a partial checksum, an MTU-size
 * packet and a v6 super-packet.
 */
function mixedBatch(): Buffer[] {
  const plain = (p: Buffer): Buffer => Buffer.concat([Buffer.alloc(VNET_HDR_LEN), p]);
  const partial = tcpPacket({ ...flow4, seq: 7, ack: 1, flags: TCP_ACK, payload: partialPayload });
  partial.writeUInt16BE(fold(pseudoSum(partial, partial.length - 20)), 36);
  return [
    superPacket({ ...flow4, seq: 1, ack: 1, flags: TCP_ACK, payload: bigPayload }, 1400),
    plain(tcpPacket({ ...flow4, seq: 100, ack: 1, flags: TCP_ACK, payload: smallPayloads[0] ?? Buffer.alloc(0) })),
    plain(tcpPacket({ ...flow4, seq: 200, ack: 1, flags: TCP_ACK, payload: smallPayloads[1] ?? Buffer.alloc(0) })),
    plain(tcpPacket({ ...flow4, seq: 300, ack: 1, flags: TCP_ACK, payload: smallPayloads[2] ?? Buffer.alloc(0) })),
    Buffer.concat([vnetHeader({ flags: F_NEEDS_CSUM, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 20, csumOffset: 16 }), partial]),
    plain(tcpPacket({ ...flow4, seq: 400, ack: 1, flags: TCP_ACK, payload: smallPayloads[3] ?? Buffer.alloc(0) })),
    superPacket({ ...flow6, seq: 1, ack: 1, flags: TCP_ACK, payload: v6Payload }, 1200),
  ];
}

function identity(n: number): Int32Array {
  return new Int32Array(n).map((_, i) => i);
}

/** What the unsealed path delivers for mixedBatch(): the plain IP packets (header length 0). */
async function unsealedReference(host: string): Promise<Buffer[]> {
  const rx = openUdp(host, false);
  const tx = openUdp(host, false);
  tx.setPeer(0, host, rx.port);
  const inbox = new Inbox(rx);
  const pkts = mixedBatch();
  const { buf, offs } = packBatch(pkts, addon.tunHeadroom);
  expect(tx.sendPackets(0, Buffer.alloc(0), 0, buf, offs, identity(pkts.length), pkts.length, addon.tunHeadroom)).toBe(pkts.length);
  const want = 21 + 4 + 1 + 3;
  const got = await inbox.take(want);
  for (const g of got) expect(g.slot).toBe(-1);
  return got.map((g) => g.data);
}

/** A and B sealed with one session installed both ways; C a plain socket. */
function pair(host: string, cipher: SealCipher): { a: NativeUdp; b: NativeUdp; c: NativeUdp; s: Session } {
  const peerHost = host === '::' ? '127.0.0.1' : host;
  const a = openUdp(host, true);
  const b = openUdp(host, true);
  const c = openUdp(host, false);
  const s = newSession(cipher);
  installA(a, s);
  installB(b, s);
  a.setPeer(SLOT_B, peerHost, b.port);
  b.setPeer(SLOT_A, peerHost, a.port);
  return { a, b, c, s };
}

describe.each([
  ['127.0.0.1', 0],
  ['127.0.0.1', 1],
  ['::1', 0],
  ['::1', 1],
] as const)('sealed UDP on %s, cipher %d', (host, cipher) => {
  it('delivers a mixed batch opened, byte-identical to the unsealed path, with the slot', async () => {
    const reference = await unsealedReference(host);
    const { a, b } = pair(host, cipher);
    const inbox = new Inbox(b);
    const pkts = mixedBatch();
    const { buf, offs } = packBatch(pkts, addon.tunHeadroom);
    expect(a.sendPackets(SLOT_B, Buffer.alloc(16), 16, buf, offs, identity(pkts.length), pkts.length, addon.tunHeadroom)).toBe(pkts.length);
    const got = await inbox.take(reference.length);
    expect(got.map((g) => g.slot)).toEqual(reference.map(() => SLOT_A));
    expect(got.map((g) => g.data.toString('hex'))).toEqual(reference.map((r) => r.toString('hex')));
    expect(got.every((g) => g.source.port === a.port)).toBe(true);
    const sa = a.stats();
    const sb = b.stats();
    expect(sa['sealSealed']).toBe(reference.length);
    expect(sb['sealOpened']).toBe(reference.length);
    expect(sa['splitSupers']).toBe(2);
    if (a.gso) expect(sa['gsoSends']).toBeGreaterThan(0); // equal plaintexts -> equal sealed sizes -> GSO
    if (a.gso && b.gro) expect(sb['groDatagrams']).toBeGreaterThan(0);
    expect(a.keypairInfo(SLOT_B)).toMatchObject({ hasCurrent: true, sendCounter: reference.length, lastReceiveAgeMs: -1, confirmed: false });
    const info = b.keypairInfo(SLOT_A);
    expect(info.lastReceiveAgeMs).toBeGreaterThanOrEqual(0);
    expect(info.confirmed).toBe(true);
  });

  it('puts only sealed bytes on the wire: plaintext + 32, format of sealed-format.ts, opens in node:crypto', async () => {
    const reference = await unsealedReference(host);
    const { a, c, s } = pair(host, cipher);
    a.setPeer(SLOT_B, host, c.port);
    const inbox = new Inbox(c);
    const pkts = mixedBatch();
    const { buf, offs } = packBatch(pkts, 0);
    expect(a.sendPackets(SLOT_B, Buffer.alloc(0), 0, buf, offs, identity(pkts.length), pkts.length, 0)).toBe(pkts.length);
    const got = await inbox.take(reference.length);
    got.forEach((g, i) => {
      const plain = reference[i] ?? Buffer.alloc(0);
      const d = g.data;
      expect(g.slot).toBe(-1); // a plain socket reports everything raw
      expect(d.length).toBe(plain.length + OVERHEAD);
      expect([...d.subarray(0, 4)]).toEqual([2, 4, 0, 0]);
      expect(d.readUInt32BE(4)).toBe(s.bIndex);
      expect(d.readBigUInt64LE(8)).toBe(BigInt(i));
      expect(d.includes(plain.subarray(0, 20))).toBe(false); // no inner IP header in clear
      expect(openJs(cipher, s.aToB, d).equals(plain)).toBe(true);
    });
  });
});

describe.each([0, 1] as const)('sealed UDP, cipher %d', (cipher) => {
  it('drops forged, bit-flipped, truncated, unknown-index, replayed and expired messages, each counted', async () => {
    const { a, b, c, s } = pair('127.0.0.1', cipher);
    const inbox = new Inbox(b);
    let counter = 0n;
    const valid = (text: string): Buffer => sealJs(cipher, s.aToB, s.bIndex, counter++, Buffer.from(text));
    const send = (d: Buffer): void => {
      expect(c.sendToAddress('127.0.0.1', b.port, d, d.length)).toBe(true);
    };
    const expectMarker = async (text: string): Promise<void> => {
      const [g] = await inbox.take(1);
      expect(g?.data.toString()).toBe(text);
      expect(g?.slot).toBe(SLOT_A);
    };

    const first = valid('first');
    send(first);
    await expectMarker('first');

    const forged = valid('forged');
    randomBytes(16).copy(forged, forged.length - 16);
    send(forged);

    let flips = 0;
    let indexFlips = 0;
    const template = valid('bit flips everywhere');
    for (let j = 2; j < template.length; j++) {
      const d = Buffer.from(template);
      d[j] = (d[j] ?? 0) ^ (1 << (j % 8));
      send(d);
      if (j >= 4 && j < 8) indexFlips++;
      else flips++;
    }
    send(first.subarray(0, OVERHEAD - 1));
    send(first.subarray(0, first.length - 1));
    send(sealJs(cipher, s.aToB, indexFor(SLOT_A), counter++, Buffer.from('other index')));
    send(sealJs(cipher, s.aToB, indexFor(77), counter++, Buffer.from('empty slot')));
    send(first); // replayed
    send(valid('after'));
    await expectMarker('after');
    expect(inbox.extra).toBe(0);
    let st = b.stats();
    expect(st['sealAuthFailed']).toBe(1 + flips + 2);
    expect(st['sealUnknownIndex']).toBe(indexFlips + 2);
    expect(st['sealReplayed']).toBe(1);
    expect(st['sealOpened']).toBe(2);

    // Flipping the version or type makes it not a data message: reported raw, never opened.
    const raw = Buffer.from(valid('type flipped'));
    raw[1] = 5;
    send(raw);
    const [r] = await inbox.take(1);
    expect(r?.slot).toBe(-1);
    expect(r?.data.equals(raw)).toBe(true);

    // Expired: neither opens nor seals; a new keypair opens again.
    addon.ageKeypairsForTest(b, SLOT_A, REJECT_AFTER_MS);
    send(valid('too old'));
    addon.ageKeypairsForTest(a, SLOT_B, REJECT_AFTER_MS);
    expect(a.keypairInfo(SLOT_B)).toMatchObject({ hasCurrent: false });
    expect(a.keypairInfo(SLOT_B).currentAgeMs).toBeGreaterThanOrEqual(REJECT_AFTER_MS);
    const { buf, offs } = packBatch(mixedBatch());
    expect(a.sendPackets(SLOT_B, Buffer.alloc(0), 0, buf, offs, identity(7), 7, 0)).toBe(0);
    expect(a.sealTo(SLOT_B, Buffer.alloc(0), 0)).toBe(false);
    expect(a.stats()['noKeypairDrops']).toBe(8);
    const fresh = newSession(cipher);
    installB(b, fresh);
    send(sealJs(cipher, fresh.aToB, fresh.bIndex, 0n, Buffer.from('fresh')));
    await expectMarker('fresh');
    expect(inbox.extra).toBe(0);
    st = b.stats();
    expect(st['sealExpired']).toBe(1);
    expect(st['sealOpened']).toBe(3);
  });

  it('keeps a replay window: out of order accepted once, too far behind rejected', async () => {
    const { b, c, s } = pair('127.0.0.1', cipher);
    const inbox = new Inbox(b);
    const sequence: [bigint, boolean][] = [
      [10_000n, true],
      [9_000n, true], // out of order, inside the window
      [9_000n, false], // once only
      [10_000n - BigInt(WINDOW), true], // the oldest still inside
      [10_000n - BigInt(WINDOW) - 1n, false], // just behind
      [10_000n - 2048n, true],
      [10_001n, true],
      [10_100n, true],
      [10_050n, true],
      [0n, false],
      [30_000n, true], // jumps past the whole ring
      [10_100n, false],
      [29_999n, true],
      [30_000n - BigInt(WINDOW), true],
    ];
    for (const [ctr] of sequence) {
      const d = sealJs(cipher, s.aToB, s.bIndex, ctr, Buffer.from(`#${ctr}`));
      c.sendToAddress('127.0.0.1', b.port, d, d.length);
    }
    const accepted = sequence.filter(([, ok]) => ok).map(([ctr]) => `#${ctr}`);
    const got = await inbox.take(accepted.length);
    const marker = sealJs(cipher, s.aToB, s.bIndex, 40_000n, Buffer.from('end'));
    c.sendToAddress('127.0.0.1', b.port, marker, marker.length);
    await inbox.take(1);
    expect(got.map((g) => g.data.toString())).toEqual(accepted);
    expect(inbox.extra).toBe(0);
    expect(b.stats()['sealReplayed']).toBe(sequence.filter(([, ok]) => !ok).length);
  });

  it('promotes a responder\'s next keypair on the first message that opens with it', async () => {
    const { a, b, c, s } = pair('127.0.0.1', cipher);
    b.setPeer(SLOT_A, '127.0.0.1', c.port); // B's sends are captured by C
    const aInbox = new Inbox(a);
    const bInbox = new Inbox(b);
    const captured = new Inbox(c);
    // A confirms the first session to B, so B sends with it.
    expect(a.sealTo(SLOT_B, Buffer.from('k1'), 2)).toBe(true);
    await bInbox.take(1);

    const s2 = newSession(cipher);
    installA(a, s2, true); // A initiated: seals with s2 at once, s opens as previous
    installB(b, s2, false); // B responded: s2 waits as next
    expect(b.keypairInfo(SLOT_A)).toMatchObject({ hasCurrent: true, hasNext: true, sendCounter: 0, confirmed: true });

    expect(b.sealTo(SLOT_A, Buffer.from('still k1'), 8)).toBe(true);
    const [old] = await captured.take(1);
    expect(old?.data.readUInt32BE(4)).toBe(s.aIndex);
    expect(openJs(cipher, s.bToA, old?.data ?? Buffer.alloc(0)).toString()).toBe('still k1');
    // A holds s as previous: B's message sealed with it still opens there.
    c.sendToAddress('127.0.0.1', a.port, old?.data ?? Buffer.alloc(0), old?.data.length ?? 0);
    expect((await aInbox.take(1))[0]).toMatchObject({ slot: SLOT_B, data: Buffer.from('still k1') });

    expect(a.sealTo(SLOT_B, Buffer.from('k2'), 2)).toBe(true);
    expect((await bInbox.take(1))[0]).toMatchObject({ slot: SLOT_A, data: Buffer.from('k2') });
    expect(b.keypairInfo(SLOT_A)).toMatchObject({ hasCurrent: true, hasNext: false, sendCounter: 0, confirmed: true });

    expect(b.sealTo(SLOT_A, Buffer.from('now k2'), 6)).toBe(true);
    const [neu] = await captured.take(1);
    expect(neu?.data.readUInt32BE(4)).toBe(s2.aIndex);
    expect(neu?.data.readBigUInt64LE(8)).toBe(0n);
    expect(openJs(cipher, s2.bToA, neu?.data ?? Buffer.alloc(0)).toString()).toBe('now k2');

    // The old keypair is B's previous now: a late message sealed with it still opens.
    const late = sealJs(cipher, s.aToB, s.bIndex, 500n, Buffer.from('late k1'));
    c.sendToAddress('127.0.0.1', b.port, late, late.length);
    expect((await bInbox.take(1))[0]).toMatchObject({ slot: SLOT_A, data: Buffer.from('late k1') });
    expect(b.keypairInfo(SLOT_A).sendCounter).toBe(1); // opening with previous does not demote current
  });

  it('on an initiator install while a next is pending, keeps that next as previous and wipes the old current', async () => {
    const { b, c, s } = pair('127.0.0.1', cipher);
    const inbox = new Inbox(b);
    const s2 = newSession(cipher);
    const s3 = newSession(cipher);
    installB(b, s2, false);
    installB(b, s3, true);
    expect(b.keypairInfo(SLOT_A)).toMatchObject({ hasCurrent: true, hasNext: false, sendCounter: 0 });
    for (const [sess, text] of [[s, 'wiped'], [s2, 'previous'], [s3, 'current']] as const) {
      const d = sealJs(cipher, sess.aToB, sess.bIndex, 0n, Buffer.from(text));
      c.sendToAddress('127.0.0.1', b.port, d, d.length);
    }
    const got = await inbox.take(2);
    expect(got.map((g) => g.data.toString())).toEqual(['previous', 'current']);
    expect(b.stats()['sealUnknownIndex']).toBe(1);
  });

  it('stops sealing at REJECT_AFTER_MESSAGES and rejects counters past it', async () => {
    const { a, b, c, s } = pair('127.0.0.1', cipher);
    const inbox = new Inbox(b);
    addon.setSendCounterForTest(a, SLOT_B, REJECT_AFTER_MESSAGES - 1n);
    expect(a.sealTo(SLOT_B, Buffer.from('last'), 4)).toBe(true);
    expect(a.keypairInfo(SLOT_B).hasCurrent).toBe(false);
    expect(a.sealTo(SLOT_B, Buffer.from('over'), 4)).toBe(false);
    expect(a.stats()['noKeypairDrops']).toBe(1);
    expect((await inbox.take(1))[0]?.data.toString()).toBe('last');
    const over = sealJs(cipher, s.aToB, s.bIndex, REJECT_AFTER_MESSAGES, Buffer.from('over'));
    c.sendToAddress('127.0.0.1', b.port, over, over.length);
    const marker = sealJs(cipher, s.aToB, s.bIndex, REJECT_AFTER_MESSAGES - 2n, Buffer.from('marker'));
    c.sendToAddress('127.0.0.1', b.port, marker, marker.length);
    expect((await inbox.take(1))[0]?.data.toString()).toBe('marker');
    expect(b.stats()['sealExpired']).toBe(1);
  });
});

describe.each(['127.0.0.1', '::'])('sealed UDP roaming, socket bound to %s', (host) => {
  it('follows an authenticated source only', async () => {
    const { b, c, s } = pair(host, 0);
    const d = openUdp('127.0.0.1', false);
    const inbox = new Inbox(b);
    const to = (u: NativeUdp, m: Buffer): void => {
      expect(u.sendToAddress('127.0.0.1', b.port, m, m.length)).toBe(true);
    };
    const fromC = sealJs(0, s.aToB, s.bIndex, 0n, Buffer.from('from C'));
    b.allowRoam(SLOT_A, false);
    to(c, fromC);
    await inbox.take(1);
    expect(b.peerAddressOf(SLOT_A)?.port).not.toBe(c.port);

    b.allowRoam(SLOT_A, true);
    const forged = sealJs(0, randomBytes(32), s.bIndex, 1n, Buffer.from('forged'));
    to(d, forged);
    to(d, fromC); // authentic bytes, replayed from elsewhere
    to(c, sealJs(0, s.aToB, s.bIndex, 2n, Buffer.from('roam')));
    expect((await inbox.take(1))[0]?.data.toString()).toBe('roam');
    expect(b.peerAddressOf(SLOT_A)).toEqual({ host: '127.0.0.1', port: c.port });
    to(d, sealJs(0, randomBytes(32), s.bIndex, 3n, Buffer.from('forged again')));
    to(c, sealJs(0, s.aToB, s.bIndex, 4n, Buffer.from('marker')));
    await inbox.take(1);
    expect(b.peerAddressOf(SLOT_A)).toEqual({ host: '127.0.0.1', port: c.port });
    const st = b.stats();
    expect(st['sealRoams']).toBe(1);
    expect(st['sealAuthFailed']).toBe(2);
    expect(st['sealReplayed']).toBe(1);
    // Replies go to the roamed address.
    const cInbox = new Inbox(c);
    expect(b.sealTo(SLOT_A, Buffer.from('reply'), 5)).toBe(true);
    expect(openJs(0, s.bToA, (await cInbox.take(1))[0]?.data ?? Buffer.alloc(0)).toString()).toBe('reply');
  });
});

describe('sealed UDP', () => {
  it('carries a keepalive (sealTo with len 0) as an empty opened datagram with the slot', async () => {
    const { a, b } = pair('127.0.0.1', 1);
    const inbox = new Inbox(b);
    expect(a.sealTo(SLOT_B, Buffer.alloc(0), 0)).toBe(true);
    expect(a.sealTo(SLOT_B, Buffer.from([0x01, 9, 9, 9, 0xff]), 4)).toBe(true);
    const got = await inbox.take(2);
    expect(got[0]).toMatchObject({ slot: SLOT_A, data: Buffer.alloc(0) });
    expect(got[1]).toMatchObject({ slot: SLOT_A, data: Buffer.from([0x01, 9, 9, 9]) });
    expect(a.stats()['sealSealed']).toBe(2);
  });

  it('reports handshakes and other datagrams raw with slot -1', async () => {
    const { b, c } = pair('127.0.0.1', 0);
    const inbox = new Inbox(b);
    const others = [Buffer.from([2, 1, 0, 0, 1, 2, 3]), Buffer.from([1, 1, 0, 0, 9]), Buffer.from([2, 4])];
    for (const o of others) c.sendToAddress('127.0.0.1', b.port, o, o.length);
    const got = await inbox.take(2);
    expect(got).toMatchObject([
      { slot: -1, data: others[0] },
      { slot: -1, data: others[1] },
    ]);
    // [2, 4] alone is a truncated data message: dropped.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(inbox.extra).toBe(0);
    expect(b.stats()['sealAuthFailed']).toBe(1);
  });

  it('sends nothing without a keypair or address, and counts it', () => {
    const a = openUdp('127.0.0.1', true);
    const { buf, offs } = packBatch(mixedBatch());
    expect(a.sendPackets(SLOT_B, Buffer.alloc(0), 0, buf, offs, identity(7), 7, 0)).toBe(0);
    expect(a.stats()['noPeerDrops']).toBe(7);
    a.setPeer(SLOT_B, '127.0.0.1', 9);
    expect(a.sendPackets(SLOT_B, Buffer.alloc(0), 0, buf, offs, identity(7), 7, 0)).toBe(0);
    expect(a.sealTo(SLOT_B, Buffer.alloc(1), 1)).toBe(false);
    expect(a.stats()['noKeypairDrops']).toBe(8);
    expect(a.keypairInfo(SLOT_B)).toEqual({
      hasCurrent: false, currentAgeMs: -1, sendCounter: 0, hasNext: false, lastReceiveAgeMs: -1, confirmed: false, keypairs: 0,
    });
    const s = newSession(0);
    installA(a, s, false); // a next alone does not seal
    expect(a.keypairInfo(SLOT_B)).toMatchObject({ hasCurrent: false, hasNext: true });
    expect(a.sealTo(SLOT_B, Buffer.alloc(1), 1)).toBe(false);
    installA(a, newSession(0));
    expect(a.keypairInfo(SLOT_B)).toMatchObject({ hasCurrent: true, hasNext: false, sendCounter: 0 });
    a.clearKeypairs(SLOT_B);
    expect(a.keypairInfo(SLOT_B).hasCurrent).toBe(false);
    expect(a.peerAddressOf(SLOT_B)).toEqual({ host: '127.0.0.1', port: 9 });
    installA(a, newSession(1));
    a.close(); // keys are wiped at close, not when the object is collected
    expect(a.keypairInfo(SLOT_B)).toMatchObject({ hasCurrent: false, currentAgeMs: -1 });
  });

  it('rejects bad keypairs and arguments with stable codes', () => {
    const plain = openUdp('127.0.0.1', false);
    const sealed = openUdp('127.0.0.1', true);
    const key = randomBytes(32);
    expect(() => plain.installKeypair(1, 1, 2, key, key, 0, true)).toThrow(expect.objectContaining({ code: 'ERR_PODTUN_NOT_SEALED' }));
    expect(() => plain.sealTo(1, key, 1)).toThrow(expect.objectContaining({ code: 'ERR_PODTUN_NOT_SEALED' }));
    expect(plain.peerAddressOf(1)).toBeUndefined();
    expect(() => sealed.installKeypair(1, 0x1002, 2, key, key, 0, true)).toThrow(RangeError);
    expect(() => sealed.installKeypair(1, 0x1001, 2, key.subarray(0, 31), key, 0, true)).toThrow(RangeError);
    expect(() => sealed.installKeypair(1, 0x1001, 2, key, key, 2 as SealCipher, true)).toThrow(RangeError);
    sealed.installKeypair(1, 0xfffff001, 2, key, key, 1, true);
    expect(() => sealed.installKeypair(1, 0xfffff001, 3, key, key, 1, false)).toThrow(
      expect.objectContaining({ code: 'ERR_PODTUN_SEAL_INDEX_IN_USE' }),
    );
    expect(() => sealed.start(Buffer.alloc(65536), new Int32Array(8), 4, () => undefined)).toThrow(TypeError);
    expect(() => sealed.start(Buffer.alloc(65536), new Int32Array(8), 4, () => undefined, new Int32Array(3))).toThrow(RangeError);
    expect(() => addon.ageKeypairsForTest(plain, 1, 1)).toThrow(expect.objectContaining({ code: 'ERR_PODTUN_NOT_SEALED' }));
  });
});

describe('host facts', () => {
  it('says whether AES-GCM runs in hardware and raises the open-file limit', () => {
    expect(typeof addon.cpuHasAesHw).toBe('boolean');
    const limit = addon.raiseNofileLimit();
    expect(limit.soft).toBe(limit.hard);
    expect(limit.soft).toBeGreaterThan(0);
  });
});
