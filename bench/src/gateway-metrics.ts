/**
 * Samples the Sluice gateway's own /metrics during a run, to explain its figures: how its
 * subscriptions split between the live path (native uWS fan-out), catch-up (read from the store,
 * one frame per subscriber) and paused (no credit), and how long a publish waited for its commit.
 */
import { get } from 'node:http';

export interface GatewaySample {
  /** Average share of subscriptions in each state over the run (0..1). */
  live: number;
  catchup: number;
  paused: number;
  /** Mean time from publish to durable commit over the run (ms). */
  appendMs: number;
  samples: number;
}

function fetchText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

function value(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

export class GatewayMetrics {
  private timer: ReturnType<typeof setInterval> | undefined;
  private sums = { live: 0, catchup: 0, paused: 0, samples: 0 };
  private first: { sum: number; count: number } | undefined;
  private last: { sum: number; count: number } | undefined;

  constructor(private readonly httpUrl: string, private readonly everyMs = 250) {}

  start(): void {
    const sample = async () => {
      try {
        const text = await fetchText(`${this.httpUrl}/metrics`);
        const live = value(text, 'sluice_subscriptions{state="live"}');
        const catchup = value(text, 'sluice_subscriptions{state="catchup"}');
        const paused = value(text, 'sluice_subscriptions{state="paused"}');
        const total = live + catchup + paused;
        if (total > 0) {
          this.sums.live += live / total;
          this.sums.catchup += catchup / total;
          this.sums.paused += paused / total;
          this.sums.samples++;
        }
        const append = { sum: value(text, 'sluice_store_append_duration_seconds_sum'), count: value(text, 'sluice_store_append_duration_seconds_count') };
        this.first ??= append;
        this.last = append;
      } catch {
        // a missed sample is not a failure of the run
      }
    };
    void sample();
    this.timer = setInterval(() => void sample(), this.everyMs);
  }

  stop(): GatewaySample {
    if (this.timer) clearInterval(this.timer);
    const n = this.sums.samples || 1;
    const d = this.first && this.last ? { sum: this.last.sum - this.first.sum, count: this.last.count - this.first.count } : { sum: 0, count: 0 };
    return {
      live: this.sums.live / n,
      catchup: this.sums.catchup / n,
      paused: this.sums.paused / n,
      appendMs: d.count > 0 ? (1000 * d.sum) / d.count : Number.NaN,
      samples: this.sums.samples,
    };
  }
}

/** Cumulative bucket counts of a histogram in a /metrics text, by upper bound (seconds). */
type Buckets = Map<number, number>;

function buckets(text: string, name: string): Buckets {
  const out: Buckets = new Map();
  const re = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) out.set(m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), Number(m[2]));
  return out;
}

/**
 * The disk store's sync times (`sluice_store_sync_duration_seconds`: the fsync an ACK waits for
 * with `flush`) over an interval: `begin` before it, `end` after. Quantiles are bucket upper
 * bounds ("p99 ≤ 5 ms"); undefined when the gateway synced nothing (memory, `commit`, no server).
 */
export class SyncTimes {
  private first: Buckets | undefined;

  constructor(private readonly httpUrl: string | undefined) {}

  async begin(): Promise<void> {
    this.first = this.httpUrl ? await fetchText(`${this.httpUrl}/metrics`).then((t) => buckets(t, 'sluice_store_sync_duration_seconds'), () => undefined) : undefined;
  }

  async end(): Promise<{ count: number; p50Ms: number; p99Ms: number } | undefined> {
    if (!this.httpUrl || !this.first) return undefined;
    const last = await fetchText(`${this.httpUrl}/metrics`).then((t) => buckets(t, 'sluice_store_sync_duration_seconds'), () => undefined);
    if (!last) return undefined;
    const bounds = [...last.keys()].sort((a, b) => a - b);
    const delta = bounds.map((b) => (last.get(b) ?? 0) - (this.first!.get(b) ?? 0));
    const count = delta[delta.length - 1] ?? 0;
    if (count === 0) return undefined;
    const at = (q: number) => 1000 * bounds[delta.findIndex((c) => c >= q * count)]!;
    return { count, p50Ms: at(0.5), p99Ms: at(0.99) };
  }
}
