/**
 * LiveStats: the gateway's admin stream (SSE), one snapshot a second, kept as reactive state with
 * a rolling five-minute history for the charts. One instance serves every page.
 */
import { auth } from '../auth.svelte.js';
import { getStats, type Snapshot, type Stats } from '../api/stats.js';
import type { TopicRow } from '../api/topics.js';
import type { NodeRow } from '../api/nodes.js';
import { streamUrl, ApiError } from '../api/http.js';

export interface Sample {
  /** Seconds since the epoch. */
  t: number;
  msgsIn: number;
  msgsOut: number;
  bytesIn: number;
  bytesOut: number;
  connections: number;
  live: number;
  paused: number;
}

const HISTORY_SECONDS = 300;

export class LiveStats {
  stats = $state<Stats | undefined>();
  topics = $state<TopicRow[]>([]);
  /** The cluster's nodes (one without cluster mode), refreshed with every snapshot. */
  nodes = $state<NodeRow[]>([]);
  samples = $state<Sample[]>([]);
  status = $state<'connecting' | 'live' | 'reconnecting' | 'error'>('connecting');
  error = $state('');
  private source: EventSource | undefined;

  /** Checks access first (a 401 asks for a token), then opens the stream. */
  async start(): Promise<void> {
    this.stop();
    this.status = 'connecting';
    try {
      const stats = await getStats();
      auth.mode = stats.authMode;
      this.stats = stats;
    } catch (err) {
      this.status = 'error';
      this.error = err instanceof ApiError ? err.message : String(err);
      return;
    }
    const source = new EventSource(streamUrl('/v1/admin/stream'));
    this.source = source;
    source.addEventListener('stats', (e) => this.apply(JSON.parse((e as MessageEvent<string>).data) as Snapshot));
    source.addEventListener('open', () => { this.status = 'live'; });
    source.addEventListener('error', () => {
      // EventSource retries by itself; a stream that stays down is most often an expired token.
      this.status = 'reconnecting';
      void getStats().catch(() => { if (auth.needed) this.stop(); });
    });
  }

  stop(): void {
    this.source?.close();
    this.source = undefined;
  }

  private apply(s: Snapshot): void {
    this.status = 'live';
    this.stats = s.stats;
    this.topics = s.topics;
    this.nodes = s.nodes;
    const sample: Sample = {
      t: Date.now() / 1000,
      msgsIn: s.stats.rates.messagesInPerSec,
      msgsOut: s.stats.rates.messagesOutPerSec,
      bytesIn: s.stats.rates.bytesInPerSec,
      bytesOut: s.stats.rates.bytesOutPerSec,
      connections: s.stats.connections,
      live: s.stats.subscriptions.live,
      paused: s.stats.subscriptions.paused,
    };
    const next = this.samples.length >= HISTORY_SECONDS ? this.samples.slice(1) : this.samples.slice();
    next.push(sample);
    this.samples = next;
  }
}

export const liveStats = new LiveStats();
