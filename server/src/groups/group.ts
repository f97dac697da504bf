/**
 * One consumer group of one topic: the queue model on the topic's log. Each message goes to one
 * member at a time, as a lease; a member acknowledges it (done), gives it back (nack: delivered
 * again after a delay), or lets the lease expire (delivered again after the ack wait). A message
 * delivered `maxDeliveries` times without being acknowledged is dead-lettered. Messages with the
 * same ordering key are leased one at a time, in offset order. See PROTOCOL.md, "Consumer groups".
 *
 * State, by offset (every offset of the topic is in exactly one of these):
 *   < floor                     done (acknowledged or dead-lettered)
 *   floor ≤ o < next, and then  done (in `done`), leased (`leases`), waiting to be leased
 *                               (`ready`, `retries`, or behind its ordering key in `keys`), or
 *                               being dead-lettered (`dying`)
 *   ≥ next                      not read from the log yet
 * Invariants: `floor` only grows; an offset is leased to at most one member at a time; `next -
 * floor` ≤ MAX_WINDOW (the group never reads further ahead of its oldest unfinished message, which
 * bounds its memory); the entries of offsets between floor and next that are not done are held in
 * `entries`. What is persisted (`snapshot`): floor, `done`, the attempts, the settings. Leases are
 * not: after a restart every unacknowledged message is delivered again.
 *
 * The group knows nothing of sockets or the store: members deliver leases, the owner (registry.ts)
 * feeds it the log's entries (`offer`), persists its snapshots and appends its dead letters.
 */
import { entryMeta } from '@sluice/client/protocol';
import { MinHeap } from '../hub/heap.js';

export interface GroupSettings {
  /** How long a lease may go unacknowledged before the message is delivered again (ms). */
  ackWaitMs: number;
  /** Deliveries after which an unacknowledged message is dead-lettered. */
  maxDeliveries: number;
  /** Delay before delivery n + 1 after delivery n failed (nack without delay, expiry): index n - 1, the last repeats. */
  backoffMs: number[];
  /** Where dead letters go (default: `<topic>.dlq`). */
  deadLetterTopic: string;
}

/** Who takes leases: a WebSocket member, or an HTTP consumer's pending request. */
export interface Member {
  readonly id: string;
  /** The token's `sub` (admin API). */
  readonly clientId: string;
  /** Leases it may hold at once (its credit). */
  window: number;
  /** Leases it holds now (kept by the group). */
  leased: number;
  /** Hands it a lease; false when it can take no more now (then `window` is its limit). */
  deliver(offset: number, attempt: number, entry: Uint8Array): void;
}

interface Lease {
  member: Member;
  deadline: number;
  attempt: number;
}

/** What a dead letter needs: the message, and why it died. */
export interface Death {
  offset: number;
  entry: Uint8Array;
  attempts: number;
  reason: string;
}

/** The persisted part of a group. */
export interface GroupSnapshot {
  floor: number;
  /** Done offsets above the floor. */
  done: number[];
  /** Deliveries made so far, for offsets not done. */
  attempts: [number, number][];
  settings: GroupSettings;
}

/** The furthest the group reads ahead of its oldest unfinished message. */
export const MAX_WINDOW = 65_536;

/** Why an acknowledgement was refused. */
export class NotLeased extends Error {
  override name = 'NotLeased';
  constructor(readonly offset: number) {
    super(`offset ${offset} is not leased to you (never, to another member, expired, or already acknowledged)`);
  }
}

export class Group {
  floor: number;
  /** Next offset to read from the log. */
  next: number;
  settings: GroupSettings;
  readonly done = new Set<number>();
  readonly attempts = new Map<number, number>();
  readonly leases = new Map<number, Lease>();
  /** Entries of offsets not done between floor and next. */
  readonly entries = new Map<number, Uint8Array>();
  /** Offsets that may be leased now, lowest first. */
  private readonly ready = new MinHeap<number>();
  /** Offsets to lease again later, by when. */
  private readonly retries = new MinHeap<number>();
  /** Leases by deadline (lazy: an entry whose lease changed is skipped). */
  private readonly deadlines = new MinHeap<number>();
  /** Per ordering key: the offset that holds it (leased or waiting to be), and the ones behind it. */
  private readonly keys = new Map<string, { holder: number; waiting: number[] }>();
  /** Offsets being dead-lettered. */
  readonly dying = new Set<number>();
  readonly members: Member[] = [];
  private turn = 0;
  /** Set when something persisted changed; the owner saves and clears it. */
  dirty = false;
  /** Counters for the admin API and metrics. */
  readonly counts = { leased: 0, acked: 0, redelivered: 0, deadLettered: 0 };

