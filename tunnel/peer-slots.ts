/**
 * The per-transport table of peers by the router's slot number, and what the transports share
 * about it: the slot range check, iteration, and waiting for closed sockets to be released.
 */
import { MAX_PEER_SLOTS } from '../core/transport.js';
import { TransportError } from './transport-error.js';

/** Peers indexed by slot; `at` is the unchecked hot-path read. */
export class PeerSlots<P> {
  private readonly table: (P | undefined)[] = new Array<P | undefined>(MAX_PEER_SLOTS);

  constructor(private readonly errorCode: string) {}

  /** Throws TransportError(errorCode) for a slot outside 0..MAX_PEER_SLOTS-1 (a router bug). */
  check(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_PEER_SLOTS) {
      throw new TransportError(this.errorCode, `peer slot ${slot} is outside 0..${MAX_PEER_SLOTS - 1}`);
    }
  }

  /** The peer in `slot`, or undefined (also for any out-of-range number). */
  at(slot: number): P | undefined {
    return slot >= 0 && slot < MAX_PEER_SLOTS ? this.table[slot] : undefined;
  }

  set(slot: number, peer: P): void {
    this.check(slot);
    this.table[slot] = peer;
  }

  clear(slot: number): void {
    if (slot >= 0 && slot < MAX_PEER_SLOTS) this.table[slot] = undefined;
  }

  *values(): IterableIterator<P> {
    for (const peer of this.table) if (peer !== undefined) yield peer;
  }
}

/**
 * Resolves once libuv has run the close callbacks of handles closed in this loop iteration (they
 * run at its end; the second check phase comes after), so a closed socket's port can be bound again.
 */
export async function closedHandlesReleased(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  await new Promise<void>((resolve) => setImmediate(resolve));
}
