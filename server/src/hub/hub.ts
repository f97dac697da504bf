/**
 * The hub: delivers each topic's log to its subscribers under credit.
 *
 * Two delivery paths:
 * - Live: a subscription at the tail with credit rides the native uWS topic. Each stored batch is
 *   encoded once per run of at most `CHECK_BYTES` (MSG, or MSGS for consecutive offsets) and each
 *   run published once; uWS fans it out from C++. A live subscription with credit c that joined at tail h may receive every offset up to
 *   its `limit` h + c. Live subscriptions sit in a min-heap by limit: before publishing offsets
 *   a..b, every one whose limit is < b leaves the native topic, gets its share a..limit as its own
 *   frame, and is paused. Grants only raise `limit`; the heap entry is refreshed lazily when it
 *   reaches the top, so CREDIT costs O(1).
 * - Catch-up: a subscription behind the tail reads the store (the log is the buffer) in batches
 *   of at most its credit, sends them as MSGS, and joins the live path when it reaches the tail.
 *   Reads wait while the socket's send buffer is above the high-water mark, read what fits under
 *   it (at least `CHECK_BYTES`), and write it at once past the mark, so only what the kernel
 *   refuses makes them wait. Most catch-ups are subscribers a batch just took off the live path
 *   for lack of credit: they read the topic's newest entries from a small per-topic cache
 *   (bounded per topic, in total, and by retention) instead of the store, synchronously.
 *
 * A live subscription whose connection does not read keeps its socket's send buffer growing. So
 * a stored batch is published natively in runs of at most `CHECK_BYTES`, and once a topic has
 * published `CHECK_BYTES` since its last check, its live subscriptions' connections are checked
 * in the same synchronous step (a late event loop cannot delay it): one holding more than the
 * high-water mark leaves the native topic and continues as a catch-up, which waits for the socket
 * to drain and then reads the log from where it left, writing what fits under the mark (at least
 * `CHECK_BYTES`).
 * A timer sweeps every `SWEEP_MS` as well, for connections that take many quiet topics. What one
 * connection pins in the gateway is thereby bounded by the high-water mark plus 2 × `CHECK_BYTES`
 * (plus one message larger than that) per topic, whatever its credit and however late the loop.
 *
 * Byte window (protocol 1.5; see subscription.ts): a subscription of a client that grants credit by
 * bytes consumed as well is sent at most `window` bytes of messages (plus one message) after its
 * last CREDIT. Live, it is counted where credit is: the topic keeps `cum`, the bytes of the entries
 * published up to `tail`, and a second heap orders the live subscriptions with a window by their
 * `byteLimit`. Before publishing a run, every one that may not receive its last entry leaves the
 * native topic with its share, exactly like one out of credit; one whose client keeps granting
 * (its `byteLimit` only rises, refreshed lazily like `limit`) stays on the fast path. Off the live
 * path, catch-up frames stop where the window does. A full window pauses the subscription like zero
 * credit; the next CREDIT resumes it from the log.
 *
 * Invariant: `tail` is the last offset published natively for the topic. Catch-up reads stop at
 * it, and a subscription joins the native topic only when its cursor is exactly tail + 1, in the
 * same synchronous step, so no offset is ever delivered twice or skipped.
 *
 * The hub owns its subscriptions: it creates them (`subscribe`), is the only code that changes
 * them, and hands out read-only views. Delivery counts and bytes are accounted here alone.
 */
import { CloseCode, encode, encodeDelivery, encodeStr, FrameType } from '@sluice/client/protocol';
import type { HubConfig } from '../config.js';
import { rebase, resolveStart, type CursorReader, type Position } from '../core/start.js';
import { StoreUnavailableError, type Following, type TopicInfo, type TopicLog } from '../log/log.js';
import type { Metrics } from '../metrics.js';
import { isTraced, type Tracer } from '../core/trace.js';
import { MinHeap } from './heap.js';
import type { Conn, Fanout } from './conn.js';
import { Subscription, type SubscriptionView, type SubState } from './subscription.js';
import { logger } from '../logger.js';

/** The hub's tunables (Config.hub, already capped by retention) and the credit cap. */
export interface HubOptions extends HubConfig {
  maxCredit: number;
}

/** A SUB as the hub needs it. */
export interface SubscribeSpec extends Position {
  id: number;
  topic: string;
  /** Who subscribes (the token's `sub`). */
  clientId: string;
  credit: number;
  /** Byte window (protocol 1.5 clients: `maxWindowBytes`); 0 or absent: none. */
  windowBytes?: number;
}

