/**
 * What every single-writer store shares: offset assignment, idempotency, grouping the appends of one
 * event-loop turn into one commit, ordered notification after durability, retention, and surviving
 * a store that cannot write. A concrete store supplies the persistence hooks (put/remove/read/commit).
 *
 * Lifetimes: an append's messages are *assigned* offsets synchronously (state.head), are *written*
 * when their batch is sealed and the previous batch's commit went through, become *durable* when
 * their own commit resolves (state.durableHead), and only then are they readable, notified and
 * acknowledged. A batch collects every append made until the next `setImmediate` (one loop turn),
 * so a burst of publishes costs one commit.
 *
 * Failure (disk full, I/O error): a batch whose commit fails is rejected, and so is every batch
 * behind it — none of them was written (a batch is written only after the one before it committed),
 * so no later offset can land beyond a hole. The store then refuses appends at once with
 * StoreUnavailableError, and probes every second; when the probe writes again it reloads its
 * topic states from what is stored (the stored messages are the truth) and takes appends again,
 * offsets continuing densely. Nothing rejected was ever acknowledged or notified.
 */
import { encodeEntry, entryTs } from '@sluice/client/protocol';
import {
  StoreUnavailableError,
  type AppendInput,
  type AppendListener,
  type AppendResult,
  type ReadOptions,
  type ReadResult,
  type StoreHealth,
  type StoreOptions,
  type TopicInfo,
  type TopicLog,
  type UnavailableCode,
} from './log.js';
import { LocalHeld, type HeldStore } from './held.js';
import { logger } from '../logger.js';

export interface TopicState {
  topic: string;
  epoch: string;
  /** Last assigned offset (may not be durable yet). */
  head: number;
  /** Last durable offset: what readers, info and listeners see. */
  durableHead: number;
  first: number;
  /** Durable messages retained, their stored size, and the timestamp of the newest. */
  count: number;
  bytes: number;
  lastTs: number;
  /** Keys of appends not yet durable, so a duplicate in flight is caught too. */
  pendingKeys: Map<string, KeyHit> | undefined;
}

export interface KeyHit {
  offset: number;
  ts: number;
  /** The fingerprint of the message stored with the key (absent: stored without one). */
  fingerprint?: Uint8Array | undefined;
}

/** Whether a keyed message matches the one its key was stored with (see the contract: a missing side matches). */
export function sameFingerprint(stored: Uint8Array | undefined, sent: Uint8Array | undefined): boolean {
  if (!stored || !sent || stored.length === 0 || sent.length === 0) return true;
  return Buffer.compare(stored, sent) === 0;
}

/** What a store persists for a topic besides its messages. */
export interface TopicMeta {
  head: number;
  first: number;
  count: number;
  bytes: number;
  lastTs: number;
  epoch?: string;
}

interface BatchTopic {
  state: TopicState;
  first: number;
  entries: Uint8Array[];
  /** Stored size of `entries`, and the timestamp of the last one. */
  bytes: number;
  lastTs: number;
  /** Its keyed messages' keys (none until the first: most parts have none). */
  keys: { key: string; hit: KeyHit }[] | undefined;
}

/** What a store's commit hook returns: the writes are in the store's log, then durable. */
export interface Commit {
  /** The writes so far are committed (later writes cannot be ordered before them). */
  written: Promise<unknown>;
  /** They are durable at the configured level. */
  durable: Promise<unknown>;
}

interface Failure {
  code: UnavailableCode;
  reason: string;
  since: number;
}

const RESOLVED: Promise<void> = Promise.resolve();

/** The periodic work (see `startSweeper`) runs in this many slices per interval. */
const SLICES = 20;
/** Most messages and keys one pass of the periodic work removes. */
const SWEEP_BUDGET = 10_000;

