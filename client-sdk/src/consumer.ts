/**
 * A consumer: this client's membership in a consumer group of a topic (protocol 1.2, PROTOCOL.md
 * "Consumer groups"). The group hands each message to one member at a time as a lease; the member
 * acknowledges it when done (GROUP_ACK), gives it back when it failed (GROUP_NACK: delivered again
 * after the group's backoff), or lets it expire (delivered again after the group's ack wait).
 *
 * Leases belong to a connection. The gateway's member is the subscription on one socket: after a
 * drop, the leases that socket held stay with the group until their ack wait runs out and then come
 * back — to any member, this one included — as a later attempt. So:
 * - `leases` holds only what the current connection was leased (cleared when it drops), and an ack
 *   or nack is sent only for a lease found there: never for an offset this member no longer holds.
 *   A message settled after its connection dropped sends nothing and emits `lost`.
 * - A lease of an offset still in `leases` (its ack wait ran out while it was held, and the group
 *   gave it back to this member) replaces the older one; the older one, if done first, acknowledges
 *   it, and the newer one is then not handed out (if it still waits) or settles as a no-op.
 * - The gateway may still refuse an ack (`not-leased`: the lease expired and went to another
 *   member): the message was or will be handled elsewhere. That is emitted as `lost`, not `error`.
 *
 * Credit (the invariant that bounds memory): with window W, leases the gateway lets this member hold
 * + messages still handed out from earlier connections ≤ W. The gateway frees a lease's credit when
 * it is acknowledged or nacked, so acks need no CREDIT frame. After a reconnect the SUB asks for
 * W − (messages still out from before); each of those that settles gives one back with CREDIT.
 *
 * States (STATES.md): subscribing ⇄ subscribed → closing → closed, changed only by `setState`.
 */
import { Emitter } from './emitter.js';
import { SluiceError, type ServerError } from './errors.js';
import { FrameType, type Headers, type LeaseFrame, type SubscribedFrame } from './protocol/frames.js';
import { MAX_ACK_BATCH } from './protocol/limits.js';
import type { SubscribedEvent, SubscriptionHost } from './subscription.js';

export interface ConsumerMessage<T = unknown> {
  topic: string;
  group: string;
  offset: number;
  /** The topic log's epoch: with the offset, it identifies the message (handlers must be idempotent). */
  epoch: string;
  /** 1 for the first delivery, 2 for the first redelivery, ... */
  attempt: number;
  data: T;
  /** Gateway timestamp (ms since the epoch) of when the message was stored. */
  ts: number;
  headers: Headers | undefined;
  /** The ordering key it was published with: the group hands out one message per key at a time. */
  orderingKey: string | undefined;
  /** The priority it was published with (0–9): the group hands out higher ones first. */
  priority: number;
  /**
   * Done with it. True when the ack was sent; false when this member no longer holds the lease (its
   * connection dropped, or it was settled already): nothing is sent, the group delivers it again.
   */
  ack(): boolean;
  /** Give it back, to be delivered again (to any member) after `delay` ms or the group's backoff. Same result as `ack`. */
  nack(options?: NackOptions): boolean;
}

export interface NackOptions {
  /** Deliver again after this many ms at the earliest (default: the group's backoff for this attempt). */
  delay?: number;
  /** Why; kept in the dead letter's `sluice-reason` header if it ends there (at most 256 bytes). */
  reason?: string;
}

export type ConsumeHandler<T = unknown> = (msg: ConsumerMessage<T>) => void | Promise<void>;

export interface ConsumeOptions {
  /** Handler form: how many messages are handled at once (default 1). */
  concurrency?: number;
  /**
   * Most leases held unacknowledged — queued here, being handled, or handed out by the iterator
   * (default 2 × concurrency: the next message is ready when one finishes, and no more is hoarded
   * while other members could take it). Capped by the gateway's `maxCredit`.
   */
  window?: number;
  /** Alias of `window`. */
  credit?: number;
  /** Where the group starts if this member creates it (1: everything retained). Default: messages published from now on. */
  from?: number;
}

export type ConsumerState = 'subscribing' | 'subscribed' | 'closing' | 'closed';

export interface ConsumerStateChange {
  oldState: ConsumerState;
  newState: ConsumerState;
}

