import type { PacketBatch } from './packet-batch.js';

/** The node's end of the pod network: the TUN device in production, a memory device in tests. */
export interface PacketDevice {
  readonly name: string;
  /**
   * Starts delivering batches read from the device. Each packet starts with a virtio header
   * (VNET_HDR_LEN bytes) followed by an IPv4 or IPv6 packet. The batch is borrowed: valid
   * during the call only.
   */
  start(onBatch: (batch: PacketBatch) => void): void;
  /**
   * Writes the packets `idx[0..count)` of `batch` into the device, in order.
   * `vnetHdr` says whether each packet starts with a virtio header; bare IP packets get one
   * added (and consecutive TCP segments of one flow may be merged into one super-packet).
   * The batch is borrowed: the device has finished with it when this returns.
   * Returns how many of the packets were accepted by the device.
   */
  write(batch: PacketBatch, idx: Int32Array, count: number, vnetHdr: boolean): number;
  /** Stops reading and releases the device; safe to call twice. */
  close(): void;
}
