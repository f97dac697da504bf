/**
 * Held messages: published, stored durably, and not yet in their topic's log. One mechanism serves
 * two features:
 * - a **scheduled** message (delayed publish) is appended when it falls due, unless cancelled;
 * - a **prepared** message (a half message of a transaction) is appended when its producer commits,
 *   dropped when it aborts, and checked back with the producer when left unresolved.
 *
 * A record moves through these states (the only transitions; `update` checks the one it leaves):
 *
 *   scheduled ──claim (due)──▶ appending ──append──▶ appended
 *       └──cancel──▶ cancelled
 *   prepared ──commit / check-back "commit"──▶ appending ──append──▶ appended
 *       └──abort / check-back "abort" / default after the last unknown──▶ aborted
 *
 * `appended`, `cancelled` and `aborted` are final: the record stays as a tombstone (without its
 * message) for the dedup window, so a repeated commit, abort or cancel answers as the first did.
 *
 * Contract for every HeldStore (checked by test/log.contract.ts):
 * - Durability: `hold` and `update` resolve once the record is durable at the store's level; a
 *   resolved one survives kill -9 (durable stores).
 * - Idempotency: a `hold` whose `key` is already held for the same topic (within the dedup window)
 *   stores nothing and resolves with the first record and `duplicate: true`.
 * - Atomicity: `update` replaces the record only when its stored state is one of `from`.
 * - Order: writes become durable in the order they were made, so `update(…, {wait: false})`, which
 *   resolves once the change is applied (every later call sees it) without waiting for its
 *   durability, is durable as soon as any later write is (the append that follows it, for one).
 * - The due index: every record has `next`, the time the scheduler looks at it next. `claim(now)`
 *   takes records with `next <= now`, lowest `next` first, and moves each one's `next` to
 *   `now + leaseMs` in the same atomic step, so of several gateways sharing a store exactly one
 *   takes a record per lease; a `scheduled` record is moved to `appending` by the claim (a cancel
 *   after it is refused). A claim need not be durable: after a crash the record is claimed again.
 * - Appending is idempotent: the scheduler and commit append a held message with the idempotency
 *   key `heldKey(id)`, so a record appended twice (a crash before its `appended` update, a lease
 *   that ran out) is stored once. A record is appended only after it reached `appending`.
 */
import { decodeValue, encodeValue } from '@sluice/client/protocol';
import type { AppendInput } from './log.js';
import { MinHeap } from '../hub/heap.js';

export type HeldKind = 'scheduled' | 'prepared';
export type HeldState = 'scheduled' | 'prepared' | 'appending' | 'appended' | 'cancelled' | 'aborted';

export const FINAL_STATES: readonly HeldState[] = ['appended', 'cancelled', 'aborted'];

export interface HeldRecord {
  /** Schedule id or transaction id (the same name space). */
  id: string;
  topic: string;
  kind: HeldKind;
  state: HeldState;
  /** Scheduled: when it is due (ms since the epoch). Prepared: when it was prepared. */
  at: number;
  /** When the scheduler looks at it next: the due index (see the contract). */
  next: number;
  /** The message as the publish service would append it; dropped once the record is final. */
  message?: AppendInput;
  /** The idempotency key of the publish that held it. */
  key?: string;
  /** With a key: the fingerprint of its message (publish.ts `fingerprintOf`); kept after it is final, for the dedup window. */
  fingerprint?: Uint8Array;
  /** Prepared: the check-back URL given at prepare time. */
  checkUrl?: string;
  /** Prepared: check-backs made so far. */
  attempts: number;
  /** Once appended: where. */
  offset?: number;
  epoch?: string;
  /** Who published it (client id, transport), for the trace of a traced message. */
  by?: { client: string; transport?: string };
}

export interface HeldPage {
  /** Records of the topic not final yet (scheduled, prepared, appending). */
  count: number;
  /** The earliest `at` of its scheduled records, if any. */
  nextDue?: number;
  /** Up to `limit` of them, by `at` then id, after the cursor. */
  items: HeldRecord[];
  /** Give it as `after` for the next page; absent on the last. */
  cursor?: string;
}

