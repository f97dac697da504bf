/**
 * Delayed and half (transactional) messages: the one service every transport calls (WebSocket PUB
 * options and frames, HTTP routes), on the store's HeldStore (log/held.ts, which states the record
 * states and the store contract).
 *
 * - `schedule` checks and admits the publish exactly as a plain one (PublishService.admitted),
 *   then holds it durably with its due time: the answer is a schedule id. `cancel` drops it before
 *   it is due.
 * - `prepare` holds it the same way, invisible to every reader, with a transaction id. `commit`
 *   appends it, `abort` drops it; both are idempotent.
 * - The scheduler claims what is due (scheduled records at their time, prepared ones at their
 *   check-back time, tombstones at their end) and appends through PublishService.appendChecked
 *   with the idempotency key `heldKey(id)`, then marks the record appended. A crash between the two
 *   appends it again, which the key makes a duplicate: never lost, never doubled (within the dedup
 *   window, which bounds how long a record may stay claimed). After a restart everything that fell
 *   due is claimed at once, lowest due time first, and appended in that order per topic.
 * - Check-back: a prepared message unresolved `checkAfterMs` after its prepare is POSTed to its
 *   check URL (given at prepare and allowed by `checkAllow`, else the configured one), signed with
 *   HMAC-SHA256; the answer `commit` / `abort` resolves it, `unknown` (or no answer) is asked
 *   again after a backoff, and after `maxChecks` the default applies: abort (counted).
 */
