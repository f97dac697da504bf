/**
 * A subscription to one topic: receives its log in offset order, re-grants credit only as the
 * application consumes, remembers where it is, and says so when something was lost.
 *
 * Credit accounting (the invariant that bounds memory): with window W,
 *   `serverCredit` (what the gateway may still send) + `held` (received, not yet consumed) ≤ W.
 * The gateway never sends more than it was granted, so a page that cannot keep up holds at most W
 * messages and the rest stays in the log. Credit is granted in chunks of at least W/2.
 *
 * Positions: `next` is the next offset expected on the wire (messages still queued locally are
 * kept across a reconnect, so a reconnect resumes from `next`); the resume store holds the last
 * *consumed* offset, so a page reload resumes after what the application actually handled.
 *
 * States (see STATES.md): resolving → subscribing ⇄ subscribed → closed; every change goes
 * through `setState`, which emits `state`. A lost connection takes `subscribed` back to
 * `subscribing` until the SUB sent on the next connection is answered.
 */
import { Emitter } from './emitter.js';
import { SluiceError } from './errors.js';
import type { Headers, MsgsItem, SubscribedFrame } from './protocol/frames.js';
import type { ResumeStore } from './resume.js';

export interface Message<T = unknown> {
  topic: string;
  offset: number;
  /** The log's epoch this offset belongs to. */
  epoch: string;
  data: T;
  /** Gateway timestamp (ms since epoch) of when the message was stored. */
  ts: number;
  headers: Headers | undefined;
  /** The ordering key it was published with (protocol 1.2), if any. */
  orderingKey: string | undefined;
  /** The priority it was published with (protocol 1.3; 0 when none). */
  priority: number;
  /** Its journey is recorded (protocol 1.3): the admin API and the console show it. */
  traced: boolean;
}

/**
 * Something was lost between two messages. `trimmed`: offsets `from..to` were removed by
 * retention before this subscription read them. `epoch`: the log was reset or lost (its epoch
 * changed), so everything after `from - 1` in the old epoch is gone (`to` is null) and delivery
 * continues in the new epoch.
 */
export type GapEvent =
  | { topic: string; reason: 'trimmed'; from: number; to: number }
  | { topic: string; reason: 'epoch'; from: number; to: null; epoch: string };

export interface SubscribedEvent {
  epoch: string;
  head: number;
  from: number;
  recovered: boolean;
}

export interface SubscriptionStateChange {
  oldState: SubscriptionState;
  newState: SubscriptionState;
}

export interface SubscriptionEvents extends Record<string, unknown> {
  state: SubscriptionStateChange;
  subscribed: SubscribedEvent;
  gap: GapEvent;
  /** A handler threw (the message counts as handled), or the gateway refused the subscription. */
  error: SluiceError;
}

export type MessageHandler<T = unknown> = (msg: Message<T>) => void | Promise<void>;

export interface SubscribeOptions {
  /** Offset to start at when there is no saved position (1 = everything retained). Omitted: live only. */
  from?: number;
  /** Where positions are saved; `false` to keep none. Default: the client's `resume` option. */
  resume?: ResumeStore | false;
  /** Credit window: most messages in flight or held unconsumed (default 64, capped by the gateway). */
  window?: number;
  /** Alias of `window`. */
  credit?: number;
  /** Handler form only: how many messages may be handled at once (default 1: strictly in order). */
  concurrency?: number;
}

export type SubscriptionState = 'resolving' | 'subscribing' | 'subscribed' | 'closed';

/** @internal What a subscription needs from its client. */
export interface SubscriptionHost {
  readonly ready: boolean;
  readonly maxCredit: number;
  sendSub(subId: number, topic: string, opts: { from?: number; epoch?: string; credit: number; group?: string }): void;
  sendCredit(subId: number, n: number): void;
  sendUnsub(subId: number): void;
  /** The subscription (or consumer) ended: the client stops routing to it. */
  forget(sub: { readonly id: number; readonly topic: string }): void;
}

