/**
 * Inside: TUN -> tunnel, packets leaving this node.
 *
 *  1. Per packet of the TUN batch: skip the virtio header, parse the IP header (malformed: drop).
 *  2. Look the destination up. No node owns it: ICMP net unreachable back into the device,
 *     unless it is link-local or multicast (the host's own link chatter: dropped as LinkLocal).
 *     One of this node's own subnets: drop NotLocal (the kernel should have delivered it).
 *  3. TTL / hop limit <= 1: ICMP time exceeded.
 *  4. Larger than the peer's tunnel MTU (a GSO super-packet: one segment larger): ICMP
 *     frag-needed / packet-too-big with that MTU, drop TooBig.
 *  5. Decrement TTL (IPv4 header checksum patched incrementally) and add the packet's index to
 *     the peer slot's send list.
 *  6. After the batch: one transport.send per peer, one device write for all ICMP errors.
 *
 * A peer whose state is down is still sent to (UDP is connectionless); packets the transport
 * refuses are counted by the transport, under its own reason (peer down, too big, congested),
 * and only there.
 */
import { DropReason } from '../core/drop-reason.js';
import type { DropSamples } from './drop-samples.js';
import { IcmpErrorKind } from './icmp-error.js';
import type { IcmpErrorWriter } from './icmp-error.js';
import { parseIpPacket } from './ip-parse.js';
import { decrementIpv4Ttl } from './ipv4-header.js';
import { decrementIpv6HopLimit } from './ipv6-header.js';
import { VNET_GSO_NONE, VNET_HDR_LEN, VNET_OFFSET_GSO_SIZE, VNET_OFFSET_GSO_TYPE } from '../core/packet-batch.js';
import type { PacketBatch } from '../core/packet-batch.js';
import type { PacketDevice } from '../core/packet-device.js';
import { PARSE_OK, PacketView } from './packet-view.js';
import { CLUSTER_ROUTE, LOCAL_ROUTE } from './peer-table.js';
import type { PeerTable } from './peer-table.js';
import type { RouteTable } from './route-table.js';
import type { Transport } from '../core/transport.js';

/** 169.254.0.0/16, 224.0.0.0/4 (multicast) and 255.255.255.255 (dst4: unsigned). */
function isLinkScope4(dst4: number): boolean {
  return dst4 >>> 16 === 0xa9fe || dst4 >>> 28 === 0xe || dst4 === 0xffffffff;
}

/** fe80::/10 and ff00::/8; `off` is the destination address's offset in `buf`. */
function isLinkScope6(buf: Buffer, off: number): boolean {
  const first = buf[off]!;
  return first === 0xff || (first === 0xfe && (buf[off + 1]! & 0xc0) === 0x80);
}

/** virtio_net_hdr gso_type: the ECN bit rides on top of the type. */
const VNET_GSO_TYPE_MASK = 0x7f;

export interface InsidePipelineDeps {
  routes: RouteTable<number>;
  peers: PeerTable;
  transport: Transport;
  device: PacketDevice;
  icmp: IcmpErrorWriter;
  /** Drop counters by DropReason, shared with the outside pipeline. */
  drops: Float64Array;
  /** The last dropped packet's addresses per reason, shared with the outside pipeline. */
  samples: DropSamples;
}

export class InsidePipeline {
  private readonly view = new PacketView();

  constructor(private readonly deps: InsidePipelineDeps) {}

  /**
   * Forwards one batch read from the TUN (borrowed: valid during the call). Packets are patched
   * in place (TTL) and handed to the transport, which has finished with them when send returns.
   */
  process(batch: PacketBatch): void {
    const { routes, peers, icmp, drops, samples } = this.deps;
    const view = this.view;
    const buf = batch.buf;
    const offs = batch.offs;
    const count = batch.count;
    peers.ensureBatchCapacity(count);
    const sendIdx = peers.sendIdx;
    const sendCount = peers.sendCount;
    const activeSlots = peers.activeSlots;
    const tunnelMtu = peers.tunnelMtu;
    let active = 0;

    for (let i = 0; i < count; i++) {
      const off = offs[2 * i]!;
      const len = offs[2 * i + 1]!;
      if (len < VNET_HDR_LEN) {
        drops[DropReason.Malformed]!++;
        continue;
      }
      const ipOff = off + VNET_HDR_LEN;
      const ipLen = len - VNET_HDR_LEN;
      const parsed = parseIpPacket(buf, ipOff, ipLen, view);
      if (parsed !== PARSE_OK) {
        drops[parsed]!++;
        continue;
      }
      const isV4 = view.version === 4;
      const route = isV4 ? routes.lookup4(view.dst4) : routes.lookup6(buf, view.dstOff);
      if (route === undefined || route === CLUSTER_ROUTE) {
        const reason = (isV4 ? isLinkScope4(view.dst4) : isLinkScope6(buf, view.dstOff)) ? DropReason.LinkLocal : DropReason.NoRoute;
        drops[reason]!++;
        samples.record(reason, buf, view);
        if (reason === DropReason.NoRoute) icmp.add(buf, view, IcmpErrorKind.NoRoute, 0);
        continue;
      }
      if (route === LOCAL_ROUTE) {
        drops[DropReason.NotLocal]!++;
        samples.record(DropReason.NotLocal, buf, view);
        continue;
      }
      if (view.ttl <= 1) {
        drops[DropReason.TtlExceeded]!++;
        samples.record(DropReason.TtlExceeded, buf, view);
        icmp.add(buf, view, IcmpErrorKind.TimeExceeded, 0);
        continue;
      }
      const mtu = tunnelMtu[route]!;
      const gsoType = buf[off + VNET_OFFSET_GSO_TYPE]! & VNET_GSO_TYPE_MASK;
      const wireLen =
        gsoType === VNET_GSO_NONE
          ? ipLen
          : view.l4Off - ipOff + view.l4HeaderLen + buf.readUInt16LE(off + VNET_OFFSET_GSO_SIZE);
      if (wireLen > mtu) {
        drops[DropReason.TooBig]!++;
        samples.record(DropReason.TooBig, buf, view);
        icmp.add(buf, view, IcmpErrorKind.TooBig, mtu);
        continue;
      }
      if (isV4) decrementIpv4Ttl(buf, ipOff);
      else decrementIpv6HopLimit(buf, ipOff);
      const n = sendCount[route]!;
      if (n === 0) activeSlots[active++] = route;
      sendIdx[route]![n] = i;
      sendCount[route] = n + 1;
    }

    this.flush(batch, active);
    icmp.flush(this.deps.device);
  }

  private flush(batch: PacketBatch, active: number): void {
    const { peers, transport } = this.deps;
    const offs = batch.offs;
    for (let a = 0; a < active; a++) {
      const slot = peers.activeSlots[a]!;
      const idx = peers.sendIdx[slot]!;
      const n = peers.sendCount[slot]!;
      peers.sendCount[slot] = 0;
      const dropped = transport.send(slot, batch, idx, n);
      // The transport drops from the tail when it cannot take everything.
      const sent = n - dropped;
      let bytes = 0;
      for (let k = 0; k < sent; k++) bytes += offs[2 * idx[k]! + 1]! - VNET_HDR_LEN;
      peers.txPackets[slot]! += sent;
      peers.txBytes[slot]! += bytes;
    }
  }
}
