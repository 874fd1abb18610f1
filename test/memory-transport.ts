/**
 * Two Transports connected in memory. What one side sends reaches the other side's sink at once
 * (synchronously, inside the send call) as an InboundBatch of bare IP packets (the virtio header
 * stripped, as UDP does), tagged with the slot the receiving side gave the sender's node.
 */
import type { InboundBatch, PacketBatch } from '../core/packet-batch.js';
import { VNET_HDR_LEN } from '../core/packet-batch.js';
import type { InboundSink, PeerSpec, PeerState, PeerStatus, Transport } from '../core/transport.js';
import { PeerSlots } from '../tunnel/peer-slots.js';

export interface MemoryTransportOptions {
  /** The kind it reports (and whose endpoint it shows); default 'memory'. A selector test plays 'udp' and 'ws' with two. */
  kind?: string;
}

export class MemoryTransport implements Transport {
  readonly kind: string;
  readonly peers = new Map<number, PeerSpec>();
  /** One entry per send call: slot and packet count. */
  readonly sendCalls: { slot: number; count: number }[] = [];
  /** When true, send refuses (drops) every packet. */
  refuse = false;
  /** State reported by peerStatus. */
  peerState: PeerState = 'up';
  closed = false;
  other: MemoryTransport | undefined;
  private sink: InboundSink | undefined;
  /** Only its slot range check: the peers themselves are in `peers`, where tests look them up. */
  private readonly slots = new PeerSlots<PeerSpec>('ERR_PODTUN_MEMORY_SLOT');
  private delivered = 0;
  /** Refused (the `refuse` switch): congested; no such peer, or closed: peer down. */
  private congested = 0;
  private peerDown = 0;

  constructor(
    readonly localNode: string,
    options: MemoryTransportOptions = {},
  ) {
    this.kind = options.kind ?? 'memory';
  }

  start(sink: InboundSink): Promise<void> {
    this.sink = sink;
    return Promise.resolve();
  }

  setPeer(slot: number, peer: PeerSpec): void {
    this.slots.check(slot);
    this.peers.set(slot, peer);
  }

  removePeer(slot: number): void {
    this.slots.check(slot);
    this.peers.delete(slot);
  }

  send(slot: number, batch: PacketBatch, idx: Int32Array, count: number): number {
    this.sendCalls.push({ slot, count });
    const peer = this.peers.get(slot);
    const other = this.other;
    if (this.refuse) {
      this.congested += count;
      return count;
    }
    if (this.closed || peer === undefined || other === undefined || other.localNode !== peer.node) {
      this.peerDown += count;
      return count;
    }
    const packets: Buffer[] = [];
    for (let k = 0; k < count; k++) {
      const i = idx[k] ?? -1;
      const off = batch.offs[2 * i] ?? 0;
      const len = batch.offs[2 * i + 1] ?? 0;
      packets.push(batch.buf.subarray(off + VNET_HDR_LEN, off + len));
    }
    if (!other.receiveFrom(this.localNode, packets)) {
      this.peerDown += count;
      return count;
    }
    this.delivered += count;
    return 0;
  }

  /**
   * Delivers bare IP packets to this side's sink as if `node` had sent them (copied into one
   * buffer). Returns false when not started or closed.
   */
  receiveFrom(node: string, packets: Buffer[], vnetHdr = false): boolean {
    if (this.sink === undefined || this.closed) return false;
    let slot = -1;
    for (const [s, spec] of this.peers) if (spec.node === node) slot = s;
    const buf = Buffer.concat(packets);
    const offs = new Int32Array(packets.length * 2);
    const peers = new Int32Array(packets.length).fill(slot);
    let at = 0;
    packets.forEach((p, i) => {
      offs[2 * i] = at;
      offs[2 * i + 1] = p.length;
      at += p.length;
    });
    const batch: InboundBatch = { buf, offs, count: packets.length, headroom: 0, peers, vnetHdr };
    this.sink(batch);
    return true;
  }

  /** Every peer in `peerState`, except that all are down once the other side has closed. */
  peerStatus(): PeerStatus[] {
    const state = this.other?.closed === true ? 'down' : this.peerState;
    return [...this.peers].map(([slot, spec]) => ({
      slot,
      node: spec.node,
      transport: this.kind,
      endpoint: spec.endpoints[this.kind],
      state,
      rttMs: state === 'up' ? 0.05 : undefined,
      lastSeenMs: undefined,
    }));
  }

  drops(): Record<string, number> {
    const out: Record<string, number> = {};
    if (this.congested > 0) out['congested'] = this.congested;
    if (this.peerDown > 0) out['peer_down'] = this.peerDown;
    return out;
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = { packetsOut: this.delivered };
    for (const [reason, n] of Object.entries(this.drops())) out[`drop.${reason}`] = n;
    return out;
  }

  close(): Promise<void> {
    this.closed = true;
    this.sink = undefined;
    return Promise.resolve();
  }
}

/** Two memory transports wired to each other: [the side of nodeA, the side of nodeB]. */
export function createMemoryTransportPair(
  nodeA: string,
  nodeB: string,
  options: MemoryTransportOptions = {},
): [MemoryTransport, MemoryTransport] {
  const a = new MemoryTransport(nodeA, options);
  const b = new MemoryTransport(nodeB, options);
  a.other = b;
  b.other = a;
  return [a, b];
}
