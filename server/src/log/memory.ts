/**
 * The memory store: for tests and ephemeral use. Everything lives in this process; the epoch is new
 * on every start, so clients that resume against a restarted memory store are told they lost data.
 */
import { BaseLog, type Commit, type KeyHit, type TopicMeta } from './base.js';
import type { StoreOptions } from './log.js';
import { randomId } from '../util/id.js';

const DONE: Commit = { written: Promise.resolve(), durable: Promise.resolve() };

interface MemTopic {
  /** Offset of entries[0]. */
  base: number;
  entries: (Uint8Array | undefined)[];
}

export class MemoryLog extends BaseLog {
  readonly kind = 'memory';
  private readonly logs = new Map<string, MemTopic>();
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

  protected putEntry(topic: string, offset: number, entry: Uint8Array): void {
    let log = this.logs.get(topic);
    if (!log) this.logs.set(topic, (log = { base: offset, entries: [] }));
    log.entries[offset - log.base] = entry;
    this.bytes += entry.length;
  }

  protected removeEntry(topic: string, offset: number): void {
    const log = this.logs.get(topic);
    if (!log || offset < log.base) return;
    const i = offset - log.base;
    const entry = log.entries[i];
    if (entry) this.bytes -= entry.length;
    log.entries[i] = undefined;
    // Retention removes oldest first, so entries[0..i] are all holes now. Compact the front in
    // chunks so a long-lived topic neither leaks nor pays a splice per removal.
    const holes = i + 1;
    if (holes >= 1024 || holes === log.entries.length) {
      log.entries.splice(0, holes);
      log.base += holes;
    }
  }

  protected getEntry(topic: string, offset: number): Uint8Array | undefined {
    const log = this.logs.get(topic);
    return log && offset >= log.base ? log.entries[offset - log.base] : undefined;
  }

  protected rangeEntries(topic: string, from: number, to: number, limit: number, maxBytes: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    const log = this.logs.get(topic);
    if (!log) return out;
    let bytes = 0;
    for (let o = Math.max(from, log.base); o <= to && out.length < limit; o++) {
      const e = log.entries[o - log.base];
      if (!e) break;
      if (out.length > 0 && bytes + e.length > maxBytes) break;
      bytes += e.length;
      out.push(e);
    }
    return out;
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