import { createHmac } from 'node:crypto';
import { decodeValue } from '@sluice/client/protocol';
import type { Principal } from '../auth/auth.js';
import { sameFingerprint } from '../log/base.js';
import { heldKey, isFinal, type HeldKind, type HeldPage, type HeldRecord, type HeldState } from '../log/held.js';
import type { AppendInput, TopicLog } from '../log/log.js';
import { logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { randomId } from '../util/id.js';
import { PublishError, type Published, type Publisher, type PublishRequest, type PublishService } from './publish.js';
import type { Tracer } from './trace.js';

export interface HeldOptions {
  /** Longest delay a publish may ask for (ms). */
  maxDelayMs: number;
  /** A prepared message unresolved this long is checked back (ms). */
  checkAfterMs: number;
  /** Check-back URL for prepared messages that did not give one. */
  checkUrl?: string | undefined;
  /** HMAC-SHA256 key the check-back body is signed with. */
  checkSecret?: string | undefined;
  /** URL prefixes a check URL given at prepare must start with (none: only `checkUrl` is used). */
  checkAllow: string[];
  /** Check-backs answered unknown (or not answered) before the default (abort) applies. */
  maxChecks: number;
  /** How long one check-back may take (ms). */
  checkTimeoutMs: number;
  /** The first retry's delay after an unknown (ms); doubles per attempt, at most 60 s. */
  checkBackoffMs: number;
}

export const DEFAULT_HELD_OPTIONS: HeldOptions = {
  maxDelayMs: 7 * 24 * 3600_000,
  checkAfterMs: 60_000,
  checkAllow: [],
  maxChecks: 5,
  checkTimeoutMs: 5000,
  checkBackoffMs: 5000,
};

/** How long a claim holds a record before another node (or this one) may take it again. */
const LEASE_MS = 10_000;
/** The scheduler looks for due records at least this often (other nodes' records, clock). */
const TICK_MS = 50;
/** Records claimed per round. */
const CLAIM_BATCH = 2000;
/** How often a store that cannot count synchronously (Redis) reads its counts by state again (the held gauge). */
const COUNTS_MS = 1000;
/** Check-backs in flight at most. */
const MAX_CHECKS_IN_FLIGHT = 64;
/** A `delay` this small is appended as soon as the scheduler runs; `at` this far back is still "now". */
const PAST_GRACE_MS = 1000;

export interface Held {
  id: string;
  /** Scheduled: when it is due (ms since the epoch). */
  due?: number;
  duplicate: boolean;
}

export interface HeldDeps {
  store: TopicLog;
  publisher: PublishService;
  metrics: Metrics;
  options: HeldOptions;
  /** How long a final record is remembered (the dedup window). */
  keepMs: number;
  tracer?: Tracer;
  fetch?: typeof fetch;
}

/** When a publish asks to be delivered later: `delay` ms from now, or `at` (ms since the epoch). */
export interface When {
  delay?: number | undefined;
  at?: number | undefined;
}

export class HeldService {
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When `timer` fires. */
  private timerAt = 0;
  private running = false;
  private closed = false;
  private readonly checking = new Set<string>();
  /** When a failed round was last logged (a store that is down fails every round). */
  private lastFailureLog = 0;
  private readonly fetch: typeof fetch;
  /** When the store's counts were last refreshed, and the refresh in flight. */
  private countsAt = 0;
  private counting: Promise<void> | undefined;

  constructor(private readonly deps: HeldDeps) {
    this.fetch = deps.fetch ?? fetch;
  }

  get options(): HeldOptions {
    return this.deps.options;
  }

  // ---- delayed ----------------------------------------------------------------------------------

  /** The due time a publish asks for, or the stable code why not. */
  dueTime(when: When, now = Date.now()): number {
    const { maxDelayMs } = this.deps.options;
    if (when.delay !== undefined && when.at !== undefined) throw new PublishError('bad-request', 'give delay or at, not both');
    let due: number;
    if (when.delay !== undefined) {
      if (!Number.isSafeInteger(when.delay) || when.delay < 0) throw new PublishError('bad-request', 'delay must be a whole number of ms, 0 or more');
      due = now + when.delay;
    } else {
      if (when.at === undefined || !Number.isSafeInteger(when.at) || when.at < 0) throw new PublishError('bad-request', 'at must be a time in ms since the epoch');
      if (when.at < now - PAST_GRACE_MS) throw new PublishError('schedule-in-past', `at ${new Date(when.at).toISOString()} is in the past`);
      due = Math.max(when.at, now);
    }
    if (due - now > maxDelayMs) throw new PublishError('delay-too-long', `due in ${due - now} ms; the gateway holds messages at most ${maxDelayMs} ms`);
    return due;
  }

  /** Holds a publish until `when`; rejects with PublishError. */
  async schedule(who: Publisher, req: PublishRequest, when: When): Promise<Held> {
    const due = this.dueTime(when);
    const input = await this.deps.publisher.admitted(who, req);
    const r = await this.hold(who, req, input, { kind: 'scheduled', state: 'scheduled', at: due, next: due });
    if (!r.duplicate) this.poke(due);
    return { id: r.record.id, due: r.record.at, duplicate: r.duplicate };
  }

  /** Cancels a schedule before it is due (again: the same answer). */
  async cancel(principal: Principal, id: string, topic?: string): Promise<void> {
    let r = await this.find(principal, id, 'scheduled', topic);
    for (;;) {
      if (r.state === 'cancelled') return;
      if (r.state !== 'scheduled') throw new PublishError('already-appended', r.offset ? `schedule ${id} was appended at offset ${r.offset}` : `schedule ${id} is being appended`);
      const u = await this.deps.store.held.update(this.final(r, 'cancelled'), ['scheduled']);
      if (u.ok) return;
      if (!u.record) throw unknown('scheduled', id);
      r = u.record;
    }
  }

  // ---- transactions -----------------------------------------------------------------------------

  /** Holds a publish as a prepared (half) message: invisible until committed. */
  async prepare(who: Publisher, req: PublishRequest, checkUrl?: string): Promise<Held> {
    if (checkUrl !== undefined && !this.allowed(checkUrl)) {
      throw new PublishError('check-url-not-allowed', `check-back URL ${checkUrl} is not allowed by the gateway's --tx-check-allow`);
    }
    const input = await this.deps.publisher.admitted(who, req);
    const now = Date.now();
    const extra: Partial<HeldRecord> = {};
    if (checkUrl !== undefined) extra.checkUrl = checkUrl;
    const r = await this.hold(who, req, input, { kind: 'prepared', state: 'prepared', at: now, next: now + this.deps.options.checkAfterMs, ...extra });
    return { id: r.record.id, duplicate: r.duplicate };
  }

  /** Commits a prepared message: appends it (again: the same offset, duplicate). */
  async commit(principal: Principal, id: string, topic?: string): Promise<Published> {
    return this.commitRecord(await this.find(principal, id, 'prepared', topic));
  }

  /** Aborts a prepared message: drops it (again: the same answer). */
  async abort(principal: Principal, id: string, topic?: string): Promise<void> {
    await this.abortRecord(await this.find(principal, id, 'prepared', topic), 'aborted');
  }

  /** A topic's held records of one kind (the console, the admin API). */
  list(topic: string, kind: HeldKind, limit: number, after?: string): Promise<HeldPage> {
    return this.deps.store.held.list(topic, after === undefined ? { kind, limit } : { kind, limit, after });
  }

  get(id: string): Promise<HeldRecord | undefined> {
    return this.deps.store.held.get(id);
  }

  // ---- the scheduler ----------------------------------------------------------------------------

  /** Starts claiming what is due (at once: what fell due while the gateway was down goes first). */
  start(): void {
    this.closed = false;
    this.poke(0);
  }

  /** Stops the scheduler: waits for its round in flight, and for check-backs at most 2 s (a later answer is asked again after a restart). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.counting;
    const until = Date.now() + 2000;
    while (this.running || (this.checking.size > 0 && Date.now() < until)) await new Promise((r) => setTimeout(r, 10));
  }

  /** Something falls due at `due`: run the scheduler by then. */
  private poke(due: number): void {
    if (this.closed || this.running) return;
    const now = Date.now();
    const at = now + Math.max(0, Math.min(due - now, TICK_MS));
    // Only ever earlier: a stream of pokes must not keep postponing the round.
    if (this.timer && this.timerAt <= at) return;
    this.arm(at - now);
  }

  private arm(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = Date.now() + ms;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    if (this.closed) return;
    this.running = true;
    let full = false;
    let failed = false;
    this.refreshCounts();
    try {
      const claimed = await this.deps.store.held.claim(Date.now(), CLAIM_BATCH, LEASE_MS);
      full = claimed.length === CLAIM_BATCH;
      const toAppend: HeldRecord[] = [];
      for (const r of claimed) {
        if (r.state === 'appending') toAppend.push(r);
        else if (r.state === 'prepared') this.checkBack(r);
        else if (isFinal(r.state)) await this.deps.store.held.remove(r.id);
      }
      if (toAppend.length > 0) await this.appendRecords(toAppend);
    } catch (err) {
      // The store cannot be reached or written: what was claimed is claimed again after its lease.
      failed = true;
      if (!this.closed && Date.now() - this.lastFailureLog > 10_000) {
        this.lastFailureLog = Date.now();
        logger.error('the scheduler of held messages failed a round (retrying each second; logged every 10 s)', { err });
      }
    } finally {
      this.running = false;
    }
    if (this.closed) return;
    if (failed) this.arm(1000);
    else if (full) this.arm(0);
    else this.poke(Number.POSITIVE_INFINITY);
  }

  /** Every COUNTS_MS, a store without synchronous counts reads them again (in the background: the round does not wait). */
  private refreshCounts(): void {
    const held = this.deps.store.held;
    if (!held.refreshCounts || this.counting || Date.now() - this.countsAt < COUNTS_MS) return;
    this.countsAt = Date.now();
    // A failure keeps the last counts; the round's own failure (same store) is what gets logged.
    this.counting = held.refreshCounts().catch(() => undefined).finally(() => { this.counting = undefined; });
  }

  /**
   * Appends records in `appending` (in the given order per topic, one append per topic) with their
   * held keys, then marks each appended. Outcomes in order; a failed append rejects (the records
   * stay `appending`, claimed again after their lease).
   */
  private async appendRecords(records: HeldRecord[]): Promise<Published[]> {
    const byTopic = new Map<string, number[]>();
    records.forEach((r, i) => {
      let g = byTopic.get(r.topic);
      if (!g) byTopic.set(r.topic, (g = []));
      g.push(i);
    });
    const out: Published[] = new Array(records.length);
    await Promise.all([...byTopic].map(async ([topic, idx]) => {
      const inputs: AppendInput[] = idx.map((i) => ({ ...records[i]!.message!, key: heldKey(records[i]!.id) }));
      const results = await this.deps.publisher.appendChecked(topic, inputs, idx.map((i) => records[i]!.by));
      const now = Date.now();
      await Promise.all(idx.map(async (i, j) => {
        const r = records[i]!;
        const res = results[j]!;
        out[i] = res;
        const done: HeldRecord = { ...this.final(r, 'appended'), offset: res.offset, epoch: res.epoch };
        // Not awaited to durability: the append before it is durable, and if this update is lost
        // the record is claimed again and appended as a duplicate of itself.
        const u = await this.deps.store.held.update(done, ['appending'], { wait: false });
        if (u.ok) {
          this.deps.metrics.heldAppended.inc();
          if (r.kind === 'scheduled') this.deps.metrics.heldLateness.observe(Math.max(0, now - r.at) / 1000);
        }
      }));
    }));
    return out;
  }

  // ---- internals --------------------------------------------------------------------------------

  private async hold(who: Publisher, req: PublishRequest, input: AppendInput, rec: Pick<HeldRecord, 'kind' | 'state' | 'at' | 'next' | 'checkUrl'>): Promise<{ record: HeldRecord; duplicate: boolean }> {
    // Copies: a WebSocket payload is a view of a buffer valid only during its message callback.
    const message: AppendInput = { data: input.data.slice() };
    if (input.headers) message.headers = input.headers.slice();
    if (input.meta) message.meta = input.meta.slice();
    const record: HeldRecord = {
      id: randomId(20), topic: req.topic, attempts: 0, message,
      by: who.transport ? { client: who.principal.id, transport: who.transport } : { client: who.principal.id },
      ...rec,
    };
    if (req.key !== undefined) record.key = req.key;
    if (input.fingerprint) record.fingerprint = input.fingerprint;
    if (rec.checkUrl === undefined) delete record.checkUrl;
    let held: { record: HeldRecord; duplicate: boolean };
    try {
      held = await this.deps.store.held.hold(record);
    } catch (err) {
      throw storeError(err);
    }
    // The key names one message, as for a publish (publish.ts): another message with it is refused.
    if (held.duplicate && !sameFingerprint(held.record.fingerprint, record.fingerprint)) {
      const key = JSON.stringify(req.key!.slice(0, 128));
      throw new PublishError('idempotency-key-reused', `idempotency key ${key} was used for another message of ${req.topic} (held as ${held.record.id}); nothing was stored: use a new key for a new message`);
    }
    return held;
  }

  /** A record of `kind` this principal may resolve; unknown ones (or another topic's) get the code. */
  private async find(principal: Principal, id: string, kind: HeldKind, topic?: string): Promise<HeldRecord> {
    let r: HeldRecord | undefined;
    try {
      r = await this.deps.store.held.get(id);
    } catch (err) {
      throw storeError(err);
    }
    if (!r || r.kind !== kind || (topic !== undefined && r.topic !== topic)) throw unknown(kind, id);
    if (!principal.can('pub', r.topic)) throw new PublishError('forbidden', `not allowed to publish to ${r.topic}`);
    return r;
  }

  private final(r: HeldRecord, state: HeldState): HeldRecord {
    const f: HeldRecord = { ...r, state, next: Date.now() + this.deps.keepMs };
    delete f.message;
    return f;
  }

  private async commitRecord(r: HeldRecord): Promise<Published> {
    for (;;) {
      if (r.state === 'aborted') throw new PublishError('transaction-aborted', `transaction ${r.id} was aborted`);
      if (r.state === 'appended') return { offset: r.offset!, epoch: r.epoch!, duplicate: true };
      if (r.state === 'appending') break;
      // Not awaited to durability: the append that follows is durable, and stores write in order.
      const u = await this.deps.store.held.update({ ...r, state: 'appending', next: Date.now() + LEASE_MS }, ['prepared'], { wait: false }).catch((err: unknown) => { throw storeError(err); });
      if (!u.record) throw unknown('prepared', r.id);
      r = u.record;
      if (u.ok) break;
    }
    const [res] = await this.appendRecords([r]).catch((err: unknown) => { throw storeError(err); });
    return res!;
  }

  private async abortRecord(r: HeldRecord, why: 'aborted'): Promise<void> {
    for (;;) {
      if (r.state === 'aborted') return;
      if (r.state === 'appending' || r.state === 'appended') {
        throw new PublishError('already-appended', r.offset ? `transaction ${r.id} was committed at offset ${r.offset}` : `transaction ${r.id} is being committed`);
      }
      const u = await this.deps.store.held.update(this.final(r, why), ['prepared']).catch((err: unknown) => { throw storeError(err); });
      if (u.ok) return;
      if (!u.record) throw unknown('prepared', r.id);
      r = u.record;
    }
  }

  private allowed(url: string): boolean {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return false;
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return false;
    return this.deps.options.checkAllow.some((prefix) => url.startsWith(prefix));
  }

  /** Asks the producer what became of a prepared message (in the background; see the header). */
  private checkBack(r: HeldRecord): void {
    if (this.checking.has(r.id) || this.checking.size >= MAX_CHECKS_IN_FLIGHT) return; // claimed again after the lease
    this.checking.add(r.id);
    void this.runCheckBack(r).catch((err: unknown) => {
      if (!this.closed) logger.error('check-back of a transaction failed', { transaction: r.id, topic: r.topic, err });
    }).finally(() => this.checking.delete(r.id));
  }

  private async runCheckBack(r: HeldRecord): Promise<void> {
    const o = this.deps.options;
    const url = r.checkUrl ?? o.checkUrl;
    const attempt = r.attempts + 1;
    let answer: 'commit' | 'abort' | 'unknown' = 'unknown';
    let outcome: string;
    if (!url) {
      outcome = 'no-url';
    } else {
      const body = JSON.stringify({
        id: r.id, topic: r.topic, key: r.key ?? null, preparedAt: r.at, attempt,
        headers: r.message?.headers ? headersOf(r.message.headers) : null,
      });
      const t = Date.now();
      const sig = createHmac('sha256', o.checkSecret ?? '').update(`${t}.${body}`).digest('hex');
      try {
        const res = await this.fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'sluice-signature': `t=${t},v1=${sig}`, 'sluice-transaction': r.id },
          body,
          signal: AbortSignal.timeout(o.checkTimeoutMs),
        });
        const text = await res.text();
        const action = res.ok ? (JSON.parse(text) as { action?: unknown }).action : undefined;
        answer = action === 'commit' || action === 'abort' ? action : 'unknown';
        outcome = res.ok ? answer : 'failed';
      } catch {
        outcome = 'failed';
      }
    }
    this.deps.metrics.checkBack(outcome);
    const traced = this.deps.tracer !== undefined && r.message?.meta !== undefined && (decodeValue(r.message.meta) as { t?: unknown } | null)?.t === 1;
    if (answer === 'commit') {
      const res = await this.commitRecord(r).catch((err: unknown) => {
        if (err instanceof PublishError && (err.code === 'transaction-aborted' || err.code === 'unknown-transaction')) return undefined;
        throw err;
      });
      if (res && traced) this.deps.tracer!.record(r.topic, res.offset, { kind: 'check-back', attempt, reason: 'commit' });
      return;
    }
    if (answer === 'abort') return this.abortQuietly(r);
    if (attempt >= o.maxChecks) {
      this.deps.metrics.checkBack('default-abort');
      return this.abortQuietly(r);
    }
    const backoff = Math.min(o.checkBackoffMs * 2 ** (attempt - 1), 60_000);
    await this.deps.store.held.update({ ...r, attempts: attempt, next: Date.now() + backoff }, ['prepared']);
  }

  private async abortQuietly(r: HeldRecord): Promise<void> {
    await this.abortRecord(r, 'aborted').catch((err: unknown) => {
      if (!(err instanceof PublishError && err.code === 'already-appended')) throw err;
    });
  }
}

function unknown(kind: HeldKind, id: string): PublishError {
  return kind === 'scheduled'
    ? new PublishError('unknown-schedule', `no schedule ${id} on this gateway (never made, or forgotten)`)
    : new PublishError('unknown-transaction', `no transaction ${id} on this gateway (never prepared, or forgotten)`);
}

function storeError(err: unknown): unknown {
  if (err instanceof PublishError) return err;
  const e = err as { code?: string; message?: string; retryAfterS?: number };
  if (e && (e.code === 'unavailable' || e.code === 'insufficient-storage')) return new PublishError(e.code, e.message ?? 'the store cannot write', (e.retryAfterS ?? 1) * 1000);
  return err;
}

function headersOf(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(JSON.stringify(decodeValue(bytes)));
  } catch {
    return null;
  }
}
