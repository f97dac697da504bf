/**
 * Pull: `GET /v1/topics/{topic}/messages?from=&limit=&wait=` → `{epoch, head, next, messages}`.
 *
 * - `from` (default: the oldest retained message) is the first offset wanted; `limit` (default
 *   100, at most 1000) caps the messages returned, and so does a 1 MiB budget (at least one message
 *   is always returned when one exists). `next` is the offset after the last message returned, or
 *   `from` when none was. A `from` older than the retained log adds `"gap": {from, to}` (the
 *   trimmed range), never a silent skip.
 * - `wait` (seconds, fractions allowed, capped by `--max-wait`) long-polls: when nothing at or after
 *   `from` exists yet, the request is parked until a message is stored or the wait ends (then it is
 *   answered with no messages).
 *
 * Long-polls cost no timer and no pending promise each: a parked request is one small `Waiter` in a
 * set per topic and in a set per 100 ms deadline bucket. The store's `watch` (called after
 * durability, with consecutive offsets) wakes a topic's waiters; one 100 ms ticker, running only
 * while requests are parked, expires them. Waiters that want the same range share one rendered body.
 */
import { topicError } from '@sluice/client/protocol';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { ReadResult, TopicLog } from '../log/log.js';
import type { Metrics } from '../metrics.js';
import { authenticate, begin, guard, tokenOf, uintParam, type HttpContext } from './context.js';
import type { Exchange } from './exchange.js';
import { messageJson } from './messages.js';

export const DEFAULT_PULL_LIMIT = 100;
export const MAX_PULL_LIMIT = 1000;
/** Stored bytes read for one response (JSON is larger: base64, field names). */
const MAX_PULL_BYTES = 1024 * 1024;
/** Deadline granularity of long-polls. */
const TICK_MS = 100;

interface Waiter {
  ex: Exchange;
  topic: string;
  /** First offset wanted. */
  from: number;
  limit: number;
  /** `from` was given: report a trimmed range as a gap. */
  explicit: boolean;
  epoch: string;
  /** Topic head last seen, for the empty answer at the deadline. */
  head: number;
  /** Deadline bucket (ms since epoch, a multiple of TICK_MS). */
  bucket: number;
  done: boolean;
}

/** The JSON body of a pull answer. */
function pullBody(epoch: string, head: number, next: number, messages: readonly string[], gap?: { from: number; to: number }): string {
  const g = gap ? `"gap":{"from":${gap.from},"to":${gap.to}},` : '';
  return `{"epoch":${JSON.stringify(epoch)},"head":${head},"next":${next},${g}"messages":[${messages.join(',')}]}`;
}

/** Renders a store read; `from` is what the client asked for (undefined: the oldest retained). */
function renderRead(r: ReadResult, from: number | undefined): { body: string; count: number } {
  const messages = r.entries.map((e, i) => messageJson(r.start + i, e));
  const next = messages.length > 0 ? r.start + messages.length : from ?? r.start;
  const gap = from !== undefined && r.start > from ? { from, to: r.start - 1 } : undefined;
  return { body: pullBody(r.epoch, r.head, next, messages, gap), count: messages.length };
}

export class LongPolls {
  private readonly byTopic = new Map<string, Set<Waiter>>();
  private readonly buckets = new Map<number, Set<Waiter>>();
  private ticker: ReturnType<typeof setInterval> | undefined;
  private readonly unwatch: () => void;
  /** Requests parked now. */
  size = 0;

  constructor(private readonly store: TopicLog, private readonly metrics: Metrics) {
    this.unwatch = store.watch((topic, first, entries) => this.onAppend(topic, first, entries));
  }

  park(ex: Exchange, topic: string, from: number, limit: number, explicit: boolean, r: ReadResult, waitMs: number): void {
    const bucket = Math.ceil((Date.now() + waitMs) / TICK_MS) * TICK_MS;
    const w: Waiter = { ex, topic, from, limit, explicit, epoch: r.epoch, head: r.head, bucket, done: false };
    let set = this.byTopic.get(topic);
    if (!set) this.byTopic.set(topic, (set = new Set()));
    set.add(w);
    let due = this.buckets.get(bucket);
    if (!due) this.buckets.set(bucket, (due = new Set()));
    due.add(w);
    this.size++;
    ex.onAbort(() => this.remove(w));
    this.ticker ??= setInterval(() => this.tick(), TICK_MS);
  }

  /** Answers every parked request (empty) and stops: the gateway is shutting down. */
  close(): void {
    this.unwatch();
    for (const set of this.byTopic.values()) for (const w of set) this.expire(w);
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
  }

