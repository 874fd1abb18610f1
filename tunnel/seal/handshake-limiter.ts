/**
 * How many handshake initiations a responder processes (each costs three X25519 operations, a
 * key generation and a key import, ~0.7 ms; refusing one at mac1 costs ~7 us, answering it with
 * a cookie ~50 us): token buckets, one for all sources and one per source address.
 *
 * An initiation that finds a token in both is processed. One that does not means load: the
 * responder answers it with a cookie instead (handshake-engine.ts), and processes it only once
 * it comes back with a valid mac2, which proves the sender receives at its source address.
 * Such a proven initiation is charged to its source's bucket only: a flood from spoofed
 * addresses empties the global bucket, yet cannot get cookies, so it does not hold back real
 * peers; a real address that floods empties its own bucket and no one else's.
 *
 * Per-source buckets are made on demand and forgotten once full again (idle); their number is
 * capped, and a source past the cap is treated as over its rate. The clock is injected.
 */

/** Sources tracked at most: a flood of spoofed addresses cannot grow the table past this. */
export const MAX_TRACKED_SOURCES = 65_536;

export interface HandshakeLimiterOptions {
  /** Initiations a second from all sources together (also the burst). */
  perSecond: number;
  /** Initiations a second from one source address (the burst is twice this). */
  perSourcePerSecond: number;
  /** Monotonic ms. */
  nowMs: () => number;
  /** Default MAX_TRACKED_SOURCES. */
  maxSources?: number;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

export class HandshakeLimiter {
  private readonly global: Bucket;
  private readonly sources = new Map<string, Bucket>();
  private readonly perSecond: number;
  private readonly perSourcePerSecond: number;
  private readonly sourceBurst: number;
  private readonly maxSources: number;
  private readonly nowMs: () => number;

  constructor(options: HandshakeLimiterOptions) {
    this.perSecond = options.perSecond;
    this.perSourcePerSecond = options.perSourcePerSecond;
    this.sourceBurst = Math.max(1, 2 * options.perSourcePerSecond);
    this.maxSources = options.maxSources ?? MAX_TRACKED_SOURCES;
    this.nowMs = options.nowMs;
    this.global = { tokens: Math.max(1, options.perSecond), atMs: this.nowMs() };
  }

  /** Under both rates: takes a token from the global bucket and from `source`'s, and says true. */
  admit(source: string): boolean {
    const now = this.nowMs();
    refill(this.global, now, this.perSecond, Math.max(1, this.perSecond));
    if (this.global.tokens < 1) return false;
    const bucket = this.sourceBucket(source, now);
    if (bucket === undefined || bucket.tokens < 1) return false;
    this.global.tokens -= 1;
    bucket.tokens -= 1;
    return true;
  }

  /** For a source that proved its address (valid mac2): takes a token from its bucket only. */
  admitProven(source: string): boolean {
    const bucket = this.sourceBucket(source, this.nowMs());
    if (bucket === undefined || bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Forgets the sources whose bucket is full again. Called from the engine's tick. */
  sweep(): void {
    const now = this.nowMs();
    for (const [source, bucket] of this.sources) {
      refill(bucket, now, this.perSourcePerSecond, this.sourceBurst);
      if (bucket.tokens >= this.sourceBurst) this.sources.delete(source);
    }
  }

  /** Sources currently tracked. */
  get trackedSources(): number {
    return this.sources.size;
  }

  clear(): void {
    this.sources.clear();
  }

  private sourceBucket(source: string, now: number): Bucket | undefined {
    let bucket = this.sources.get(source);
    if (bucket === undefined) {
      if (this.sources.size >= this.maxSources) {
        this.sweep();
        if (this.sources.size >= this.maxSources) return undefined;
      }
      bucket = { tokens: this.sourceBurst, atMs: now };
      this.sources.set(source, bucket);
      return bucket;
    }
    refill(bucket, now, this.perSourcePerSecond, this.sourceBurst);
    return bucket;
  }
}

function refill(bucket: Bucket, now: number, perSecond: number, burst: number): void {
  const elapsedMs = now - bucket.atMs;
  if (elapsedMs <= 0) return;
  bucket.tokens = Math.min(burst, bucket.tokens + (elapsedMs * perSecond) / 1000);
  bucket.atMs = now;
}
