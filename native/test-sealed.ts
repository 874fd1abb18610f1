/**
 * Shared by the sealed-data-plane tests (seal.test.ts: sealed NativeUdp; sealer.test.ts:
 * NativeSealer): a reference sealer of the wire format of tunnel/seal/sealed-format.ts built on
 * node:crypto (an implementation independent of the addon's C code), sessions of two nodes A and
 * B, and an inbox for a sealed socket.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomInt } from 'node:crypto';
import type { NativeUdp, SealCipher } from './addon.js';

export const SLOT_A = 9; // B's slot for A
export const SLOT_B = 5; // A's slot for B
export const OVERHEAD = 32;
export const REJECT_AFTER_MS = 180_000;
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
export const WINDOW = 8128; // the addon's replay window (WireGuard's); at least 2048 is required

export interface Got {
  data: Buffer;
  slot: number;
  source: { host: string; port: number };
}

/** Everything a socket receives, in order; take(n) waits for the next n. */
export class Inbox {
  readonly got: Got[] = [];
  private taken = 0;
  private wake: (() => void) | undefined;

  constructor(u: NativeUdp) {
    const buf = Buffer.alloc(32 * 65536);
    const offs = new Int32Array(2 * 4096);
    const slots = new Int32Array(4096).fill(-7);
    u.start(buf, offs, 4096, (count) => {
      for (let i = 0; i < count; i++) {
        const off = offs[2 * i] ?? 0;
        this.got.push({ data: Buffer.from(buf.subarray(off, off + (offs[2 * i + 1] ?? 0))), slot: slots[i] ?? -7, source: u.sourceOf(i) });
      }
      this.wake?.();
    }, slots);
  }

  async take(n: number): Promise<Got[]> {
    const deadline = Date.now() + 5_000;
    while (this.got.length < this.taken + n) {
      if (Date.now() > deadline) throw new Error(`received ${this.got.length - this.taken} of ${n}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 20);
      });
    }
    const out = this.got.slice(this.taken, this.taken + n);
    this.taken += n;
    return out;
  }

  /** Nothing more than what was taken arrived (call after a marker was taken). */
  get extra(): number {
    return this.got.length - this.taken;
  }
}

/** What installA/installB install into: a sealed NativeUdp or a NativeSealer. */
export type KeypairHolder = Pick<NativeUdp, 'installKeypair'>;

/** One session's keys and indexes: A sends with aToB to B's index, B with bToA to A's index. */
export interface Session {
  cipher: SealCipher;
  aToB: Buffer;
  bToA: Buffer;
  aIndex: number; // A's local index (low bits: A's slot for B)
  bIndex: number; // B's local index (low bits: B's slot for A)
}

export function indexFor(slot: number): number {
  return (randomInt(1, 2 ** 20) * 4096 + slot) >>> 0;
}

export function newSession(cipher: SealCipher): Session {
  return { cipher, aToB: randomBytes(32), bToA: randomBytes(32), aIndex: indexFor(SLOT_B), bIndex: indexFor(SLOT_A) };
}

export function installA(a: KeypairHolder, s: Session, initiator = true): void {
  a.installKeypair(SLOT_B, s.aIndex, s.bIndex, s.aToB, s.bToA, s.cipher, initiator);
}

export function installB(b: KeypairHolder, s: Session, initiator = true): void {
  b.installKeypair(SLOT_A, s.bIndex, s.aIndex, s.bToA, s.aToB, s.cipher, initiator);
}

export function sealedHeader(receiver: number, counter: bigint): Buffer {
  const h = Buffer.alloc(16);
  h[0] = 2;
  h[1] = 4;
  h.writeUInt32BE(receiver, 4);
  h.writeBigUInt64LE(counter, 8);
  return h;
}

export function nonceOf(counter: bigint): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64LE(counter, 4);
  return n;
}

/** The reference sealer: a data message as sealed-format.ts defines it, built with node:crypto. */
export function sealJs(cipher: SealCipher, key: Buffer, receiver: number, counter: bigint, plaintext: Buffer): Buffer {
  const h = sealedHeader(receiver, counter);
  const c = cipher === 0
    ? createCipheriv('chacha20-poly1305', key, nonceOf(counter), { authTagLength: 16 })
    : createCipheriv('aes-256-gcm', key, nonceOf(counter), { authTagLength: 16 });
  c.setAAD(h, { plaintextLength: plaintext.length });
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([h, body, c.getAuthTag()]);
}

export function openJs(cipher: SealCipher, key: Buffer, d: Buffer): Buffer {
  const counter = d.readBigUInt64LE(8);
  const c = cipher === 0
    ? createDecipheriv('chacha20-poly1305', key, nonceOf(counter), { authTagLength: 16 })
    : createDecipheriv('aes-256-gcm', key, nonceOf(counter), { authTagLength: 16 });
  c.setAAD(d.subarray(0, 16), { plaintextLength: d.length - OVERHEAD });
  c.setAuthTag(d.subarray(d.length - 16));
  return Buffer.concat([c.update(d.subarray(16, d.length - 16)), c.final()]);
}
