/**
 * Message buffers of one connection, reused instead of allocated per message.
 *
 * `ws` writes a message's buffer to the socket as it is (zero mask: no copy) and the socket
 * holds on to it until it is flushed, so a buffer may be reused only once its write completed:
 * ws calls the send callback then. A socket completes its writes in order, so the pool numbers
 * the messages it hands out and counts completions; a message's buffer is free once more writes
 * have completed than there were messages before it. The pooled buffers are kept in the order
 * they were last handed out, oldest first: if the oldest is not free, none is.
 *
 * take(bytes), once per message:
 *   1. the oldest pooled buffer is free: reuse it (a bigger one replaces it when it is too small)
 *   2. fewer than `maxBuffers` pooled: allocate one more
 *   3. else: a one-off buffer (counted as sendPoolEmpty); the pool is left as it is
 * completed(err), once per completed write, from ws's send callback. After a failed write the
 * socket is being torn down and completion order no longer holds: nothing is reused again.
 *
 * Memory: at most `maxBuffers` buffers, each sized for the largest message seen (rounded up to a
 * power of two, at least MIN_POOLED_BYTES, at most `maxMessageBytes`).
 */

/** Pooled buffers per connection: a batch is written and flushed in the same turn of the loop as a rule, so 1-2 are in flight; the rest absorb short bursts. */
export const SEND_POOL_BUFFERS = 4;
/** Smallest pooled buffer: room for a batch of MTU-size packets without growing. */
export const MIN_POOLED_BYTES = 64 * 1024;

/** The counters a pool keeps (WsCounters has them). */
export interface SendPoolCounters {
  sendBuffersReused: number;
  sendBuffersPooled: number;
  sendPoolEmpty: number;
}

export class SendBufferPool {
  /** Pooled buffers; `head` is the one handed out longest ago, the others follow in order. */
  private readonly buffers: Buffer[] = [];
  /** Number of the last message written from each pooled buffer. */
  private readonly lastMessage: number[] = [];
  private head = 0;
  /** Messages handed out, and writes completed. */
  private taken = 0;
  private written = 0;
  private broken = false;

  constructor(
    private readonly counters: SendPoolCounters,
    /** The largest message the connection sends (maxPayloadBytes): no pooled buffer is bigger. */
    private readonly maxMessageBytes: number,
    private readonly maxBuffers: number = SEND_POOL_BUFFERS,
  ) {}

  /**
   * A buffer of exactly `bytes` for the next message. The caller writes it to the socket at once
   * with a callback that calls `completed`; until then the pool does not hand it out again.
   */
  take(bytes: number): Buffer {
    const message = this.taken++;
    const buffers = this.buffers;
    if (!this.broken && buffers.length > 0) {
      const i = this.head;
      if ((this.lastMessage[i] ?? message) < this.written) {
        let buf = buffers[i] as Buffer;
        if (buf.length < bytes) {
          buf = this.allocate(bytes);
          buffers[i] = buf;
        } else {
          this.counters.sendBuffersReused++;
        }
        this.lastMessage[i] = message;
        this.head = (i + 1) % buffers.length;
        return buf.subarray(0, bytes);
      }
    }
    if (!this.broken && buffers.length < this.maxBuffers) {
      // The newest goes just before the oldest, at `head`.
      const buf = this.allocate(bytes);
      buffers.splice(this.head, 0, buf);
      this.lastMessage.splice(this.head, 0, message);
      this.head = (this.head + 1) % buffers.length;
      return buf.subarray(0, bytes);
    }
    this.counters.sendPoolEmpty++;
    return Buffer.allocUnsafe(bytes);
  }

  /** A write of a message from `take` completed (ws's send callback, in order). */
  completed(err: Error | null | undefined): void {
    if (err !== undefined && err !== null) this.broken = true;
    this.written++;
  }

  /** A pooled buffer with room for `bytes`: its own ArrayBuffer (never Node's shared slab). */
  private allocate(bytes: number): Buffer {
    this.counters.sendBuffersPooled++;
    let capacity = MIN_POOLED_BYTES;
    while (capacity < bytes) capacity *= 2;
    return Buffer.allocUnsafeSlow(Math.max(bytes, Math.min(capacity, this.maxMessageBytes)));
  }
}
