/**
 * Server-Sent Events: one writer per response that keeps to TCP backpressure, and the topic event
 * streams built on it (`GET /v1/topics/{topic}/events`).
 *
 * Stream format (text/event-stream):
 *   retry: 2000                                   reconnect delay for EventSource
 *   event: subscribed  data: {epoch, head, from, recovered}
 *   id: <offset>       data: <message JSON>        one per message (the default `message` event)
 *   event: gap         data: {from, to}            offsets from..to were trimmed before delivery
 *   event: end         data: {code, message}       the gateway ends the stream (unauthorized: token
 *                                                  expired; kicked; shutting-down)
 *   : comment                                     heartbeats
 *
 * Where a stream starts is `resolveStart`'s answer (core/start.ts), as for a WebSocket SUB: a
 * trimmed start is announced with `event: gap` right after `event: subscribed`.
 *
 * Flow control: the log is the buffer. Each stream has a cursor (the next offset to send). While
 * the socket keeps up, stored batches of at most DIRECT_MAX messages are written as they are
 * notified; when a write reports backpressure the stream stops, and when uWS says it is writable
 * again it continues from the cursor by reading the store under the one read policy (core/start.ts).
 * So at most one notified batch or one read sits in the gateway's buffers per stream, whatever the
 * reader's speed.
 */
import { isTraced, type Tracer } from '../core/trace.js';
import { topicError } from '@sluice/client/protocol';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Principal } from '../auth/auth.js';
import { atExpiry } from '../core/expiry.js';
import { rebase, resolveStart, type CursorReader, type Position } from '../core/start.js';
import type { Following, TopicLog } from '../log/log.js';
import type { Metrics } from '../metrics.js';
import { randomId } from '../util/id.js';
import { authenticate, begin, clientAddress, guard, streamsFull, tokenOf, uintParam, type HttpContext } from './context.js';
import type { Exchange } from './exchange.js';
import { messageJson } from './messages.js';
import { logger } from '../logger.js';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};

/** A notified batch bigger than this is sent through the store-read path instead, in bounded pieces. */
const DIRECT_MAX = 256;

/** One SSE response. Knows nothing of topics; `onResume` runs when a blocked stream may continue. */
export class SseWriter {
  /** The last write reported backpressure: write nothing until `onResume`. */
  blocked = false;
  bytesOut = 0;

  constructor(readonly ex: Exchange, private readonly onResume: () => void) {}

  start(first: string): void {
    this.bytesOut += first.length;
    this.blocked = !this.ex.stream(SSE_HEADERS, first);
    this.ex.onWritable(() => {
      try {
        // uWS flushes its backlog only when something is written: a comment line does it.
        const ok = this.ex.write(':\n');
        if (ok && this.blocked) {
          this.blocked = false;
          this.onResume();
        }
      } catch (err) {
        logger.error('resuming an event stream failed', { err }); // never throw into uWS
      }
    });
  }

  get open(): boolean {
    return this.ex.streaming;
  }

  /** Writes a chunk (even when blocked: callers check `blocked` before producing more). */
  send(chunk: string): boolean {
    this.bytesOut += chunk.length;
    const ok = this.ex.write(chunk);
    if (!ok) this.blocked = true;
    return ok;
  }

  heartbeat(): void {
    if (!this.blocked && this.open) this.send(': keep-alive\n\n');
  }

  end(event?: { name: string; data: unknown }): void {
    this.ex.end(event ? `event: ${event.name}\ndata: ${JSON.stringify(event.data)}\n\n` : '');
  }
}

function gapEvent(gap: { from: number; to: number }): string {
  return `event: gap\ndata: ${JSON.stringify(gap)}\n\n`;
}

export function eventOf(offset: number, entry: Uint8Array): string {
  return `id: ${offset}\ndata: ${messageJson(offset, entry)}\n\n`;
}

/** A topic event stream: a subscription whose transport is one SSE response. */
export class TopicStream {
  readonly id = `sse-${randomId(12)}`;
  readonly since = Date.now();
  /** Next offset to send, and the epoch it belongs to. */
  cursor = 0;
  epoch = '';
  /** Re-reading the topic after an epoch change. */
  resync = false;
  /** Interest in batches other gateways store (a shared store). */
  following: Following | undefined;
  delivered = 0;
  /** A store read is in flight; notifications only mark `dirty`. */
  pumping = false;
  dirty = false;
  closed = false;
  writer!: SseWriter;
  cancelExpiry: (() => void) | undefined;

