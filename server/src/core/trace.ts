/**
 * Message tracing: where a message went, who got it, who acknowledged it.
 *
 * A message is traced when its publish asked for it (PUB `trace`, `Sluice-Trace: 1`, a batch
 * entry's `trace`) or was sampled (`--trace-sample`, a fraction of publishes). The mark is stored
 * with the message (its meta's `t`), so every node and every later reader knows it without a
 * lookup; an untraced message costs one byte comparison where events would be recorded
 * (`isTraced`). Each node records the events it sees in memory:
 *
 *   received (client, transport) → stored (commit latency) → delivered (live: one event per fan-out
 *   with the subscriber count and a few connection ids; catch-up, event streams, pulls: one per
 *   reader) → leased / acked / nacked / expired / dead-lettered (consumer groups)
 *
 * Bounded in time and space, whatever the fan-out: at most `maxTraces` messages per node (the
 * oldest forgotten first), each for `ttlMs`, each with at most `maxEvents` events per node — past
 * that, events are only counted by kind (`dropped`). A message live-delivered to 1,000 subscribers
 * is one event. The admin API gathers a message's events from every node and merges them by time.
 */
import type { Admin } from '@sluice/client/protocol';
import { entryMeta } from '@sluice/client/protocol';
import type { TopicLog } from '../log/log.js';

export type TraceEvent = Admin.TraceEvent;

export interface TraceOptions {
  /** This node's id (events say where they happened). */
  node: string;
  /** Fraction of publishes traced without asking (0–1). */
  sample: number;
  maxTraces: number;
  maxEvents: number;
  ttlMs: number;
}

/**
 * Now in ms since the epoch, to the microsecond: the steps of a journey are often within one
 * millisecond, and their order is what a trace shows.
 */
function now(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000) / 1000;
}

/** Commit times remembered at most (publishes of this node in flight are far fewer). */
const MAX_COMMITS = 10_000;

export const DEFAULT_TRACE_OPTIONS: Omit<TraceOptions, 'node'> = { sample: 0, maxTraces: 10_000, maxEvents: 100, ttlMs: 60 * 60_000 };

interface Trace {
  events: TraceEvent[];
  /** Events not kept (over maxEvents), by kind. */
  dropped: Record<string, number>;
  since: number;
}

/** Whether a stored entry is traced: it has a meta (a 4-element array) whose `t` is set. */
export function isTraced(entry: Uint8Array): boolean {
  return entry[0] === 0x94 && entryMeta(entry)?.t === 1;
}

export class Tracer {
  private readonly traces = new Map<string, Trace>();
  /** Traced publishes of this node waiting for their append to resolve. */
  private publishing = 0;
  /** When traced entries were committed, while publishes of this node wait (see `published`). */
  private readonly commits = new Map<string, number>();

  constructor(private readonly options: TraceOptions) {}

  /**
   * Watches the store's commits, before any reader does: a traced message's `stored` event is the
   * moment it became durable, which is before the live fan-out and before its publisher's ACK.
   * Call before the hub and the groups watch the store.
   */
  watch(store: TopicLog): () => void {
    return store.watch((topic, first, entries) => {
      if (this.publishing === 0) return;
      for (let i = 0; i < entries.length; i++) {
        if (!isTraced(entries[i]!)) continue;
        if (this.commits.size >= MAX_COMMITS) this.commits.delete(this.commits.keys().next().value!);
        this.commits.set(`${topic}\0${first + i}`, now());
      }
    });
  }

  /** A traced publish of this node starts its append; returns when it was received. */
  publishStarted(): number {
    this.publishing++;
    return now();
  }

  /**
   * A traced publish of this node was stored at `offset` (or failed: no offset): records its
   * `received` event and its `stored` event, at the commit seen by `watch`.
   */
  published(topic: string, offset: number | undefined, received: { at: number; client: string; transport?: string | undefined }, latencyMs: number): void {
    this.publishing--;
    if (offset === undefined) return;
    const k = `${topic}\0${offset}`;
    const at = this.commits.get(k) ?? now();
    this.commits.delete(k);
    this.record(topic, offset, { kind: 'received', at: received.at, client: received.client, ...(received.transport ? { transport: received.transport } : {}) });
    this.record(topic, offset, { kind: 'stored', at, latencyMs });
  }

  /** Whether this publish is traced by sampling. */
  sampled(): boolean {
    const s = this.options.sample;
    return s > 0 && Math.random() < s;
  }

  /** Records an event of a traced message (call only when `isTraced`, or for a publish that asked). */
  record(topic: string, offset: number, event: Omit<TraceEvent, 'node' | 'at'> & { at?: number }): void {
    const k = `${topic}\0${offset}`;
    let t = this.traces.get(k);
    const at = now();
    if (!t) {
      this.evict(at);
      this.traces.set(k, (t = { events: [], dropped: {}, since: at }));
    }
    if (t.events.length >= this.options.maxEvents) {
      t.dropped[event.kind] = (t.dropped[event.kind] ?? 0) + 1;
      return;
    }
    t.events.push({ at, node: this.options.node, ...event } as TraceEvent);
  }

  /** This node's events of a message, oldest first. */
  get(topic: string, offset: number): { events: TraceEvent[]; dropped: Record<string, number> } | undefined {
    const t = this.traces.get(`${topic}\0${offset}`);
    if (!t || Date.now() - t.since > this.options.ttlMs) return undefined;
    return { events: t.events, dropped: t.dropped };
  }

  /** How many messages this node holds traces of. */
  get size(): number {
    return this.traces.size;
  }

  /** Forgets expired traces, and the oldest while at the cap (the map keeps insertion order). */
  private evict(now: number): void {
    for (const [k, t] of this.traces) {
      if (this.traces.size < this.options.maxTraces && now - t.since <= this.options.ttlMs) break;
      this.traces.delete(k);
    }
  }
}