  private remove(w: Waiter): void {
    if (w.done) return;
    w.done = true;
    this.size--;
    const set = this.byTopic.get(w.topic);
    if (set) {
      set.delete(w);
      if (set.size === 0) this.byTopic.delete(w.topic);
    }
    const due = this.buckets.get(w.bucket);
    if (due) {
      due.delete(w);
      if (due.size === 0) this.buckets.delete(w.bucket);
    }
    if (this.size === 0 && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }

  private expire(w: Waiter): void {
    this.remove(w);
    const next = w.explicit ? w.from : Math.max(w.from, w.head + 1);
    w.ex.send(200, 'application/json', pullBody(w.epoch, w.head, next, []));
  }

  private tick(): void {
    const now = Date.now();
    for (const [bucket, due] of this.buckets) {
      if (bucket > now) continue;
      for (const w of due) {
        try {
          this.expire(w);
        } catch (err) {
          // A timer callback must never throw: that would end the process.
          this.metrics.handlerFailures.inc();
          console.error('sluice: expiring a long-poll failed', err);
          this.remove(w);
        }
      }
    }
  }

  /** A batch became durable: answer every waiter it satisfies. */
  private onAppend(topic: string, first: number, entries: readonly Uint8Array[]): void {
    const set = this.byTopic.get(topic);
    if (!set) return;
    const last = first + entries.length - 1;
    let rendered: Map<string, { body: string; count: number }> | undefined;
    for (const w of set) {
      if (w.from > last) {
        w.head = last;
        continue;
      }
      this.remove(w);
      if (w.from < first) {
        // Older than this batch (a gap, or a notification this waiter missed): read the store.
        void this.reread(w);
        continue;
      }
      try {
        const key = `${w.from}:${w.limit}`;
        rendered ??= new Map();
        let answer = rendered.get(key);
        if (!answer) {
          answer = this.renderEntries(w, first, last, entries);
          rendered.set(key, answer);
        }
        this.answer(w.ex, answer);
      } catch (err) {
        // One waiter's failure must not leave the others of this batch unanswered.
        this.metrics.handlerFailures.inc();
        console.error(`sluice: answering a long-poll on ${topic} failed`, err);
        w.ex.error('internal', 'the gateway failed to answer this request');
      }
    }
  }

  private renderEntries(w: Waiter, first: number, last: number, entries: readonly Uint8Array[]): { body: string; count: number } {
    const messages: string[] = [];
    let bytes = 0;
    for (let i = w.from - first; i < entries.length && messages.length < w.limit; i++) {
      const e = entries[i]!;
      if (messages.length > 0 && bytes + e.length > MAX_PULL_BYTES) break;
      bytes += e.length;
      messages.push(messageJson(w.from + messages.length, e));
    }
    return { body: pullBody(w.epoch, last, w.from + messages.length, messages), count: messages.length };
  }

  private async reread(w: Waiter): Promise<void> {
    try {
      const r = await this.store.read(w.topic, w.from, { limit: w.limit, maxBytes: MAX_PULL_BYTES });
      this.answer(w.ex, renderRead(r, w.explicit ? w.from : undefined));
    } catch (err) {
      this.metrics.handlerFailures.inc();
      console.error(`sluice: long-poll read of ${w.topic} failed`, err);
      w.ex.error('internal', 'reading the topic log failed');
    }
  }

  private answer(ex: Exchange, a: { body: string; count: number }): void {
    if (!ex.open) return;
    this.metrics.messagesOut.inc(a.count);
    this.metrics.bytesOut.inc(a.body.length);
    ex.send(200, 'application/json', a.body);
  }
}

/** Parses `wait` (seconds, fractions allowed) into ms, capped; NaN when malformed. */
function waitMs(v: string | undefined, maxS: number): number {
  if (v === undefined || v === '') return 0;
  if (!/^\d{1,9}(\.\d{1,6})?$/.test(v)) return Number.NaN;
  return Math.round(Math.min(Number(v), maxS) * 1000);
}

/** `GET /v1/topics/{topic}/messages`. Called in the synchronous top of the route. */
export function pull(res: HttpResponse, req: HttpRequest, topic: string, ctx: HttpContext, polls: LongPolls, streamsOpen: () => number): void {
  const ex = begin(res, req, 'pull', ctx);
  if (!ex) return;
  const token = tokenOf(req, true);
  const from = uintParam(req.getQuery('from'));
  const limitParam = uintParam(req.getQuery('limit'));
  const wait = waitMs(req.getQuery('wait'), ctx.http.maxWaitS);
  if (Number.isNaN(from)) return ex.error('bad-request', 'from must be an unsigned integer');
  if (Number.isNaN(limitParam)) return ex.error('bad-request', 'limit must be an unsigned integer');
  if (Number.isNaN(wait)) return ex.error('bad-request', 'wait must be a number of seconds');
  const limit = Math.min(limitParam ?? DEFAULT_PULL_LIMIT, MAX_PULL_LIMIT);
  const start = from === undefined ? undefined : Math.max(from, 1);

  guard(ex, ctx, async () => {
    const principal = await authenticate(ex, ctx, token);
    if (!principal || !ex.open) return;
    const invalid = topicError(topic, { allowReserved: principal.admin });
    if (invalid) return ex.error('invalid-topic', invalid);
    if (!principal.can('history', topic)) return ex.error('forbidden', `not allowed to read the history of ${topic}`);
    const r = await ctx.store.read(topic, start ?? 0, { limit, maxBytes: MAX_PULL_BYTES });
    if (!ex.open) return;
    if (r.entries.length > 0 || wait === 0 || limit === 0) {
      const { body, count } = renderRead(r, start);
      ctx.metrics.messagesOut.inc(count);
      ctx.metrics.bytesOut.inc(body.length);
      return ex.send(200, 'application/json', body);
    }
    if (streamsOpen() >= ctx.http.maxStreams) {
      return ex.error('limit-exceeded', `at most ${ctx.http.maxStreams} long-polls and event streams at once`);
    }
    polls.park(ex, topic, start ?? r.start, limit, start !== undefined, r, wait);
  });
}
