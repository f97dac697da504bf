/**
 * Pull: `GET /v1/topics/{topic}/messages?from=&epoch=&limit=&wait=` → `{epoch, head, next, messages}`.
 *
 * - `from` (default: the oldest retained message) is the first offset wanted; where it leads is
 *   decided by `resolveStart` (core/start.ts), as for a subscription: a `from` older than the
 *   retained log adds `"gap": {from, to}` (the trimmed range), never a silent skip; a `from` beyond
 *   head + 1, or an `epoch` that is not the topic's, starts at head + 1. With `from`, the answer
 *   says `"recovered"` (true when it starts exactly there). `limit` (default 100, at most 1000) caps
 *   the messages returned, and so does a 1 MiB budget (at least one message is always returned when
 *   one exists); the page is read with the one read policy, in as many reads as it takes. `next` is
 *   the offset after the last message returned, or the start when none was.
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
import { resolveStart, type CursorReader, type Position } from '../core/start.js';
import type { Following, TopicLog } from '../log/log.js';
import type { Metrics } from '../metrics.js';
import { authenticate, begin, guard, streamsFull, tokenOf, uintParam, type HttpContext } from './context.js';
import type { Exchange } from './exchange.js';
import { messageJson } from './messages.js';
import { logger } from '../logger.js';

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
  /** The request named a `from`: the answer says `recovered` (this value, unless trimmed meanwhile). */
  recovered: boolean | undefined;
  epoch: string;
  /** Topic head last seen, for the empty answer at the deadline. */
  head: number;
  /** Deadline bucket (ms since epoch, a multiple of TICK_MS). */
  bucket: number;
  done: boolean;
  /** Interest in batches other gateways store (a shared store). */
  following: Following | undefined;
}

/** The JSON body of a pull answer; `recovered` is given when the request named a `from`. */
function pullBody(epoch: string, head: number, next: number, messages: readonly string[], gap?: { from: number; to: number }, recovered?: boolean): string {
  const g = gap ? `"gap":{"from":${gap.from},"to":${gap.to}},` : '';
  const rec = recovered === undefined ? '' : `"recovered":${recovered},`;
  return `{"epoch":${JSON.stringify(epoch)},"head":${head},"next":${next},${rec}${g}"messages":[${messages.join(',')}]}`;
}

/** One pull answer, read but not rendered: where it starts and the entries from there. */
interface Page {
  epoch: string;
  head: number;
  start: number;
  recovered: boolean | undefined;
  gap?: { from: number; to: number };
  entries: Uint8Array[];
}

/**
 * Reads a page: the start `resolveStart` gives for `want` (the oldest retained when it names no
 * `from`), then up to `limit` messages and MAX_PULL_BYTES, in reads of the one read policy.
 */
async function readPage(reader: CursorReader, topic: string, want: Position, limit: number): Promise<Page> {
  const first = await reader.read(topic, want.from ?? 0, limit);
  const start = resolveStart(first, want, 'oldest');
  const page: Page = { epoch: start.epoch, head: start.head, start: start.from, recovered: want.from === undefined ? undefined : start.recovered, entries: [] };
  if (start.gap) page.gap = start.gap;
  if (first.start !== start.from) return page; // a reset (epoch, or beyond the head): nothing to read
  page.entries = first.entries;
  let bytes = 0;
  for (const e of first.entries) bytes += e.length;
  while (page.entries.length < limit && bytes < MAX_PULL_BYTES && page.start + page.entries.length <= page.head) {
    const more = await reader.read(topic, page.start + page.entries.length, limit - page.entries.length);
    if (more.gap || more.entries.length === 0) break; // retention moved meanwhile: answer what we have
    for (const e of more.entries) {
      if (bytes + e.length > MAX_PULL_BYTES) return page;
      bytes += e.length;
      page.entries.push(e);
    }
  }
  return page;
}

/** Renders a page. */
function renderPage(p: Page): { body: string; count: number } {
  const messages = p.entries.map((e, i) => messageJson(p.start + i, e));
  return { body: pullBody(p.epoch, p.head, p.start + messages.length, messages, p.gap, p.recovered), count: messages.length };
}

export class LongPolls {
  private readonly byTopic = new Map<string, Set<Waiter>>();
  private readonly buckets = new Map<number, Set<Waiter>>();
  private ticker: ReturnType<typeof setInterval> | undefined;
  private readonly unwatch: () => void;
  /** Requests parked now. */
  size = 0;

  constructor(store: TopicLog, private readonly reader: CursorReader, private readonly metrics: Metrics) {
    this.unwatch = store.watch((topic, first, entries, epoch) => this.onAppend(topic, first, entries, epoch));
  }