export interface HeldStore {
  hold(record: HeldRecord): Promise<{ record: HeldRecord; duplicate: boolean }>;
  get(id: string): Promise<HeldRecord | undefined>;
  /** Writes `record` if the stored one's state is in `from`; resolves with the stored record after. */
  update(record: HeldRecord, from: readonly HeldState[], opts?: { wait?: boolean }): Promise<{ ok: boolean; record: HeldRecord | undefined }>;
  claim(now: number, limit: number, leaseMs: number): Promise<HeldRecord[]>;
  /** Forgets a record (a tombstone past its time). */
  remove(id: string): Promise<void>;
  /** A topic's records of one kind that are not final, by `at` then id. */
  list(topic: string, opts: { kind: HeldKind; limit: number; after?: string }): Promise<HeldPage>;
  /** Records the store holds, by state (the `sluice_held_messages` gauge): cheap, synchronous, maybe a little old. */
  counts(): Record<string, number>;
  /**
   * Brings `counts` up to date, for a store that cannot count synchronously (Redis). The scheduler
   * calls it every second; stores that always know their counts leave it out.
   */
  refreshCounts?(): Promise<void>;
}

/** The idempotency key a held message is appended with (≤ 128 bytes: ids are short). */
export function heldKey(id: string): string {
  return `$held:${id}`;
}

export function isFinal(state: HeldState): boolean {
  return FINAL_STATES.includes(state);
}

// ---- encoding ---------------------------------------------------------------------------------

type Wire = [string, string, HeldKind, HeldState, number, number, number, (string | null)?, (string | null)?,
  (Uint8Array | null)?, (string | null)?, (Uint8Array | null)?, (Uint8Array | null)?, (number | null)?, (string | null)?,
  (string | null)?, (string | null)?, (Uint8Array | null)?];

export function encodeHeld(r: HeldRecord): Uint8Array {
  const m = r.message;
  const w: Wire = [r.id, r.topic, r.kind, r.state, r.at, r.next, r.attempts, r.key ?? null, r.checkUrl ?? null,
    m?.data ?? null, m?.key ?? null, m?.headers ?? null, m?.meta ?? null, r.offset ?? null, r.epoch ?? null,
    r.by?.client ?? null, r.by?.transport ?? null, r.fingerprint ?? null];
  return encodeValue(w);
}

export function decodeHeld(bytes: Uint8Array): HeldRecord {
  const w = decodeValue(bytes) as Wire;
  const r: HeldRecord = { id: w[0], topic: w[1], kind: w[2], state: w[3], at: w[4], next: w[5], attempts: w[6] };
  if (w[7] != null) r.key = w[7];
  if (w[8] != null) r.checkUrl = w[8];
  if (w[9] != null) {
    const m: AppendInput = { data: w[9] };
    if (w[10] != null) m.key = w[10];
    if (w[11] != null) m.headers = w[11];
    if (w[12] != null) m.meta = w[12];
    r.message = m;
  }
  if (w[13] != null) r.offset = w[13];
  if (w[14] != null) r.epoch = w[14];
  if (w[15] != null) r.by = w[16] != null ? { client: w[15], transport: w[16] } : { client: w[15] };
  // Absent in records held before fingerprints: they match any message, as the log's keys do.
  if (w[17] != null) r.fingerprint = w[17];
  return r;
}

export function pageCursor(r: HeldRecord): string {
  return `${r.at}:${r.id}`;
}

export function parseCursor(s: string | undefined): { at: number; id: string } | undefined {
  if (!s) return undefined;
  const i = s.indexOf(':');
  const at = Number(s.slice(0, i));
  return i > 0 && Number.isFinite(at) ? { at, id: s.slice(i + 1) } : undefined;
}

/** Whether a record sorts after a cursor (by `at`, then id). */
export function isAfter(r: HeldRecord, c: { at: number; id: string }): boolean {
  return r.at > c.at || (r.at === c.at && r.id > c.id);
}

// ---- a store in this process ---------------------------------------------------------------------

/** How a single-process store keeps held records: write one (or remove it: undefined), commit, load all. */
export interface HeldPersistence {
  write(id: string, bytes: Uint8Array | undefined): void;
  /** Resolves once every write so far is durable; rejects with StoreUnavailableError. */
  durable(): Promise<void>;
  load(): Iterable<Uint8Array>;
}

/**
 * The held records of a store in one process (memory, disk): all in memory, indexed by due time
 * (a heap with lazy invalidation), by topic, and by idempotency key; every change written through
 * `persistence`. Atomic by construction: one event loop.
 */