  constructor(readonly topic: string, readonly name: string, start: number, settings: GroupSettings, snapshot?: GroupSnapshot) {
    this.settings = settings;
    if (snapshot) {
      this.settings = { ...settings, ...snapshot.settings };
      this.floor = snapshot.floor;
      for (const o of snapshot.done) this.done.add(o);
      for (const [o, n] of snapshot.attempts) this.attempts.set(o, n);
    } else {
      this.floor = start;
      this.dirty = true;
    }
    this.next = this.floor;
  }

  // ---- the log ---------------------------------------------------------------------------------

  /** How many offsets the group would take from the log now (0: its window is full). */
  room(): number {
    return Math.max(0, this.floor + MAX_WINDOW - this.next);
  }

  /** Entries of the log from `this.next` on: each becomes leasable (or waits behind its key). */
  offer(first: number, entries: readonly Uint8Array[]): void {
    for (let i = Math.max(0, this.next - first); i < entries.length && this.room() > 0; i++) {
      const o = first + i;
      this.next = o + 1;
      if (this.done.has(o)) continue;
      this.entries.set(o, entries[i]!);
      this.enqueue(o);
    }
  }

  /** Retention trimmed the log before `first`: what the group had not read there is gone. */
  skipTo(first: number): void {
    if (this.next >= first) return;
    for (let o = this.next; o < first; o++) this.done.add(o);
    this.next = first;
    this.advanceFloor();
  }

  // ---- members ---------------------------------------------------------------------------------

  join(m: Member): void {
    this.members.push(m);
  }

  /** A member left: its leases stay until they expire (another member gets them then). */
  leave(m: Member): void {
    const i = this.members.indexOf(m);
    if (i >= 0) this.members.splice(i, 1);
  }

  /** Hands out what is ready to members with credit, round robin. Returns how many were leased. */
  dispatch(now: number): number {
    this.promoteRetries(now);
    let n = 0;
    while (this.ready.size > 0) {
      const member = this.nextMember();
      if (!member) break;
      const o = this.ready.pop()!;
      const entry = this.entries.get(o);
      if (!entry || this.done.has(o) || this.leases.has(o)) continue;
      const attempt = (this.attempts.get(o) ?? 0) + 1;
      this.attempts.set(o, attempt);
      const deadline = now + this.settings.ackWaitMs;
      this.leases.set(o, { member, deadline, attempt });
      this.deadlines.push(deadline, o);
      member.leased++;
      this.counts.leased++;
      if (attempt > 1) this.counts.redelivered++;
      member.deliver(o, attempt, entry);
      n++;
    }
    return n;
  }

  private nextMember(): Member | undefined {
    const count = this.members.length;
    for (let i = 0; i < count; i++) {
      const m = this.members[(this.turn + i) % count]!;
      if (m.leased < m.window) {
        this.turn = (this.turn + i + 1) % count;
        return m;
      }
    }
    return undefined;
  }

  // ---- acknowledgements ------------------------------------------------------------------------

  /** `member` is done with `offset`. Throws NotLeased when it does not hold it. */
  ack(member: Member, offset: number): void {
    this.release(member, offset);
    this.counts.acked++;
    this.finish(offset);
  }

  /**
   * `member` gives `offset` back: delivered again after `delayMs` (absent: the backoff for its
   * attempt), or dead-lettered when it has had its deliveries. Returns the death to record, if so.
   */
  nack(member: Member, offset: number, now: number, delayMs?: number, reason = 'nacked'): Death | undefined {
    const lease = this.release(member, offset);
    return this.again(offset, lease.attempt, now, delayMs, reason);
  }

  /** Leases past their deadline: each message is delivered again (or dead-lettered). */
  expire(now: number): Death[] {
    const deaths: Death[] = [];
    while (this.deadlines.size > 0 && this.deadlines.peekKey() <= now) {
      const deadline = this.deadlines.peekKey();
      const o = this.deadlines.pop()!;
      const lease = this.leases.get(o);
      if (!lease || lease.deadline !== deadline) continue; // acknowledged, or leased again
      this.leases.delete(o);
      lease.member.leased--;
      const death = this.again(o, lease.attempt, now, undefined, 'ack-wait expired');
      if (death) deaths.push(death);
    }
    return deaths;
  }

