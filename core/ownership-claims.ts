/**
 * Whether this node and each peer agree on who owns which subnets. Static configs are written per
 * node, and when node A's file gives B a subnet B's own file does not claim, pings fail silently
 * while both ends are up. So every probe a transport sends carries a claim of CLAIM_BYTES:
 *
 *   | digest of the subnets this node owns (8) | digest of the subnets it routes to the receiver (8) |
 *
 * and the receiver compares both halves with its own view: what it routes to the sender, and
 * what it owns itself. A mismatch is named on both sides (each knows its own view in full and
 * the other's as a digest), logged at warn when it starts and at info when it ends, and shown
 * per peer in status. A half of zeros means "not known" and is not compared.
 *
 * The router keeps the views current (setLocal, setPeer); transports only copy bytes in and
 * out (write, heard), about once a second per peer, allocating nothing unless the verdict changes.
 */
import { createHash } from 'node:crypto';
import type { Logger } from './logger.js';

/** Bytes of a claim in a probe. */
export const CLAIM_BYTES = 16;
const DIGEST_BYTES = 8;

/** The first 8 bytes of SHA-256 over the sorted canonical CIDRs joined by commas. */
export function subnetsDigest(subnets: readonly string[]): Buffer {
  return createHash('sha256').update([...subnets].sort().join(',')).digest().subarray(0, DIGEST_BYTES);
}

interface PeerView {
  readonly node: string;
  readonly subnets: readonly string[];
  /** Digest of `subnets`: what we route to it, which it should claim. */
  readonly expected: Buffer;
  mismatch: string | undefined;
}

export class OwnershipClaims {
  private own: Buffer = Buffer.alloc(DIGEST_BYTES);
  private ownSubnets: readonly string[] = [];
  private readonly peers = new Map<number, PeerView>();

  constructor(private readonly log: Logger) {}

  /** This node's own subnets (its lease). */
  setLocal(subnets: readonly string[]): void {
    this.ownSubnets = [...subnets];
    this.own = subnetsDigest(subnets);
  }

  /** The subnets routed to the peer in `slot` (its lease as this node sees it). */
  setPeer(slot: number, node: string, subnets: readonly string[]): void {
    const old = this.peers.get(slot);
    const changed = old === undefined || old.node !== node || old.subnets.join(',') !== subnets.join(',');
    if (changed) this.peers.set(slot, { node, subnets: [...subnets], expected: subnetsDigest(subnets), mismatch: undefined });
  }

  removePeer(slot: number): void {
    this.peers.delete(slot);
  }

  /** Writes this node's claim for the peer in `slot` at `buf[off..off+CLAIM_BYTES)`. */
  write(slot: number, buf: Buffer, off: number): void {
    this.own.copy(buf, off);
    const peer = this.peers.get(slot);
    if (peer === undefined) buf.fill(0, off + DIGEST_BYTES, off + CLAIM_BYTES);
    else peer.expected.copy(buf, off + DIGEST_BYTES);
  }

  /** The claim at `buf[off..off+CLAIM_BYTES)` came from the peer in `slot` (authenticated by the transport). */
  heard(slot: number, buf: Buffer, off: number): void {
    const peer = this.peers.get(slot);
    if (peer === undefined) return;
    const theirs = buf.subarray(off, off + DIGEST_BYTES);
    const routedToUs = buf.subarray(off + DIGEST_BYTES, off + CLAIM_BYTES);
    const claimsOther = known(theirs) && !theirs.equals(peer.expected);
    const routesOther = known(routedToUs) && !routedToUs.equals(this.own);
    if (!claimsOther && !routesOther) {
      if (peer.mismatch !== undefined) this.log.info({ peer: peer.node }, 'subnet ownership agrees again');
      peer.mismatch = undefined;
      return;
    }
    const parts: string[] = [];
    if (claimsOther) {
      parts.push(`${peer.node} claims other subnets (digest ${theirs.toString('hex')}) than this node routes to it: `
        + `${listText(peer.subnets)} (digest ${peer.expected.toString('hex')})`);
    }
    if (routesOther) {
      parts.push(`${peer.node} routes other subnets to this node (digest ${routedToUs.toString('hex')}) than it claims: `
        + `${listText(this.ownSubnets)} (digest ${this.own.toString('hex')})`);
    }
    const mismatch = parts.join('; ');
    if (mismatch !== peer.mismatch) this.log.warn({ peer: peer.node, reason: mismatch }, 'subnet ownership disagrees');
    peer.mismatch = mismatch;
  }

  /** How the peer in `slot` disagrees, in words; undefined when it agrees or has not said. */
  mismatch(slot: number): string | undefined {
    return this.peers.get(slot)?.mismatch;
  }
}

function known(digest: Buffer): boolean {
  for (const byte of digest) if (byte !== 0) return true;
  return false;
}

function listText(subnets: readonly string[]): string {
  return subnets.length === 0 ? 'none' : subnets.join(', ');
}