interface Pull<T> {
  resolve(r: IteratorResult<Message<T>>): void;
  reject(err: unknown): void;
}

export class Subscription<T = unknown> extends Emitter<SubscriptionEvents> implements AsyncIterable<Message<T>> {
  state: SubscriptionState = 'resolving';
  /** Resolves at the first SUBSCRIBED; rejects if the gateway refuses the subscription. */
  readonly ready: Promise<SubscribedEvent>;
  private readyResolve!: (e: SubscribedEvent) => void;
  private readyReject!: (err: unknown) => void;

  private readonly window: number;
  private readonly concurrency: number;
  private readonly resume: ResumeStore | undefined;
  private epoch: string | undefined;
  /** Next offset expected from the gateway (undefined: live, nothing known yet). */
  private next: number | undefined;
  /** `from` of the SUB in flight, to compute what a non-recovered resume lost. */
  private requested: number | undefined;
  private queue: Message<T>[] = [];
  /** Handler form: offsets being handled, ascending (at most `concurrency`). */
  private inFlight: number[] = [];
  private lastDispatched = 0;
  private serverCredit = 0;
  /** Saved position: everything up to this offset (of `consumedEpoch`) was consumed. */
  private consumedUpTo = 0;
  private consumedEpoch: string | undefined;
  private everSubscribed = false;
  private pulls: Pull<T>[] = [];
  /** Iterator form: the message handed out last, consumed when the next one is pulled. */
  private lent: Message<T> | undefined;
  private failure: SluiceError | undefined;

  /** @internal */
  constructor(
    private readonly host: SubscriptionHost,
    /** @internal */ readonly id: number,
    readonly topic: string,
    private readonly handler: MessageHandler<T> | undefined,
    options: SubscribeOptions,
    defaultResume: ResumeStore | undefined,
  ) {
    super();
    this.window = Math.max(1, Math.floor(options.window ?? options.credit ?? 64));
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
    this.resume = options.resume === false ? undefined : (options.resume ?? defaultResume);
    this.ready = new Promise((resolve, reject) => { this.readyResolve = resolve; this.readyReject = reject; });
    this.ready.catch(() => undefined);
    void this.start(options.from);
  }

  /** The last consumed position, as saved for resuming. */
  get position(): { offset: number; epoch: string } | undefined {
    return this.consumedEpoch !== undefined ? { offset: this.consumedUpTo, epoch: this.consumedEpoch } : undefined;
  }

  /** Messages received and not yet consumed (never more than the window). */
  get held(): number {
    return this.queue.length + this.inFlight.length + (this.lent ? 1 : 0);
  }

  /** Stops the subscription. Messages not yet consumed are dropped; the saved position stays. */
  async unsubscribe(): Promise<void> {
    if (this.state === 'closed') return;
    const wasOnWire = this.state === 'subscribed' || this.state === 'subscribing';
    this.finish();
    if (wasOnWire && this.host.ready) this.host.sendUnsub(this.id);
  }