interface Batch {
  topics: Map<string, BatchTopic>;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

export abstract class BaseLog implements TopicLog {
  abstract readonly kind: string;
  protected readonly states = new Map<string, TopicState>();
  /** States in `states` with a durable message (durableHead > 0): what `topics()` lists, counted as they change. */
  private written = 0;
  private readonly listeners = new Set<AppendListener>();
  private open: Batch | undefined;
  /** Settles once the last sealed batch finished or failed; never rejects. */
  private tail: Promise<void> = RESOLVED;
  /** Sealed batches waiting for the commit in flight (`writing`) to be written as one group. */
  private sealed: Batch[] = [];
  private writing = false;
  /** The last sealed batch's `done` (rejects if it failed): duplicates of its keys wait for it. */
  private lastDone: Promise<void> = RESOLVED;
  private failure: Failure | undefined;
  /** A group of appends failed since the store was last writable: every later one is refused. */
  private groupFailed = false;
  private prober: ReturnType<typeof setInterval> | undefined;
  private probing = false;
  private closed = false;
  private allLoaded = false;
  /** Topics whose meta changed by appends since it was last written (written each second). */
  private readonly dirtyMeta = new Map<TopicState, number>();
  /** The periodic work's interval (see `startSweeper`): a dirty meta waits at most about this long. */
  private sweepIntervalMs = 1000;
  private sweeper: ReturnType<typeof setInterval> | undefined;
  /** Where the sliced sweep goes on (see `startSweeper`). */
  private sweepCursor: Iterator<TopicState> | undefined;

  constructor(
    protected readonly options: StoreOptions,
    /** Epoch of every topic in this store unless its meta says otherwise. */
    protected readonly epoch: string,
  ) {}

  // ---- hooks --------------------------------------------------------------------------------

  /** Persisted meta of a topic, if any (synchronous: called on the append path). */
  protected abstract loadMeta(topic: string): TopicMeta | undefined;
  protected abstract saveMeta(state: TopicState): void;
  /**
   * The stored form of a message being appended as `offset` (offsets of a topic come densely, in
   * order): `encodeEntry`. A store that keeps entries in its own memory may encode it there, in
   * place (no array of its own per message); `putEntry` then gets exactly the arrays this returned,
   * in offset order, once their batch is written.
   */
  protected encode(_topic: string, _offset: number, m: AppendInput, ts: number): Uint8Array {
    return encodeEntry(m.data, ts, m.headers, m.meta);
  }

  /**
   * Writes an entry. A store that keeps its own copy in memory may return it: the listeners then
   * get that copy in place of `entry` (and the hub caches it), so only one of the two stays alive.
   * A returned copy MUST stay valid and unchanged for as long as anyone holds it.
   */
  protected abstract putEntry(topic: string, offset: number, entry: Uint8Array): Uint8Array | void;
  protected abstract removeEntry(topic: string, offset: number): void;
  /** A durable entry, or undefined. */
  protected abstract getEntry(topic: string, offset: number): Uint8Array | undefined;
  protected abstract rangeEntries(topic: string, from: number, to: number, limit: number, maxBytes: number): Uint8Array[];
  protected abstract putKey(topic: string, key: string, hit: KeyHit): void;
  protected abstract getKey(topic: string, key: string): KeyHit | undefined;
  /** Removes up to `limit` keys stored before `before`; returns how many it removed. */
  protected abstract expireKeys(before: number, limit: number): number;
  /** Topics with persisted meta that are not loaded yet. */
  protected abstract storedTopics(): Iterable<string>;
  protected abstract putGroup(topic: string, group: string, state: Uint8Array): void;
  protected abstract getGroup(topic: string, group: string): Uint8Array | undefined;
  protected abstract listGroups(topic: string): string[];
  /** Writes a held record (undefined: removes it), in the next commit. */
  protected abstract putHeld(id: string, bytes: Uint8Array | undefined): void;
  /** Every stored held record. */
  protected abstract loadHeld(): Iterable<Uint8Array>;
  /** Commits everything written so far (a store that writes synchronously returns resolved promises). */
  protected abstract commit(): Commit;
  protected abstract release(): Promise<void>;
  /** Why a write failed, in the code table's terms (a disk store checks the free space). */
  protected classify(_err: Error): UnavailableCode {
    return 'unavailable';
  }
  /** After a failure: true once the store can write again (a disk store checks space, then writes). */
  /**
   * Why the store must not write now, asked before each group is written (DiskLog: a nearly full
   * disk). A reason fails the store as a failed commit would, before a write that would fail.
   */
  protected cannotWrite(): Error | undefined {
    return undefined;
  }

  protected async probe(): Promise<boolean> {
    return true;
  }
  /**
   * A batch is durable and about to be notified: reads from now on MUST see it. (A store that
   * reads from a snapshot refreshes it here.)
   */
  protected committed(): void {}
  abstract size(): number;

  // ---- TopicLog -----------------------------------------------------------------------------