  /** Parks a request whose page at `p.start` was empty. */
  park(ex: Exchange, topic: string, p: Page, limit: number, waitMs: number, following: Following | undefined): void {
    const bucket = Math.ceil((Date.now() + waitMs) / TICK_MS) * TICK_MS;
    const w: Waiter = { ex, topic, from: p.start, limit, recovered: p.recovered, epoch: p.epoch, head: p.head, bucket, done: false, following };
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
    w.following?.drop();
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
    w.ex.send(200, 'application/json', pullBody(w.epoch, w.head, w.from, [], undefined, w.recovered));
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
          logger.error('expiring a long-poll failed', { err });
          this.remove(w);
        }
      }
    }
  }

  /** A batch became durable: answer every waiter it satisfies. */
  private onAppend(topic: string, first: number, entries: readonly Uint8Array[], epoch: string): void {
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
      if (w.from < first || epoch !== w.epoch) {
        // Older than this batch (a gap, or a notification this waiter missed), or another epoch
        // (resolveStart decides what the position still means): read the store.
        void this.reread(w);
        continue;
      }
      try {
        const key = `${w.from}:${w.limit}:${w.recovered}`;
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
        logger.error(`answering a long-poll on ${topic} failed`, { err });
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
    return { body: pullBody(w.epoch, last, w.from + messages.length, messages, undefined, w.recovered), count: messages.length };
  }

  private async reread(w: Waiter): Promise<void> {
    try {
      const page = await readPage(this.reader, w.topic, { from: w.from, epoch: w.epoch }, w.limit);
      page.recovered = w.recovered === undefined ? undefined : w.recovered && page.recovered === true;
      this.answer(w.ex, renderPage(page));
    } catch (err) {
      this.metrics.handlerFailures.inc();
      logger.error(`long-poll read of ${w.topic} failed`, { err });
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

/** Parses `wait` (seconds, fractions and exponents allowed) into ms, capped at `maxS`; NaN when malformed. */
function waitMs(v: string | undefined, maxS: number): number {
  if (v === undefined || v === '') return 0;
  const s = /^[0-9.eE+]{1,24}$/.test(v) ? Number(v) : Number.NaN;
  if (!(s >= 0)) return Number.NaN;
  return Math.round(Math.min(s, maxS) * 1000);
}

/** `GET /v1/topics/{topic}/messages`. Called in the synchronous top of the route. */
export function pull(res: HttpResponse, req: HttpRequest, topic: string, ctx: HttpContext, polls: LongPolls, streamsOpen: () => number): void {
  const ex = begin(res, req, 'pull', ctx);
  if (!ex) return;
  const token = tokenOf(req, true);
  const from = uintParam(req.getQuery('from'));
  const epoch = req.getQuery('epoch') || undefined;
  const limitParam = uintParam(req.getQuery('limit'));
  const wait = waitMs(req.getQuery('wait'), ctx.http.maxWaitS);
  if (Number.isNaN(from)) return ex.error('bad-request', 'from must be an unsigned integer');
  if (Number.isNaN(limitParam)) return ex.error('bad-request', 'limit must be an unsigned integer');
  if (Number.isNaN(wait)) return ex.error('bad-request', 'wait must be a number of seconds');
  const limit = Math.min(limitParam ?? DEFAULT_PULL_LIMIT, MAX_PULL_LIMIT);
  const want: Position = from === undefined ? {} : epoch === undefined ? { from } : { from, epoch };

  guard(ex, ctx, async () => {
    const principal = await authenticate(ex, ctx, token);
    if (!principal || !ex.open) return;
    const invalid = topicError(topic, { allowReserved: principal.admin });
    if (invalid) return ex.error('invalid-topic', invalid);
    if (!principal.can('history', topic)) return ex.error('forbidden', `not allowed to read the history of ${topic}`);
    // A pull that may wait follows the topic first: nothing stored after its read can be missed.
    const following = wait > 0 && limit > 0 ? ctx.store.follow?.(topic) : undefined;
    let parked = false;
    try {
      if (following) await following.ready;
      const page = await readPage(ctx.reader, topic, want, limit);
      if (!ex.open) return;
      if (page.entries.length > 0 || wait === 0 || limit === 0) {
        const { body, count } = renderPage(page);
        ctx.metrics.messagesOut.inc(count);
        ctx.metrics.bytesOut.inc(body.length);
        return ex.send(200, 'application/json', body);
      }
      if (streamsFull(ex, ctx, streamsOpen)) return;
      polls.park(ex, topic, page, limit, wait, following);
      parked = true;
    } finally {
      if (!parked) following?.drop();
    }
  });
}
