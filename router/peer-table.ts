/**
 * The peers the router forwards to, by slot: a small integer, reused after a peer leaves, that
 * indexes typed arrays of per-peer counters and of per-batch send lists. Route table values are
 * slots (or LOCAL_ROUTE / CLUSTER_ROUTE). Grown (reallocated) only by the control plane; the
 * pipelines read the arrays afresh on every batch and never keep them.
 */
import type { Cidr } from '../core/cidr.js';
import type { PeerEndpoints } from '../core/transport.js';

/** Route value: one of this node's own subnets. */
export const LOCAL_ROUTE = -2;
/** Route value: inside a cluster CIDR, but no node owns the subnet. */
export const CLUSTER_ROUTE = -1;

export interface PeerRecord {
  slot: number;
  node: string;
  subnets: Cidr[];
  /** Where it listens, per transport kind (from its lease). */
  endpoints: PeerEndpoints;
  /** Largest inner packet this peer's tunnel carries, bytes. */
  tunnelMtu: number;
}

const INITIAL_SLOTS = 16;
const INITIAL_BATCH_CAPACITY = 256;

export class PeerTable {
  private records: (PeerRecord | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private readonly byNode = new Map<string, PeerRecord>();
  /** Exact CIDR (canonical text) -> route value installed for it: a slot, LOCAL_ROUTE or CLUSTER_ROUTE. */
  readonly routeOwners = new Map<string, number>();
  private capacity = 0;
  private batchCapacity = INITIAL_BATCH_CAPACITY;

  /** Per-slot tunnel MTU, bytes (hot path copy of PeerRecord.tunnelMtu). */
  tunnelMtu: Int32Array = new Int32Array(0);
  /** 1 while the slot is in use. */
  inUse: Uint8Array = new Uint8Array(0);
  txPackets: Float64Array = new Float64Array(0);
  /** Bytes of inner IP packets (no virtio header) handed to the transport. */
  txBytes: Float64Array = new Float64Array(0);
  rxPackets: Float64Array = new Float64Array(0);
  rxBytes: Float64Array = new Float64Array(0);
  /** Packets from this peer whose source lay outside its subnets. */
  spoofed: Float64Array = new Float64Array(0);
  /** Per slot, the indexes of this batch's packets going to it; `sendCount[slot]` are valid. */
  sendIdx: Int32Array[] = [];
  sendCount: Int32Array = new Int32Array(0);
  /** Slots with packets this batch, `activeCount` of them. */
  activeSlots: Int32Array = new Int32Array(0);
  activeCount = 0;

  constructor() {
    this.grow(INITIAL_SLOTS);
  }

  get(slot: number): PeerRecord | undefined {
    return this.records[slot];
  }

  byName(node: string): PeerRecord | undefined {
    return this.byNode.get(node);
  }

  all(): PeerRecord[] {
    return [...this.byNode.values()].sort((a, b) => a.slot - b.slot);
  }

  /** Adds a peer in a free slot (counters zeroed). The node must not be present. */
  add(node: string, subnets: Cidr[], endpoints: PeerEndpoints, tunnelMtu: number): PeerRecord {
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.records.length;
      if (slot >= this.capacity) this.grow(this.capacity * 2);
    }
    const record: PeerRecord = { slot, node, subnets, endpoints, tunnelMtu };
    this.records[slot] = record;
    this.byNode.set(node, record);
    this.inUse[slot] = 1;
    this.tunnelMtu[slot] = tunnelMtu;
    this.txPackets[slot] = 0;
    this.txBytes[slot] = 0;
    this.rxPackets[slot] = 0;
    this.rxBytes[slot] = 0;
    this.spoofed[slot] = 0;
    this.sendCount[slot] = 0;
    return record;
  }

  setTunnelMtu(record: PeerRecord, tunnelMtu: number): void {
    record.tunnelMtu = tunnelMtu;
    this.tunnelMtu[record.slot] = tunnelMtu;
  }

  remove(record: PeerRecord): void {
    this.byNode.delete(record.node);
    this.records[record.slot] = undefined;
    this.inUse[record.slot] = 0;
    this.freeSlots.push(record.slot);
  }

  /** Makes every send list hold at least `count` indexes. Called per batch; allocates only to grow. */
  ensureBatchCapacity(count: number): void {
    if (count <= this.batchCapacity) return;
    let capacity = this.batchCapacity;
    while (capacity < count) capacity *= 2;
    this.batchCapacity = capacity;
    for (let i = 0; i < this.capacity; i++) this.sendIdx[i] = new Int32Array(capacity);
  }

  private grow(capacity: number): void {
    const old = this.capacity;
    this.capacity = capacity;
    this.tunnelMtu = growInt32(this.tunnelMtu, capacity);
    this.inUse = growUint8(this.inUse, capacity);
    this.txPackets = growFloat64(this.txPackets, capacity);
    this.txBytes = growFloat64(this.txBytes, capacity);
    this.rxPackets = growFloat64(this.rxPackets, capacity);
    this.rxBytes = growFloat64(this.rxBytes, capacity);
    this.spoofed = growFloat64(this.spoofed, capacity);
    this.sendCount = growInt32(this.sendCount, capacity);
    this.activeSlots = growInt32(this.activeSlots, capacity);
    for (let i = old; i < capacity; i++) this.sendIdx[i] = new Int32Array(this.batchCapacity);
  }
}

function growInt32(old: Int32Array, capacity: number): Int32Array {
  const next = new Int32Array(capacity);
  next.set(old);
  return next;
}

function growUint8(old: Uint8Array, capacity: number): Uint8Array {
  const next = new Uint8Array(capacity);
  next.set(old);
  return next;
}

function growFloat64(old: Float64Array, capacity: number): Float64Array {
  const next = new Float64Array(capacity);
  next.set(old);
  return next;
}