  [Symbol.asyncIterator](): AsyncIterator<Message<T>> {
    if (this.handler) throw new SluiceError('bad-request', 'this subscription has a handler; iterate one made without a handler');
    return {
      next: () => {
        this.returnLent();
        if (this.failure) return Promise.reject(this.failure);
        const msg = this.queue.shift();
        if (msg) return Promise.resolve(this.lend(msg));
        if (this.state === 'closed') return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve, reject) => this.pulls.push({ resolve, reject }));
      },
      return: async () => {
        this.returnLent();
        await this.unsubscribe();
        return { done: true, value: undefined };
      },
    };
  }

  // ---- driven by the client ------------------------------------------------------------------

  /** @internal (Re)sends SUB on a ready connection, from where delivery stands. */
  subscribeOnWire(): void {
    if (this.state === 'closed' || this.state === 'resolving') return;
    this.setState('subscribing');
    const credit = Math.max(0, Math.min(this.window, this.host.maxCredit) - this.held);
    this.serverCredit = credit;
    this.requested = this.next;
    const opts: { from?: number; epoch?: string; credit: number } = { credit };
    if (this.next !== undefined) opts.from = this.next;
    if (this.epoch !== undefined) opts.epoch = this.epoch;
    this.host.sendSub(this.id, this.topic, opts);
  }

  /** @internal The connection dropped: the gateway forgot this subscription. */
  connectionLost(): void {
    if (this.state === 'subscribed') this.setState('subscribing');
  }

  /** @internal */
  onSubscribed(f: SubscribedFrame): void {
    if (this.state === 'closed') return;
    if (this.state === 'subscribed') {
      // Unasked: the topic's log changed epoch under this subscription (a shared store after a
      // failover or a loss). Not recovered: what we had since `next` may differ; say so.
      if (!f.recovered) this.emit('gap', { topic: this.topic, reason: 'epoch', from: this.next ?? f.from, to: null, epoch: f.epoch });
      this.epoch = f.epoch;
      this.next = f.from;
      this.emit('subscribed', { epoch: f.epoch, head: f.head, from: f.from, recovered: f.recovered });
      return;
    }
    const requested = this.requested;
    if (requested !== undefined && !f.recovered) {
      if (this.epoch !== undefined && this.epoch !== f.epoch) {
        this.emit('gap', { topic: this.topic, reason: 'epoch', from: requested, to: null, epoch: f.epoch });
      } else if (f.from > requested) {
        this.emit('gap', { topic: this.topic, reason: 'trimmed', from: requested, to: f.from - 1 });
      } else if (f.from < requested) {
        // The gateway's log is behind what we saw in the same epoch: treat it as a reset.
        this.emit('gap', { topic: this.topic, reason: 'epoch', from: requested, to: null, epoch: f.epoch });
      }
    }
    this.epoch = f.epoch;
    this.next = f.from;
    const first = this.state === 'subscribing' && !this.everSubscribed;
    this.setState('subscribed');
    const event = { epoch: f.epoch, head: f.head, from: f.from, recovered: f.recovered };
    if (first) {
      this.everSubscribed = true;
      this.readyResolve(event);
    }
    this.emit('subscribed', event);
    // Messages consumed while the SUB was in flight earned credit the SUB could not carry.
    this.maybeGrant();
  }

  /** @internal MSG or MSGS for this topic. */
  onMessages(first: number, items: readonly MsgsItem[]): void {
    if (this.state === 'closed' || this.epoch === undefined) return;
    for (let i = 0; i < items.length; i++) {
      const offset = first + i;
      if (this.next !== undefined && offset < this.next) continue; // never twice
      if (this.next !== undefined && offset > this.next) {
        this.emit('gap', { topic: this.topic, reason: 'trimmed', from: this.next, to: offset - 1 });
      }
      const m = items[i]!;
      this.serverCredit--;
      this.next = offset + 1;
      this.queue.push({ topic: this.topic, offset, epoch: this.epoch, data: m.data as T, ts: m.ts, headers: m.headers, orderingKey: m.orderingKey, priority: m.priority ?? 0, traced: m.traced === true });
    }
    this.drain();
  }

  /** @internal GAP: offsets from..to were trimmed before we read them. */
  onGap(from: number, to: number): void {
    if (this.state === 'closed') return;
    if (this.next !== undefined && to < this.next) return;
    const start = this.next === undefined ? from : Math.max(from, this.next);
    this.next = to + 1;
    this.emit('gap', { topic: this.topic, reason: 'trimmed', from: start, to });
  }

  /** @internal ERROR for this subscription (`re`: the type of the frame it answers; unused here). */
  onError(err: SluiceError, _re?: number): void {
    if (this.state === 'subscribing' || this.state === 'resolving') {
      // Refused (forbidden, invalid-topic, ...): the subscription cannot go on.
      this.failure = err;
      this.readyReject(err);
      this.emit('error', err);
      this.finish();
      return;
    }
    this.emit('error', err);
  }

  /** @internal The client closed. */
  clientClosed(err: SluiceError): void {
    if (this.state === 'closed') return;
    if (!this.everSubscribed) this.readyReject(err);
    this.finish();
  }

  // ---- internals ------------------------------------------------------------------------------

  private async start(from: number | undefined): Promise<void> {
    let saved: { offset: number; epoch: string } | undefined;
    try {
      saved = this.resume ? await this.resume.get(this.topic) : undefined;
    } catch {
      saved = undefined;
    }
    if (this.state === 'closed') return;
    if (saved) {
      this.epoch = saved.epoch;
      this.next = saved.offset + 1;
      this.consumedUpTo = saved.offset;
      this.consumedEpoch = saved.epoch;
    } else if (from !== undefined) {
      this.next = Math.max(1, Math.floor(from));
    }
    this.setState('subscribing');
    if (this.host.ready) this.subscribeOnWire();
  }

  private drain(): void {
    if (this.handler) {
      while (this.inFlight.length < this.concurrency && this.queue.length > 0) {
        const msg = this.queue.shift()!;
        this.inFlight.push(msg.offset);
        this.lastDispatched = msg.offset;
        let result: void | Promise<void>;
        try {
          result = this.handler(msg);
        } catch (err) {
          this.handlerFailed(err);
          this.handled(msg);
          continue;
        }
        if (result && typeof (result as Promise<void>).then === 'function') {
          (result as Promise<void>).then(
            () => this.handled(msg),
            (err: unknown) => { this.handlerFailed(err); this.handled(msg); },
          );
        } else {
          this.handled(msg);
        }
      }
      return;
    }
    while (this.pulls.length > 0 && this.queue.length > 0) {
      this.pulls.shift()!.resolve(this.lend(this.queue.shift()!));
    }
  }

  private handled(msg: Message<T>): void {
    this.inFlight.splice(this.inFlight.indexOf(msg.offset), 1);
    // With concurrency, completions come out of order: the position is just before the oldest
    // message still being handled (resuming from there redoes only unfinished ones).
    this.consumed(msg, this.inFlight.length > 0 ? this.inFlight[0]! - 1 : this.lastDispatched);
    if (this.state !== 'closed') this.drain();
  }

  private handlerFailed(err: unknown): void {
    this.emit('error', new SluiceError('handler', `message handler threw: ${err instanceof Error ? err.message : String(err)}`, { cause: err, retryable: false }));
  }

  private lend(msg: Message<T>): IteratorResult<Message<T>> {
    this.lent = msg;
    this.maybeGrant();
    return { done: false, value: msg };
  }

  private returnLent(): void {
    const msg = this.lent;
    if (!msg) return;
    this.lent = undefined;
    this.consumed(msg, msg.offset);
  }

  /** A message is done: save the position (it only moves forward within an epoch) and maybe grant. */
  private consumed(msg: Message<T>, position: number): void {
    if (msg.epoch !== this.consumedEpoch || position > this.consumedUpTo) {
      this.consumedUpTo = position;
      this.consumedEpoch = msg.epoch;
      this.resume?.set(this.topic, { offset: position, epoch: msg.epoch });
    }
    this.maybeGrant();
  }

  private maybeGrant(): void {
    if (this.state !== 'subscribed' || !this.host.ready) return;
    const window = Math.min(this.window, this.host.maxCredit);
    const deficit = window - this.serverCredit - this.held;
    if (deficit >= Math.max(1, Math.floor(window / 2))) {
      this.serverCredit += deficit;
      this.host.sendCredit(this.id, deficit);
    }
  }

  /** The one place the state changes. */
  private setState(newState: SubscriptionState): void {
    const oldState = this.state;
    if (oldState === newState) return;
    this.state = newState;
    this.emit('state', { oldState, newState });
  }

  private finish(): void {
    if (this.state === 'closed') return;
    this.queue = [];
    this.host.forget(this);
    this.setState('closed');
    const pulls = this.pulls;
    this.pulls = [];
    for (const p of pulls) {
      if (this.failure) p.reject(this.failure);
      else p.resolve({ done: true, value: undefined });
    }
  }
}