/**
 * A settled message whose lease this member no longer held, so the group delivers it again (the
 * work was done, or will be, elsewhere: handlers must be idempotent). `connection`: settled after
 * the connection it came on dropped; nothing was sent. `not-leased`: the gateway refused an ack or
 * nack, typically because the lease had expired (the handler took longer than the ack wait).
 */
export type LostEvent =
  | { reason: 'connection'; op: 'ack' | 'nack'; offset: number; attempt: number }
  | { reason: 'not-leased'; op: 'ack' | 'nack'; error: ServerError };

export interface ConsumerEvents extends Record<string, unknown> {
  state: ConsumerStateChange;
  subscribed: SubscribedEvent;
  lost: LostEvent;
  /** A handler threw (its message is nacked), or the gateway refused something. */
  error: SluiceError;
}

/** @internal What a consumer needs from its client, beyond what a subscription does. */
export interface ConsumerHost extends SubscriptionHost {
  /** Whether the gateway of the current connection speaks consumer groups (protocol ≥ 1.2). */
  readonly groups: boolean;
  sendAck(subId: number, offsets: number[]): void;
  sendNack(subId: number, offset: number, options: NackOptions): void;
}

/** One lease as this consumer keeps it. */
interface Held<T> {
  msg: ConsumerMessage<T>;
  settled: boolean;
  /** Its connection dropped while it was out. */
  lost: boolean;
}

export class Consumer<T = unknown> extends Emitter<ConsumerEvents> implements AsyncIterable<ConsumerMessage<T>> {
  state: ConsumerState = 'subscribing';
  /** Resolves at the first SUBSCRIBED (`from` is the group's next offset); rejects if the gateway refuses. */
  readonly ready: Promise<SubscribedEvent>;
  private readyResolve!: (e: SubscribedEvent) => void;
  private readyReject!: (err: unknown) => void;

  private readonly window: number;
  private readonly concurrency: number;
  private readonly from: number | undefined;
  private epoch = '';
  private everSubscribed = false;
  /** Leases of the current connection by offset: queued or out. */
  private leases = new Map<number, Held<T>>();
  private queue: Held<T>[] = [];
  /** Messages out — being handled, or lent by the iterator — and not settled, from any connection. */
  private outs = new Set<Held<T>>();
  /** Credit the last SUB left out for messages still out from earlier connections, and what of it is owed back. */
  private withheld = 0;
  private owed = 0;
  private acks: Held<T>[] = [];
  private pulls: { resolve(r: IteratorResult<ConsumerMessage<T>>): void; reject(err: unknown): void }[] = [];
  private failure: SluiceError | undefined;
  /** Called when the last handler settles while closing. */
  private idle: (() => void) | undefined;
  private leaving: Promise<void> | undefined;

  /** @internal */
  constructor(
    private readonly host: ConsumerHost,
    /** @internal */ readonly id: number,
    readonly topic: string,
    readonly group: string,
    private readonly handler: ConsumeHandler<T> | undefined,
    options: ConsumeOptions,
  ) {
    super();
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
    this.window = Math.max(1, Math.floor(options.window ?? options.credit ?? 2 * this.concurrency));
    this.from = options.from;
    this.ready = new Promise((resolve, reject) => { this.readyResolve = resolve; this.readyReject = reject; });
    this.ready.catch(() => undefined);
  }

  /** Messages held now: waiting here, or handed out and not settled. */
  get held(): number {
    return this.queue.length + this.outs.size;
  }