  append(topic: string, messages: readonly AppendInput[]): Promise<AppendResult[]> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    const s = this.state(topic);
    const now = Date.now();
    // One result per message, in order: sized once (a growing array reserves room for 17).
    const results = new Array<AppendResult>(messages.length);
    let n = 0;
    let batch: BatchTopic | undefined;
    let waitForPending = false;
    for (const m of messages) {
      if (m.key !== undefined) {
        const pending = s.pendingKeys?.get(m.key);
        const hit = pending ?? this.findKey(topic, m.key, now);
        if (hit) {
          if (pending) waitForPending = true;
          const r: AppendResult = { offset: hit.offset, ts: hit.ts, duplicate: true, epoch: s.epoch };
          if (!sameFingerprint(hit.fingerprint, m.fingerprint)) r.keyReused = true;
          results[n++] = r;
          continue;
        }
      }
      const offset = ++s.head;
      const entry = this.encode(topic, offset, m, now);
      if (batch) batch.entries.push(entry);
      else batch = this.batchFor(s, offset, entry);
      batch.bytes += entry.length;
      batch.lastTs = now;
      if (m.key !== undefined) {
        const hit: KeyHit = { offset, ts: now, fingerprint: m.fingerprint };
        (s.pendingKeys ??= new Map()).set(m.key, hit);
        (batch.keys ??= []).push({ key: m.key, hit });
      }
      results[n++] = { offset, ts: now, duplicate: false, epoch: s.epoch };
    }
    if (batch) return this.open!.done.then(() => results);
    // Only duplicates: acknowledge once their originals are durable (and fail if those fail).
    if (waitForPending) return (this.open?.done ?? this.lastDone).then(() => results);
    return Promise.resolve(results);
  }