interface TopicState {
  topic: string;
  /** The topic name as an encoded MessagePack string, reused in every frame (made at the first). */
  name: Uint8Array | undefined;
  /** Last offset published natively; -1 until the store told us the head. */
  tail: number;
  /** The epoch `tail` belongs to (undefined until the store told us). */
  epoch: string | undefined;
  /** This node's interest in the topic's batches stored by other gateways (a shared store). */
  following: Following | undefined;
  /** Set while the topic is re-read after an epoch change. */
  resync: Promise<void> | undefined;
  /**
   * While `resync` runs: the last offset notified per epoch. A batch stored after the re-read
   * looked can be notified before its answer arrives (another connection to the store).
   */
  notified: Map<string, number> | undefined;
  /** Highest offset notified before `tail` was known. */
  seen: number;
  subs: Set<Subscription>;
  live: number;
  /** Live subscriptions by limit; made at the first join (most topics of a big fan-in have one reader). */
  heap: MinHeap<Subscription> | undefined;
  /** Live subscriptions with a byte window by `byteLimit`; made at the first such join. */
  byteHeap: MinHeap<Subscription> | undefined;
  /** Bytes of the entries published up to `tail` (since this state was made): the byte windows' position. */
  cum: number;
  /** Bytes published natively so far (per receiver), for per-connection accounting. */
  bytes: number;
  /** Bytes published natively since its live subscriptions' send buffers were last checked. */
  unchecked: number;
  /**
   * The newest entries published, offsets cacheFirst..tail, from index `cacheHead` on (empty:
   * cacheFirst = tail + 1; both set together). Slots before `cacheHead` are evicted entries, emptied
   * (undefined) and cut off together once they are at least half of the array: a full cache that
   * evicts one entry per publish would otherwise copy all the others each time (a new array per
   * message and topic, which then survives the next scavenge; issue 16).
   */
  cache: Uint8Array[];
  cacheHead: number;
  cacheFirst: number;
  cacheSize: number;
  /**
   * At least the longest entry in the cache (not lowered when entries leave it): n cached entries
   * need at most n × cacheMax bytes, so a catch-up that fits by that bound skips summing them.
   */
  cacheMax: number;
  /**
   * The last few frames sent off the live path, by first offset and count. Offsets never change
   * content, and subscribers catching up move in lockstep: one encoding serves all of them.
   */
  frames: { first: number; count: number; bytes: Uint8Array }[];
}

const FRAME_MEMO = 4;
/** Connections a traced live fan-out names (the count covers all). */
const TRACE_CONNECTIONS = 10;
/** How often the send buffers of live subscriptions are checked while their topics publish (ms). */
const SWEEP_MS = 20;
/**
 * Most bytes of messages in one native publish, and the bytes a topic publishes natively between
 * two checks of its live subscriptions' send buffers. A native publish hands the whole frame to
 * every subscriber's socket at once, and what the kernel refuses stays in the gateway: 300 sockets
 * that stopped reading and one 1 MB frame (a commit after a late loop turn) pin 300 MB.
 */
const CHECK_BYTES = 32 * 1024;
/**
 * Waits before each new try of a re-read after an epoch change that found the store unreachable
 * (ms; ~5.5 s in all). After a Redis failover the connection that brought the new epoch's first
 * batch can be up before the one that reads: each reconnects on its own, up to 1 s between tries.
 */
const RESYNC_RETRY_MS = [50, 100, 200, 400, 800, 1000, 1000, 1000, 1000];
// Shared empty arrays for topics that have not published yet; replaced, never written.
/**
 * The memory of the frames handed to the native fan-out, which copies each before it returns: one
 * buffer serves them all instead of an allocation per live batch. Larger frames get their own.
 */
const LIVE_FRAME_BYTES = 64 * 1024;
const liveFrames = new Uint8Array(LIVE_FRAME_BYTES);
const liveFrame = (size: number): Uint8Array => (size <= LIVE_FRAME_BYTES ? liveFrames.subarray(0, size) : new Uint8Array(size));

const NO_ENTRIES: Uint8Array[] = [];
const NO_FRAMES: TopicState['frames'] = [];