  constructor(
    readonly topic: string,
    readonly clientId: string,
    readonly remoteAddress: string,
    readonly userAgent: string,
  ) {}
}

export class TopicStreams {
  private readonly byTopic = new Map<string, Set<TopicStream>>();
  readonly all = new Set<TopicStream>();
  private readonly unwatch: () => void;
  private readonly heartbeat: ReturnType<typeof setInterval>;

  constructor(
    private readonly store: TopicLog,
    private readonly reader: CursorReader,
    private readonly metrics: Metrics,
    heartbeatMs: number,
    private readonly tracer?: Tracer,
  ) {
    this.unwatch = store.watch((topic, first, entries, epoch) => this.onAppend(topic, first, entries, epoch));
    this.heartbeat = setInterval(() => {
      for (const s of this.all) {
        try {
          s.writer.heartbeat();
        } catch (err) {
          this.metrics.handlerFailures.inc();
          logger.error('event stream heartbeat failed', { err });
        }
      }
    }, heartbeatMs);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.all.size;
  }

  /** Streams of one topic (admin API). */
  of(topic: string): TopicStream[] {
    return [...(this.byTopic.get(topic) ?? [])];
  }

  /** Starts a stream on an exchange whose principal may subscribe to the topic. */
  async open(ex: Exchange, s: TopicStream, principal: Principal, want: Position): Promise<void> {
    s.following = this.store.follow?.(s.topic);
    ex.onAbort(() => this.remove(s));
    if (s.following) await s.following.ready;
    const info = await this.store.info(s.topic);
    if (!ex.open) return this.remove(s);
    const start = resolveStart(info, want);
    s.cursor = start.from;
    s.epoch = start.epoch;
    s.writer = new SseWriter(ex, () => void this.pump(s));
    const subscribed = { epoch: start.epoch, head: start.head, from: start.from, recovered: start.recovered };
    let first = `retry: 2000\nevent: subscribed\ndata: ${JSON.stringify(subscribed)}\n\n`;
    if (start.gap) first += gapEvent(start.gap);
    s.writer.start(first);
    let set = this.byTopic.get(s.topic);
    if (!set) this.byTopic.set(s.topic, (set = new Set()));
    set.add(s);
    this.all.add(s);
    if (principal.expiresAt !== undefined) {
      s.cancelExpiry = atExpiry(principal.expiresAt, () => this.end(s, 'unauthorized', 'token expired'));
    }
    void this.pump(s);
  }

  /** Ends a stream from the server side (admin kick, shutdown, token expiry). */
  end(s: TopicStream, code: string, message: string): void {
    if (s.closed) return;
    s.writer.end({ name: 'end', data: { code, message } });
    this.remove(s);
  }

  close(): void {
    this.unwatch();
    clearInterval(this.heartbeat);
    for (const s of [...this.all]) this.end(s, 'shutting-down', 'the gateway is shutting down');
  }

  private remove(s: TopicStream): void {
    if (s.closed) return;
    s.closed = true;
    s.cancelExpiry?.();
    s.following?.drop();
    this.all.delete(s);
    const set = this.byTopic.get(s.topic);
    if (set) {
      set.delete(s);
      if (set.size === 0) this.byTopic.delete(s.topic);
    }
  }

  private onAppend(topic: string, first: number, entries: readonly Uint8Array[], epoch: string): void {
    const set = this.byTopic.get(topic);
    if (!set) return;
    let chunk: string | undefined;
    for (const s of set) {
      if (s.resync) continue;
      if (epoch !== s.epoch) { this.epochChanged(s); continue; }
      if (s.pumping) { s.dirty = true; continue; }
      if (s.writer.blocked) continue; // resumes from its cursor when writable
      try {
        if (s.cursor === first && entries.length <= DIRECT_MAX) {
          chunk ??= entries.map((e, i) => eventOf(first + i, e)).join('');
          this.deliver(s, chunk, first, entries);
          s.cursor += entries.length;
        } else if (s.cursor <= first + entries.length - 1) {
          void this.pump(s);
        }
      } catch (err) {
        // One stream's failure must not starve the others of this batch.
        this.metrics.handlerFailures.inc();
        logger.error(`event stream delivery on ${topic} failed`, { err });
        this.end(s, 'internal', 'the gateway failed to deliver');
      }
    }
  }

