/**
 * The Hub on its own: a memory store, fake connections and a fake native fan-out — no sockets, no
 * uWS — so its delivery rules are checked exactly and in milliseconds.
 *
 * FakeConn records every frame a connection is sent, and FakeFanout plays uWS's native topic
 * publish: a frame published to a topic reaches every FakeConn joined to it. Waiting is always for
 * a state of the hub or a frame (`until`), never a sleep. To extend: add cases; keep FakeConn dumb.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { decodeServerFrame, encodeEntry, encodeValue, FrameType, type ServerFrame } from '@sluice/client/protocol';
import { DEFAULT_HUB_CONFIG, DEFAULT_READ_POLICY } from '../src/config.js';
import { CursorReader } from '../src/core/start.js';
import type { Conn, Fanout } from '../src/hub/conn.js';
import { Hub } from '../src/hub/hub.js';
import type { SubscriptionView } from '../src/hub/subscription.js';
import { DEFAULT_DEDUP_WINDOW_MS, DEFAULT_RETENTION, StoreUnavailableError, type AppendListener, type EpochRecord, type ReadOptions, type ReadResult, type TopicInfo, type TopicLog } from '../src/log/log.js';
import { MemoryLog } from '../src/log/memory.js';
import { Metrics } from '../src/metrics.js';
import { notYet, pollUntil } from './helpers/poll.js';

class FakeConn implements Conn {
  readonly id = 'fake';
  readonly remoteAddress = '127.0.0.1';
  readonly userAgent = 'test';
  closed = false;
  buffered = 0;
  readonly frames: ServerFrame[] = [];
  readonly joined = new Set<string>();
  send(frame: Uint8Array): void {
    if (!this.closed) this.frames.push(decodeServerFrame(frame));
  }
  flush(): void {}
  join(topic: string): void {
    this.joined.add(topic);
  }
  leave(topic: string): void {
    this.joined.delete(topic);
  }
  bufferedAmount(): number {
    return this.buffered;
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {
    this.closed = true;
  }
  /** Offsets delivered for `topic`, in arrival order. */
  offsets(topic: string): number[] {
    const out: number[] = [];
    for (const f of this.frames) {
      if (f.type === FrameType.MSG && f.topic === topic) out.push(f.offset);
      if (f.type === FrameType.MSGS && f.topic === topic) f.messages.forEach((_, i) => out.push(f.first + i));
    }
    return out;
  }
}

class FakeFanout implements Fanout {
  readonly conns = new Set<FakeConn>();
  publish(topic: string, frame: Uint8Array): void {
    const copy = frame.slice(); // the frame is valid only during the call, as with uWS
    frame.fill(0xc1); // a frame read after the call would show it: 0xc1 is never valid MessagePack
    for (const c of this.conns) if (c.joined.has(topic)) c.send(copy);
  }
}

const metrics = new Metrics();
after(() => metrics.stop());

function setup(maxCredit = 4096) {
  const store = new MemoryLog({ retention: { ...DEFAULT_RETENTION }, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS });
  const fanout = new FakeFanout();
  const hub = new Hub(store, new CursorReader(store, DEFAULT_READ_POLICY), fanout, metrics, { ...DEFAULT_HUB_CONFIG, maxCredit });
  const conn = () => {
    const c = new FakeConn();
    fanout.conns.add(c);
    return c;
  };
  const append = (topic: string, n: number, from = 0) =>
    store.append(topic, Array.from({ length: n }, (_, i) => ({ data: encodeValue(from + i) })));
  return { store, hub, conn, append, close: () => { hub.close(); return store.close(); } };
}

