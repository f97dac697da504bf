/**
 * A subscription to one topic: one handler (or iterator) of the topic's feed (feed.ts), which is
 * the client's one wire subscription of that topic. It receives the log in offset order, consumes
 * at its own pace within the window (the feed re-grants credit as the slowest handler consumes), and
 * remembers how far it consumed; it says so when something was lost.
 *
 * States (see STATES.md): it mirrors its feed (resolving → subscribing ⇄ subscribed) until it ends
 * (`closed`): on `unsubscribe()`, when the feed is refused, or when the client closes or fails.
 */
import { Emitter } from './emitter.js';
import { SluiceError } from './errors.js';
import type { Feed } from './feed.js';
import type { Headers } from './protocol/frames.js';
import type { Position, ResumeStore } from './resume.js';

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
  /**
   * Offset to start at when there is no saved position (1 = everything retained). Omitted: live only.
   * With `resume`, used by the first subscription of a topic only: one that joins a topic this client
   * already follows starts where the others are (read older messages with `client.history`).
   */
  from?: number;
  /** Where positions are saved; `false` to keep none. Default: the client's `resume` option. First subscription of a topic only. */
  resume?: ResumeStore | false;
  /**
   * Credit window: most messages in flight or held unconsumed (default 64, capped by the gateway).
   * Handlers of one topic share one wire subscription with the largest window among them.
   */
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
  /** The connection's byte window (protocol 1.5 `maxWindowBytes`); 0: none (an older gateway). */
  readonly maxWindowBytes: number;
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

  /** @internal */
  readonly window: number;
  private readonly concurrency: number;
  private queue: Message<T>[] = [];
  /** Handler form: offsets being handled, ascending (at most `concurrency`). */
  private inFlight: number[] = [];
  private lastDispatched = 0;
  private pulls: Pull<T>[] = [];
  /** Iterator form: the message handed out last, consumed when the next one is pulled. */
  private lent: Message<T> | undefined;
  private failure: SluiceError | undefined;
  private pos: Position | undefined;

  /** @internal */
  constructor(
    private readonly feed: Feed,
    private readonly handler: MessageHandler<T> | undefined,
    options: SubscribeOptions,
  ) {
    super();
    this.window = Math.max(1, Math.floor(options.window ?? options.credit ?? 64));
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
    this.ready = new Promise((resolve, reject) => { this.readyResolve = resolve; this.readyReject = reject; });
    this.ready.catch(() => undefined);
  }

  get topic(): string {
    return this.feed.topic;
  }

  /** This subscription's last consumed position (a saved one until it consumes). */
  get position(): Position | undefined {
    return this.pos;
  }

  /** Messages received and not yet consumed (never more than the window). */
  get held(): number {
    return this.queue.length + this.inFlight.length + (this.lent ? 1 : 0);
  }

  /**
   * Stops this subscription (the last one of its topic on this client also stops the wire
   * subscription). Messages not yet consumed are dropped; the saved position stays.
   */
  async unsubscribe(): Promise<void> {
    if (this.state === 'closed') return;
    this.finish();
    this.feed.remove(this);
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

  // ---- driven by the feed --------------------------------------------------------------------

  /** @internal The feed changed state. */
  mirror(state: SubscriptionState): void {
    if (state === 'closed') this.finish();
    else this.setState(state);
  }

  /** @internal The position this subscription starts from (saved, or where it joined). */
  startAt(p: Position): void {
    this.pos = p;
  }

  /** @internal */
  onSubscribed(event: SubscribedEvent): void {
    this.readyResolve(event);
    this.emit('subscribed', event);
  }

  /** @internal */
  push(msg: Message): void {
    if (this.state !== 'closed') this.queue.push(msg as Message<T>);
  }

  /** @internal ERROR for the feed (`refused`: the subscription cannot go on). */
  failed(err: SluiceError, refused: boolean): void {
    if (refused) {
      this.failure = err;
      this.readyReject(err);
    }
    this.emit('error', err);
    if (refused) this.finish();
  }

  /** @internal The client closed (`failed`: it gave up for good; iterators then throw `err`). */
  clientClosed(err: SluiceError, failed: boolean): void {
    if (this.state === 'closed') return;
    this.readyReject(err);
    if (failed) this.failure = err;
    this.finish();
  }

  /** @internal Hands queued messages to the handler or to waiting pulls. */
  drain(): void {
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

  // ---- internals ------------------------------------------------------------------------------

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
    this.feed.maybeGrant();
    return { done: false, value: msg };
  }

  private returnLent(): void {
    const msg = this.lent;
    if (!msg) return;
    this.lent = undefined;
    this.consumed(msg, msg.offset);
  }

  /** A message is done: the position only moves forward within an epoch; the feed saves and grants. */
  private consumed(msg: Message<T>, position: number): void {
    if (this.state === 'closed') return;
    if (msg.epoch !== this.pos?.epoch || position > this.pos.offset) this.pos = { offset: position, epoch: msg.epoch };
    this.feed.consumed(msg.epoch);
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
    this.setState('closed');
    const pulls = this.pulls;
    this.pulls = [];
    for (const p of pulls) {
      if (this.failure) p.reject(this.failure);
      else p.resolve({ done: true, value: undefined });
    }
  }
}
