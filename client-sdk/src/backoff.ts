/**
 * Reconnect and retry delays: a pure `(attempt) → ms` with full jitter, capped
 * (delay = random(0, min(cap, base · 2^attempt))). Full jitter spreads a crowd of clients that
 * lost the same gateway instead of having them return in waves.
 */
export type Backoff = (attempt: number) => number;

export interface BackoffOptions {
  /** First ceiling in ms (default 300). */
  base?: number;
  /** Largest delay in ms (default 10,000). */
  cap?: number;
  /** Source of randomness in [0, 1) (default Math.random). */
  random?: () => number;
}

export function fullJitter(options: BackoffOptions = {}): Backoff {
  const base = options.base ?? 300;
  const cap = options.cap ?? 10_000;
  const random = options.random ?? Math.random;
  return (attempt) => Math.floor(random() * Math.min(cap, base * 2 ** Math.min(attempt, 30)));
}

/** The clock the SDK schedules with; injectable so state machines can be tested with fake time. */
export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

export const systemClock: Clock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};
