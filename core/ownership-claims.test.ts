import { describe, expect, it } from 'vitest';
import { recordingLogger } from '../test/recording-logger.js';
import type { LogLine } from '../test/recording-logger.js';
import { CLAIM_BYTES, OwnershipClaims, subnetsDigest } from './ownership-claims.js';

const SLOT = 3;

/** Two nodes' books as their configs have them: `a` routes `aRoutesToB` to b; b owns `bOwns`. */
function books(aRoutesToB: string[], bOwns: string[]): { a: OwnershipClaims; b: OwnershipClaims; linesA: LogLine[]; linesB: LogLine[] } {
  const linesA: LogLine[] = [];
  const linesB: LogLine[] = [];
  const a = new OwnershipClaims(recordingLogger(linesA));
  const b = new OwnershipClaims(recordingLogger(linesB));
  a.setLocal(['10.244.1.0/24']);
  a.setPeer(SLOT, 'b', aRoutesToB);
  b.setLocal(bOwns);
  b.setPeer(SLOT, 'a', ['10.244.1.0/24']);
  return { a, b, linesA, linesB };
}

/** One probe each way. */
function exchange(a: OwnershipClaims, b: OwnershipClaims): void {
  const wire = Buffer.alloc(CLAIM_BYTES + 4, 0xee);
  a.write(SLOT, wire, 2);
  b.heard(SLOT, wire, 2);
  b.write(SLOT, wire, 2);
  a.heard(SLOT, wire, 2);
}

describe('OwnershipClaims', () => {
  it('digests a set of subnets whatever their order', () => {
    expect(subnetsDigest(['10.244.2.0/24', 'fd00:10:244:2::/64'])).toEqual(subnetsDigest(['fd00:10:244:2::/64', '10.244.2.0/24']));
    expect(subnetsDigest(['10.244.2.0/24'])).not.toEqual(subnetsDigest(['10.244.2.0/24', '10.244.9.0/24']));
  });

  it('finds nothing when both views agree', () => {
    const { a, b, linesA, linesB } = books(['10.244.2.0/24'], ['10.244.2.0/24']);
    exchange(a, b);
    expect([a.mismatch(SLOT), b.mismatch(SLOT)]).toEqual([undefined, undefined]);
    expect([...linesA, ...linesB]).toEqual([]);
  });

  it('names a mismatch on both sides, each with its own view in full, warns once, and says when it ends', () => {
    const { a, b, linesA, linesB } = books(['10.244.2.0/24', '10.244.9.0/24'], ['10.244.2.0/24']);
    exchange(a, b);
    exchange(a, b);
    expect(a.mismatch(SLOT)).toMatch(/^b claims other subnets \(digest [0-9a-f]{16}\) than this node routes to it: 10\.244\.2\.0\/24, 10\.244\.9\.0\/24/);
    expect(b.mismatch(SLOT)).toMatch(/^a routes other subnets to this node \(digest [0-9a-f]{16}\) than it claims: 10\.244\.2\.0\/24 \(digest/);
    expect(linesA.map((l) => [l.level, l.msg])).toEqual([['warn', 'subnet ownership disagrees']]);
    expect(linesB.map((l) => [l.level, l.msg])).toEqual([['warn', 'subnet ownership disagrees']]);

    a.setPeer(SLOT, 'b', ['10.244.2.0/24']);
    exchange(a, b);
    expect([a.mismatch(SLOT), b.mismatch(SLOT)]).toEqual([undefined, undefined]);
    expect(linesB.map((l) => [l.level, l.msg]).at(-1)).toEqual(['info', 'subnet ownership agrees again']);
  });

  it('compares no half that is zeros (a sender that keeps no view), and ignores a slot it does not know', () => {
    const { b } = books([], ['10.244.2.0/24']);
    const zeros = Buffer.alloc(CLAIM_BYTES);
    b.heard(SLOT, zeros, 0);
    expect(b.mismatch(SLOT)).toBeUndefined();
    b.heard(SLOT + 1, Buffer.alloc(CLAIM_BYTES, 1), 0);
    expect(b.mismatch(SLOT + 1)).toBeUndefined();
    // A claim for a slot it does not know carries its own half and zeros for the other.
    const out = Buffer.alloc(CLAIM_BYTES, 0xff);
    b.write(SLOT + 1, out, 0);
    expect(out.subarray(0, 8)).toEqual(subnetsDigest(['10.244.2.0/24']));
    expect(out.subarray(8)).toEqual(Buffer.alloc(8));
  });
});
