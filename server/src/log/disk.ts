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
 * - `keys`   [topic, key] → 16 bytes: offset, ts (float64 BE)   idempotency keys
 * - `expiry` [ts, topic, key] → (empty)                          the same keys in time order
 * - `sys`    'epoch' → the store's epoch, made once when the data directory is created
 *
 * Messages and their keys are written in the commit of their append; a topic's meta once per
 * batch, which may land a commit later. The messages are the truth: on load, a head behind the
 * last stored message is corrected (and count/bytes with it), so a crash between the two commits
 * cannot make offsets be reused.
 *
 * Durability: `flush` (default) acknowledges after the commit is synced to the device; `commit`
 * acknowledges once the commit is in the OS (survives a process crash, not a power loss).
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { entryTs } from '@sluice/client/protocol';
import { BaseLog, type KeyHit, type TopicMeta, type TopicState } from './base.js';
import type { StoreOptions } from './log.js';
import { randomId } from '../util/id.js';

export type Durability = 'flush' | 'commit';

export interface DiskLogOptions extends StoreOptions {
  dir: string;
  durability?: Durability;
}

type CommitPromise = Promise<boolean> & { flushed?: Promise<boolean> };

const EMPTY = new Uint8Array(0);

export class DiskLog extends BaseLog {
  readonly kind = 'disk';
  private readonly root: RootDatabase;
  private readonly msgs: Database<Uint8Array, [string, number]>;
  private readonly meta: Database<TopicMeta, string>;
  private readonly keys: Database<Uint8Array, [string, string]>;
  private readonly expiry: Database<Uint8Array, [number, string, string]>;
  private readonly path: string;
  private readonly durability: Durability;
  private lastWrite: CommitPromise | undefined;

  static open(options: DiskLogOptions): DiskLog {
    mkdirSync(options.dir, { recursive: true });
    const path = join(options.dir, 'sluice.mdb');
    const root = open({ path, compression: false, separateFlushed: true, maxDbs: 8 });
    const sys = root.openDB<string, string>('sys', {});
    let epoch = sys.get('epoch');
    if (!epoch) {
      epoch = randomId(16);
      sys.putSync('epoch', epoch);
    }
    return new DiskLog(options, root, epoch, path);
  }

  private constructor(options: DiskLogOptions, root: RootDatabase, epoch: string, path: string) {
    super(options, epoch);
    this.root = root;
    this.path = path;
    this.durability = options.durability ?? 'flush';
    this.msgs = root.openDB('msgs', { encoding: 'binary' });
    this.meta = root.openDB('meta', {});
    this.keys = root.openDB('keys', { encoding: 'binary' });
    this.expiry = root.openDB('expiry', { encoding: 'binary' });
    this.startSweeper();
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
    this.lastWrite = this.meta.put(state.topic, this.metaOf(state)) as CommitPromise;
  }

  protected putEntry(topic: string, offset: number, entry: Uint8Array): void {
    this.lastWrite = this.msgs.put([topic, offset], entry) as CommitPromise;
  }

  protected removeEntry(topic: string, offset: number): void {
    this.lastWrite = this.msgs.remove([topic, offset]) as CommitPromise;
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
    const v = Buffer.allocUnsafe(16);
    v.writeDoubleBE(hit.offset, 0);
    v.writeDoubleBE(hit.ts, 8);
    this.keys.put([topic, key], v);
    this.lastWrite = this.expiry.put([hit.ts, topic, key], EMPTY) as CommitPromise;
  }

  protected getKey(topic: string, key: string): KeyHit | undefined {
    // getBinaryFast returns a buffer reused by the next read: decode it at once.
    const v = this.keys.getBinaryFast([topic, key]);
    return v ? { offset: v.readDoubleBE(0), ts: v.readDoubleBE(8) } : undefined;
  }

  protected expireKeys(before: number, limit: number): number {
    let n = 0;
    for (const { key } of this.expiry.getRange({ start: [0], end: [before], limit })) {
      const [ts, topic, k] = key;
      const current = this.getKey(topic, k);
      // The key may have been stored again after it expired: only remove the entry of this time.
      if (current && current.ts === ts) this.keys.remove([topic, k]);
      this.lastWrite = this.expiry.remove(key) as CommitPromise;
      n++;
    }
    return n;
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

  protected async commit(): Promise<void> {
    const w = this.lastWrite;
    if (!w) return;
    await (this.durability === 'flush' && w.flushed ? w.flushed : w);
  }

  protected async release(): Promise<void> {
    await this.root.flushed;
    await this.root.close();
  }

  size(): number {
    try {
      return statSync(this.path).size;
    } catch {
      return 0;
    }
  }
}