  /**
   * Leaves the group. Handler form: first waits for the handlers running now and sends their acks;
   * messages not started yet are released (the group delivers them again after its ack wait).
   * Iterator form: leaves at once; messages lent and not settled are released (their `ack()`
   * returns false).
   */
  unsubscribe(): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    return (this.leaving ??= this.leave());
  }

  private async leave(): Promise<void> {
    const onWire = this.host.ready; // SUB sent on this connection (answered or not): leave on it
    this.setState('closing');
    for (const h of this.queue) this.leases.delete(h.msg.offset);
    this.queue = [];
    if (this.handler && this.outs.size > 0) await new Promise<void>((resolve) => { this.idle = resolve; });
    if ((this.state as ConsumerState) !== 'closing') return; // the connection or the client closed meanwhile
    this.flushAcks();
    if (onWire && this.host.ready) this.host.sendUnsub(this.id);
    this.finish();
  }

  [Symbol.asyncIterator](): AsyncIterator<ConsumerMessage<T>> {
    if (this.handler) throw new SluiceError('bad-request', 'this consumer has a handler; iterate one made without a handler');
    return {
      next: () => {
        if (this.failure) return Promise.reject(this.failure);
        const h = this.take();
        if (h) return Promise.resolve({ done: false, value: h.msg });
        if (this.state === 'closed' || this.state === 'closing') return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve, reject) => this.pulls.push({ resolve, reject }));
      },
      return: async () => {
        await this.unsubscribe();
        return { done: true, value: undefined };
      },
    };
  }

  // ---- driven by the client ------------------------------------------------------------------

  /** @internal Joins the group on a ready connection. */
  subscribeOnWire(): void {
    if (this.state !== 'subscribing' && this.state !== 'subscribed') return;
    this.setState('subscribing');
    if (!this.host.groups) {
      return this.refused(new SluiceError('unsupported', 'the gateway does not speak consumer groups (protocol 1.2)', { retryable: false }));
    }
    this.withheld = Math.min(this.outs.size, this.window);
    this.owed = 0;
    const credit = Math.max(0, Math.min(this.window, this.host.maxCredit) - this.withheld);
    this.host.sendSub(this.id, this.topic, this.from === undefined ? { credit, group: this.group } : { credit, group: this.group, from: this.from });
  }

  /** @internal The connection dropped: its leases are the group's again. */
  connectionLost(): void {
    for (const h of this.acks) this.lose(h, 'ack');
    this.acks = [];
    for (const h of this.outs) h.lost = true;
    this.leases.clear();
    this.queue = [];
    if (this.state === 'closing') this.finish();
    else if (this.state === 'subscribed') this.setState('subscribing');
  }

  /** @internal */
  onSubscribed(f: SubscribedFrame): void {
    if (this.state !== 'subscribing' && this.state !== 'subscribed') return;
    this.epoch = f.epoch;
    this.setState('subscribed');
    const event = { epoch: f.epoch, head: f.head, from: f.from, recovered: f.recovered };
    if (!this.everSubscribed) {
      this.everSubscribed = true;
      this.readyResolve(event);
    }
    this.emit('subscribed', event);
    this.giveBack();
  }

  /** @internal */
  onLease(f: LeaseFrame): void {
    if (this.state !== 'subscribed') return; // closing: left to expire, like the rest we release
    const m = f.message;
    const h: Held<T> = { msg: undefined!, settled: false, lost: false };
    h.msg = {
      topic: this.topic, group: this.group, offset: f.offset, epoch: this.epoch, attempt: f.attempt,
      data: m.data as T, ts: m.ts, headers: m.headers, orderingKey: m.orderingKey, priority: m.priority ?? 0,
      ack: () => this.settle(h, true),
      nack: (o = {}) => this.settle(h, false, o),
    };
    this.leases.set(f.offset, h);
    this.queue.push(h);
    this.drain();
  }

  /** @internal ERROR for this consumer; `re` is the type of the frame it answers. */
  onError(err: ServerError | SluiceError, re = 0): void {
    if (re === FrameType.GROUP_ACK || re === FrameType.GROUP_NACK) {
      const op = re === FrameType.GROUP_ACK ? 'ack' : 'nack';
      if (err.code === 'not-leased') return this.emit('lost', { reason: 'not-leased', op, error: err as ServerError });
      return this.emit('error', err);
    }
    if (this.state === 'subscribing') return this.refused(err);
    this.emit('error', err);
  }

  /** @internal The client closed. */
  clientClosed(err: SluiceError, _failed?: boolean): void {
    if (this.state === 'closed') return;
    if (!this.everSubscribed) this.readyReject(err);
    this.connectionLost();
    this.finish();
  }

  // ---- internals ------------------------------------------------------------------------------

  /** The next queued message still held, handed out. */
  private take(): Held<T> | undefined {
    for (let h = this.queue.shift(); h; h = this.queue.shift()) {
      if (this.leases.get(h.msg.offset) !== h) continue; // replaced by a later lease, or settled by it
      this.outs.add(h);
      return h;
    }
    return undefined;
  }

  private drain(): void {
    if (!this.handler) {
      while (this.pulls.length > 0) {
        const h = this.take();
        if (!h) return;
        this.pulls.shift()!.resolve({ done: false, value: h.msg });
      }
      return;
    }
    while (this.outs.size < this.concurrency && this.state === 'subscribed') {
      const h = this.take();
      if (!h) return;
      let result: void | Promise<void>;
      try {
        result = this.handler(h.msg);
      } catch (err) {
        this.failed(h, err);
        continue;
      }
      if (result && typeof result.then === 'function') {
        result.then(() => { h.msg.ack(); this.drain(); }, (err: unknown) => { this.failed(h, err); this.drain(); });
      } else {
        h.msg.ack();
      }
    }
  }

  /** A handler threw: say so, and give the message back for the group's backoff. */
  private failed(h: Held<T>, err: unknown): void {
    this.emit('error', new SluiceError('handler', `consumer handler threw: ${err instanceof Error ? err.message : String(err)}`, { cause: err, retryable: false }));
    h.msg.nack({ reason: (err instanceof Error ? err.message : String(err)).slice(0, 256) });
  }

  /** Acknowledges (`ack`) or gives back a message: sent only while this connection holds its lease. */
  private settle(h: Held<T>, ack: boolean, o: NackOptions = {}): boolean {
    const delay = o.delay;
    if (delay !== undefined && !(delay >= 0 && delay <= Number.MAX_SAFE_INTEGER)) throw new SluiceError('bad-request', 'nack delay must be a number of ms');
    if (h.settled) return false;
    h.settled = true;
    this.outs.delete(h);
    const offset = h.msg.offset;
    const held = this.leases.get(offset);
    let sent = false;
    // A later lease of the same offset: done here means done (ack it); a nack leaves the later one be.
    if (held && (held === h || ack)) {
      this.leases.delete(offset);
      sent = true;
      if (ack) this.queueAck(held);
      else {
        this.flushAcks();
        const n: NackOptions = {};
        if (delay !== undefined) n.delay = Math.round(delay);
        if (o.reason !== undefined) n.reason = o.reason;
        this.host.sendNack(this.id, offset, n);
      }
    } else if (h.lost) {
      this.lose(h, ack ? 'ack' : 'nack');
      if (this.withheld > 0) {
        this.withheld--;
        this.owed++;
        this.giveBack();
      }
    }
    if (this.outs.size === 0 && this.idle) {
      const idle = this.idle;
      this.idle = undefined;
      idle();
    }
    return sent;
  }

  /** Acks of one turn go out together (at most MAX_ACK_BATCH per frame). */
  private queueAck(h: Held<T>): void {
    this.acks.push(h);
    if (this.acks.length >= MAX_ACK_BATCH) this.flushAcks();
    else if (this.acks.length === 1) queueMicrotask(() => this.flushAcks());
  }

  private flushAcks(): void {
    if (this.acks.length === 0) return;
    const offsets = this.acks.map((h) => h.msg.offset);
    this.acks = [];
    this.host.sendAck(this.id, offsets);
  }

  private lose(h: Held<T>, op: 'ack' | 'nack'): void {
    this.emit('lost', { reason: 'connection', op, offset: h.msg.offset, attempt: h.msg.attempt });
  }

  /** Returns the credit withheld for messages from earlier connections as they settle. */
  private giveBack(): void {
    if (this.owed > 0 && this.state === 'subscribed' && this.host.ready) {
      this.host.sendCredit(this.id, this.owed);
      this.owed = 0;
    }
  }

  private refused(err: SluiceError): void {
    this.failure = err;
    this.readyReject(err);
    this.emit('error', err);
    this.finish();
  }

  /** The one place the state changes. */
  private setState(newState: ConsumerState): void {
    const oldState = this.state;
    if (oldState === newState) return;
    this.state = newState;
    this.emit('state', { oldState, newState });
  }

  private finish(): void {
    if (this.state === 'closed') return;
    this.queue = [];
    this.leases.clear();
    this.host.forget(this);
    this.setState('closed');
    const pulls = this.pulls;
    this.pulls = [];
    for (const p of pulls) {
      if (this.failure) p.reject(this.failure);
      else p.resolve({ done: true, value: undefined });
    }
    const idle = this.idle;
    this.idle = undefined;
    idle?.();
  }
}