  saveGroup(topic: string, group: string, state: Uint8Array): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    this.putGroup(topic, group, state);
    return this.durableNow('saving a group failed');
  }

  private heldStore: LocalHeld | undefined;

  /** Held messages: in memory, indexed, written through putHeld (loaded at first use). */
  get held(): HeldStore {
    return (this.heldStore ??= new LocalHeld({
      write: (id, bytes) => { if (!this.refusal()) this.putHeld(id, bytes); },
      durable: () => {
        const refused = this.refusal();
        return refused ? Promise.reject(refused) : this.durableNow('saving a held message failed');
      },
      load: () => this.loadHeld(),
    }));
  }

  /** Resolves once everything written so far is durable. */
  private durableNow(what: string): Promise<void> {
    return this.commit().durable.then(() => undefined, (err: unknown) => {
      throw err instanceof StoreUnavailableError ? err : this.refusal() ?? new StoreUnavailableError('unavailable', what);
    });
  }

  async loadGroup(topic: string, group: string): Promise<Uint8Array | undefined> {
    return this.getGroup(topic, group);
  }

  async groupsOf(topic: string): Promise<string[]> {
    return this.listGroups(topic);
  }

  health(): StoreHealth {
    const f = this.failure;
    return f ? { writable: false, code: f.code, reason: f.reason, since: f.since } : { writable: true };
  }

  async read(topic: string, from: number, opts: ReadOptions): Promise<ReadResult> {
    const s = this.state(topic, false);
    const start = Math.max(from, s.first);
    const to = s.durableHead;
    const entries = start <= to && opts.limit > 0
      ? this.rangeEntries(topic, start, to, opts.limit, opts.maxBytes ?? Number.POSITIVE_INFINITY)
      : [];
    return { epoch: s.epoch, head: s.durableHead, first: s.first, start, entries };
  }

  async info(topic: string): Promise<TopicInfo> {
    return this.infoOf(this.state(topic, false));
  }

  async topics(): Promise<TopicInfo[]> {
    this.loadAll();
    const out: TopicInfo[] = [];
    for (const s of this.states.values()) if (s.durableHead > 0) out.push(this.infoOf(s));
    return out;
  }

  async topicCount(): Promise<number> {
    this.loadAll();
    return this.written;
  }

  /** Topics whose state is held in memory (written ones and those loaded from disk). */
  get cachedTopics(): number {
    return this.states.size;
  }

  watch(listener: AppendListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.prober) clearInterval(this.prober);
    if (this.open) this.seal();
    // Groups written as earlier ones commit extend `tail`: wait until none is left.
    do await this.tail; while (this.writing || this.sealed.length > 0);
    this.flushMeta();
    await this.commit().durable.catch(() => undefined);
    await this.release();
  }

  // ---- retention and expiry -------------------------------------------------------------------

  /**
   * Starts the periodic work over every topic — writing the meta of topics that grew, trimming
   * messages older than the retention age, forgetting expired idempotency keys — once per
   * `intervalMs`, in SLICES slices spread over it: each tick visits its share of the topics (and
   * the oldest share of the dirty metas), so no loop turn pays for all topics at once (with 10,000
   * topics a whole pass blocked the event loop for milliseconds every second, which showed as tail
   * latency; issue 16). Every topic is still visited once per interval.
   */
  protected startSweeper(intervalMs = 1000): void {
    this.sweepIntervalMs = intervalMs;
    this.sweeper = setInterval(() => {
      try {
        this.sweepSlice(Date.now());
      } catch (err) {
        logger.error('retention sweep failed', { err });
      }
    }, intervalMs / SLICES);
    this.sweeper.unref();
  }

  /** One tick of the periodic work: a SLICES-th of the topics, the dirty metas and the key budget. */
  private sweepSlice(now: number): void {
    if (this.failure || this.closed) return;
    this.loadAll();
    const visit = Math.ceil(this.states.size / SLICES);
    // Metas dirty for an interval are due; at most twice a slice's share of the topics per tick.
    this.flushMeta(now - this.sweepIntervalMs, 2 * visit);
    let budget = Math.ceil(SWEEP_BUDGET / SLICES);
    const oldest = now - this.options.retention.maxAgeMs;
    for (let i = 0; i < visit && budget > 0; i++) {
      // A Map iterator stays valid while the map changes; a finished one starts a new pass.
      let next = this.sweepCursor?.next();
      if (!next || next.done) {
        this.sweepCursor = this.states.values();
        next = this.sweepCursor.next();
        if (next.done) break;
      }
      budget = this.trimAged(next.value, oldest, budget);
    }
    this.expireKeys(now - this.options.dedupWindowMs, budget);
  }

  /** Trims messages older than the retention age and forgets expired idempotency keys, over every topic. Bounded work per call. */
  sweep(now: number, budget = SWEEP_BUDGET): void {
    if (this.failure || this.closed) return;
    const oldest = now - this.options.retention.maxAgeMs;
    this.loadAll();
    for (const s of this.states.values()) budget = this.trimAged(s, oldest, budget);
    this.expireKeys(now - this.options.dedupWindowMs, budget);
  }

  /** Drops a topic's messages older than `oldest` (at most `budget`); returns the budget left. */
  private trimAged(s: TopicState, oldest: number, budget: number): number {
    let changed = false;
    while (budget > 0 && s.first <= s.durableHead && s.lastTs > 0) {
      const entry = this.getEntry(s.topic, s.first);
      if (entry && entryTs(entry) >= oldest) break;
      this.dropFirst(s, entry);
      changed = true;
      budget--;
    }
    if (changed) this.writeMeta(s);
    return budget;
  }

  /** Count and size retention, applied to durable messages after each commit. */
  private trim(s: TopicState): void {
    const { maxCount, maxBytes } = this.options.retention;
    let changed = false;
    while ((s.count > maxCount || s.bytes > maxBytes) && s.first <= s.durableHead) {
      this.dropFirst(s, this.getEntry(s.topic, s.first));
      changed = true;
    }
    if (changed) this.writeMeta(s);
  }

  /** Writes a topic's meta now (with removals: in the same commit). */
  private writeMeta(s: TopicState): void {
    this.dirtyMeta.delete(s);
    this.saveMeta(s);
  }

  /**
   * Writes the meta of topics that grew since their last write: those dirty since `before` or
   * earlier, at most `limit` of them (default: all). A topic's meta is thereby written at most once
   * per interval however often it grows (a write per tick would add commits).
   */
  private flushMeta(before = Number.POSITIVE_INFINITY, limit = Number.POSITIVE_INFINITY): void {
    if (this.failure) return;
    // A Map iterates in insertion order: the ones dirty the longest come first.
    for (const [s, since] of this.dirtyMeta) {
      if (since > before || limit-- <= 0) break;
      this.saveMeta(s);
      this.dirtyMeta.delete(s);
    }
  }

  private dropFirst(s: TopicState, entry: Uint8Array | undefined): void {
    this.removeEntry(s.topic, s.first);
    s.first++;
    s.count--;
    s.bytes -= entry ? entry.length : 0;
  }

  // ---- internals ------------------------------------------------------------------------------

  /**
   * The state of a topic. Appends create it; reads (`create = false`) of a topic that was never
   * written get a transient default that is not kept, so clients reading or subscribing to random
   * names cannot grow the store's memory.
   */
  protected state(topic: string, create = true): TopicState {
    let s = this.states.get(topic);
    if (!s) {
      const meta = this.loadMeta(topic);
      s = {
        topic,
        epoch: meta?.epoch ?? this.epoch,
        head: meta?.head ?? 0,
        durableHead: meta?.head ?? 0,
        first: meta?.first ?? 1,
        count: meta?.count ?? 0,
        bytes: meta?.bytes ?? 0,
        lastTs: meta?.lastTs ?? 0,
        pendingKeys: undefined,
      };
      if (meta || create) {
        this.states.set(topic, s);
        if (s.durableHead > 0) this.written++;
      }
    }
    return s;
  }

  /** Loads the state of every persisted topic once, so sweeps and listings see all of them. */
  private loadAll(): void {
    if (this.allLoaded) return;
    for (const topic of this.storedTopics()) this.state(topic);
    this.allLoaded = true;
  }

  /**
   * What is persisted of a topic: its durable state only. (A head that counted appends still in
   * flight could be committed before their messages, and a crash would then leave a hole.)
   */
  protected metaOf(s: TopicState): TopicMeta {
    const meta: TopicMeta = { head: s.durableHead, first: s.first, count: s.count, bytes: s.bytes, lastTs: s.lastTs };
    if (s.epoch !== this.epoch) meta.epoch = s.epoch;
    return meta;
  }

  private infoOf(s: TopicState): TopicInfo {
    return {
      topic: s.topic,
      epoch: s.epoch,
      head: s.durableHead,
      first: s.first,
      count: s.count,
      bytes: s.bytes,
      lastTs: s.lastTs,
    };
  }

  private findKey(topic: string, key: string, now: number): KeyHit | undefined {
    const hit = this.getKey(topic, key);
    return hit && now - hit.ts < this.options.dedupWindowMs ? hit : undefined;
  }

  /**
   * The open batch's part for topic `s`, with `entry` (its message at `offset`) added. A new part
   * holds its first entry in an array of one, and no array of keys until a keyed message: with
   * many topics most parts get one message, and `[]` grown by a push reserves room for 17.
   */
  private batchFor(s: TopicState, offset: number, entry: Uint8Array): BatchTopic {
    if (!this.open) {
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const done = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
      done.catch(() => undefined); // failures reach callers through their own .then chains
      this.open = { topics: new Map(), done, resolve, reject };
      setImmediate(() => this.seal());
    }
    let t = this.open.topics.get(s.topic);
    if (t) t.entries.push(entry);
    else {
      t = { state: s, first: offset, entries: [entry], bytes: 0, lastTs: 0, keys: undefined };
      this.open.topics.set(s.topic, t);
    }
    return t;
  }

  /**
   * Closes the open batch. Batches are written in groups: while a commit is in flight, sealed
   * batches wait, and when it has committed every one of them is written at once, in one commit of
   * the store (group commit: a burst costs one commit, not one per loop turn). A group is never
   * written ahead of a commit that may still fail, so a failure leaves no later offset behind a
   * hole. Batches complete in order, each once its group is durable. Topic meta for appends is
   * written lazily (each second, and on close): a store MUST therefore never trust a persisted head
   * below its stored messages (see DiskLog). Meta for trims is written with the removals, in their
   * commit, so `first` is always exact.
   */
  private seal(): void {
    const b = this.open;
    if (!b) return;
    this.open = undefined;
    this.lastDone = b.done;
    this.sealed.push(b);
    if (!this.writing) this.writeSealed();
  }

  /** Writes every sealed batch as one group (see `seal`). */
  private writeSealed(): void {
    const group = this.sealed;
    if (group.length === 0) return;
    this.sealed = [];
    let durable: Promise<unknown>;
    const blocked = this.failure ? undefined : this.cannotWrite();
    if (blocked) this.markFailed(blocked);
    if (this.failure) {
      durable = Promise.reject(this.refusal());
    } else {
      this.writing = true;
      try {
        for (const b of group) {
          for (const t of b.topics.values()) {
            const topic = t.state.topic;
            for (let i = 0; i < t.entries.length; i++) {
              const kept = this.putEntry(topic, t.first + i, t.entries[i]!);
              if (kept) t.entries[i] = kept;
            }
            if (t.keys) for (const k of t.keys) this.putKey(topic, k.key, k.hit);
          }
        }
        const c = this.commit();
        c.written.then(
          () => { this.writing = false; this.writeSealed(); },
          (err: unknown) => {
            // Before anything else is written: the groups behind this one must not land past it.
            this.markFailed(err instanceof Error ? err : new Error(String(err)));
            this.writing = false;
            this.writeSealed();
          },
        );
        durable = c.durable;
      } catch (err) {
        this.writing = false;
        durable = Promise.reject(err);
      }
    }
    durable.catch(() => undefined); // failures reach callers through `tail` below
    // A durable group is acknowledged even if the store failed meanwhile (another write — a
    // checkpoint, a meta, a later group — failed first): it is stored, and a refusal would say
    // "nothing was stored". Only a group behind one that failed is refused (no offset past a hole).
    this.tail = this.tail.then(() => durable).then(
      () => {
        for (const b of group) {
          if (!this.groupFailed) this.finish(b);
          // Written and durable, but behind a group that failed: refused, and perhaps stored.
          else b.reject(new StoreUnavailableError(this.failure?.code ?? 'unavailable', 'a write before this publish failed; it may be stored: retry with the same idempotency key'));
        }
      },
      (err: unknown) => {
        this.groupFailed = true;
        for (const b of group) this.fail(b, err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  private finish(b: Batch): void {
    this.committed();
    for (const [topic, t] of b.topics) {
      const s = t.state;
      if (s.durableHead === 0) this.written++;
      s.durableHead = t.first + t.entries.length - 1;
      s.count += t.entries.length;
      s.bytes += t.bytes;
      s.lastTs = t.lastTs;
      if (!this.dirtyMeta.has(s)) this.dirtyMeta.set(s, Date.now());
      if (s.pendingKeys) {
        if (t.keys) for (const k of t.keys) s.pendingKeys.delete(k.key);
        if (s.pendingKeys.size === 0) s.pendingKeys = undefined;
      }
      for (const listener of this.listeners) {
        try {
          listener(topic, t.first, t.entries, s.epoch);
        } catch (err) {
          logger.error('append listener failed', { err });
        }
      }
      // Retention writes wait until the store writes again (recovery reloads the states).
      if (!this.failure) this.trim(s);
    }
    b.resolve();
  }

  /**
   * A batch was not made durable (its commit failed, or an earlier one did). Its appends are
   * rejected; the store stops taking writes until a probe succeeds (see the header).
   */
  private fail(b: Batch, err: Error | undefined): void {
    if (err && !(err instanceof StoreUnavailableError)) this.markFailed(err);
    b.reject(this.refusal() ?? new StoreUnavailableError('unavailable', 'the store failed to write'));
  }

  /** Enters the failed state (once): appends are refused until `recover` succeeds. */
  protected markFailed(err: Error): void {
    if (this.failure || this.closed) return;
    const code = this.classify(err);
    this.failure = { code, reason: code === 'insufficient-storage' ? 'disk full' : err.message, since: Date.now() };
    logger.error(`store cannot write (${this.failure.reason}); refusing publishes with ${code} until it can`, { err });
    this.prober = setInterval(() => void this.recover(), 1000);
    this.prober.unref();
  }

  /** The error for an append made now, if appends are refused. */
  private refusal(): StoreUnavailableError | undefined {
    const f = this.failure;
    if (f) {
      return new StoreUnavailableError(f.code, f.code === 'insufficient-storage'
        ? 'the store is out of disk space; nothing was stored, retry later'
        : `the store cannot write (${f.reason}); nothing was stored, retry later`);
    }
    if (this.closed) return new StoreUnavailableError('unavailable', 'the store is closed');
    return undefined;
  }

  /**
   * Once nothing is in flight and the store's probe writes again: reload every topic's state from
   * what is stored, then take appends again.
   */
  private async recover(): Promise<void> {
    if (this.probing || !this.failure || this.closed) return;
    this.probing = true;
    try {
      await this.tail;
      if (!(await this.probe()) || this.closed) return;
      this.states.clear();
      this.written = 0;
      this.dirtyMeta.clear();
      this.allLoaded = false;
      const was = this.failure;
      this.failure = undefined;
      this.groupFailed = false;
      if (this.prober) clearInterval(this.prober);
      this.prober = undefined;
      logger.warn(`store writable again after ${Math.round((Date.now() - was.since) / 1000)} s; taking publishes`);
    } catch (err) {
      logger.error('store probe failed', { err });
    } finally {
      this.probing = false;
    }
  }
}
