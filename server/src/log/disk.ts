/**
 * The embedded durable store, on LMDB (the `lmdb` package).
 *
 * Why LMDB: a copy-on-write B-tree in one memory-mapped file, crash-safe by construction (no
 * recovery step, no torn writes), with ordered keys for range reads by offset. lmdb-js batches every
 * write of an event-loop turn into one transaction on a worker thread and syncs it, which is the
 * group commit we want, and it reads synchronously from the map with no copies of the tree.
 *
 * Layout (one environment, four named databases, written in the same transactions):
 * - `msgs`   [topic, offset] → entry bytes (MessagePack `[data, ts, headers?]`)
 * - `meta`   topic → TopicMeta (head, first, count, bytes, lastTs, epoch override)
 * - `keys`   [topic, key] → offset, ts (float64 BE, 16 bytes), then the message's fingerprint
 *                                    (up to 32 bytes; absent in keys written before fingerprints)
 * - `expiry` [ts, topic, key] → (empty)                          the same keys in time order
 * - `sys`    'epoch' → the store's epoch, made once when the data directory is created
 * - `groups` [topic, group] → a consumer group's state
 * - `held`   id → a held (scheduled or prepared) message's record (see held.ts)
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
 * free starts the store read-only in the same state, so a restart on a full disk serves reads.
 */
import { mkdirSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { entryTs } from '@sluice/client/protocol';
import { BaseLog, type Commit, type KeyHit, type TopicMeta, type TopicState } from './base.js';
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

const NO_COMMIT: Commit = { written: Promise.resolve(), durable: Promise.resolve() };

export class DiskLog extends BaseLog {
  readonly kind = 'disk';
  private readonly root: RootDatabase;
  private readonly msgs: Database<Uint8Array, [string, number]>;
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
  private lastWrite: CommitPromise | undefined;

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
    let epoch = sys.get('epoch') as string | undefined;
    if (!epoch) {
      epoch = randomId(16);
      try {
        sys.putSync('epoch', epoch);
      } catch (err) {
        throw new Error(`cannot initialise the data directory ${options.dir} (is the disk full?): ${(err as Error).message}`);
      }
    }
    const log = new DiskLog(options, root, sys, epoch, path);
    const full = log.cannotWrite();
    if (full) {
      log.markFailed(full);
      logger.error(`the disk of ${options.dir} is full: starting read-only (reads are served; publishes get insufficient-storage until space returns)`);
    }
    return log;
  }

  private constructor(options: DiskLogOptions, root: RootDatabase, sys: Database<string | number, string>, epoch: string, path: string) {
    super(options, epoch);
    this.root = root;
    this.sys = sys;
    this.path = path;
    this.dir = options.dir;
    this.durability = options.durability ?? 'flush';
    this.onSync = options.onSync;
    this.minFree = options.minFreeBytes ?? MIN_FREE_BYTES;
    this.msgs = root.openDB('msgs', { encoding: 'binary' });
    this.meta = root.openDB('meta', {});
    this.keys = root.openDB('keys', { encoding: 'binary' });
    this.expiry = root.openDB('expiry', { encoding: 'binary' });
    this.groups = root.openDB('groups', { encoding: 'binary' });
    this.heldDb = root.openDB('held', { encoding: 'binary' });
    this.startSweeper();
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
    try {
      const s = statfsSync(this.dir);
      return s.bavail * s.bsize;
    } catch {
      return Number.POSITIVE_INFINITY;
    }
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
    const w = this.sys.put('probe', Date.now()) as CommitPromise;
    try {
      await w;
      if (this.durability === 'flush' && w.flushed) await w.flushed;
      return true;
    } catch (err) {
      swallowCause(err);
      return false;
    }
  }

  protected loadMeta(topic: string): TopicMeta | undefined {
    const meta = this.meta.get(topic);
    let last: number | undefined;
    for (const key of this.msgs.getKeys({ start: [topic, Number.MAX_SAFE_INTEGER], end: [topic, 0], reverse: true, limit: 1 })) last = key[1];
    if (last === undefined) return meta;
    if (meta && meta.head >= last) return meta;
    // Messages committed after the last meta write (a crash between the two): count them in.
    const m: TopicMeta = meta ? { ...meta } : { head: 0, first: 1, count: 0, bytes: 0, lastTs: 0 };
    if (!meta) for (const key of this.msgs.getKeys({ start: [topic, 0], end: [topic, last + 1], limit: 1 })) m.first = key[1];
    for (const { key, value } of this.msgs.getRange({ start: [topic, Math.max(m.head + 1, m.first)], end: [topic, last + 1] })) {
      m.count++;
      m.bytes += value.length;
      m.lastTs = Math.max(m.lastTs, entryTs(value));
      m.head = key[1];
    }
    return m;
  }

  protected saveMeta(state: TopicState): void {
    this.track(this.meta.put(state.topic, this.metaOf(state)));
  }

  protected putEntry(topic: string, offset: number, entry: Uint8Array): void {
    this.track(this.msgs.put([topic, offset], entry));
  }

  protected removeEntry(topic: string, offset: number): void {
    this.track(this.msgs.remove([topic, offset]));
  }

  protected getEntry(topic: string, offset: number): Uint8Array | undefined {
    return this.msgs.get([topic, offset]);
  }

  protected rangeEntries(topic: string, from: number, to: number, limit: number, maxBytes: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let bytes = 0;
    let expected = from;
    for (const { key, value } of this.msgs.getRange({ start: [topic, from], end: [topic, to + 1], limit })) {
      // Offsets are dense; a hole means retention removed it between our checks: stop there.
      if (key[1] !== expected) break;
      if (out.length > 0 && bytes + value.length > maxBytes) break;
      bytes += value.length;
      out.push(value);
      expected++;
    }
    return out;
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
    if (this.health().writable) await this.root.flushed;
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
