/**
 * Where delivery starts, and how a reader walks the log from there: one rule and one read policy
 * for every transport (WebSocket subscriptions, SSE streams, pull).
 *
 * `resolveStart` decides, for a requested position {from?, epoch?} and the topic's {epoch, head,
 * first}, the first offset to deliver, whether the request was honoured exactly (`recovered`), and
 * which requested offsets are gone (`gap`):
 *
 *   request                          from              recovered  gap
 *   no from                          head + 1 (live)*  false      —
 *   epoch given and different        head + 1 (live)   false      —      the log was lost or reset
 *   from > head + 1 (same epoch)     head + 1 (live)   false      —      the log is behind the client: a reset
 *   from < first (trimmed)           first             false      from..first−1
 *   first ≤ from ≤ head + 1          from              true       —
 *
 *   * pull starts at the oldest retained message instead (`whenUnset: 'oldest'`).
 *
 * A trimmed start is announced on every transport: GAP after SUBSCRIBED on the WebSocket, `event:
 * gap` after `event: subscribed` on SSE, `"gap"` in a pull answer.
 */
import { DEFAULT_READ_POLICY, type ReadPolicy } from '../config.js';
import type { TopicLog } from '../log/log.js';

export interface Position {
  from?: number;
  epoch?: string;
}

export interface Start {
  epoch: string;
  head: number;
  /** First offset to deliver. */
  from: number;
  recovered: boolean;
  /** Requested offsets trimmed by retention (inclusive). */
  gap?: { from: number; to: number };
}

export interface LogView {
  epoch: string;
  /** Last offset stored (0 when none). */
  head: number;
  /** Earliest retained offset (head + 1 when none). */
  first: number;
}

export function resolveStart(log: LogView, want: Position, whenUnset: 'live' | 'oldest' = 'live'): Start {
  const { epoch, head, first } = log;
  const live: Start = { epoch, head, from: head + 1, recovered: false };
  if (want.from === undefined) return whenUnset === 'live' ? live : { epoch, head, from: first, recovered: false };
  if (want.epoch !== undefined && want.epoch !== epoch) return live;
  const from = Math.max(want.from, 1);
  if (from > head + 1) return live;
  if (from < first) return { epoch, head, from: first, recovered: false, gap: { from, to: first - 1 } };
  return { epoch, head, from, recovered: true };
}

/** A read at a cursor. `entries[0]` is offset `start`; `gap` names offsets retention removed first. */
export interface Chunk {
  epoch: string;
  head: number;
  first: number;
  start: number;
  entries: Uint8Array[];
  gap?: { from: number; to: number };
}

/** Reads the log at a cursor under the one read policy. */
export class CursorReader {
  constructor(private readonly store: TopicLog, readonly policy: ReadPolicy = DEFAULT_READ_POLICY) {}

  /**
   * Entries from `cursor`: at most min(`want`, policy.batch) messages and policy.bytes stored bytes
   * (at least one message when any exists). When retention passed the cursor, `gap` is
   * cursor..start−1 and the entries begin at `start`.
   */
  async read(topic: string, cursor: number, want = Number.POSITIVE_INFINITY): Promise<Chunk> {
    const limit = Math.max(0, Math.min(want, this.policy.batch));
    const r = await this.store.read(topic, cursor, { limit, maxBytes: this.policy.bytes });
    const chunk: Chunk = { epoch: r.epoch, head: r.head, first: r.first, start: r.start, entries: r.entries };
    if (r.start > cursor) chunk.gap = { from: cursor, to: r.start - 1 };
    return chunk;
  }
}
