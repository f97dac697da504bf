/**
 * Publish rate limits: token buckets per WebSocket connection and per client (the token's `sub`,
 * or the remote address in dev mode) shared by every connection and HTTP request of that client.
 *
 * A bucket holds one second of its rate (at least 1 token) and refills continuously. A request for
 * n messages passes when the bucket holds min(n, capacity) tokens and then takes n, so a batch
 * larger than the burst is still possible — it leaves the bucket in debt, and the client waits.
 */
import type { RateLimits } from './config.js';

export class TokenBucket {
  private tokens: number;
  private at: number;
  readonly capacity: number;

  constructor(readonly rate: number, now = Date.now()) {
    this.capacity = Math.max(1, rate);
    this.tokens = this.capacity;
    this.at = now;
  }

  /** Milliseconds until `n` messages may pass (0: now). Takes nothing. */
  wait(n: number, now = Date.now()): number {
    this.refill(now);
    const need = Math.min(n, this.capacity);
    return this.tokens >= need ? 0 : Math.ceil(((need - this.tokens) * 1000) / this.rate);
  }

  take(n: number): void {
    this.tokens -= n;
  }

  /** True when the bucket is full: it remembers nothing and may be forgotten. */
  idle(now = Date.now()): boolean {
    this.refill(now);
    return this.tokens >= this.capacity;
  }

  private refill(now: number): void {
    if (now > this.at) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.at) * this.rate) / 1000);
      this.at = now;
    }
  }
}

/** Client buckets beyond this many trigger a sweep of the idle ones. */
const SWEEP_AT = 10_000;

export class RateLimiter {
  private readonly clients = new Map<string, TokenBucket>();

  constructor(readonly limits: RateLimits) {}

  get enabled(): boolean {
    return this.limits.perConnection > 0 || this.limits.perClient > 0;
  }

  /** A bucket for a new WebSocket connection, or undefined when that limit is off. */
  connectionBucket(): TokenBucket | undefined {
    return this.limits.perConnection > 0 ? new TokenBucket(this.limits.perConnection) : undefined;
  }

  /**
   * Asks to publish `n` messages for `client` (and on `conn`, if given). Returns 0 and takes the
   * tokens when allowed, else the milliseconds to wait (and takes nothing).
   */
  take(client: string, n: number, conn?: TokenBucket): number {
    const now = Date.now();
    let bucket: TokenBucket | undefined;
    if (this.limits.perClient > 0) {
      bucket = this.clients.get(client);
      if (!bucket) {
        if (this.clients.size >= SWEEP_AT) this.sweep(now);
        bucket = new TokenBucket(this.limits.perClient, now);
        this.clients.set(client, bucket);
      }
    }
    const wait = Math.max(conn?.wait(n, now) ?? 0, bucket?.wait(n, now) ?? 0);
    if (wait > 0) return wait;
    conn?.take(n);
    bucket?.take(n);
    return 0;
  }

  private sweep(now: number): void {
    for (const [k, b] of this.clients) if (b.idle(now)) this.clients.delete(k);
  }
}
