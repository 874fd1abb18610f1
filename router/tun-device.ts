/**
 * The production PacketDevice: one TUN queue through the native addon, virtio header and TCP
 * offloads on (super-packets of up to 64 KiB come in; bare packets written out are merged back).
 */
import { addon } from '../native/addon.js';
import type { NativeTun } from '../native/addon.js';
import type { PacketBatch } from '../core/packet-batch.js';
import type { PacketDevice } from '../core/packet-device.js';

/** Read area: room for ~31 super-packets, or up to MAX_BATCH small packets, per readiness. */
const READ_BUFFER_BYTES = 2 * 1024 * 1024;
const MAX_BATCH = 128;

export interface TunDeviceOptions {
  /** Interface name ("podtun0"). */
  name: string;
  /** IFF_MULTI_QUEUE: open once per worker on the same name. */
  multiQueue?: boolean;
}

export class TunDevice implements PacketDevice {
  /** Opens (creates) the TUN; throws the addon's error (code ERR_PODTUN_TUN_OPEN) on failure. */
  static open(options: TunDeviceOptions): TunDevice {
    return new TunDevice(addon.openTun({ name: options.name, multiQueue: options.multiQueue ?? false, vnetHdr: true }));
  }

  readonly name: string;
  /** Reused for every read batch: the addon fills buf/offs, we set count before each call. */
  private readonly batch: PacketBatch = {
    buf: Buffer.allocUnsafe(READ_BUFFER_BYTES),
    offs: new Int32Array(MAX_BATCH * 2),
    count: 0,
    headroom: addon.tunHeadroom,
  };

  private constructor(private readonly tun: NativeTun) {
    this.name = tun.name;
  }

  start(onBatch: (batch: PacketBatch) => void): void {
    const batch = this.batch;
    this.tun.start(batch.buf, batch.offs, MAX_BATCH, (count) => {
      batch.count = count;
      onBatch(batch);
    });
  }

  write(batch: PacketBatch, idx: Int32Array, count: number, vnetHdr: boolean): number {
    return this.tun.write(batch.buf, batch.offs, idx, count, !vnetHdr);
  }

  /** The addon's counters (reads, super-packets, merges, write errors). */
  stats(): Record<string, number> {
    return this.tun.stats();
  }

  close(): void {
    this.tun.close();
  }
}