  /**
   * The log changed epoch (a shared store after a failover or a loss): the stream stops, the topic
   * is read again, and `event: subscribed` says where it goes on — `recovered: true` when the new
   * log holds everything sent so far, else `recovered: false` from where the new epoch begins
   * (see `rebase`), as SUBSCRIBED does on the WebSocket.
   */
  private epochChanged(s: TopicStream): void {
    if (s.resync) return;
    const was = s.epoch;
    s.resync = true;
    this.store.info(s.topic).then((info) => {
      s.resync = false;
      if (s.closed || !s.writer.open) return;
      const at = rebase(was, s.cursor - 1, info);
      s.cursor = at.from;
      s.epoch = info.epoch;
      s.writer.send(`event: subscribed\ndata: ${JSON.stringify({ epoch: info.epoch, head: info.head, from: at.from, recovered: at.recovered })}\n\n`);
      void this.pump(s);
    }, (err: unknown) => {
      this.metrics.handlerFailures.inc();
      logger.error(`re-reading ${s.topic} after an epoch change failed`, { err });
      this.end(s, 'internal', 'the topic changed epoch; reconnect');
    });
  }

  /** Writes a chunk of events: `entries` from offset `first` (for the counts and traces). */
  private deliver(s: TopicStream, chunk: string, first: number, entries: readonly Uint8Array[]): void {
    const count = entries.length;
    s.writer.send(chunk);
    if (this.tracer) {
      for (let i = 0; i < count; i++) {
        if (isTraced(entries[i]!)) this.tracer.record(s.topic, first + i, { kind: 'delivered', path: 'sse', connection: s.id });
      }
    }
    s.delivered += count;
    this.metrics.messagesOut.inc(count);
    this.metrics.bytesOut.inc(chunk.length);
  }

  /** Reads the store from the cursor until caught up or backpressured. */
  private async pump(s: TopicStream): Promise<void> {
    if (s.pumping) return;
    s.pumping = true;
    try {
      for (;;) {
        if (s.closed || !s.writer.open || s.writer.blocked) return;
        s.dirty = false;
        if (s.resync) return;
        const r = await this.reader.read(s.topic, s.cursor);
        if (s.closed || !s.writer.open) return;
        if (r.epoch !== s.epoch) return this.epochChanged(s);
        let chunk = '';
        if (r.gap) {
          chunk += gapEvent(r.gap);
          s.cursor = r.start;
        }
        for (let i = 0; i < r.entries.length; i++) chunk += eventOf(r.start + i, r.entries[i]!);
        if (chunk) this.deliver(s, chunk, r.start, r.entries);
        s.cursor += r.entries.length;
        // Caught up, and nothing was stored meanwhile: live notifications take over.
        if (r.entries.length === 0 && !s.dirty) return;
      }
    } catch (err) {
      this.metrics.handlerFailures.inc();
      logger.error(`event stream read of ${s.topic} failed`, { err });
      this.end(s, 'internal', 'reading the topic log failed');
    } finally {
      s.pumping = false;
    }
  }
}

/** `GET /v1/topics/{topic}/events`. Called in the synchronous top of the route. */
export function events(res: HttpResponse, req: HttpRequest, topic: string, ctx: HttpContext, streams: TopicStreams, streamsOpen: () => number): void {
  const ex = begin(res, req, 'events', ctx);
  if (!ex) return;
  const token = tokenOf(req, true);
  const lastEventId = req.getHeader('last-event-id');
  const fromParam = uintParam(req.getQuery('from'));
  const epoch = req.getQuery('epoch') || undefined;
  const lastId = uintParam(lastEventId || undefined);
  if (Number.isNaN(lastId)) return ex.error('bad-request', 'Last-Event-ID must be an offset');
  if (Number.isNaN(fromParam)) return ex.error('bad-request', 'from must be an unsigned integer');
  // A reconnecting EventSource sends the last id it saw: that wins over the URL's from.
  const from = lastId !== undefined ? lastId + 1 : fromParam;
  const address = clientAddress(ex);
  const userAgent = req.getHeader('user-agent');

  guard(ex, ctx, async () => {
    const principal = await authenticate(ex, ctx, token);
    if (!principal || !ex.open) return;
    const invalid = topicError(topic, { allowReserved: principal.admin });
    if (invalid) return ex.error('invalid-topic', invalid);
    if (!principal.can('sub', topic)) return ex.error('forbidden', `not allowed to subscribe to ${topic}`);
    if (streamsFull(ex, ctx, streamsOpen)) return;
    const s = new TopicStream(topic, principal.id, address, userAgent);
    await streams.open(ex, s, principal, from === undefined ? {} : epoch === undefined ? { from } : { from, epoch });
  });
}
