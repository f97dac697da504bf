/**
 * The disk store's on-disk format (version 2, append-ordered): the record codecs, the version
 * check, and the migration from version 1. See DiskLog for how the databases are used.
 *
 * - `log`   seq → record: every message, keyed by a global sequence in commit order, so a commit
 *           appends at the tree's right edge whatever topics it touches (pages per commit, not per
 *           message). A record is `[u16 topic length][topic UTF-8][f64 offset][entry bytes]`.
 * - `index` [topic, first offset] → `[f64 seq][f64 count]`: a run of `count` consecutive offsets
 *           of one topic stored at consecutive sequences from `seq`. Written off the commit path
 *           (a checkpoint pass, see DiskLog); runs not yet in it are held in memory and found again at
 *           open by scanning `log` after `sys.indexed`.
 * - `sys`   'format' → 2; 'indexed' → every record with a sequence ≤ it is in `index` (or trimmed).
 *
 * Version 1 (no 'format' in `sys`) kept messages in `msgs` [topic, offset] → entry: it is
 * migrated in chunks of whole transactions that move messages from `msgs` into `log` and `index`,
 * so a migration cut short by a crash continues at the next open. At open for up to
 * MIGRATE_OPEN_MS (DiskLog); what is left then, or all of it on a disk without room, is moved
 * while the gateway runs read-only (reads find each message in either layout; see DiskLog).
 *
 * A build older than version 2 does not read `sys.format`: it would find no messages (`msgs` is
 * empty), keep the topics' metas, serve reads of nothing and store new messages where this version
 * never looks (seen with main's build: its append was acknowledged, then missing). So the first
 * write of version 2 (a new store's stamp, or the migration's first chunk) moves the epoch to
 * `sys['store-epoch']` and leaves in `sys.epoch`, which every older build reads at open, bytes its
 * MessagePack decoder rejects with GUARD_TEXT in its message: the older build refuses to start.
 */
import type { Database, RootDatabase } from 'lmdb';

export const FORMAT = 2;

/** Where format 2 keeps the store's epoch (`sys.epoch` holds the guard, see the header). */
const EPOCH_KEY = 'store-epoch';
/** What an older build prints when it refuses a format 2 store (its decoder shows ≤ 100 characters). */
export const GUARD_TEXT = `Sluice store format ${FORMAT}: this build reads format 1 only; run a newer Sluice`;
/** A MessagePack string followed by a byte too many: "Data read, but end of buffer not reached". */
const GUARD = (() => {
  const text = Buffer.from(GUARD_TEXT);
  return Buffer.concat([Buffer.from([0xd9, text.length]), text, Buffer.from([0xc0])]);
})();

/** The store's epoch (undefined in a new directory). */
export function readEpoch(sys: StoreDbs['sys']): string | undefined {
  const epoch = sys.get(EPOCH_KEY) ?? sys.get('epoch');
  return epoch === undefined ? undefined : String(epoch);
}

/** Replaces the epoch (a restored backup's); in whichever key the store keeps it. */
export function writeEpoch(sys: StoreDbs['sys'], epoch: string): void {
  void sys.put(sys.get(EPOCH_KEY) === undefined ? 'epoch' : EPOCH_KEY, epoch);
}

/**
 * Inside a write transaction, before anything of format 2 is written: the epoch moves to
 * EPOCH_KEY and `sys.epoch` gets the guard that older builds refuse (see the header). Once only.
 */
function guardFormat({ root, sys }: Pick<StoreDbs, 'root' | 'sys'>): void {
  if (sys.get(EPOCH_KEY) !== undefined) return;
  const epoch = sys.get('epoch');
  if (epoch === undefined) return; // DiskLog.open writes it before the stamp
  void sys.put(EPOCH_KEY, epoch);
  void root.openDB<Buffer, string>('sys', { encoding: 'binary' }).put('epoch', GUARD);
}

/** Messages moved per migration transaction at open (synchronous). */
const MIGRATE_CHUNK = 10_000;
/** Messages moved per transaction while the gateway runs: the event loop waits for one chunk's puts. */
const MIGRATE_CHUNK_ASYNC = 2_000;

export interface Run {
  /** First offset of the run (its key in `index`). */
  first: number;
  /** Sequence of the first offset's record in `log`. */
  seq: number;
  count: number;
}

export function encodeRecord(topic: string, offset: number, entry: Uint8Array): Buffer {
  const t = Buffer.byteLength(topic);
  const b = Buffer.allocUnsafe(2 + t + 8 + entry.length);
  b.writeUInt16BE(t, 0);
  b.write(topic, 2, 'utf8');
  b.writeDoubleBE(offset, 2 + t);
  b.set(entry, 10 + t);
  return b;
}

/** The topic and offset of a record. */
export function recordHead(record: Buffer): { topic: string; offset: number } {
  const t = record.readUInt16BE(0);
  return { topic: record.toString('utf8', 2, 2 + t), offset: record.readDoubleBE(2 + t) };
}

/** The offset of a record (cheaper than `recordHead` when the topic is known). */
export function recordOffset(record: Buffer): number {
  return record.readDoubleBE(2 + record.readUInt16BE(0));
}

/** The entry bytes of a record (a view of it). */
export function recordEntry(record: Buffer): Uint8Array {
  return record.subarray(10 + record.readUInt16BE(0));
}

export function encodeRun(seq: number, count: number): Buffer {
  const b = Buffer.allocUnsafe(16);
  b.writeDoubleBE(seq, 0);
  b.writeDoubleBE(count, 8);
  return b;
}