/** Turns the event loop until `cond` holds (the hub's work is promises and immediates). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const stateOf = (v: SubscriptionView) => v.state;

describe('hub', () => {
  it('credit is exact: a grant of n delivers n, then nothing until the next grant', async () => {
    const { hub, conn, append, close } = setup();
    const c = conn();
    await append('t', 20);
    const { view, opened } = hub.subscribe(c, { id: 1, topic: 't', clientId: 'a', credit: 5, from: 1 });
    await opened;
    await until(() => stateOf(view) === 'paused', 'paused after 5');
    assert.deepEqual(c.offsets('t'), range(1, 5));
    assert.deepEqual(hub.position(view), { credit: 0, cursor: 5 });
    hub.grant(view, 3);
    await until(() => stateOf(view) === 'paused' && c.offsets('t').length === 8, 'paused after 8');
    assert.deepEqual(c.offsets('t'), range(1, 8));
    hub.grant(view, 100);
    await until(() => stateOf(view) === 'live', 'live');
    await append('t', 10, 20);
    assert.deepEqual(c.offsets('t'), range(1, 30), 'caught up, then the live tail, each once and in order');
    assert.equal(hub.delivered(view), 30);
    assert.deepEqual(hub.position(view), { credit: 100 - 12 - 10, cursor: 30 });
    await close();
  });

  it('a live subscription leaves the native topic exactly at its limit, mid-batch; others keep it', async () => {
    const { hub, conn, append, close } = setup();
    const small = conn();
    const big = conn();
    const a = hub.subscribe(small, { id: 1, topic: 'h', clientId: 'a', credit: 7 });
    const b = hub.subscribe(big, { id: 1, topic: 'h', clientId: 'b', credit: 1000 });
    await Promise.all([a.opened, b.opened]);
    await until(() => stateOf(a.view) === 'live' && stateOf(b.view) === 'live', 'both live');
    await append('h', 25); // one batch: the hub must split it for `small`
    assert.deepEqual(small.offsets('h'), range(1, 7));
    assert.equal(stateOf(a.view), 'paused');
    assert.equal(small.joined.has('h'), false, 'off the native topic');
    assert.deepEqual(big.offsets('h'), range(1, 25));
    assert.equal(stateOf(b.view), 'live');
    await append('h', 5, 25);
    assert.deepEqual(small.offsets('h'), range(1, 7), 'nothing beyond the credit');
    hub.grant(a.view, 100);
    await until(() => stateOf(a.view) === 'live', 'back to live');
    assert.deepEqual(small.offsets('h'), range(1, 30), 'the rest from the log, then live');
    await close();
  });

  it('catch-up joins the live tail with no duplicate and no skip while publishes keep coming', async () => {
    const { hub, conn, append, close } = setup();
    const c = conn();
    await append('j', 2000);
    const { view, opened } = hub.subscribe(c, { id: 1, topic: 'j', clientId: 'a', credit: 4096, from: 1 });
    await opened;
    // Appends land between catch-up reads: every step of the join races them.
    let n = 2000;
    while (stateOf(view) !== 'live') {
      await append('j', 7, n);
      n += 7;
    }
    await append('j', 50, n);
    n += 50;
    assert.deepEqual(c.offsets('j'), range(1, n));
    assert.deepEqual(c.frames.filter((f) => f.type === FrameType.GAP), []);
    await close();
  });

  it('starts where resolveStart says, and announces a trimmed start with GAP after SUBSCRIBED', async () => {
    const store = new MemoryLog({ retention: { ...DEFAULT_RETENTION, maxCount: 10 }, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS });
    const fanout = new FakeFanout();
    const hub = new Hub(store, new CursorReader(store, DEFAULT_READ_POLICY), fanout, metrics, { ...DEFAULT_HUB_CONFIG, cacheEntries: 10, maxCredit: 4096 });
    await store.append('g', Array.from({ length: 25 }, (_, i) => ({ data: encodeValue(i) })));
    const c = new FakeConn();
    fanout.conns.add(c);
    const { view, opened } = hub.subscribe(c, { id: 9, topic: 'g', clientId: 'a', credit: 100, from: 3 });
    await opened;
    await until(() => stateOf(view) === 'live', 'live');
    const [subscribed, gap] = c.frames;
    assert.deepEqual(subscribed && { ...subscribed, epoch: undefined }, { type: FrameType.SUBSCRIBED, subId: 9, epoch: undefined, head: 25, from: 16, recovered: false });
    assert.deepEqual(gap, { type: FrameType.GAP, topic: 'g', from: 3, to: 15 });
    assert.deepEqual(c.offsets('g'), range(16, 25));
    hub.close();
    await store.close();
  });

  it('a full cache evicting as it goes serves catch-ups the exact bytes, from the cache and the store alike', async () => {
    // cacheEntries 16: from the 17th publish on each one evicts the oldest (the cache cuts its
    // emptied slots off only now and then); the memory store hands the hub views into its chunks.
    const store = new MemoryLog({ retention: { ...DEFAULT_RETENTION }, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS });
    const fanout = new FakeFanout();
    const hub = new Hub(store, new CursorReader(store, DEFAULT_READ_POLICY), fanout, metrics, { ...DEFAULT_HUB_CONFIG, cacheEntries: 16, maxCredit: 4096 });
    const c = new FakeConn();
    fanout.conns.add(c);
    const body = (i: number) => `m${i}-${'x'.repeat((i * 37) % 300)}`;
    const { view, opened } = hub.subscribe(c, { id: 1, topic: 'e', clientId: 'a', credit: 0, from: 1 });
    await opened;
    const delivered = () => c.offsets('e').length;
    for (let i = 1; i <= 200; i++) {
      await store.append('e', [{ data: encodeValue(body(i)) }]);
      // Grants that lag behind the publishes: the reader's cursor is in the cache for a while, then behind it.
      if (i % 7 === 0) {
        const want = Math.min(i, delivered() + 5);
        hub.grant(view, 5);
        await until(() => delivered() === want, `${want} delivered`);
      }
    }
    hub.grant(view, 1000);
    await until(() => stateOf(view) === 'live', 'live');
    assert.deepEqual(c.offsets('e'), range(1, 200));
    const data: unknown[] = [];
    for (const f of c.frames) {
      if (f.type === FrameType.MSG && f.topic === 'e') data.push(f.data);
      if (f.type === FrameType.MSGS && f.topic === 'e') for (const m of f.messages) data.push(m.data);
    }
    assert.deepEqual(data, range(1, 200).map(body));
    hub.close();
    await store.close();
  });

  it('zero credit sends nothing and holds nothing; a grant resumes from the log', async () => {
    const { hub, conn, append, close } = setup();
    const c = conn();
    const { view, opened } = hub.subscribe(c, { id: 1, topic: 'z', clientId: 'a', credit: 0 });
    await opened;
    assert.equal(stateOf(view), 'paused');
    await append('z', 300);
    assert.deepEqual(c.offsets('z'), []);
    assert.equal(c.joined.has('z'), false);
    hub.grant(view, 1000);
    await until(() => stateOf(view) === 'live', 'live');
    assert.deepEqual(c.offsets('z'), range(1, 300));
    await close();
  });

  it('unsubscribing during catch-up stops delivery at once and forgets the topic', async () => {
    const { hub, conn, append, close } = setup();
    const c = conn();
    await append('u', 3000);
    const { view, opened } = hub.subscribe(c, { id: 1, topic: 'u', clientId: 'a', credit: 4096, from: 1 });
    await opened;
    await until(() => c.offsets('u').length > 0, 'the first catch-up frame');
    const got = c.offsets('u').length;
    assert.ok(got < 3000, 'still catching up');
    hub.unsubscribe(view);
    assert.equal(stateOf(view), 'closed');
    await append('u', 10, 3000);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.equal(c.offsets('u').length, got, 'nothing after UNSUB');
    assert.deepEqual(hub.activeTopics(), []);
    assert.deepEqual(hub.stateCounts(), { opening: 0, catchup: 0, paused: 0, live: 0, closed: 1 });
    await close();
  });
});

/**
 * A shared store's log through a failover, as a gateway sees it: `takeBack(keep)` starts a new
 * epoch holding only offsets 1..keep of the old one (a promoted replica that lacked the newest
 * writes), and every append is notified with its epoch. `info` answers like Redis across two
 * connections: `failInfo` makes the next calls fail (the command connection still reconnecting),
 * and `holdInfo` takes the snapshot when asked but hands it over only once released (the reply
 * read after a notification that another connection brought later).
 */
