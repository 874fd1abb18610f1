/**
 * A token bucket: `ratePerSec` tokens a second, at most `burst` saved up. Used to rate-limit
 * ICMP error generation so a flood of undeliverable packets does not become a flood of errors.
 * The clock is injected (milliseconds, monotonic) so tests can drive it.
 */
export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly nowMs: () => number,
  ) {
    this.tokens = burst;
    this.lastMs = nowMs();
  }

  /** Takes one token if there is one. No allocation. */
  tryTake(): boolean {
    const now = this.nowMs();
    const elapsedMs = now - this.lastMs;
    if (elapsedMs > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsedMs * this.ratePerSec) / 1000);
      this.lastMs = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