  /** When the next lease expires or the next retry is due (ms since the epoch), or Infinity. */
  nextWake(): number {
    return Math.min(this.deadlines.peekKey(), this.retries.peekKey());
  }

  /** A dead letter was stored: the message is done for the group. */
  buried(offset: number): void {
    this.dying.delete(offset);
    this.counts.deadLettered++;
    this.finish(offset);
  }

  /** Storing a dead letter failed: try the message again later, as if nacked. */
  unburied(offset: number, now: number): void {
    this.dying.delete(offset);
    this.retries.push(now + this.backoff(this.attempts.get(offset) ?? 1), offset);
  }

  // ---- internals -------------------------------------------------------------------------------

  private release(member: Member, offset: number): Lease {
    const lease = this.leases.get(offset);
    if (!lease || lease.member !== member) throw new NotLeased(offset);
    this.leases.delete(offset);
    member.leased--;
    return lease;
  }

  private again(offset: number, attempt: number, now: number, delayMs: number | undefined, reason: string): Death | undefined {
    if (attempt >= this.settings.maxDeliveries) {
      this.dying.add(offset);
      return { offset, entry: this.entries.get(offset)!, attempts: attempt, reason };
    }
    this.retries.push(now + (delayMs ?? this.backoff(attempt)), offset);
    this.dirty = true;
    return undefined;
  }

  private backoff(attempt: number): number {
    const b = this.settings.backoffMs;
    return b.length === 0 ? 0 : b[Math.min(attempt, b.length) - 1]!;
  }

  /** Offsets whose retry time has come go back to `ready` (they still hold their key). */
  private promoteRetries(now: number): void {
    while (this.retries.size > 0 && this.retries.peekKey() <= now) {
      const o = this.retries.pop()!;
      this.ready.push(o, o);
    }
  }

  /** A new offset becomes leasable, unless an earlier message of its ordering key holds the key. */
  private enqueue(o: number): void {
    const k = entryMeta(this.entries.get(o)!)?.k;
    if (k !== undefined) {
      const key = this.keys.get(k);
      if (key) {
        key.waiting.push(o);
        return;
      }
      this.keys.set(k, { holder: o, waiting: [] });
    }
    this.ready.push(o, o);
  }

  /** Done: the next message of its key may go, and the floor moves past what is done. */
  private finish(o: number): void {
    const entry = this.entries.get(o);
    this.entries.delete(o);
    this.attempts.delete(o);
    this.done.add(o);
    const k = entry ? entryMeta(entry)?.k : undefined;
    if (k !== undefined) {
      const key = this.keys.get(k);
      if (key && key.holder === o) {
        const next = key.waiting.shift();
        if (next === undefined) this.keys.delete(k);
        else {
          key.holder = next;
          this.ready.push(next, next);
        }
      }
    }
    this.advanceFloor();
    this.dirty = true;
  }

  private advanceFloor(): void {
    while (this.done.has(this.floor)) this.done.delete(this.floor++);
  }

  /** What is persisted: enough to restart with every unfinished message delivered again. */
  snapshot(): GroupSnapshot {
    return { floor: this.floor, done: [...this.done], attempts: [...this.attempts], settings: this.settings };
  }

  /** Messages between the floor and the head not done yet (the backlog, leases included). */
  backlog(head: number): number {
    return Math.max(0, head - this.floor + 1 - this.done.size);
  }

  /** Where a new member's SUBSCRIBED says the group stands: the next offset it would read. */
  position(): number {
    return this.next;
  }

  /** Moves the group to `offset` (admin reset): everything before it is done, everything from it is not. */
  reset(offset: number): void {
    this.leases.clear();
    for (const m of this.members) m.leased = 0;
    this.done.clear();
    this.attempts.clear();
    this.entries.clear();
    this.keys.clear();
    this.dying.clear();
    this.ready.clear();
    this.retries.clear();
    this.deadlines.clear();
    this.floor = offset;
    this.next = offset;
    this.dirty = true;
  }
}