class FailoverLog {
  readonly kind = 'failover';
  epoch = 'e1';
  history: EpochRecord[] = [];
  entries: Uint8Array[] = [];
  failInfo = 0;
  holdInfo: Promise<void> | undefined;
  private listeners = new Set<AppendListener>();
  private epochs = 1;

  append(topic: string, values: readonly unknown[]): void {
    const first = this.entries.length + 1;
    const batch = values.map((v) => encodeEntry(encodeValue(v), Date.now()));
    this.entries.push(...batch);
    for (const l of this.listeners) l(topic, first, batch, this.epoch);
  }

  /** A notification that arrives late, from a connection still on an earlier epoch. */
  notifyLate(topic: string, epoch: string, offset: number): void {
    for (const l of this.listeners) l(topic, offset, [this.entries[offset - 1]!], epoch);
  }

  takeBack(keep: number): void {
    this.history.push({ epoch: this.epoch, last: keep });
    this.epoch = `e${++this.epochs}`;
    this.entries.length = keep;
  }

  async read(_topic: string, from: number, opts: ReadOptions): Promise<ReadResult> {
    const r: ReadResult = { epoch: this.epoch, head: this.entries.length, first: 1, start: from, entries: this.entries.slice(from - 1, from - 1 + opts.limit) };
    if (this.history.length > 0) r.history = [...this.history];
    return r;
  }

