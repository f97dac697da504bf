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

/**
 * Per-client buckets kept where every gateway of a cluster sees them (Redis): `take` asks for `n`
 * messages of a bucket of `rate`/s holding `capacity`; resolves 0 when they pass (and takes them),
 * else the ms to wait (and takes nothing).
 */
export type SharedBuckets = (client: string, n: number, rate: number, capacity: number) => Promise<number>;

export class RateLimiter {
  private readonly clients = new Map<string, TokenBucket>();
  private shared: SharedBuckets | undefined;

  constructor(readonly limits: RateLimits) {}

  /** Keeps per-client buckets in a store shared by every gateway (cluster mode). */
  share(buckets: SharedBuckets): void {
    this.shared = buckets;
  }

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
  take(client: string, n: number, conn?: TokenBucket): number | Promise<number> {
    const shared = this.shared;
    if (shared && this.limits.perClient > 0) {
      // The connection's own bucket first (local); the client's, shared, only if that passes.
      const local = conn?.wait(n) ?? 0;
      if (local > 0) return local;
      return shared(client, n, this.limits.perClient, Math.max(1, this.limits.perClient)).then((wait) => {
        if (wait === 0) conn?.take(n);
        return wait;
      });
    }
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
