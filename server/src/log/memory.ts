/**
 * The memory store: for tests and ephemeral use. Everything lives in this process; the epoch is new
 * on every start, so clients that resume against a restarted memory store are told they lost data.
 */
import { entrySize, writeEntry } from '@sluice/client/protocol';
import { BaseLog, type Commit, type KeyHit, type TopicMeta } from './base.js';
import type { AppendInput, StoreOptions } from './log.js';
import { randomId } from '../util/id.js';
import { TopicBytes } from './topic-bytes.js';

const DONE: Commit = { written: Promise.resolve(), durable: Promise.resolve() };

export class MemoryLog extends BaseLog {
  readonly kind = 'memory';
  /** Each topic's entries, copied into chunks (see TopicBytes: no object per message survives). */
  private readonly logs = new Map<string, TopicBytes>();
  private readonly groups = new Map<string, Map<string, Uint8Array>>();
  /** Idempotency keys by `topic \0 key`, in insertion order (= time order). */
  private readonly keys = new Map<string, KeyHit>();
  private bytes = 0;

  constructor(options: StoreOptions) {
    super(options, `mem-${randomId(12)}`);
    this.startSweeper();
  }

  // A memory store never drops a topic's state, so there is no meta to persist or load.
  protected loadMeta(): TopicMeta | undefined {
    return undefined;
  }

  protected saveMeta(): void {}

  /**
   * Encodes the message straight into the topic's chunks (see TopicBytes): no array, ArrayBuffer or
   * malloc of its own per message. The entry becomes readable only once BaseLog made it durable
   * (reads are bounded by the durable head), which in this store is the same loop turn.
   */
  protected override encode(topic: string, offset: number, m: AppendInput, ts: number): Uint8Array {
    const log = this.topicBytes(topic, offset);
    const view = log.reserve(entrySize(m.data, ts, m.headers, m.meta));
    writeEntry(view, m.data, ts, m.headers, m.meta);
    this.bytes += view.length;
    return view;
  }

  /**
   * `entry` is the array `encode` returned (BaseLog passes nothing else), already in the topic's
   * chunks: nothing to write, no lookup on the hot path. Returned for the listeners and the hub
   * cache: valid and unchanged for as long as anyone holds it (see TopicBytes).
   */
  protected putEntry(_topic: string, _offset: number, entry: Uint8Array): Uint8Array {
    return entry;
  }

  /** The topic's chunks, which take `offset` next (BaseLog assigns offsets densely, in order). */
  private topicBytes(topic: string, offset: number): TopicBytes {
    let log = this.logs.get(topic);
    if (!log) this.logs.set(topic, (log = new TopicBytes(offset)));
    if (offset !== log.next) throw new Error(`memory store: offset ${offset} of ${topic} encoded after ${log.next - 1}`);
    return log;
  }

  /** Retention removes oldest first: removing `offset` removes every entry before it too. */
  protected removeEntry(topic: string, offset: number): void {
    const log = this.logs.get(topic);
    if (!log) return;
    while (log.first <= offset && log.first < log.next) this.bytes -= log.dropFirst();
  }

  protected getEntry(topic: string, offset: number): Uint8Array | undefined {
    return this.logs.get(topic)?.get(offset);
  }

  protected rangeEntries(topic: string, from: number, to: number, limit: number, maxBytes: number): Uint8Array[] {
    return this.logs.get(topic)?.range(from, to, limit, maxBytes) ?? [];
  }

  protected putKey(topic: string, key: string, hit: KeyHit): void {
    const k = `${topic}\0${key}`;
    this.keys.delete(k);
    this.keys.set(k, hit);
  }

  protected getKey(topic: string, key: string): KeyHit | undefined {
    return this.keys.get(`${topic}\0${key}`);
  }

  protected expireKeys(before: number, limit: number): number {
    let n = 0;
    for (const [k, hit] of this.keys) {
      if (hit.ts >= before || n >= limit) break;
      this.keys.delete(k);
      n++;
    }
    return n;
  }

  protected putGroup(topic: string, group: string, state: Uint8Array): void {
    let g = this.groups.get(topic);
    if (!g) this.groups.set(topic, (g = new Map()));
    g.set(group, state);
  }

  protected getGroup(topic: string, group: string): Uint8Array | undefined {
    return this.groups.get(topic)?.get(group);
  }

  protected listGroups(topic: string): string[] {
    return [...(this.groups.get(topic)?.keys() ?? [])];
  }

  // Held records live in LocalHeld's own maps: nothing more to keep.
  protected putHeld(): void {}

  protected loadHeld(): Iterable<Uint8Array> {
    return [];
  }

  protected storedTopics(): Iterable<string> {
    return [];
  }

  protected commit(): Commit {
    return DONE;
  }

  protected async release(): Promise<void> {
    this.logs.clear();
    this.keys.clear();
  }

  size(): number {
    return this.bytes;
  }
}
