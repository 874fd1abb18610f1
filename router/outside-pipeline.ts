/**
 * Outside: tunnel -> TUN, packets arriving from peers.
 *
 *  1. Per packet of the inbound batch: skip the virtio header if the transport kept one, parse
 *     the IP header (malformed: drop).
 *  2. The sending slot must be a known peer (else UnknownPeer).
 *  3. Anti-spoof: the source must lie in the sending peer's own subnets, i.e. its longest-match
 *     owner is that very slot. Else drop Spoofed, counted per peer too.
 *  4. The destination must be in one of this node's own subnets (else NotLocal): a masked
 *     compare (local-subnets.ts), not a second route lookup.
 *  5. After the batch: one device write of the accepted packets.
 *
 * TTL is not touched here: the sending node's inside pipeline decremented it.
 */
import { DropReason } from '../core/drop-reason.js';
import { parseIpPacket } from './ip-parse.js';
import { VNET_HDR_LEN } from '../core/packet-batch.js';
import type { InboundBatch } from '../core/packet-batch.js';
import type { PacketDevice } from '../core/packet-device.js';
import { PARSE_OK, PacketView } from './packet-view.js';
import type { DropSamples } from './drop-samples.js';
import type { LocalSubnets } from './local-subnets.js';
import type { PeerTable } from './peer-table.js';
import type { RouteTable } from './route-table.js';

export interface OutsidePipelineDeps {
  routes: RouteTable<number>;
  peers: PeerTable;
  /** This node's subnets (the router keeps them current). */
  local: LocalSubnets;
  device: PacketDevice;
  /** Drop counters by DropReason, shared with the inside pipeline. */
  drops: Float64Array;
  /** The last dropped packet's addresses per reason, shared with the inside pipeline. */
  samples: DropSamples;
}

const INITIAL_BATCH_CAPACITY = 256;

export class OutsidePipeline {
  private readonly view = new PacketView();
  private writeIdx = new Int32Array(INITIAL_BATCH_CAPACITY);

  constructor(private readonly deps: OutsidePipelineDeps) {}

  /**
   * Delivers one batch from the transport (borrowed: valid during the call) into the device;
   * the device has finished with it when write returns.
   */
  process(batch: InboundBatch): void {
    const { routes, peers, local, device, drops, samples } = this.deps;
    const view = this.view;
    const buf = batch.buf;
    const offs = batch.offs;
    const from = batch.peers;
    const count = batch.count;
    const hdrLen = batch.vnetHdr ? VNET_HDR_LEN : 0;
    if (this.writeIdx.length < count) this.writeIdx = new Int32Array(Math.max(count, this.writeIdx.length * 2));
    const writeIdx = this.writeIdx;
    const inUse = peers.inUse;
    let n = 0;

    for (let i = 0; i < count; i++) {
      const len = offs[2 * i + 1]!;
      if (len < hdrLen) {
        drops[DropReason.Malformed]!++;
        continue;
      }
      const ipOff = offs[2 * i]! + hdrLen;
      const ipLen = len - hdrLen;
      const parsed = parseIpPacket(buf, ipOff, ipLen, view);
      if (parsed !== PARSE_OK) {
        drops[parsed]!++;
        continue;
      }
      const slot = from[i]!;
      if (slot < 0 || slot >= inUse.length || inUse[slot] !== 1) {
        drops[DropReason.UnknownPeer]!++;
        continue;
      }
      const isV4 = view.version === 4;
      const srcOwner = isV4 ? routes.lookup4(view.src4) : routes.lookup6(buf, view.srcOff);
      if (srcOwner !== slot) {
        drops[DropReason.Spoofed]!++;
        samples.record(DropReason.Spoofed, buf, view);
        peers.spoofed[slot]!++;
        continue;
      }
      if (!(isV4 ? local.contains4(view.dst4) : local.contains6(buf, view.dstOff))) {
        drops[DropReason.NotLocal]!++;
        samples.record(DropReason.NotLocal, buf, view);
        continue;
      }
      peers.rxPackets[slot]!++;
      peers.rxBytes[slot]! += ipLen;
      writeIdx[n++] = i;
    }

    if (n === 0) return;
    const accepted = device.write(batch, writeIdx, n, batch.vnetHdr);
    if (accepted < n) drops[DropReason.Congested]! += n - accepted;
  }
}
