/**
 * Held messages on Redis (see held.ts for the contract, redis-scripts.ts for the keys). Every change
 * is one script run in the `{sl-held}` slot, so several gateways sharing the store see one state:
 * `claim` hands a due record to exactly one of them per lease.
 */
import type { Redis, Cluster } from 'ioredis';
import { decodeHeld, encodeHeld, isAfter, isFinal, pageCursor, parseCursor, type HeldKind, type HeldPage, type HeldRecord, type HeldState, type HeldStore } from './held.js';
import { HELD_CLAIM, HELD_COUNT, HELD_HOLD, HELD_REMOVE, HELD_UPDATE } from './redis-scripts.js';

const P = 'sl:{sl-held}:';
const R = `${P}r`;
/** A key of the held slot (WAIT is routed by it in a cluster). */
export const HELD_SLOT_KEY = R;
const ST = `${P}st`;
const D = `${P}d`;
const N = `${P}n`;
const listKey = (kind: HeldKind, topic: string) => `${P}t:${kind}:${topic}`;
const keyKey = (topic: string, key: string) => `${P}k:${topic}\0${key}`;

/** The scripts, in their `…Buffer` form: replies keep the record bytes as they are. */
interface HeldScripts {
  slHeldHoldBuffer(...args: (string | number | Buffer)[]): Promise<unknown[]>;
  slHeldUpdateBuffer(...args: (string | number | Buffer)[]): Promise<unknown[]>;
  slHeldClaimBuffer(...args: (string | number)[]): Promise<unknown[]>;
  slHeldRemove(...args: string[]): Promise<number>;
  slHeldCount(...args: string[]): Promise<string[]>;
}

const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** A stored record with its authoritative state and next. */
function read(bytes: Buffer, state: { toString(): string } | null | undefined, next: unknown): HeldRecord {
  const r = decodeHeld(new Uint8Array(bytes));
  if (state != null) r.state = state.toString() as HeldState;
  if (next != null) r.next = Number(next);
  return r;
}

export class RedisHeld implements HeldStore {
  private readonly s: HeldScripts;
  /** Records by state as the last full counting pass saw them (`refreshCounts`). */
  private counted: Record<string, number> = {};
  private counting: Promise<void> | undefined;

  constructor(
    private readonly client: Redis | Cluster,
    /** Runs a command; unreachable Redis becomes StoreUnavailableError. */
    private readonly call: <T>(fn: () => Promise<T>) => Promise<T>,
    /** Waits for the replicas the store asks for (durability), after a write. */
    private readonly replicated: () => Promise<void>,
  ) {
    client.defineCommand('slHeldHold', { numberOfKeys: 6, lua: HELD_HOLD });
    client.defineCommand('slHeldUpdate', { numberOfKeys: 5, lua: HELD_UPDATE });
    client.defineCommand('slHeldClaim', { numberOfKeys: 4, lua: HELD_CLAIM });
    client.defineCommand('slHeldRemove', { numberOfKeys: 6, lua: HELD_REMOVE });
    client.defineCommand('slHeldCount', { numberOfKeys: 2, lua: HELD_COUNT });
    this.s = client as unknown as HeldScripts;
  }

  async hold(record: HeldRecord): Promise<{ record: HeldRecord; duplicate: boolean }> {
    const k = record.key === undefined ? `${P}k:-` : keyKey(record.topic, record.key);
    const r = await this.call(() => this.s.slHeldHoldBuffer(R, ST, D, listKey(record.kind, record.topic), k, N,
      record.id, buf(encodeHeld(record)), record.state, record.next, record.at, record.key === undefined ? '0' : '1'));
    await this.replicated();
    if (Number(r[0]) === 1) return { record, duplicate: false };
    return { record: read(r[2] as Buffer, r[3] as Buffer, Number(String(r[4]))), duplicate: true };
  }

  async get(id: string): Promise<HeldRecord | undefined> {
    const [b, st, next] = await this.call(() => Promise.all([
      this.client.hgetBuffer(R, id), this.client.hget(ST, id), this.client.zscore(D, id),
    ]));
    return b ? read(b, st, next) : undefined;
  }

  async update(record: HeldRecord, from: readonly HeldState[], opts: { wait?: boolean } = {}): Promise<{ ok: boolean; record: HeldRecord | undefined }> {
    const r = await this.call(() => this.s.slHeldUpdateBuffer(R, ST, D, listKey(record.kind, record.topic), N,
      record.id, buf(encodeHeld(record)), record.state, record.next, record.at, isFinal(record.state) ? '1' : '0', ...from));
    if (Number(r[0]) === 1) {
      if (opts.wait !== false) await this.replicated();
      return { ok: true, record };
    }
    return { ok: false, record: r[1] ? read(r[1] as Buffer, r[2] as Buffer, Number(String(r[3]))) : undefined };
  }

  async claim(now: number, limit: number, leaseMs: number): Promise<HeldRecord[]> {
    const r = await this.call(() => this.s.slHeldClaimBuffer(R, ST, D, N, now, limit, leaseMs));
    const out: HeldRecord[] = [];
    for (let i = 0; i + 2 < r.length; i += 3) {
      const rec = read(r[i + 1] as Buffer, r[i + 2] as Buffer, now + leaseMs);
      out.push(rec);
    }
    return out;
  }

  async remove(id: string): Promise<void> {
    const r = await this.get(id);
    if (!r) return;
    await this.call(() => this.s.slHeldRemove(R, ST, D, listKey(r.kind, r.topic), r.key === undefined ? `${P}k:-` : keyKey(r.topic, r.key), N, id));
  }

  async list(topic: string, opts: { kind: HeldKind; limit: number; after?: string }): Promise<HeldPage> {
    const lk = listKey(opts.kind, topic);
    const after = parseCursor(opts.after);
    const [count, first] = await this.call(() => Promise.all([
      this.client.zcard(lk), this.client.zrange(lk, '0', '0', 'WITHSCORES'),
    ]));
    // Ids at the cursor's own time may be before it: fetch a few more and skip them.
    const ids = await this.call(() => this.client.zrangebyscore(lk, after ? String(after.at) : '-inf', '+inf', 'LIMIT', 0, opts.limit + 64));
    const items: HeldRecord[] = [];
    for (const id of ids) {
      if (items.length > opts.limit) break;
      const r = await this.get(id);
      if (r && (!after || isAfter(r, after))) items.push(r);
    }
    items.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1));
    const page: HeldPage = { count, items: items.slice(0, opts.limit) };
    if (opts.kind === 'scheduled' && first.length === 2) page.nextDue = Number(first[1]);
    if (items.length > opts.limit) page.cursor = pageCursor(page.items[page.items.length - 1]!);
    return page;
  }

  /** Records held, by state, as of the last `refreshCounts` (every gateway on the store sees them all). */
  counts(): Record<string, number> {
    return this.counted;
  }

  /**
   * Reads the counts the scripts keep (one small hash, `n` in redis-scripts.ts). One read at a time:
   * a call while one runs waits for it. Rejects (keeping the last counts) when Redis cannot be reached.
   */
  refreshCounts(): Promise<void> {
    this.counting ??= this.readCounts().finally(() => { this.counting = undefined; });
    return this.counting;
  }

  private async readCounts(): Promise<void> {
    const r = await this.call(() => this.s.slHeldCount(ST, N));
    const out: Record<string, number> = {};
    for (let i = 0; i + 1 < r.length; i += 2) {
      const state = String(r[i]);
      const n = Number(r[i + 1]);
      if (state !== '$' && n !== 0) out[state] = n;
    }
    this.counted = out;
  }
}