  async info(topic: string): Promise<TopicInfo> {
    if (this.failInfo > 0) {
      this.failInfo--;
      throw new StoreUnavailableError('unavailable', 'Redis is unreachable; nothing was stored, retry later');
    }
    const head = this.entries.length;
    const info: TopicInfo = { topic, epoch: this.epoch, head, first: 1, count: head, bytes: 0, lastTs: 0 };
    if (this.history.length > 0) info.history = [...this.history];
    await this.holdInfo;
    return info;
  }

  watch(listener: AppendListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

describe('hub, byte window (protocol 1.5)', () => {
  // Messages of one size: entries of `E` bytes each (data, ts), so windows are counted in messages.
  const payload = 'x'.repeat(1000);
  const E = encodeEntry(encodeValue(payload), Date.now()).length;
  const W = 10 * E + E / 2; // 10 entries fit, the 11th starts inside it: the one that may overshoot
  const K = 11;
  const appendSized = (store: MemoryLog, topic: string, n: number) =>
    store.append(topic, Array.from({ length: n }, () => ({ data: encodeValue(payload) })));

  it('catch-up: at most the window (plus one message) until CREDIT, then exactly the rest, no gap or duplicate', async () => {
    const { store, hub, conn, close } = setup();
    const c = conn();
    await appendSized(store, 'b', 3 * K + 4);
    const { view, opened } = hub.subscribe(c, { id: 1, topic: 'b', clientId: 'a', credit: 4096, from: 1, windowBytes: W });
    await opened;
    await until(() => stateOf(view) === 'paused', 'paused at the byte window');
    assert.deepEqual(c.offsets('b'), range(1, K), 'the messages that start inside the window');
    assert.equal(hub.position(view).credit, 4096 - K, 'message credit left: the window stopped it');
    for (let w = 1; w <= 3; w++) {
      hub.grant(view, 1); // a CREDIT opens a new window, whatever its n
      await until(() => stateOf(view) !== 'catchup', `window ${w + 1}`);
      assert.deepEqual(c.offsets('b'), range(1, Math.min((w + 1) * K, 3 * K + 4)));
    }
    assert.equal(stateOf(view), 'live', 'the rest fitted: it joined the live tail');
    await appendSized(store, 'b', 20);
    assert.deepEqual(c.offsets('b'), range(1, 3 * K + 4 + K - 4), 'live: the window ends mid-batch');
    assert.equal(stateOf(view), 'paused');
    assert.equal(c.joined.has('b'), false, 'off the native topic');
    hub.grant(view, 100);
    await until(() => stateOf(view) === 'paused' && c.offsets('b').length === 3 * K + 4 + K - 4 + K, 'the next window from the log');
    hub.grant(view, 100);
    await until(() => stateOf(view) === 'live', 'live again');
    assert.deepEqual(c.offsets('b'), range(1, 3 * K + 4 + 20), 'every offset once, in order');
    assert.deepEqual(c.frames.filter((f) => f.type === FrameType.GAP), []);
    await close();
  });

  it('live: a window is cut exactly mid-batch; a subscription without one (a 1.4 client) is unchanged', async () => {
    const { store, hub, conn, close } = setup();
    const windowed = conn();
    const plain = conn();
    const a = hub.subscribe(windowed, { id: 1, topic: 'l', clientId: 'a', credit: 4096, windowBytes: W });
    const b = hub.subscribe(plain, { id: 1, topic: 'l', clientId: 'b', credit: 4096 });
    await Promise.all([a.opened, b.opened]);
    await until(() => stateOf(a.view) === 'live' && stateOf(b.view) === 'live', 'both live');
    await appendSized(store, 'l', 25); // one batch (< 32 KiB: one native run)
    assert.deepEqual(windowed.offsets('l'), range(1, K));
    assert.equal(stateOf(a.view), 'paused');
    assert.deepEqual(plain.offsets('l'), range(1, 25), 'no window: its credit alone bounds it');
    assert.equal(stateOf(b.view), 'live');
    await appendSized(store, 'l', 5);
    assert.deepEqual(windowed.offsets('l'), range(1, K), 'nothing past the window until a CREDIT');
    hub.grant(a.view, 0);
    await until(() => stateOf(a.view) === 'paused' && windowed.offsets('l').length === 2 * K, 'the second window');
    hub.grant(a.view, 0);
    await until(() => stateOf(a.view) === 'live', 'caught up');
    assert.deepEqual(windowed.offsets('l'), range(1, 30));
    assert.deepEqual(plain.offsets('l'), range(1, 30));
    await close();
  });

  it('a reader that grants before its window ends stays on the native topic', async () => {
    const { store, hub, conn, close } = setup();
    const c = conn();
    const { view, opened } = hub.subscribe(c, { id: 1, topic: 'f', clientId: 'a', credit: 4096, windowBytes: W });
    await opened;
    await until(() => stateOf(view) === 'live', 'live');
    for (let i = 0; i < 20; i++) {
      await appendSized(store, 'f', 5); // half a window, then a grant (the SDK's rule)
      assert.equal(stateOf(view), 'live', `still live after batch ${i + 1}`);
      hub.grant(view, 5);
    }
    assert.deepEqual(c.offsets('f'), range(1, 100));
    await close();
  });
});

describe('hub, on a shared store that changes epoch', () => {
  /** A subscriber from 1 that was delivered 1..80 live, before the log took back 51..80. */
  async function liveAt80() {
    const store = new FailoverLog();
    const log = store as unknown as TopicLog; // what the hub uses of a store
    const fanout = new FakeFanout();
    const hub = new Hub(log, new CursorReader(log, DEFAULT_READ_POLICY), fanout, metrics, { ...DEFAULT_HUB_CONFIG, maxCredit: 4096 });
    const c = new FakeConn();
    fanout.conns.add(c);
    store.append('f', range(1, 50));
    const { view, opened } = hub.subscribe(c, { id: 1, topic: 'f', clientId: 'a', credit: 256, from: 1 });
    await opened;
    await until(() => stateOf(view) === 'live', 'live');
    store.append('f', range(51, 80));
    assert.deepEqual(c.offsets('f'), range(1, 80));
    return { store, hub, c };
  }

  const subscribed = (c: FakeConn) => c.frames.filter((f) => f.type === FrameType.SUBSCRIBED);
  const values = (c: FakeConn) => c.frames.flatMap((f) => (f.type === FrameType.MSGS ? f.messages.map((m) => m.data) : f.type === FrameType.MSG ? [f.data] : []));

  it('a batch notified while the topic is re-read, beyond the head that read saw, is still delivered', async () => {
    const { store, hub, c } = await liveAt80();
    store.takeBack(50);
    let release!: () => void;
    store.holdInfo = new Promise((r) => { release = r; });
    store.append('f', ['after-0']); // offset 51 in e2: the hub re-reads the topic
    store.append('f', ['after-1']); // stored after that read, notified before its answer
    release();
    await until(() => c.offsets('f').length >= 82, 'offsets 51 and 52 of the new epoch');
    assert.deepEqual(subscribed(c).at(-1), { type: FrameType.SUBSCRIBED, subId: 1, epoch: 'e2', head: 51, from: 51, recovered: false });
    assert.deepEqual(c.offsets('f').slice(80), [51, 52]);
    assert.deepEqual(values(c).slice(80), ['after-0', 'after-1']);
    store.append('f', ['after-2']);
    await until(() => c.offsets('f').length >= 83, 'offset 53');
    assert.deepEqual(c.offsets('f').slice(80), [51, 52, 53]);
    hub.close();
  });

  it('a late notification from an earlier epoch re-reads the topic, and the subscriber hears of it only if something changed', async () => {
    const { store, hub, c } = await liveAt80();
    store.takeBack(80); // a promoted replica that holds everything: e2 goes on from 81
    store.append('f', ['after-0']);
    await until(() => c.offsets('f').length >= 81, 'offset 81 of e2');
    assert.deepEqual(subscribed(c).slice(1), [{ type: FrameType.SUBSCRIBED, subId: 1, epoch: 'e2', head: 81, from: 81, recovered: true }]);
    store.notifyLate('f', 'e1', 80); // the old primary's connection, late
    store.append('f', ['after-1']);
    await until(() => c.offsets('f').length >= 82, 'offset 82');
    assert.deepEqual(c.offsets('f').slice(80), [81, 82]);
    assert.deepEqual(values(c).slice(80), ['after-0', 'after-1']);
    assert.equal(subscribed(c).length, 2, 'no SUBSCRIBED again for a re-read that found the same epoch and position');
    hub.close();
  });

  it('a re-read that fails while the store reconnects is retried: the subscriber stays, and gets the new epoch from where it begins', async () => {
    const { store, hub, c } = await liveAt80();
    store.takeBack(50);
    store.failInfo = 2; // the two first re-reads: the store's retries are timers
    store.append('f', ['after-0']);
    await pollUntil('offset 51, or a close', async () => {
      if (c.offsets('f').length < 81 && !c.closed) notYet(`${c.offsets('f').length} delivered`);
    }, { timeoutMs: 10_000, intervalMs: 5 });
    assert.equal(c.closed, false, 'not sent away: a resume with the old epoch would start at the head and skip the new epoch\'s first messages');
    assert.deepEqual(subscribed(c).at(-1), { type: FrameType.SUBSCRIBED, subId: 1, epoch: 'e2', head: 51, from: 51, recovered: false });
    store.append('f', ['after-1']);
    await until(() => c.offsets('f').length >= 82, 'offset 52');
    assert.deepEqual(values(c).slice(80), ['after-0', 'after-1']);
    hub.close();
  });
});
