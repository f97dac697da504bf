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
 *     (unless the log's history has that epoch holding every offset before `from`: then it is
 *      the same log under a new name, and the rows below apply)
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
import type { EpochRecord, TopicLog } from '../log/log.js';

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
  /** Earlier epochs still valid on this log (see TopicLog's contract). */
  history?: EpochRecord[];
}

export function resolveStart(log: LogView, want: Position, whenUnset: 'live' | 'oldest' = 'live'): Start {
  const { epoch, head, first } = log;
  const live: Start = { epoch, head, from: head + 1, recovered: false };
  if (want.from === undefined) return whenUnset === 'live' ? live : { epoch, head, from: first, recovered: false };
  const from = Math.max(want.from, 1);
  if (want.epoch !== undefined && want.epoch !== epoch) {
    const earlier = log.history?.find((h) => h.epoch === want.epoch);
    if (!earlier || from - 1 > earlier.last) return live;
  }
  if (from > head + 1) return live;
  if (from < first) return { epoch, head, from: first, recovered: false, gap: { from, to: first - 1 } };
  return { epoch, head, from, recovered: true };
}

/**
 * Where a reader stands after the log changed epoch: it was delivered every offset up to
 * `delivered` in epoch `was`. If the new log holds all of those under an earlier epoch in its
 * history, it goes on seamlessly (`recovered`); otherwise it saw offsets the log no longer has, and
 * restarts where the new epoch begins (or at the oldest retained offset when `was` is unknown).
 */
export function rebase(was: string, delivered: number, log: LogView): { from: number; recovered: boolean } {
  if (was === log.epoch) return { from: delivered + 1, recovered: true };
  const earlier = log.history?.find((h) => h.epoch === was);
  if (earlier && delivered <= earlier.last) return { from: delivered + 1, recovered: true };
  return { from: earlier ? Math.max(earlier.last + 1, log.first) : log.first, recovered: false };
}

/** A read at a cursor. `entries[0]` is offset `start`; `gap` names offsets retention removed first. */
export interface Chunk {
  epoch: string;
  head: number;
  first: number;
  history?: EpochRecord[];
  start: number;
  entries: Uint8Array[];
  gap?: { from: number; to: number };
}

/** Reads the log at a cursor under the one read policy. */
export class CursorReader {
  constructor(private readonly store: TopicLog, readonly policy: ReadPolicy = DEFAULT_READ_POLICY) {}

  /**
   * Entries from `cursor`: at most min(`want`, policy.batch) messages and min(`bytes`,
   * policy.bytes) stored bytes (at least one message when any exists). When retention passed the
   * cursor, `gap` is cursor..start−1 and the entries begin at `start`.
   */
  async read(topic: string, cursor: number, want = Number.POSITIVE_INFINITY, bytes = Number.POSITIVE_INFINITY): Promise<Chunk> {
    const limit = Math.max(0, Math.min(want, this.policy.batch));
    const r = await this.store.read(topic, cursor, { limit, maxBytes: Math.min(bytes, this.policy.bytes) });
    const chunk: Chunk = { epoch: r.epoch, head: r.head, first: r.first, start: r.start, entries: r.entries };
    if (r.history) chunk.history = r.history;
    if (r.start > cursor) chunk.gap = { from: cursor, to: r.start - 1 };
    return chunk;
  }
}
