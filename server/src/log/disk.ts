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
 * - `keys`   [topic, key] → [offset, ts]            idempotency keys
 * - `expiry` [ts, topic, key] → offset               the same keys in time order, for expiry
 * - `sys`    'epoch' → the store's epoch, made once when the data directory is created
 *
 * Durability: `flush` (default) acknowledges after the commit is synced to the device; `commit`
 * acknowledges once the commit is in the OS (survives a process crash, not a power loss).
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { BaseLog, type KeyHit, type TopicMeta, type TopicState } from './base.js';
import type { StoreOptions } from './log.js';
import { randomId } from '../util/id.js';

export type Durability = 'flush' | 'commit';

export interface DiskLogOptions extends StoreOptions {
  dir: string;
  durability?: Durability;
}

type CommitPromise = Promise<boolean> & { flushed?: Promise<boolean> };

export class DiskLog extends BaseLog {
  readonly kind = 'disk';
  private readonly root: RootDatabase;
  private readonly msgs: Database<Uint8Array, [string, number]>;
  private readonly meta: Database<TopicMeta, string>;
  private readonly keys: Database<[number, number], [string, string]>;
  private readonly expiry: Database<number, [number, string, string]>;
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
    this.keys = root.openDB('keys', {});
    this.expiry = root.openDB('expiry', {});
    this.startSweeper();
  }

  protected loadMeta(topic: string): TopicMeta | undefined {
    return this.meta.get(topic);
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
    this.keys.put([topic, key], [hit.offset, hit.ts]);
    this.lastWrite = this.expiry.put([hit.ts, topic, key], hit.offset) as CommitPromise;
  }

  protected getKey(topic: string, key: string): KeyHit | undefined {
    const v = this.keys.get([topic, key]);
    return v ? { offset: v[0], ts: v[1] } : undefined;
  }

  protected expireKeys(before: number, limit: number): number {
    let n = 0;
    for (const { key } of this.expiry.getRange({ start: [0], end: [before], limit })) {
      const [ts, topic, k] = key;
      const current = this.keys.get([topic, k]);
      // The key may have been stored again after it expired: only remove the entry of this time.
      if (current && current[1] === ts) this.keys.remove([topic, k]);
      this.lastWrite = this.expiry.remove(key) as CommitPromise;
      n++;
    }
    return n;
  }

  protected storedTopics(): Iterable<string> {
    const loaded = this.states;
    return this.meta.getKeys({}).filter((t) => !loaded.has(t));
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