export class Hub {
  private readonly topics = new Map<string, TopicState>();
  private readonly unwatch: () => void;
  private cacheTotal = 0;
  private counts: Record<SubState, number> = { opening: 0, catchup: 0, paused: 0, live: 0, closed: 0 };
  /** Topics that published natively since the last sweep. */
  private readonly published = new Set<TopicState>();
  private sweepTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly store: TopicLog,
    private readonly reader: CursorReader,
    private readonly fanout: Fanout,
    private readonly metrics: Metrics,
    private readonly options: HubOptions,
    private readonly tracer?: Tracer,
  ) {
    this.unwatch = store.watch((topic, first, entries, epoch) => this.onAppend(topic, first, entries, epoch));
  }

  /** Catch-up and group leases wait while a connection has more than this many bytes unsent. */
  get highWater(): number {
    return this.options.highWater;
  }

  close(): void {
    this.unwatch();
    clearTimeout(this.sweepTimer);
  }

  // ---- subscription lifecycle ---------------------------------------------------------------

  /**
   * Opens a subscription on `conn`: decides where its delivery starts, sends SUBSCRIBED (and GAP
   * when requested offsets were trimmed), then delivers under its credit. `opened` resolves once
   * SUBSCRIBED was sent (or the subscription was closed meanwhile); it rejects when the store could
   * not be read, and the subscription is then closed.
   */
  subscribe(conn: Conn, spec: SubscribeSpec): { view: SubscriptionView; opened: Promise<void> } {
    const sub = new Subscription(spec.id, spec.topic, conn, spec.clientId);
    const t = this.topicState(sub.topic);
    t.subs.add(sub);
    this.counts.opening++;
    sub.credit = Math.min(spec.credit, this.options.maxCredit);
    if (spec.windowBytes) sub.window = spec.windowBytes;
    const opened = this.open(t, sub, spec).catch((err: unknown) => {
      this.unsubscribe(sub);
      throw err;
    });
    return { view: sub, opened };
  }

  private async open(t: TopicState, sub: Subscription, want: Position): Promise<void> {
    if (t.following) await t.following.ready;
    const info = await this.store.info(sub.topic);
    if (t.tail < 0) {
      t.tail = Math.max(info.head, t.seen);
      t.epoch = info.epoch;
      t.cacheFirst = t.tail + 1; // the cache starts with what is published from now on
    }
    if (sub.state === 'closed') return;
    const start = resolveStart({ ...info, head: t.tail }, want);
    sub.cursor = start.from;
    sub.conn.send(encode({
      type: FrameType.SUBSCRIBED, subId: sub.id, epoch: start.epoch, head: start.head, from: start.from, recovered: start.recovered,
    }));
    if (start.gap) sub.conn.send(encode({ type: FrameType.GAP, topic: sub.topic, from: start.gap.from, to: start.gap.to }));
    this.setState(sub, sub.credit > 0 ? 'catchup' : 'paused');
    void this.pump(sub);
  }

  /** Adds credit (CREDIT frame). Outstanding credit is capped at maxCredit. */
  grant(view: SubscriptionView, n: number): void {
    const sub = view as Subscription;
    const max = this.options.maxCredit;
    if (sub.state === 'closed') return;
    // A CREDIT opens a new byte window: what was sent up to now was sent before it arrived.
    if (sub.state === 'live') {
      const t = this.topics.get(sub.topic)!;
      sub.limit = t.tail + Math.min(sub.limit - t.tail + n, max);
      if (sub.window) sub.byteLimit = t.cum + sub.window;
      return;
    }
    sub.used = 0;
    sub.credit = Math.min(sub.credit + n, max);
    if (sub.state === 'paused' && sub.credit > 0) {
      this.setState(sub, 'catchup');
      void this.pump(sub);
    }
  }

  /**
   * Ends a subscription (UNSUB or connection closed). Returns the bytes it received by native
   * fan-out over its life (they bypass its connection's send path), for the connection's total.
   */
  unsubscribe(view: SubscriptionView): number {
    const sub = view as Subscription;
    if (sub.state === 'closed') return sub.nativeBytes;
    const t = this.topics.get(sub.topic);
    if (sub.state === 'live' && t) this.leaveLive(t, sub, t.tail + 1);
    this.setState(sub, 'closed');
    if (t) {
      t.subs.delete(sub);
      if (t.subs.size === 0) {
        this.cacheTotal -= t.cacheSize;
        t.following?.drop();
        this.topics.delete(sub.topic);
      }
    }
    return sub.nativeBytes;
  }

  /** Credit a subscription has left and the last offset it was given, for the admin API. */
  position(view: SubscriptionView): { credit: number; cursor: number } {
    const sub = view as Subscription;
    if (sub.state === 'live') {
      const tail = this.topics.get(sub.topic)?.tail ?? 0;
      return { credit: sub.limit - tail, cursor: tail };
    }
    return { credit: sub.credit, cursor: sub.cursor - 1 };
  }

  /** Delivered count including the current live run. */
  delivered(view: SubscriptionView): number {
    const sub = view as Subscription;
    if (sub.state !== 'live') return sub.delivered;
    return sub.delivered + (this.topics.get(sub.topic)?.tail ?? sub.liveFrom) - sub.liveFrom;
  }

  /** Bytes the subscription received by native fan-out (they bypass its connection's send path). */
  nativeBytesOut(view: SubscriptionView): number {
    const sub = view as Subscription;
    if (sub.state !== 'live') return sub.nativeBytes;
    return sub.nativeBytes + (this.topics.get(sub.topic)?.bytes ?? sub.liveBytesFrom) - sub.liveBytesFrom;
  }

  stateCounts(): Readonly<Record<SubState, number>> {
    return this.counts;
  }

  /** Local subscriptions of a topic (admin API). */
  subscribers(topic: string): SubscriptionView[] {
    return [...(this.topics.get(topic)?.subs ?? [])];
  }

  /** Topics with local subscribers, and their live/paused counts. */
  activeTopics(): { topic: string; subscribers: number; live: number; tail: number }[] {
    return [...this.topics.values()].map((t) => ({ topic: t.topic, subscribers: t.subs.size, live: t.live, tail: t.tail }));
  }

  // ---- catch-up -----------------------------------------------------------------------------

  /** Reads the store for a subscription behind the tail until it is live or out of credit. */
  private async pump(sub: Subscription): Promise<void> {
    if (sub.pumping) return;
    sub.pumping = true;
    let emptyReads = 0;
    try {
      const { highWater } = this.options;
      for (;;) {
        const t = this.topics.get(sub.topic);
        if (!t || (sub.state !== 'catchup' && sub.state !== 'paused')) return;
        if (blocked(sub)) { this.setState(sub, 'paused'); return; }
        this.setState(sub, 'catchup');
        const buffered = sub.conn.bufferedAmount();
        if (buffered > highWater) { await sub.conn.drained(); continue; }
        // Write what fits under the high-water mark (never slivers: at least CHECK_BYTES).
        const room = Math.max(highWater - buffered, CHECK_BYTES);
        if (sub.cursor > t.tail) { this.joinLive(t, sub); return; }

        if (sub.cursor >= t.cacheFirst) {
          // The newest entries are cached: no store read, no await.
          const i = t.cacheHead + sub.cursor - t.cacheFirst;
          const n = Math.min(sub.credit, this.reader.policy.batch, t.cache.length - i);
          // Most catch-ups are a credit's worth of small messages: fitting by the bound costs no pass over them.
          let end = n * t.cacheMax <= room ? i + n : fitting(t.cache, i, i + n, room);
          if (sub.window) end = windowEnd(t.cache, i, end, sub.window - sub.used);
          const bytes = this.deliver(t, sub, t.cache, i, end);
          // Nothing else ran since `buffered` was read: past the mark only if this frame took it there.
          if (buffered + bytes > highWater) this.flushOver(sub);
          continue;
        }
        const r = await this.reader.read(sub.topic, sub.cursor, Math.min(sub.credit, t.tail - sub.cursor + 1), room);
        if (sub.state !== 'catchup' || sub.conn.closed) return;
        if (r.epoch !== t.epoch) {
          // Read from a log under another epoch: resync the topic (which restarts this pump).
          this.epochChanged(t);
          return;
        }
        if (r.gap) {
          // Retention removed what this subscription still needed: say so, then go on.
          sub.conn.send(encode({ type: FrameType.GAP, topic: sub.topic, from: r.gap.from, to: r.gap.to }));
          sub.cursor = r.start;
          continue;
        }
        const n = Math.min(r.entries.length, sub.credit);
        if (n === 0) {
          // The tail says there is more but the store returned nothing. Retry a few turns later;
          // never spin, and never stall in silence: a connection closed with 1011 reconnects and
          // resumes from its offset.
          if (++emptyReads <= 3) {
            await new Promise<void>((resolve) => setImmediate(resolve));
            continue;
          }
          this.metrics.handlerFailures.inc();
          logger.error(`store returned no entries for ${sub.topic} at ${sub.cursor} (tail ${t.tail}); closing the connection`);
          sub.conn.close(CloseCode.INTERNAL, 'catch-up read failed; reconnect and resume');
          return;
        }
        emptyReads = 0;
        // What does not fit under the high-water mark now is read again once the socket drained.
        let end = fitting(r.entries, 0, n, room);
        if (sub.window) end = windowEnd(r.entries, 0, end, sub.window - sub.used);
        this.deliver(t, sub, r.entries, 0, end);
        this.flushOver(sub);
      }
    } catch (err) {
      this.metrics.handlerFailures.inc();
      logger.error(`catch-up failed for ${sub.topic}`, { err });
      sub.conn.send(encode({ type: FrameType.ERROR, id: sub.id, code: 'internal', message: 'reading the topic log failed', re: FrameType.SUB }));
      this.metrics.error('internal');
    } finally {
      sub.pumping = false;
    }
  }

  /**
   * Frames queued for the end of the loop turn count against the mark: past it, write them now,
   * so only what the kernel refuses makes a catch-up wait (small frames still share one write).
   */
  private flushOver(sub: Subscription): void {
    if (sub.conn.bufferedAmount() > this.options.highWater) sub.conn.flush();
  }

  /** Sends entries[start..end) to a subscription off the live path, from its cursor; returns the frame's bytes. */
  private deliver(t: TopicState, sub: Subscription, entries: readonly Uint8Array[], start: number, end: number): number {
    const n = end - start;
    let frame: Uint8Array | undefined;
    for (const f of t.frames) if (f.first === sub.cursor && f.count === n) { frame = f.bytes; break; }
    if (!frame) {
      frame = encodeDelivery(t.name ??= encodeStr(t.topic), sub.cursor, entries, start, end);
      if (t.frames === NO_FRAMES) t.frames = [];
      if (t.frames.length === FRAME_MEMO) t.frames.shift();
      t.frames.push({ first: sub.cursor, count: n, bytes: frame });
    }
    sub.conn.send(frame);
    if (sub.window) for (let i = start; i < end; i++) sub.used += entries[i]!.length;
    if (this.tracer) {
      for (let i = start; i < end; i++) {
        if (isTraced(entries[i]!)) this.tracer.record(t.topic, sub.cursor + i - start, { kind: 'delivered', path: 'catch-up', connection: sub.conn.id });
      }
    }
    this.metrics.messagesOut.inc(n);
    this.metrics.bytesOut.inc(frame.length);
    sub.cursor += n;
    sub.credit -= n;
    sub.delivered += n;
    return frame.length;
  }

  /** A fan-out of traced messages: one event each, with the subscriber count and a few connections. */
  private traceLive(t: TopicState, a: number, entries: readonly Uint8Array[], start: number, end: number): void {
    for (let i = start; i < end; i++) {
      if (!isTraced(entries[i]!)) continue;
      const connections: string[] = [];
      for (const sub of t.subs) {
        if (sub.state !== 'live') continue;
        if (connections.length === TRACE_CONNECTIONS) break;
        connections.push(sub.conn.id);
      }
      this.tracer!.record(t.topic, a + i - start, { kind: 'delivered', path: 'live', subscribers: t.live, connections });
    }
  }

  /** Appends a published batch to the topic's cache, then evicts the oldest beyond the bounds. */
  private cacheBatch(t: TopicState, entries: readonly Uint8Array[], start: number, end: number): void {
    const { cacheEntries, cacheBytes, cacheTotalBytes } = this.options;
    if (cacheEntries === 0) { t.cacheFirst = t.tail + 1; return; }
    if (t.cache === NO_ENTRIES) t.cache = [];
    for (let i = start; i < end; i++) {
      const e = entries[i]!;
      t.cache.push(e);
      t.cacheSize += e.length;
      if (e.length > t.cacheMax) t.cacheMax = e.length;
      this.cacheTotal += e.length;
    }
    const cache = t.cache;
    let head = t.cacheHead;
    while (head < cache.length &&
      (cache.length - head > cacheEntries || t.cacheSize > cacheBytes || this.cacheTotal > cacheTotalBytes)) {
      const e = cache[head]!;
      (cache as (Uint8Array | undefined)[])[head++] = undefined; // evicted: not kept alive by the cache
      t.cacheSize -= e.length;
      this.cacheTotal -= e.length;
    }
    if (head === t.cacheHead) return;
    t.cacheFirst += head - t.cacheHead;
    if (head === cache.length) {
      t.cache = NO_ENTRIES;
      t.cacheHead = 0;
    } else if (head >= cache.length - head) {
      t.cache = cache.slice(head);
      t.cacheHead = 0;
    } else {
      t.cacheHead = head;
    }
  }

  // ---- live path ----------------------------------------------------------------------------

  private joinLive(t: TopicState, sub: Subscription): void {
    sub.conn.flush();
    sub.conn.join(t.topic);
    sub.limit = t.tail + sub.credit;
    sub.credit = 0;
    sub.liveFrom = t.tail;
    sub.liveBytesFrom = t.bytes;
    sub.heapKey = sub.limit;
    if (t.heap) t.heap.push(sub.limit, sub);
    else t.heap = MinHeap.of(sub.limit, sub);
    if (sub.window) {
      // pump joins only with room left in the window (used < window).
      sub.byteLimit = sub.byteKey = t.cum + sub.window - sub.used;
      if (t.byteHeap) t.byteHeap.push(sub.byteLimit, sub);
      else t.byteHeap = MinHeap.of(sub.byteLimit, sub);
    }
    t.live++;
    this.setState(sub, 'live');
  }

  /** Takes a live subscription off the native topic; `next` is the next offset it should get. */
  private leaveLive(t: TopicState, sub: Subscription, next: number): void {
    sub.conn.leave(t.topic);
    t.live--;
    sub.delivered += next - 1 - sub.liveFrom;
    sub.nativeBytes += t.bytes - sub.liveBytesFrom;
    sub.cursor = next;
    sub.credit = Math.max(0, sub.limit - (next - 1));
    sub.heapKey = -1;
    if (sub.window) {
      // `cum` is at offset next - 1 here (every caller leaves between two native publishes).
      sub.used = t.cum - (sub.byteLimit - sub.window);
      sub.byteKey = -1;
    }
    this.setState(sub, blocked(sub) ? 'paused' : 'catchup');
  }

  /** A batch became durable in the store. */
  private onAppend(topic: string, first: number, entries: readonly Uint8Array[], epoch: string): void {
    const t = this.topics.get(topic);
    if (!t) return;
    const last = first + entries.length - 1;
    if (t.tail < 0) {
      t.seen = Math.max(t.seen, last);
      return;
    }
    if (t.resync) {
      // Re-reading the topic: what is stored meanwhile is read from the store once it is done, up
      // to the last offset notified (the re-read may not have seen it).
      const notified = (t.notified ??= new Map());
      notified.set(epoch, Math.max(notified.get(epoch) ?? 0, last));
      return;
    }
    if (epoch !== t.epoch) {
      this.epochChanged(t);
      return;
    }
    if (last <= t.tail) return;
    if (first > t.tail + 1) {
      // A hole (a networked store's notification was lost): live subscriptions fall back to
      // reading the store from where they are, and rejoin once they caught up.
      const demoted = this.demoteAll(t);
      t.tail = first - 1;
      this.cacheTotal -= t.cacheSize;
      t.cache = NO_ENTRIES;
      t.cacheHead = 0;
      t.cacheSize = 0;
      t.cacheFirst = first;
      t.frames = NO_FRAMES;
      this.publish(t, first, entries, 0);
      for (const sub of demoted) void this.pump(sub);
      return;
    }
    const skip = first <= t.tail ? t.tail + 1 - first : 0;
    this.publish(t, first + skip, entries, skip);
  }

  /** Publishes entries[start..] (offsets from a) in runs of at most CHECK_BYTES. */
  private publish(t: TopicState, a: number, entries: readonly Uint8Array[], start: number): void {
    let i = start;
    while (i < entries.length) {
      let j = i + 1;
      let bytes = entries[i]!.length;
      while (j < entries.length && bytes + entries[j]!.length <= CHECK_BYTES) bytes += entries[j++]!.length;
      this.publishRun(t, a + i - start, entries, i, j, bytes);
      i = j;
    }
  }

  /** Publishes entries[start..end) (`bytes` in all), offsets a.., natively; then checks send buffers when due. */
  private publishRun(t: TopicState, a: number, entries: readonly Uint8Array[], start: number, end: number, bytes: number): void {
    const b = a + end - start - 1;
    // Everyone whose limit ends before b leaves the native topic first, with its share a..limit.
    const heap = t.heap;
    while (heap && heap.peekKey() < b) {
      const key = heap.peekKey();
      const sub = heap.pop()!;
      if (sub.state !== 'live' || sub.heapKey !== key) continue; // stale entry
      if (sub.limit >= b) {
        sub.heapKey = sub.limit;
        heap.push(sub.limit, sub);
        continue;
      }
      this.cut(t, sub, a, entries, start, end);
    }
    // So does everyone whose byte window ends before the run's last entry starts, with its share.
    const byteHeap = t.byteHeap;
    if (byteHeap) {
      const last = t.cum + bytes - entries[end - 1]!.length;
      while (byteHeap.peekKey() <= last) {
        const key = byteHeap.peekKey();
        const sub = byteHeap.pop()!;
        if (sub.state !== 'live' || sub.byteKey !== key) continue; // stale entry
        if (sub.byteLimit > last) {
          sub.byteKey = sub.byteLimit;
          byteHeap.push(sub.byteLimit, sub);
          continue;
        }
        this.cut(t, sub, a, entries, start, end);
      }
    }
    let frame: Uint8Array | undefined;
    if (t.live > 0) {
      frame = encodeDelivery(t.name ??= encodeStr(t.topic), a, entries, start, end, liveFrame);
      this.fanout.publish(t.topic, frame);
      if (this.tracer) this.traceLive(t, a, entries, start, end);
      const k = b - a + 1;
      t.bytes += frame.length;
      this.metrics.messagesOut.inc(k * t.live);
      this.metrics.bytesOut.inc(frame.length * t.live);
      this.published.add(t);
      this.sweepTimer ??= setTimeout(() => this.sweep(), SWEEP_MS);
    }
    t.tail = b;
    t.cum += bytes;
    this.cacheBatch(t, entries, start, end);
    if (frame && (t.unchecked += frame.length) >= CHECK_BYTES) this.shed(t);
  }

  /**
   * Takes a live subscription off the native topic before the run entries[start..end) (offsets
   * a..) and sends it its share: the entries within its credit that start inside its byte window.
   * It is then paused until a CREDIT.
   */
  private cut(t: TopicState, sub: Subscription, a: number, entries: readonly Uint8Array[], start: number, end: number): void {
    let n = Math.min(sub.limit - a + 1, end - start);
    if (sub.window) {
      const left = sub.byteLimit - t.cum;
      n = left > 0 ? windowEnd(entries, start, start + n, left) - start : 0;
    }
    this.leaveLive(t, sub, a);
    if (n > 0) this.deliver(t, sub, entries, start, start + n);
    this.setState(sub, 'paused');
  }

  /**
   * Live subscriptions of the topics that published since the last sweep whose connection holds
   * more than the high-water mark unsent leave the native topic (see `shed`).
   */
  private sweep(): void {
    this.sweepTimer = undefined;
    for (const t of this.published) {
      if (t.live > 0 && this.topics.get(t.topic) === t) this.shed(t);
    }
    this.published.clear();
  }

  /**
   * Live subscriptions of `t` whose connection holds more than the high-water mark unsent leave
   * the native topic: they catch up from the log once the socket drained (the log is the buffer,
   * not the gateway's memory). Runs between two native publishes, so `tail` is exact.
   */
  private shed(t: TopicState): void {
    t.unchecked = 0;
    const { highWater } = this.options;
    for (const sub of t.subs) {
      if (sub.state !== 'live' || sub.conn.bufferedAmount() <= highWater) continue;
      this.leaveLive(t, sub, t.tail + 1);
      this.metrics.backpressured.inc();
      void this.pump(sub);
    }
  }

  /**
   * The topic's log changed epoch (a shared store after a failover or a loss). Delivery stops, the
   * topic's state is read again, and every subscription gets SUBSCRIBED again with the new epoch:
   * `recovered: true` when the new log still holds everything it was delivered (it goes on
   * seamlessly), else `recovered: false` and delivery restarts where the new epoch begins (see
   * `rebase`). Batches notified meanwhile are read from the store, up to the last one notified in
   * the new epoch.
   */
  private epochChanged(t: TopicState): void {
    if (t.resync) return;
    const was = t.epoch ?? '';
    this.demoteAll(t);
    t.resync = this.reread(t).then((info) => {
      t.resync = undefined;
      const notified = t.notified;
      t.notified = undefined;
      if (this.topics.get(t.topic) !== t) return;
      t.epoch = info.epoch;
      for (const sub of t.subs) {
        if (sub.state === 'opening' || sub.state === 'closed') continue;
        const at = rebase(was, sub.cursor - 1, info);
        if (info.epoch === was && at.from === sub.cursor) continue; // a stale notification: nothing changed for it
        sub.cursor = at.from;
        sub.conn.send(encode({ type: FrameType.SUBSCRIBED, subId: sub.id, epoch: info.epoch, head: info.head, from: at.from, recovered: at.recovered }));
      }
      this.cacheTotal -= t.cacheSize;
      t.cache = NO_ENTRIES;
      t.cacheHead = 0;
      t.cacheSize = 0;
      t.frames = NO_FRAMES;
      t.tail = Math.max(info.head, notified?.get(info.epoch) ?? 0);
      t.cacheFirst = t.tail + 1;
      for (const sub of t.subs) if (sub.state === 'catchup') void this.pump(sub);
    }, (err: unknown) => {
      t.resync = undefined;
      t.notified = undefined;
      if (this.topics.get(t.topic) !== t) return;
      this.metrics.handlerFailures.inc();
      logger.error(`re-reading ${t.topic} after an epoch change failed; its subscribers reconnect`, { err });
      for (const sub of t.subs) sub.conn.close(CloseCode.INTERNAL, 'the topic changed epoch; reconnect and resume');
    });
  }

  /**
   * The topic's state, asked again while the store is unreachable (see RESYNC_RETRY_MS): a
   * subscriber sent away to reconnect would resume with its old epoch past the loss, and start at
   * the head — skipping the new epoch's first messages that the re-read would deliver.
   */
  private async reread(t: TopicState): Promise<TopicInfo> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.store.info(t.topic);
      } catch (err) {
        if (!(err instanceof StoreUnavailableError) || attempt === RESYNC_RETRY_MS.length || this.topics.get(t.topic) !== t) throw err;
        await new Promise((resolve) => setTimeout(resolve, RESYNC_RETRY_MS[attempt]).unref());
      }
    }
  }

  private demoteAll(t: TopicState): Subscription[] {
    const demoted: Subscription[] = [];
    for (const sub of t.subs) {
      if (sub.state !== 'live') continue;
      this.leaveLive(t, sub, t.tail + 1);
      demoted.push(sub);
    }
    t.heap?.clear();
    t.byteHeap?.clear();
    return demoted;
  }

  // ---- helpers ------------------------------------------------------------------------------

  private topicState(topic: string): TopicState {
    let t = this.topics.get(topic);
    if (!t) {
      t = {
        topic, name: undefined, tail: -1, epoch: undefined, following: this.store.follow?.(topic), resync: undefined, notified: undefined, seen: 0, subs: new Set(), live: 0, heap: undefined, byteHeap: undefined, cum: 0, bytes: 0, unchecked: 0,
        // cacheFirst is set with the tail (read only once it is known): a small integer, so it is not boxed.
        cache: NO_ENTRIES, cacheHead: 0, cacheFirst: 0, cacheSize: 0, cacheMax: 0, frames: NO_FRAMES,
      };
      this.topics.set(topic, t);
    }
    return t;
  }

  private setState(sub: Subscription, state: SubState): void {
    if (sub.state === state) return;
    this.counts[sub.state]--;
    this.counts[state]++;
    sub.state = state;
  }
}

/** Out of credit, or its byte window is full: nothing may be sent to it until a CREDIT. */
function blocked(sub: Subscription): boolean {
  return sub.credit === 0 || (sub.window > 0 && sub.used >= sub.window);
}

/**
 * The end of the run entries[start..end) a byte window with `left` bytes of room admits: every
 * entry that starts within it (so one may pass it). At least one when `left` > 0.
 */
function windowEnd(entries: readonly Uint8Array[], start: number, end: number, left: number): number {
  let i = start;
  let bytes = 0;
  while (i < end && bytes < left) bytes += entries[i++]!.length;
  return i;
}

/**
 * The end of the longest run entries[start..] (at most to `end`) of at most `room` bytes; at least
 * one entry, so a message larger than the room still goes out once the socket drained.
 */
function fitting(entries: readonly Uint8Array[], start: number, end: number, room: number): number {
  let i = start + 1;
  let bytes = entries[start]!.length;
  while (i < end && bytes + entries[i]!.length <= room) bytes += entries[i++]!.length;
  return i;
}
