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
