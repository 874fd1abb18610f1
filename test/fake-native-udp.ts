/**
 * An in-memory stand-in for the addon's NativeUdp, for tests: sockets on 127.0.0.1 that deliver
 * each other's datagrams on the next turn of the event loop, one receive batch per turn.
 * It strips the virtio header of data packets like the addon does, but does not split
 * super-packets or finish partial checksums (tests send plain packets).
 */
import type { NativeUdp, UdpOpenOptions } from '../native/addon.js';
import { VNET_HDR_LEN } from '../core/packet-batch.js';

interface Datagram {
  data: Buffer;
  host: string;
  port: number;
}

export class FakeUdpNetwork {
  readonly sockets = new Map<number, FakeNativeUdp>();
  private nextPort = 40_000;

  /** Same shape as addon.openUdp. Throws EADDRINUSE for a port in use. */
  readonly open = (opts: UdpOpenOptions): NativeUdp => {
    const port = opts.port === 0 ? this.nextPort++ : opts.port;
    if (this.sockets.has(port)) {
      throw Object.assign(new Error(`bind ${opts.host}:${port}: EADDRINUSE`), { code: 'EADDRINUSE' });
    }
    const socket = new FakeNativeUdp(this, opts.host, port);
    this.sockets.set(port, socket);
    return socket;
  };

  /** Delivers one datagram to the socket bound on `port` (silently lost when none). */
  deliver(port: number, datagram: Datagram): void {
    this.sockets.get(port)?.enqueue(datagram);
  }
}

export class FakeNativeUdp implements NativeUdp {
  readonly gso = false;
  readonly gro = false;
  /** When > 0, sendPackets refuses this many packets at the end of the next call (EAGAIN). */
  refuseNext = 0;
  readonly counters = { sends: 0, recvBatches: 0 };
  private readonly slots = new Map<number, { host: string; port: number }>();
  private readonly queue: Datagram[] = [];
  private current: Datagram[] = [];
  private immediate: NodeJS.Immediate | undefined;
  private recv: { buf: Buffer; offs: Int32Array; max: number; onBatch: (count: number) => void } | undefined;
  private closed = false;

  constructor(private readonly net: FakeUdpNetwork, readonly host: string, readonly port: number) {}

  setPeer(slot: number, host: string, port: number): void {
    this.slots.set(slot, { host, port });
  }

  clearPeer(slot: number): void {
    this.slots.delete(slot);
  }

  peerAddress(slot: number): { host: string; port: number } | undefined {
    return this.slots.get(slot);
  }

  peerAddressOf(slot: number): { host: string; port: number } | undefined {
    return this.slots.get(slot);
  }

  // Sealing is the real addon's (native/seal.test.ts, the sealed transport's tests use it): this
  // fake stands in for an unsealed socket, which refuses these as the addon does.
  installKeypair(): void {
    throw notSealed();
  }

  clearKeypairs(): void {
    throw notSealed();
  }

  keypairInfo(): never {
    throw notSealed();
  }

  sealTo(): boolean {
    throw notSealed();
  }

  allowRoam(): void {
    throw notSealed();
  }

  sendPackets(slot: number, header: Buffer, headerLen: number, buf: Buffer, offs: Int32Array,
    idx: Int32Array, count: number): number {
    const to = this.slots.get(slot);
    if (to === undefined || this.closed) return 0;
    const refused = Math.min(count, this.refuseNext);
    this.refuseNext = 0;
    for (let k = 0; k < count - refused; k++) {
      const i = idx[k] ?? 0;
      const off = offs[2 * i] ?? 0;
      const len = offs[2 * i + 1] ?? 0;
      const data = Buffer.concat([header.subarray(0, headerLen), buf.subarray(off + VNET_HDR_LEN, off + len)]);
      this.emit(to.port, data);
    }
    return count - refused;
  }

  sendTo(slot: number, data: Buffer, len: number): boolean {
    const to = this.slots.get(slot);
    if (to === undefined || this.closed) return false;
    this.emit(to.port, Buffer.from(data.subarray(0, len)));
    return true;
  }

  sendToAddress(_host: string, port: number, data: Buffer, len: number): boolean {
    if (this.closed) return false;
    this.emit(port, Buffer.from(data.subarray(0, len)));
    return true;
  }

  start(buf: Buffer, offs: Int32Array, maxDatagrams: number, onBatch: (count: number) => void): void {
    this.recv = { buf, offs, max: maxDatagrams, onBatch };
    this.schedule();
  }

  sourceOf(i: number): { host: string; port: number } {
    const d = this.current[i];
    if (d === undefined) throw new RangeError(`no datagram ${i} in this batch`);
    return { host: d.host, port: d.port };
  }

  stats(): Record<string, number> {
    return { ...this.counters };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
    this.net.sockets.delete(this.port);
  }

  enqueue(datagram: Datagram): void {
    if (this.closed) return;
    this.queue.push(datagram);
    this.schedule();
  }

  private emit(port: number, data: Buffer): void {
    this.counters.sends++;
    this.net.deliver(port, { data, host: '127.0.0.1', port: this.port });
  }

  private schedule(): void {
    if (this.immediate !== undefined || this.recv === undefined || this.queue.length === 0) return;
    this.immediate = setImmediate(() => this.flush());
  }

  private flush(): void {
    this.immediate = undefined;
    const recv = this.recv;
    if (recv === undefined || this.closed) return;
    const batch = this.queue.splice(0, recv.max);
    let at = 0;
    for (let i = 0; i < batch.length; i++) {
      const d = batch[i] as Datagram;
      d.data.copy(recv.buf, at);
      recv.offs[2 * i] = at;
      recv.offs[2 * i + 1] = d.data.length;
      at += d.data.length;
    }
    this.current = batch;
    this.counters.recvBatches++;
    try {
      recv.onBatch(batch.length);
    } finally {
      this.current = [];
      this.schedule();
    }
  }
}

function notSealed(): Error {
  return Object.assign(new Error('the socket was not opened sealed'), { code: 'ERR_PODTUN_NOT_SEALED' });
}
