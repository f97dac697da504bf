/**
 * LiveStats: the gateway's admin stream (SSE), one snapshot a second, kept as reactive state with
 * the last ten minutes of samples for the charts. One instance serves every page.
 *
 * The stream is opened with `?history=1`: its first message carries the samples the gateway kept
 * (GET /v1/admin/stats/history), so the charts show ten minutes right after a page load, and again
 * after a reconnect (the gap while the gateway was away stays a gap).
 *
 * Staleness: the figures on screen are `stale` once no snapshot has arrived for STALE_AFTER_MS,
 * whatever the cause (gateway down, network gone, a stream that hangs without an error event);
 * `updatedAt` says when the last one came. The page shows that, and greys what it shows.
 */
import { auth } from '../auth.svelte.js';
import { getStats, type Snapshot, type Stats, type StatsHistory } from '../api/stats.js';
import type { TopicRow } from '../api/topics.js';
import type { NodeRow } from '../api/nodes.js';
import { streamUrl, ApiError } from '../api/http.js';

export interface Sample {
  /** Seconds since the epoch, on this browser's clock. */
  t: number;
  msgsIn: number;
  msgsOut: number;
  bytesIn: number;
  bytesOut: number;
  connections: number;
  live: number;
  paused: number;
}

/** What the charts span. */
export const WINDOW_SECONDS = 600;
/** Snapshots come every second: missing three means the figures are stale. */
const STALE_AFTER_MS = 3500;
/** When the stream gave up (EventSource closed for good), how long before opening a new one. */
const REOPEN_MS = 2000;

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'error';

export class LiveStats {
  stats = $state<Stats | undefined>();
  topics = $state<TopicRow[]>([]);
  /** The cluster's nodes (one without cluster mode), refreshed with every snapshot. */
  nodes = $state<NodeRow[]>([]);
  samples = $state<Sample[]>([]);
  status = $state<StreamStatus>('connecting');
  error = $state('');
  /** When the last snapshot arrived (ms since the epoch, this browser's clock); 0 before the first. */
  updatedAt = $state(0);
  /** This browser's clock, ticking every second while the stream is wanted. */
  now = $state(Date.now());
  /** Figures are on screen but no snapshot came for a while: they may be out of date. */
  stale = $derived(this.stats !== undefined && this.updatedAt > 0 && (this.status !== 'live' || this.now - this.updatedAt > STALE_AFTER_MS));
  private source: EventSource | undefined;
  private clock: ReturnType<typeof setInterval> | undefined;
  private reopen: ReturnType<typeof setTimeout> | undefined;

  /** Checks access first (a 401 asks for a token), then opens the stream. */
  async start(): Promise<void> {
    this.stop();
    this.clock = setInterval(() => { this.now = Date.now(); }, 1000);
    this.status = 'connecting';
    try {
      const stats = await getStats();
      auth.mode = stats.authMode;
      this.stats = stats;
    } catch (err) {
      this.status = 'error';
      this.error = err instanceof ApiError ? err.message : String(err);
      // Figures already shown stay, marked stale, and the console keeps trying.
      if (this.stats && !auth.needed) this.reopen = setTimeout(() => void this.start(), REOPEN_MS);
      return;
    }
    this.open();
  }

  stop(): void {
    this.source?.close();
    this.source = undefined;
    clearInterval(this.clock);
    clearTimeout(this.reopen);
  }

  private open(): void {
    const source = new EventSource(streamUrl('/v1/admin/stream?history=1'));
    this.source = source;
    source.addEventListener('history', (e) => this.applyHistory(JSON.parse((e as MessageEvent<string>).data) as StatsHistory));
    source.addEventListener('stats', (e) => this.apply(JSON.parse((e as MessageEvent<string>).data) as Snapshot));
    source.addEventListener('open', () => { this.status = 'live'; });
    source.addEventListener('error', () => {
      if (this.source !== source) return;
      this.status = 'reconnecting';
      // EventSource retries a dropped connection by itself, but gives up on an HTTP error answer
      // (a 401 for an expired token, a 503): then ask again from the start.
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        this.source = undefined;
        this.reopen = setTimeout(() => void this.start(), REOPEN_MS);
      } else {
        void getStats().catch(() => { if (auth.needed) this.stop(); });
      }
    });
  }

  private apply(s: Snapshot): void {
    this.status = 'live';
    this.updatedAt = this.now = Date.now();
    this.stats = s.stats;
    this.topics = s.topics;
    this.nodes = s.nodes;
    this.samples = this.trim([...this.samples, {
      t: this.updatedAt / 1000,
      msgsIn: s.stats.rates.messagesInPerSec,
      msgsOut: s.stats.rates.messagesOutPerSec,
      bytesIn: s.stats.rates.bytesInPerSec,
      bytesOut: s.stats.rates.bytesOutPerSec,
      connections: s.stats.connections,
      live: s.stats.subscriptions.live,
      paused: s.stats.subscriptions.paused,
    }]);
  }

  /**
   * The gateway's samples, placed on this browser's clock, replace the ones this page took over
   * the same span; older ones (from before a gateway restart) stay.
   */
  private applyHistory(h: StatsHistory): void {
    const shift = Date.now() - h.now;
    const theirs: Sample[] = h.samples.map((x) => ({
      t: (x.at + shift) / 1000,
      msgsIn: x.messagesInPerSec,
      msgsOut: x.messagesOutPerSec,
      bytesIn: x.bytesInPerSec,
      bytesOut: x.bytesOutPerSec,
      connections: x.connections,
      live: x.live,
      paused: x.paused,
    }));
    const from = theirs[0]?.t ?? Infinity;
    this.samples = this.trim([...this.samples.filter((x) => x.t < from - 0.5), ...theirs]);
  }

  private trim(samples: Sample[]): Sample[] {
    const since = Date.now() / 1000 - WINDOW_SECONDS;
    const i = samples.findIndex((x) => x.t >= since);
    return i <= 0 ? samples : samples.slice(i);
  }
}

export const liveStats = new LiveStats();