export function decodeRun(first: number, value: Buffer): Run {
  return { first, seq: value.readDoubleBE(0), count: value.readDoubleBE(8) };
}

/** The databases of a store. */
export interface StoreDbs {
  root: RootDatabase;
  sys: Database<string | number, string>;
  log: Database<Buffer, number>;
  index: Database<Buffer, [string, number]>;
}

/** The last sequence in `log` (0 when empty). */
export function lastSeq(log: Database<Buffer, number>): number {
  for (const key of log.getKeys({ reverse: true, limit: 1 })) return key;
  return 0;
}

/**
 * What a data directory needs before this version can use it: nothing (`current`), its format
 * stamped (`fresh`, a new one), or the migration from version 1 (`format1`). A newer one is
 * refused (a downgrade would misread it).
 */
export function formatNeeds(sys: StoreDbs['sys'], dir: string, fresh: boolean): 'current' | 'fresh' | 'format1' {
  const format = sys.get('format');
  if (typeof format === 'number' && format > FORMAT) {
    throw new Error(`the data directory ${dir} has store format ${format}; this version reads format ${FORMAT} and older (upgrade Sluice)`);
  }
  if (format === FORMAT) return 'current';
  return fresh ? 'fresh' : 'format1';
}

/** Stamps a new data directory with FORMAT. */
export function stampFormat({ root, sys }: StoreDbs): void {
  root.transactionSync(() => { guardFormat({ root, sys }); void sys.put('format', FORMAT); void sys.put('indexed', 0); });
}

/**
 * Migrates a version 1 data directory (see `moveChunk`) at open, synchronously, for at most
 * `budgetMs`: true once finished (the format stamped), false when the rest is left to
 * `migrateFormat1Async` (a big store must not keep the gateway from listening for minutes: the
 * migration moves about 100,000 messages a second). Throws a message that says what to do. A
 * migration cut short (a crash, a full disk) leaves whole chunks moved: it goes on at the next try.
 */
export function migrateFormat1(dbs: StoreDbs, dir: string, chunk = MIGRATE_CHUNK, budgetMs = Number.POSITIVE_INFINITY): boolean {
  const until = performance.now() + budgetMs;
  try {
    for (;;) {
      if (dbs.root.transactionSync(() => moveChunk(dbs, chunk)) === 0) break;
      if (performance.now() >= until) return false;
    }
    dbs.root.transactionSync(() => stamp(dbs));
    return true;
  } catch (err) {
    throw migrationError(err, dir);
  }
}

/**
 * The same while the gateway runs (read-only until it ends): a chunk per asynchronous transaction,
 * committed (and synced) off the main thread, so the event loop is held for one chunk's puts at a
 * time. `stop` ends it between chunks (the store is closing); resolves true once finished.
 */
export async function migrateFormat1Async(dbs: StoreDbs, dir: string, chunk = MIGRATE_CHUNK_ASYNC, stop: () => boolean = () => false): Promise<boolean> {
  try {
    for (;;) {
      if (stop()) return false;
      if ((await dbs.root.transaction(() => moveChunk(dbs, chunk))) === 0) break;
    }
    await dbs.root.transaction(() => stamp(dbs));
    return true;
  } catch (err) {
    throw migrationError(err, dir);
  }
}

function migrationError(err: unknown, dir: string): Error {
  return Object.assign(new Error(`cannot migrate the data directory ${dir} to store format ${FORMAT} (is the disk full? the migration goes on where it stopped at the next start): ${(err as Error).message}`), { cause: err });
}

/** The messages format 1 keeps, [topic, offset] → entry (left empty by the migration). */
export function format1Msgs(root: RootDatabase): Database<Uint8Array, [string, number]> {
  return root.openDB<Uint8Array, [string, number]>('msgs', { encoding: 'binary' });
}

/** How many messages format 1 still keeps (LMDB's own count: no scan). */
export function format1Count(root: RootDatabase): number {
  return (format1Msgs(root).getStats() as { entryCount: number }).entryCount;
}

/**
 * Inside a write transaction (whose reads see its own writes): moves the first `chunkSize`
 * messages left in format 1's `msgs` into `log` and `index` and moves `sys.indexed` past them, so
 * every chunk is whole. Returns how many moved (0: none left).
 */
function moveChunk({ root, sys, log, index }: StoreDbs, chunkSize: number): number {
  guardFormat({ root, sys });
  const msgs = format1Msgs(root);
  const chunk = [...msgs.getRange({ limit: chunkSize })];
  if (chunk.length === 0) return 0;
  let seq = lastSeq(log);
  let run: (Run & { topic: string }) | undefined;
  const flush = () => { if (run) void index.put([run.topic, run.first], encodeRun(run.seq, run.count)); };
  for (const { key, value } of chunk) {
    const [topic, offset] = key;
    seq++;
    void log.put(seq, encodeRecord(topic, offset, value));
    void msgs.remove(key);
    if (run && run.topic === topic && run.first + run.count === offset) run.count++;
    else {
      flush();
      run = { topic, first: offset, seq, count: 1 };
    }
  }
  flush();
  void sys.put('indexed', seq);
  return chunk.length;
}

/** The migration's last write: the format, and the marker at the last record moved. */
function stamp({ root, sys, log }: StoreDbs): void {
  guardFormat({ root, sys });
  void sys.put('format', FORMAT);
  void sys.put('indexed', lastSeq(log));
}
