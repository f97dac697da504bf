/**
 * The last ten minutes of this node's headline figures, one sample a second, so a dashboard opened
 * now draws its charts from the start instead of from an empty axis (`GET /v1/admin/stats/history`,
 * and the first message of `GET /v1/admin/stream?history=1`).
 *
 * Bounded: a ring of `capacity` samples (600: 10 min at 1 s), each a handful of numbers, whatever
 * the traffic. Sampling reads counters the gateway keeps anyway (the metrics' per-second rates, the
 * hub's subscription-state counts, the session count): O(1) a second, and nothing on any message
 * path. The figures are this node's, like those of `GET /v1/admin/stats`. Lost at restart.
 */
import type { Admin } from '@sluice/client/protocol';

export const HISTORY_INTERVAL_MS = 1000;
export const HISTORY_CAPACITY = 600;

export class StatsHistory {
  /** A ring: `next` is where the next sample goes; the oldest is at `next` once full. */
  private readonly ring: (Admin.StatsSample | undefined)[];
  private next = 0;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(private readonly read: () => Omit<Admin.StatsSample, 'at'>, readonly capacity = HISTORY_CAPACITY, readonly intervalMs = HISTORY_INTERVAL_MS) {
    this.ring = new Array<Admin.StatsSample | undefined>(capacity);
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  /** Takes a sample now (the timer calls this every `intervalMs`). */
  sample(at = Date.now()): void {
    this.ring[this.next] = { at, ...this.read() };
    this.next = (this.next + 1) % this.capacity;
  }

  /** Every sample kept, oldest first, with this node's clock (a reader aligns its own with `now`). */
  snapshot(): Admin.StatsHistory {
    const samples: Admin.StatsSample[] = [];
    for (let i = 0; i < this.capacity; i++) {
      const s = this.ring[(this.next + i) % this.capacity];
      if (s) samples.push(s);
    }
    return { now: Date.now(), intervalMs: this.intervalMs, samples };
  }

  close(): void {
    clearInterval(this.timer);
  }
}