export class LocalHeld implements HeldStore {
  private readonly records = new Map<string, HeldRecord>();
  private readonly due = new MinHeap<{ id: string; next: number }>();
  private readonly byTopic = new Map<string, Map<string, HeldRecord>>();
  private readonly keys = new Map<string, string>();

  constructor(private readonly persistence: HeldPersistence) {
    for (const bytes of persistence.load()) {
      const r = decodeHeld(bytes);
      // Claimed before a restart, by this process (the only one): due again at once.
      if (r.state === 'appending') r.next = 0;
      this.index(r);
    }
  }

  async hold(record: HeldRecord): Promise<{ record: HeldRecord; duplicate: boolean }> {
    if (record.key !== undefined) {
      const id = this.keys.get(`${record.topic}\0${record.key}`);
      const first = id === undefined ? undefined : this.records.get(id);
      // A final record is forgotten a dedup window after it became final: until then it answers.
      if (first) {
        await this.persistence.durable();
        return { record: first, duplicate: true };
      }
    }
    this.put(record);
    await this.persistence.durable();
    return { record, duplicate: false };
  }

  async get(id: string): Promise<HeldRecord | undefined> {
    return this.records.get(id);
  }

  async update(record: HeldRecord, from: readonly HeldState[], opts: { wait?: boolean } = {}): Promise<{ ok: boolean; record: HeldRecord | undefined }> {
    const current = this.records.get(record.id);
    if (!current || !from.includes(current.state)) return { ok: false, record: current };
    this.put(record);
    if (opts.wait !== false) await this.persistence.durable();
    return { ok: true, record };
  }

  async claim(now: number, limit: number, leaseMs: number): Promise<HeldRecord[]> {
    const out: HeldRecord[] = [];
    while (out.length < limit && this.due.peekKey() <= now) {
      const e = this.due.pop()!;
      const r = this.records.get(e.id);
      if (!r || r.next !== e.next) continue; // superseded
      const claimed: HeldRecord = { ...r, next: now + leaseMs, state: r.state === 'scheduled' ? 'appending' : r.state };
      this.put(claimed);
      out.push(claimed);
    }
    return out;
  }

  async remove(id: string): Promise<void> {
    const r = this.records.get(id);
    if (!r) return;
    this.unindex(r);
    this.records.delete(id);
    this.persistence.write(id, undefined);
    await this.persistence.durable();
  }

  async list(topic: string, opts: { kind: HeldKind; limit: number; after?: string }): Promise<HeldPage> {
    const all = [...(this.byTopic.get(topic)?.values() ?? [])].filter((r) => r.kind === opts.kind);
    all.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const nextDue = opts.kind === 'scheduled' ? all[0]?.at : undefined;
    let start = 0;
    const after = parseCursor(opts.after);
    if (after) while (start < all.length && !isAfter(all[start]!, after)) start++;
    const items = all.slice(start, start + opts.limit);
    const page: HeldPage = { count: all.length, items };
    if (nextDue !== undefined) page.nextDue = nextDue;
    if (start + opts.limit < all.length) page.cursor = pageCursor(items[items.length - 1]!);
    return page;
  }

  /** Records held, by state (metrics). */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.records.values()) out[r.state] = (out[r.state] ?? 0) + 1;
    return out;
  }

  private put(r: HeldRecord): void {
    const old = this.records.get(r.id);
    if (old) this.unindex(old);
    this.index(r);
    this.persistence.write(r.id, encodeHeld(r));
  }

  private index(r: HeldRecord): void {
    this.records.set(r.id, r);
    this.due.push(r.next, { id: r.id, next: r.next });
    if (r.key !== undefined) this.keys.set(`${r.topic}\0${r.key}`, r.id);
    if (!isFinal(r.state)) {
      let t = this.byTopic.get(r.topic);
      if (!t) this.byTopic.set(r.topic, (t = new Map()));
      t.set(r.id, r);
    }
  }

  private unindex(r: HeldRecord): void {
    const t = this.byTopic.get(r.topic);
    if (t) {
      t.delete(r.id);
      if (t.size === 0) this.byTopic.delete(r.topic);
    }
    if (r.key !== undefined && this.keys.get(`${r.topic}\0${r.key}`) === r.id) this.keys.delete(`${r.topic}\0${r.key}`);
  }
}
