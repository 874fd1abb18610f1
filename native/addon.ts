/**
 * Typed face of the C addon (native/src/*.c). The only file that loads it; the TUN device and
 * the UDP transport use these types.
 *
 * Buffers handed to `start` belong to the addon from then on: it reads packets into them and
 * calls back with a count. JS reads the batch inside the callback only.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export interface TunOpenOptions {
  /** Interface name wanted ("podtun0"); the kernel may pick one for a "%d" pattern. */
  name: string;
  /** IFF_MULTI_QUEUE: several fds on one device, one per worker. */
  multiQueue: boolean;
  /** IFF_VNET_HDR + TUNSETOFFLOAD(CSUM|TSO4|TSO6): every packet carries a 10-byte virtio header. */
  vnetHdr: boolean;
}

export interface NativeTun {
  /** The interface name the kernel gave. */
  readonly name: string;
  /**
   * Starts readiness polling (uv_poll). When readable, reads until EAGAIN, or until `maxBatch`
   * packets, or until `buf` has no room for a 64 KiB super-packet; packet i is at
   * `offs[2i]`, length `offs[2i+1]` (virtio header included when vnetHdr). Then calls
   * `onBatch(count)` once.
   */
  start(buf: Buffer, offs: Int32Array, maxBatch: number, onBatch: (count: number) => void): void;
  /**
   * Writes packets `idx[0..count)` (indexes into the pairs of `offs`) of `buf`. With `bare`,
   * packets are plain IP: the addon prepends a virtio header, and merges consecutive TCP
   * segments of one flow (same 5-tuple, contiguous sequence numbers, equal segment sizes but the
   * last) into one super-packet (TSO) per write. Without `bare`, each packet already starts with
   * a virtio header and is written as is. Returns how many input packets the kernel accepted.
   */
  write(buf: Buffer, offs: Int32Array, idx: Int32Array, count: number, bare: boolean): number;
  /** Counters: readBatches, readPackets, readSupers, writePackets, mergedSupers, mergedSegments, ... */
  stats(): Record<string, number>;
  /** Stops polling, then closes the fd. Never blocks; safe twice. */
  close(): void;
}

export interface UdpOpenOptions {
  /** Local address to bind ("0.0.0.0", "::", "192.168.1.2"). */
  host: string;
  port: number;
  /** SO_RCVBUF / SO_SNDBUF wanted, bytes. */
  recvBufferBytes: number;
  sendBufferBytes: number;
}

export interface NativeUdp {
  /** The bound port (useful when 0 was asked). */
  readonly port: number;
  /** UDP_SEGMENT is usable for sends / UDP_GRO was enabled for receives. */
  readonly gso: boolean;
  readonly gro: boolean;
  /** Remembers a peer address in slot `slot` (0..4095) for later sends. */
  setPeer(slot: number, host: string, port: number): void;
  clearPeer(slot: number): void;
  /**
   * Sends packets `idx[0..count)` of `buf` (each starting with a virtio header, as read from the
   * TUN) to the peer in `slot`, each datagram = `header[0..headerLen)` + one IP packet. The
   * packets are patched in place: partial checksums finished and, with `headroom` free bytes in
   * front of each (headroom + 10 >= headerLen), the header written there and the packet sent
   * where it lies; TSO segments reference their payload in the super-packet.
   * Super-packets (gso_type TCPV4/TCPV6) are split at gso_size into MTU-size TCP segments with
   * correct headers and checksums; partial checksums (NEEDS_CSUM) are finished. Datagrams of equal
   * size go out as UDP GSO sends (<= ~64 KiB each) when `gso`, else in sendmmsg batches.
   * Non-blocking: what the socket refuses (EAGAIN) is dropped. Returns how many input packets
   * were sent whole.
   */
  sendPackets(slot: number, header: Buffer, headerLen: number, buf: Buffer, offs: Int32Array,
    idx: Int32Array, count: number, headroom: number): number;
  /** Sends one datagram `data[0..len)` to the peer in `slot` (control messages). */
  sendTo(slot: number, data: Buffer, len: number): boolean;
  /** Sends one datagram to an address that is not in a slot (replies to probes). */
  sendToAddress(host: string, port: number, data: Buffer, len: number): boolean;
  /**
   * Starts receiving (recvmmsg, UDP_GRO). A GRO datagram is split into its segments, so datagram
   * i is at `offs[2i]`, length `offs[2i+1]`; `onBatch(count)` is called once per readiness.
   */
  start(buf: Buffer, offs: Int32Array, maxDatagrams: number, onBatch: (count: number) => void): void;
  /** Source "host" and port of datagram i of the current batch (only valid inside onBatch). */
  sourceOf(i: number): { host: string; port: number };
  /** Counters: sends, gsoSends, eagainDrops, recvBatches, ... */
  stats(): Record<string, number>;
  close(): void;
}

export interface NativeAddon {
  /** Free bytes a TUN read leaves in front of each packet (see PacketBatch.headroom). */
  readonly tunHeadroom: number;
  openTun(opts: TunOpenOptions): NativeTun;
  openUdp(opts: UdpOpenOptions): NativeUdp;
  /**
   * The offload code paths, exposed for tests. Splits one virtio packet into plain IP packets in
   * `out` (offs pairs) as sendPackets would; returns the count, or -1 when it is malformed.
   */
  splitForTest(pkt: Buffer, out: Buffer, outOffs: Int32Array): number;
  /** Merges bare packets into virtio super-packets like `write(bare)` would; returns the count. */
  mergeForTest(buf: Buffer, offs: Int32Array, count: number, out: Buffer, outOffs: Int32Array): number;
}

const here = dirname(fileURLToPath(import.meta.url));
// dist/native/addon.js and native/addon.ts both resolve the package root two levels up at most.
const packageRoot = here.includes(`${join('dist', 'native')}`) ? join(here, '..', '..') : join(here, '..');
const require = createRequire(import.meta.url);
const load = require('node-gyp-build') as (dir: string) => NativeAddon;

export const addon: NativeAddon = load(packageRoot);
