/**
 * The embedded durable store, on LMDB (the `lmdb` package).
 *
 * Why LMDB: a copy-on-write B-tree in one memory-mapped file, crash-safe by construction (no
 * recovery step, no torn writes), with ordered keys for range reads by offset. lmdb-js batches every
 * write of an event-loop turn into one transaction on a worker thread and syncs it, which is the
 * group commit we want, and it reads synchronously from the map with no copies of the tree.
 *
 * Layout (one environment, named databases, written in the same transactions; format 2, see
 * disk-format.ts for the record layouts, the version check and the migration from format 1):
 * - `log`    seq → [topic, offset, entry]   every message, keyed by a global sequence in commit order
 * - `index`  [topic, first offset] → (seq, count)   runs of a topic's offsets at consecutive sequences
 * - `meta`   topic → TopicMeta (head, first, count, bytes, lastTs, epoch override)
 * - `keys`   [topic, key] → offset, ts (float64 BE, 16 bytes), then the message's fingerprint
 *                                    (up to 32 bytes; absent in keys written before fingerprints)
 * - `expiry` [ts, topic, key] → (empty)                          the same keys in time order
 * - `sys`    'store-epoch' → the store's epoch, made once when the data directory is created ('epoch'
 *            in format 1, a guard against older builds now: see disk-format.ts);
 *            'format' → 2; 'indexed' → the sequence up to which `index` is complete
 * - `groups` [topic, group] → a consumer group's state
 * - `held`   id → a held (scheduled or prepared) message's record (see held.ts)
 *
 * Why append-ordered (issue 16): with messages keyed [topic, offset], a commit of publishes spread
 * over many topics dirtied one B-tree leaf per topic — a 4 KiB page written per 200-byte message.
 * Keyed by a global sequence, a commit appends at the tree's right edge: pages per commit. The
 * per-topic index stays off the commit path (an index written per batch costs as many pages as the
 * messages did; bench/src/repro/interleaved-commit.ts measures the three layouts): runs not yet
 * indexed are held in memory (`runs`) and written by a checkpoint pass (once CHECKPOINT_RECORDS
 * are waiting, or after CHECKPOINT_MAX_MS), a slice of the topics every CHECKPOINT_TICK_MS, every
 * topic once per CHECKPOINT_SLICES ticks. `sys.indexed` moves with each completed pass; at open the log after it is scanned to find the runs again, so a kill -9 loses
 * nothing the log holds.
 *
 * Messages and their keys are written in the commit of their append; a topic's meta once per
 * batch, which may land a commit later. The messages are the truth: on load, a head behind the
 * last stored message is corrected (and count/bytes with it), so a crash between the two commits
 * cannot make offsets be reused.
 *
 * Durability: `flush` (default) acknowledges after the commit is synced to the device; `commit`
 * acknowledges once the commit is in the OS (survives a process crash, not a power loss).
 *
 * A full disk: lmdb-js rejects every write of a failed transaction ("Commit failed") and rejects the
 * error's `commitError` promise with the cause; both are always handled here (an unhandled one ends
 * the process). The failure is classified by the free space of the filesystem (statfs): below
 * MIN_FREE_BYTES it is `insufficient-storage`. A group of appends is not written at all once less than
 * MIN_FREE_BYTES is free (checked before each). The store then takes no writes until a probe finds
 * MIN_FREE_BYTES free and commits a small write (see BaseLog). Opening on a disk with less than that
 * free starts the store read-only in the same state, so a restart on a full disk serves reads. A
 * format 1 directory there is not migrated (that needs space): it is read as it is (`format1`),
 * and the probe that finds space again migrates it before the store takes writes.
 *
 * A format 1 directory is migrated at open for up to MIGRATE_OPEN_MS; a bigger one opens
 * read-only the same way (`format1`, failure `unavailable`: publishes are refused, retryably, and
 * readyz says why) and the first probe moves the rest, a chunk per asynchronous transaction,
 * reads being served meanwhile from either layout.
 */
import { mkdirSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { entryTs } from '@sluice/client/protocol';
import { BaseLog, type Commit, type KeyHit, type TopicMeta, type TopicState } from './base.js';
import {
  FORMAT, readEpoch, decodeRun, encodeRecord, encodeRun, format1Count, format1Msgs, formatNeeds, lastSeq, migrateFormat1, migrateFormat1Async, recordEntry,
  recordHead, stampFormat,
  type Run, type StoreDbs,
} from './disk-format.js';
import type { StoreOptions, UnavailableCode } from './log.js';
import { randomId } from '../util/id.js';
import { StoreInUseError, storeHolders } from './backup.js';
import { logger } from '../logger.js';

export type Durability = 'flush' | 'commit';

export interface DiskLogOptions extends StoreOptions {
  dir: string;
  durability?: Durability;
  /** Free bytes below which the filesystem counts as full (default MIN_FREE_BYTES). */
  minFreeBytes?: number;
  /** With `flush`: called once per sync with the time from its commit's write to the sync (s). */
  onSync?: (seconds: number) => void;
  /** @internal Records not indexed that start a checkpoint pass (default CHECKPOINT_RECORDS; tests lower it). */
  checkpointRecords?: number;
  /** @internal Milliseconds between checkpoint ticks (default CHECKPOINT_TICK_MS; the crash fuzz lowers it). */
  checkpointTickMs?: number;
  /** @internal Messages moved per format 1 migration transaction (default 10,000 at open, 2,000 later; tests lower it). */
  migrateChunk?: number;
  /** @internal How long the format 1 migration may run at open before the rest moves while the store runs (default MIGRATE_OPEN_MS). */
  migrateOpenMs?: number;
}

type CommitPromise = Promise<boolean> & { flushed?: Promise<boolean> };

const EMPTY = new Uint8Array(0);

/** Free space below which the disk counts as full: writes are refused, the store starts read-only. */
export const MIN_FREE_BYTES = 1024 * 1024;

/** lmdb's error for a failed commit carries the cause as a promise that rejects later. */
function swallowCause(err: unknown): void {
  const cause = (err as { commitError?: Promise<unknown> } | null)?.commitError;
  if (cause && typeof cause.catch === 'function') cause.catch(() => undefined);
}

/**
 * lmdb-js (3.x) makes a promise of its own for each event-turn batch and rejects it, unhandled,
 * when that batch's commit fails: Node would end the process for it (the crash on a full disk).
 * Every write of ours is handled (see `track`), so a rejection that carries lmdb's `commitError` is
 * that orphan: it, and only it, is swallowed. Any other unhandled rejection is rethrown, which ends
 * the process as Node's default does.
 */
let orphanGuard = false;
function guardOrphanCommitRejections(): void {
  if (orphanGuard) return;
  orphanGuard = true;
  process.on('unhandledRejection', (reason: unknown) => {
    if (reason instanceof Error && 'commitError' in reason) {
      swallowCause(reason);
      return;
    }
    throw reason;
  });
}

function freeBytesOf(dir: string): number {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** Whether a failed write failed for want of space. */
function isNoSpace(err: unknown, dir: string, minFree: number): boolean {
  const e = ((err as { cause?: unknown }).cause ?? err) as { code?: unknown; message?: unknown };
  return e.code === 'ENOSPC' || e.code === 28 || /no space|ENOSPC/i.test(String(e.message)) || freeBytesOf(dir) < minFree;
}

const NO_COMMIT: Commit = { written: Promise.resolve(), durable: Promise.resolve() };

/**
 * The format 1 migration runs at open (before the gateway listens) for at most this long; a store
 * that takes longer (about 100,000 messages a second) opens read-only and moves the rest a chunk
 * per transaction while reads are served (see `probe`).
 */
const MIGRATE_OPEN_MS = 250;

/** The index checkpoint runs every this many ms, over a CHECKPOINT_SLICES-th of the topics. */
const CHECKPOINT_TICK_MS = 50;
const CHECKPOINT_SLICES = 20;
/**
 * A checkpoint pass starts once this many records are not indexed, or CHECKPOINT_MAX_MS after
 * the last pass ended with any. A pass writes about one index page per topic that grew: at 10,000
 * topics a pass every second cost a page per message again when each topic got one a second.
 * The bound is what the memory holds (a run object per record at worst) and what the open scans.
 */
const CHECKPOINT_RECORDS = 50_000;
const CHECKPOINT_MAX_MS = 10_000;

/**
 * A run held in memory: not yet in `index` (savedIn 0), or written by checkpoint tick `savedIn`
 * and kept until that commit is readable. A topic's list is in offset order, and its saved runs
 * are always a prefix of it (a checkpoint saves from the front).
 */
interface MemRun extends Run {
  savedIn: number;
}

/** Where an offset's record is: a run in memory (`mem`), or one read from `index`. */
interface Found {
  run: Run;
  mem: MemRun[] | undefined;
}

export class DiskLog extends BaseLog {
  readonly kind = 'disk';
  private readonly root: RootDatabase;
  private readonly log: Database<Buffer, number>;
  private readonly index: Database<Buffer, [string, number]>;
  private readonly meta: Database<TopicMeta, string>;
  private readonly keys: Database<Uint8Array, [string, string]>;
  private readonly expiry: Database<Uint8Array, [number, string, string]>;
  private readonly path: string;
  private readonly sys: Database<string | number, string>;
  private readonly groups: Database<Uint8Array, [string, string]>;
  private readonly heldDb: Database<Uint8Array, string>;
  private readonly dir: string;
  private readonly durability: Durability;
  private readonly onSync: ((seconds: number) => void) | undefined;
  /** The last sync `onSync` was told about (several batches may wait for one). */
  private timedSync: Promise<boolean> | undefined;
  private readonly minFree: number;
  private readonly checkpointRecords: number;
  private lastWrite: CommitPromise | undefined;
  /** Last sequence given to a record, and the last one known committed. */
  private seq = 0;
  private writtenSeq = 0;
  /** Runs not yet readable from `index`, per topic (see MemRun). */
  private readonly runs = new Map<string, MemRun[]>();
  private checkpointer: ReturnType<typeof setInterval> | undefined;
  /** The checkpoint pass in progress: its topics, the sequence it indexes up to, its tick number. */
  private pass: { topics: Iterator<[string, MemRun[]]>; upTo: number } | undefined;
  /** Counts `loadRuns`: a marker move decided before one is stale. */
  private generation = 0;
  private released = false;
  /** Checkpoint commits not settled yet, and whether one failed since the runs were last loaded. */
  private readonly unsettled = new Set<Promise<boolean>>();
  private checkpointFailed = false;
  /** A pass ended and waits for its commits to move the marker (no pass starts meanwhile). */
  private moving = false;
  private tick = 0;
  /** `sys.indexed` as last written, and when the last pass ended. */
  private indexed = 0;
  private passEnded = 0;
  /**
   * Format 1's messages, while their migration waits for disk space (the store is read-only until
   * then): reads look there for what is not in the log yet (a migration cut short moved a prefix of
   * each topic's offsets).
   */
  private format1: Database<Uint8Array, [string, number]> | undefined;
  private readonly migrateChunk: number | undefined;
  private migrateLogged = 0;
  /** The migration in progress while the store runs (close waits for its chunk). */
  private migration: Promise<boolean> | undefined;

  static open(options: DiskLogOptions): DiskLog {
    guardOrphanCommitRejections();
    mkdirSync(options.dir, { recursive: true });
    // Two gateways on one data directory would each count offsets on their own and overwrite each
    // other's messages, and the opening alone can cost the running one commits (see backup.ts).
    const holders = storeHolders(options.dir);
    if (holders && holders.length > 0) {
      throw new StoreInUseError(`another process (pid ${holders.join(', ')}) has the store in ${options.dir} open; stop it first (one gateway per data directory)`);
    }
    const path = join(options.dir, 'sluice.mdb');
    const root = open({ path, compression: false, separateFlushed: true, maxDbs: 12 });
    const sys = root.openDB<string | number, string>('sys', {});
    let epoch = readEpoch(sys);
    const fresh = !epoch;
    if (!epoch) {
      epoch = randomId(16);
      try {
        sys.putSync('epoch', epoch);
      } catch (err) {
        throw new Error(`cannot initialise the data directory ${options.dir} (is the disk full?): ${(err as Error).message}`);
      }
    }
    const dbs: StoreDbs = { root, sys, log: root.openDB('log', { encoding: 'binary' }), index: root.openDB('index', { encoding: 'binary' }) };
    const minFree = options.minFreeBytes ?? MIN_FREE_BYTES;
    // A format 1 directory the disk has no room to migrate: served read-only as it is, migrated
    // once space returns (see `probe`), as a full disk of the current format starts read-only.
    let postponed: Error | undefined;
    let left = 0;
    try {
      const needs = formatNeeds(sys, options.dir, fresh);
      if (needs === 'fresh') stampFormat(dbs);
      else if (needs === 'format1') {
        if (freeBytesOf(options.dir) < minFree) postponed = new Error(`less than ${minFree} bytes free`);
        else {
          try {
            if (!migrateFormat1(dbs, options.dir, options.migrateChunk, options.migrateOpenMs ?? MIGRATE_OPEN_MS)) left = format1Count(root);
          } catch (err) {
            if (!isNoSpace(err, options.dir, minFree)) throw err;
            postponed = err as Error;
          }
        }
      }
    } catch (err) {
      void root.close();
      throw err;
    }
    const log = new DiskLog(options, root, sys, epoch, path, postponed !== undefined || left > 0);
    if (left > 0) {
      // Read-only while the rest moves (publishes get `unavailable`, retryable; readyz says why).
      log.markFailed(new Error(`migrating the data directory to store format ${FORMAT}, ${left} messages left`));
      log.probeNow(); // the probe migrates (see `probe`)
      logger.warn(`the data directory ${options.dir} is in store format 1: ${left} messages are left to migrate to format ${FORMAT} after ${options.migrateOpenMs ?? MIGRATE_OPEN_MS} ms; `
        + 'serving reads meanwhile, publishes are refused (unavailable, retryable) until it ends');
    } else if (postponed) {
      log.markFailed(Object.assign(new Error(`the disk of ${options.dir} is full`), { code: 'ENOSPC' }));
      logger.error(`the disk of ${options.dir} is full: starting read-only in store format 1, whose migration to format ${FORMAT} needs space `
        + '(reads are served; publishes get insufficient-storage until space returns, then the store is migrated and takes them)', { err: postponed });
    } else {
      const full = log.cannotWrite();
      if (!full) return log;
      log.markFailed(full);
      logger.error(`the disk of ${options.dir} is full: starting read-only (reads are served; publishes get insufficient-storage until space returns)`);
    }
    return log;
  }

  private constructor(options: DiskLogOptions, root: RootDatabase, sys: Database<string | number, string>, epoch: string, path: string, format1: boolean) {
    super(options, epoch);
    this.root = root;
    this.sys = sys;
    this.path = path;
    this.dir = options.dir;
    this.durability = options.durability ?? 'flush';
    this.onSync = options.onSync;
    this.minFree = options.minFreeBytes ?? MIN_FREE_BYTES;
    this.checkpointRecords = options.checkpointRecords ?? CHECKPOINT_RECORDS;
    this.migrateChunk = options.migrateChunk;
    this.log = root.openDB('log', { encoding: 'binary' });
    this.index = root.openDB('index', { encoding: 'binary' });
    this.meta = root.openDB('meta', {});
    this.keys = root.openDB('keys', { encoding: 'binary' });
    this.expiry = root.openDB('expiry', { encoding: 'binary' });
    this.groups = root.openDB('groups', { encoding: 'binary' });
    this.heldDb = root.openDB('held', { encoding: 'binary' });
    if (format1) this.format1 = format1Msgs(root);
    this.loadRuns();
    this.startSweeper();
    this.checkpointer = setInterval(() => {
      try {
        this.checkpointTick();
      } catch (err) {
        // The runs stay in memory and the marker where it was: the next pass writes them.
        this.pass = undefined;
        logger.error('index checkpoint failed', { err });
      }
    }, options.checkpointTickMs ?? CHECKPOINT_TICK_MS);
    this.checkpointer.unref();
  }

  /**
   * Every write goes through here: its failure is always handled (lmdb-js returns one promise per
   * transaction, so this attaches one handler per transaction, not per write).
   */
  private track(p: Promise<boolean>): void {
    if (p === this.lastWrite) return;
    this.lastWrite = p as CommitPromise;
    p.then(undefined, (err: unknown) => {
      swallowCause(err);
      this.markFailed(err instanceof Error ? err : new Error(String(err)));
    });
  }

  private freeBytes(): number {
    return freeBytesOf(this.dir);
  }

  /**
   * Below `minFree` the store stops writing before a commit fails: besides refusing cleanly, this
   * keeps lmdb-js away from puts failing with ENOSPC one after another, which can abort the process
   * (lmdb-js 3.5.6, a plain script on a disk with 50–400 KB free: heap corruption within 200 failed
   * puts, 4 runs of 4). One statfs per group commit.
   */
  protected override cannotWrite(): Error | undefined {
    if (this.freeBytes() >= this.minFree) return undefined;
    return Object.assign(new Error(`less than ${this.minFree} bytes free on ${this.dir}`), { code: 'ENOSPC' });
  }

  protected override classify(err: Error): UnavailableCode {
    const code = (err as { code?: unknown }).code;
    // A short write is EIO to LMDB: a commit that failed with less than MIN_FREE_BYTES free (whatever
    // the margin configured) is taken for a full disk.
    return code === 'ENOSPC' || code === 28 || this.freeBytes() < Math.max(this.minFree, MIN_FREE_BYTES) ? 'insufficient-storage' : 'unavailable';
  }

  protected override async probe(): Promise<boolean> {
    if (this.freeBytes() < this.minFree) return false;
    if (this.format1) {
      // The migration left after open, or waiting for space: a chunk per transaction, the loop free between.
      try {
        const dbs = { root: this.root, sys: this.sys, log: this.log, index: this.index };
        this.migration = migrateFormat1Async(dbs, this.dir, this.migrateChunk, () => this.released);
        if (!(await this.migration)) return false;
      } catch (err) {
        if (Date.now() - this.migrateLogged > 60_000) {
          this.migrateLogged = Date.now();
          logger.error('the migration to the current store format failed; it is tried again each second', { err });
        }
        return false;
      }
      this.format1 = undefined;
      logger.warn(`the data directory ${this.dir} is migrated to store format ${FORMAT}`);
    }
    const w = this.sys.put('probe', Date.now()) as CommitPromise;
    try {
      await w;
      if (this.durability === 'flush' && w.flushed) await w.flushed;
    } catch (err) {
      swallowCause(err);
      return false;
    }
    // Records of failed commits were never written: find the runs again from what is stored.
    this.root.resetReadTxn();
    this.loadRuns();
    return true;
  }

  /**
   * Finds the runs not in `index`: every record after `sys.indexed` whose offset is beyond its
   * topic's last indexed run (a checkpoint pass may have indexed some before it ended).
   */
  private loadRuns(): void {
    this.runs.clear();
    this.pass = undefined;
    this.generation++;
    this.checkpointFailed = false;
    this.moving = false;
    this.indexed = Number(this.sys.get('indexed') ?? 0);
    // Never below the marker: retention may have removed the log's last records (an aged-out
    // store is emptied), and a sequence given again at or below `sys.indexed` would be neither
    // indexed by a checkpoint (nothing behind) nor found by the next open's scan (after it).
    this.seq = Math.max(lastSeq(this.log), this.indexed);
    this.writtenSeq = this.seq;
    this.passEnded = Date.now();
    const heads = new Map<string, number>();
    for (const { key, value } of this.log.getRange({ start: this.indexed + 1 })) {
      const { topic, offset } = recordHead(value);
      let head = heads.get(topic);
      if (head === undefined) {
        head = 0;
        for (const r of this.indexRuns(topic, Number.MAX_SAFE_INTEGER, true)) head = r.first + r.count - 1;
        heads.set(topic, head);
      }
      if (offset > head) this.addRun(topic, offset, key);
    }
  }

  /** Adds a record at `seq` to its topic's runs in memory (extending the last when contiguous). */
  private addRun(topic: string, offset: number, seq: number): void {
    let list = this.runs.get(topic);
    if (!list) this.runs.set(topic, (list = []));
    const last = list[list.length - 1];
    if (last && last.savedIn === 0 && last.first + last.count === offset && last.seq + last.count === seq) last.count++;
    else list.push({ first: offset, seq, count: 1, savedIn: 0 });
  }

  /** At most one run of `topic` from `index`: the last starting at or before `offset` (reverse), or the first at or after it. */
  private indexRuns(topic: string, offset: number, reverse: boolean): Run[] {
    const range = reverse
      ? this.index.getRange({ start: [topic, offset], end: [topic, 0], reverse: true, limit: 1 })
      : this.index.getRange({ start: [topic, offset], end: [topic, Number.MAX_SAFE_INTEGER], limit: 1 });
    const out: Run[] = [];
    for (const { key, value } of range) out.push(decodeRun(key[1], value));
    return out;
  }

  /** The run holding `offset` of `topic`, if one does (its record may have been trimmed since). */
  private findRun(topic: string, offset: number): Found | undefined {
    const list = this.runs.get(topic);
    if (list && list.length > 0 && offset >= list[0]!.first) {
      // The last run starting at or before `offset` (a list holds the runs of a second or two).
      let lo = 0;
      let hi = list.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (list[mid]!.first <= offset) lo = mid;
        else hi = mid - 1;
      }
      const r = list[lo]!;
      return offset < r.first + r.count ? { run: r, mem: list } : undefined;
    }
    const [r] = this.indexRuns(topic, offset, true);
    return r && offset < r.first + r.count ? { run: r, mem: undefined } : undefined;
  }

  /** The last offset stored for `topic` (trimmed or not), if any. */
  private lastOffset(topic: string): number | undefined {
    const list = this.runs.get(topic);
    const r = list?.[list.length - 1] ?? this.indexRuns(topic, Number.MAX_SAFE_INTEGER, true)[0];
    const last = r ? r.first + r.count - 1 : undefined;
    if (!this.format1) return last;
    // Not migrated yet: format 1 holds the higher offsets.
    for (const key of this.format1.getKeys({ start: [topic, Number.MAX_SAFE_INTEGER], end: [topic, 0], reverse: true, limit: 1 })) return key[1];
    return last;
  }

  /** The first offset stored for `topic`, if any. */
  private firstOffset(topic: string): number | undefined {
    const first = (this.indexRuns(topic, 0, false)[0] ?? this.runs.get(topic)?.[0])?.first;
    if (first !== undefined || !this.format1) return first;
    for (const key of this.format1.getKeys({ start: [topic, 0], end: [topic, Number.MAX_SAFE_INTEGER], limit: 1 })) return key[1];
    return undefined;
  }

  /**
   * One tick of the index checkpoint: writes the runs of a CHECKPOINT_SLICES-th of the topics
   * held in memory, those whose records are committed at the pass's start (a run that goes beyond
   * is split). When a pass has visited every topic, every record up to that sequence is indexed:
   * `sys.indexed` moves there, in the same commit as the last runs.
   */
  private checkpointTick(all = false): void {
    if (!this.health().writable) return;
    if (!this.pass) {
      const behind = this.writtenSeq - this.indexed;
      if (behind <= 0 || (!all && behind < this.checkpointRecords && Date.now() - this.passEnded < CHECKPOINT_MAX_MS)) return;
      if (this.moving && !all) return;
      this.pass = { topics: this.runs.entries(), upTo: this.writtenSeq };
    }
    const { topics, upTo } = this.pass;
    const tick = ++this.tick;
    const saved: [string, MemRun[]][] = [];
    let visit = all ? Number.POSITIVE_INFINITY : Math.ceil(this.runs.size / CHECKPOINT_SLICES);
    for (; visit > 0; visit--) {
      const next = topics.next();
      if (next.done) {
        this.pass = undefined;
        this.passEnded = Date.now();
        if (all) {
          // One pass in one turn (at close, after every earlier commit settled): one commit with its runs.
          this.indexed = upTo;
          this.track(this.sys.put('indexed', upTo));
        } else {
          this.moveMarker(upTo);
        }
        break;
      }
      const [topic, list] = next.value;
      let wrote = false;
      for (let i = 0; i < list.length; i++) {
        const r = list[i]!;
        if (r.savedIn !== 0) continue;
        if (r.seq > upTo) break;
        if (r.seq + r.count - 1 > upTo) {
          const n = upTo - r.seq + 1;
          list.splice(i + 1, 0, { first: r.first + n, seq: r.seq + n, count: r.count - n, savedIn: 0 });
          r.count = n;
        }
        this.track(this.index.put([topic, r.first], encodeRun(r.seq, r.count)));
        r.savedIn = tick;
        wrote = true;
      }
      if (wrote) {
        saved.push([topic, list]);
        const w = this.lastWrite!;
        if (!this.unsettled.has(w)) {
          this.unsettled.add(w);
          const generation = this.generation;
          w.then(() => this.unsettled.delete(w), () => {
            this.unsettled.delete(w);
            if (generation === this.generation) this.checkpointFailed = true;
          });
        }
      }
    }
    const w = this.lastWrite;
    if (saved.length === 0 || !w) return;
    // Once the runs are readable from `index`, memory lets go of them.
    w.then(() => {
      this.root.resetReadTxn();
      for (const [topic, list] of saved) {
        while (list.length > 0 && list[0]!.savedIn !== 0 && list[0]!.savedIn <= tick) list.shift();
        if (list.length === 0 && this.runs.get(topic) === list) this.runs.delete(topic);
      }
    }, () => undefined);
  }

  /**
   * Moves `sys.indexed` to `upTo` once every checkpoint commit so far succeeded: a pass's ticks
   * commit separately (and skip runs an earlier pass wrote), and one that failed after the last
   * tick — its runs neither in `index` nor after a moved marker — would be lost at the next load.
   * Not after a reload of the runs (a failure and a recovery in between), nor backwards.
   */
  private moveMarker(upTo: number): void {
    const generation = this.generation;
    this.moving = true;
    void Promise.allSettled([...this.unsettled]).then(() => {
      if (generation !== this.generation) return;
      this.moving = false;
      if (this.released || this.checkpointFailed || !this.health().writable || upTo <= this.indexed) return;
      this.indexed = upTo;
      this.track(this.sys.put('indexed', upTo));
    });
  }

  protected loadMeta(topic: string): TopicMeta | undefined {
    const meta = this.meta.get(topic);
    const last = this.lastOffset(topic);
    if (last === undefined) return meta;
    if (meta && meta.head >= last) return meta;
    // Messages committed after the last meta write (a crash between the two): count them in.
    const m: TopicMeta = meta ? { ...meta } : { head: 0, first: 1, count: 0, bytes: 0, lastTs: 0 };
    if (!meta) m.first = this.firstOffset(topic) ?? 1;
    for (let offset = Math.max(m.head + 1, m.first); offset <= last; offset++) {
      const entry = this.getEntry(topic, offset);
      if (!entry) continue;
      m.count++;
      m.bytes += entry.length;
      m.lastTs = Math.max(m.lastTs, entryTs(entry));
      m.head = offset;
    }
    return m;
  }

  protected saveMeta(state: TopicState): void {
    this.track(this.meta.put(state.topic, this.metaOf(state)));
  }

  protected putEntry(topic: string, offset: number, entry: Uint8Array): void {
    const seq = ++this.seq;
    this.track(this.log.put(seq, encodeRecord(topic, offset, entry)));
    this.addRun(topic, offset, seq);
  }

  /** Retention removes a topic's oldest offset: its record, and its run once the run's last goes. */
  protected removeEntry(topic: string, offset: number): void {
    const found = this.findRun(topic, offset);
    if (!found) return;
    const { run, mem } = found;
    this.track(this.log.remove(run.seq + offset - run.first));
    if (offset !== run.first + run.count - 1) return;
    if (!mem || (run as MemRun).savedIn !== 0) this.track(this.index.remove([topic, run.first]));
    if (mem) {
      mem.splice(mem.indexOf(run as MemRun), 1);
      if (mem.length === 0 && this.runs.get(topic) === mem) this.runs.delete(topic);
    }
  }

  protected getEntry(topic: string, offset: number): Uint8Array | undefined {
    const found = this.findRun(topic, offset);
    const record = found && this.log.get(found.run.seq + offset - found.run.first);
    if (record) return recordEntry(record);
    return this.format1?.get([topic, offset]);
  }

  protected rangeEntries(topic: string, from: number, to: number, limit: number, maxBytes: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let bytes = 0;
    if (this.format1) {
      // Read-only until migrated (see `format1`): a lookup per offset, in either layout.
      for (let offset = from; offset <= to && out.length < limit; offset++) {
        const entry = this.getEntry(topic, offset);
        if (!entry || (out.length > 0 && bytes + entry.length > maxBytes)) break;
        bytes += entry.length;
        out.push(entry);
      }
      return out;
    }
    let offset = from;
    for (const run of this.runsFrom(topic, from)) {
      const end = Math.min(run.first + run.count - 1, to, offset + limit - out.length - 1);
      const first = run.seq + offset - run.first;
      // One cursor walk over the run's records (a lookup for a run of one).
      const records = end > offset
        ? this.log.getRange({ start: first, end: first + end - offset + 1 })
        : [{ key: first, value: this.log.get(first) }];
      for (const { key, value } of records) {
        // Offsets are dense; a hole means retention removed it between our checks: stop there.
        if (!value || key !== run.seq + offset - run.first) return out;
        const entry = recordEntry(value);
        if (out.length > 0 && bytes + entry.length > maxBytes) return out;
        bytes += entry.length;
        out.push(entry);
        offset++;
      }
      if (offset <= end) return out;
      if (offset > to || out.length >= limit) break;
    }
    return out;
  }

  /**
   * The runs of `topic` from the one holding `from`, consecutive, in offset order: one seek, then
   * `index` in key order up to the runs held in memory, then those (a catch-up over runs of one
   * message each must not seek once per message).
   */
  private *runsFrom(topic: string, from: number): Generator<Run> {
    const found = this.findRun(topic, from);
    if (!found) return;
    yield found.run;
    let next = found.run.first + found.run.count;
    const list = this.runs.get(topic);
    const held = list && list.length > 0 ? list[0]!.first : Number.POSITIVE_INFINITY;
    if (!found.mem && next < held) {
      for (const { key, value } of this.index.getRange({ start: [topic, next], end: [topic, Math.min(held, Number.MAX_SAFE_INTEGER)] })) {
        if (key[1] !== next) return;
        const run = decodeRun(key[1], value);
        yield run;
        next += run.count;
      }
    }
    if (!list || next < held) return;
    let i = list.findIndex((r) => r.first === next);
    for (; i >= 0 && i < list.length && list[i]!.first === next; i++) {
      yield list[i]!;
      next += list[i]!.count;
    }
  }

  protected putKey(topic: string, key: string, hit: KeyHit): void {
    const fp = hit.fingerprint;
    const v = Buffer.allocUnsafe(16 + (fp?.length ?? 0));
    v.writeDoubleBE(hit.offset, 0);
    v.writeDoubleBE(hit.ts, 8);
    if (fp) v.set(fp, 16);
    this.track(this.keys.put([topic, key], v));
    this.track(this.expiry.put([hit.ts, topic, key], EMPTY));
  }

  protected getKey(topic: string, key: string): KeyHit | undefined {
    // getBinaryFast returns a buffer reused by the next read: decode it at once.
    const v = this.keys.getBinaryFast([topic, key]);
    if (!v) return undefined;
    const hit: KeyHit = { offset: v.readDoubleBE(0), ts: v.readDoubleBE(8) };
    if (v.length > 16) {
      // A copy of exactly the value's bytes (the fast buffer is a view of a larger shared one).
      hit.fingerprint = new Uint8Array(v.length - 16);
      hit.fingerprint.set(v.subarray(16, v.length));
    }
    return hit;
  }

  protected expireKeys(before: number, limit: number): number {
    let n = 0;
    for (const { key } of this.expiry.getRange({ start: [0], end: [before], limit })) {
      const [ts, topic, k] = key;
      const current = this.getKey(topic, k);
      // The key may have been stored again after it expired: only remove the entry of this time.
      if (current && current.ts === ts) this.track(this.keys.remove([topic, k]));
      this.track(this.expiry.remove(key));
      n++;
    }
    return n;
  }

  protected putGroup(topic: string, group: string, state: Uint8Array): void {
    this.track(this.groups.put([topic, group], state));
  }

  protected getGroup(topic: string, group: string): Uint8Array | undefined {
    const v = this.groups.get([topic, group]);
    return v ? new Uint8Array(v) : undefined;
  }

  protected listGroups(topic: string): string[] {
    return [...this.groups.getKeys({ start: [topic, ''], end: [topic + '\0', ''] })].map((k) => k[1]);
  }

  protected putHeld(id: string, bytes: Uint8Array | undefined): void {
    this.track(bytes ? this.heldDb.put(id, bytes) : this.heldDb.remove(id));
  }

  protected loadHeld(): Iterable<Uint8Array> {
    return this.heldDb.getRange({}).map(({ value }) => new Uint8Array(value));
  }

  protected storedTopics(): Iterable<string> {
    const loaded = this.states;
    return this.meta.getKeys({}).filter((t) => !loaded.has(t));
  }

  /**
   * lmdb-js reuses one read snapshot across reads; one taken while this commit was in flight would
   * not show it, and a catch-up read issued on its notification would come back short.
   */
  protected override committed(): void {
    this.root.resetReadTxn();
  }

  protected commit(): Commit {
    const w = this.lastWrite;
    if (!w) return NO_COMMIT;
    const upTo = this.seq;
    w.then(() => { if (upTo > this.writtenSeq) this.writtenSeq = upTo; }, () => undefined);
    // `flushed` never settles when the commit fails: wait for the commit first.
    const flushed = w.flushed;
    if (this.durability !== 'flush' || !flushed) return { written: w, durable: w };
    const onSync = this.onSync;
    if (onSync && flushed !== this.timedSync) {
      this.timedSync = flushed;
      w.then(() => {
        const since = performance.now();
        return flushed.then(() => onSync((performance.now() - since) / 1000));
      }).catch(() => undefined); // a failed commit is handled where `durable` is awaited
    }
    return { written: w, durable: w.then(() => flushed) };
  }

  protected async release(): Promise<void> {
    if (this.checkpointer) clearInterval(this.checkpointer);
    this.released = true;
    await this.migration?.catch(() => undefined);
    // A checkpoint commit still in flight, or failed (markFailed does nothing once closing): the
    // closing pass would move the marker past its runs. Leave them to the next open's scan then.
    await Promise.allSettled([...this.unsettled]);
    if (this.health().writable && !this.checkpointFailed) {
      // Everything is committed by now (see BaseLog.close): index it all, so the next open scans nothing.
      this.pass = undefined;
      this.checkpointTick(true);
      await this.root.flushed;
    }
    await this.root.close();
  }

  /**
   * A copy of the store as of one commit, into the file `target` (LMDB `mdb_env_copy2` on a worker
   * thread, inside one read transaction of this environment: writes go on meanwhile). This process
   * must make it: another one opening the file can make this one's commits fail (log/backup.ts).
   */
  async copyTo(target: string, compact: boolean): Promise<void> {
    await this.root.backup(target, compact);
  }

  size(): number {
    try {
      return statSync(this.path).size;
    } catch {
      return 0;
    }
  }
}
