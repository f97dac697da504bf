/**
 * A feed: the one wire subscription of a topic on this client, shared by every `Subscription`
 * (handler or iterator) the application made on that topic. The protocol allows one subscription per
 * topic per connection; a page where two components follow the same topic gets one SUB, one stream
 * of MSG frames, and each component its own copy of every message.
 *
 * Credit (the invariant that bounds memory): with window W (the largest window of its handlers),
 *   `serverCredit` (what the gateway may still send) + max over handlers of `held` ≤ W.
 * Every handler receives every message, so the gateway is granted credit as the *slowest* handler
 * consumes: no handler ever holds more than W, none is flooded, and while the slowest has room the
 * others are not held back. A handler that stops consuming altogether (a paused view) holds the
 * topic for this client's other handlers once it holds W — the gateway keeps the rest in the log,
 * nothing is dropped. Handlers that must never wait for each other belong on separate clients.
 *
 * Byte window (protocol 1.5, when the gateway announced `maxWindowBytes` B): the gateway sends a
 * subscription at most B bytes of messages (plus one message) after it received its last CREDIT or
 * SUB. So the feed also grants once the slowest handler consumed B / 2 bytes since the feed's last
 * grant (or SUB), however few messages that is. A message's bytes here are its share of the frame
 * that carried it (frame length / messages in it), never less than what the gateway counts for it
 * (its stored entry, which the frame holds plus a header).
 * No deadlock: say the gateway stopped a subscription for bytes. It sent at least B bytes after it
 * received the feed's last CREDIT (or SUB), and every one of those messages was sent after the feed
 * sent that CREDIT, so it arrives, and is consumed, after it. Once the handlers consumed what they
 * were sent, the feed counted at least B ≥ B / 2 bytes since its last grant, and grants (CREDIT `n`
 * for the messages consumed; 0 if the window shrank meanwhile: a CREDIT of 0 still opens a new byte
 * window). A handler that stops consuming stops the topic, as with message credit.
 *
 * Positions: `next` is the next offset expected on the wire; the resume store holds the offset up
 * to which *every* handler consumed, so a reload resumes after what all of them handled.
 *
 * States (STATES.md): resolving → subscribing ⇄ subscribed → closed, changed only by `setState`,
 * which every handler mirrors. The feed ends when its last handler leaves (UNSUB), or when the
 * gateway refuses it, or when the client closes or fails.
 */
import type { SluiceError } from './errors.js';
import type { MsgsItem, SubscribedFrame } from './protocol/frames.js';
import type { ResumeStore } from './resume.js';
import type { GapEvent, Message, SubscribedEvent, Subscription, SubscriptionHost, SubscriptionState } from './subscription.js';

export class Feed {
  state: SubscriptionState = 'resolving';
  readonly handlers = new Set<Subscription<any>>();
  /** The last SUBSCRIBED, for handlers that join later. */
  subscribed: SubscribedEvent | undefined;
  private epoch: string | undefined;
  /** Next offset expected from the gateway (undefined: live, nothing known yet). */
  next: number | undefined;
  /** `from` of the SUB in flight, to compute what a non-recovered resume lost. */
  private requested: number | undefined;
  private serverCredit = 0;
  /** Byte window: bytes of each message handed to the handlers and not yet consumed by all, from `sizesHead`. */
  private sizes: number[] = [];
  private sizesHead = 0;
  /** Messages handed to the handlers, and how many of them the slowest consumed (their bytes counted). */
  private received = 0;
  private counted = 0;
  /** Bytes the slowest handler consumed since the last CREDIT or SUB. */
  private bytesSinceGrant = 0;
  /** Saved position: everything up to this offset (of `consumedEpoch`) was consumed by every handler. */
  private consumedUpTo = 0;
  private consumedEpoch: string | undefined;

  constructor(
    private readonly host: SubscriptionHost,
    readonly id: number,
    readonly topic: string,
    private readonly resume: ResumeStore | undefined,
    from: number | undefined,
  ) {
    void this.start(from);
  }

  /** Largest window of the handlers (each is at least 1). */
  private get window(): number {
    let w = 1;
    for (const h of this.handlers) w = Math.max(w, h.window);
    return Math.min(w, this.host.maxCredit);
  }

  /** Messages held by the handler that holds the most. */
  private get held(): number {
    let n = 0;
    for (const h of this.handlers) n = Math.max(n, h.held);
    return n;
  }

  add(h: Subscription<any>): void {
    this.handlers.add(h);
    h.mirror(this.state);
    // A handler joining a running feed starts at the wire's position: older messages are the others'.
    if (this.subscribed && this.epoch !== undefined && this.next !== undefined) h.startAt({ offset: this.next - 1, epoch: this.epoch });
    if (this.subscribed) h.onSubscribed(this.subscribed);
    this.maybeGrant();
  }

  /** A handler left: the last one takes the wire subscription with it. */
  remove(h: Subscription<any>): void {
    if (!this.handlers.delete(h)) return;
    if (this.handlers.size > 0) return this.consumed(undefined);
    const onWire = this.state === 'subscribed' || this.state === 'subscribing';
    this.finish();
    if (onWire && this.host.ready) this.host.sendUnsub(this.id);
  }

  // ---- driven by the client ------------------------------------------------------------------

  /** (Re)sends SUB on a ready connection, from where delivery stands. */
  subscribeOnWire(): void {
    if (this.state === 'closed' || this.state === 'resolving') return;
    this.setState('subscribing');
    const credit = Math.max(0, this.window - this.held);
    this.serverCredit = credit;
    this.bytesSinceGrant = 0; // a SUB opens the gateway's byte window
    this.requested = this.next;
    const opts: { from?: number; epoch?: string; credit: number } = { credit };
    if (this.next !== undefined) opts.from = this.next;
    if (this.epoch !== undefined) opts.epoch = this.epoch;
    this.host.sendSub(this.id, this.topic, opts);
  }

  /** The connection dropped: the gateway forgot this subscription. */
  connectionLost(): void {
    if (this.state === 'subscribed') this.setState('subscribing');
  }

  onSubscribed(f: SubscribedFrame): void {
    if (this.state === 'closed') return;
    const requested = this.state === 'subscribed' ? this.next : this.requested;
    if (requested !== undefined && !f.recovered) {
      if (this.state === 'subscribed' || (this.epoch !== undefined && this.epoch !== f.epoch) || f.from < requested) {
        // Another epoch, unasked (a shared store after a failover or a loss), or a log behind what we
        // saw in the same epoch: everything after `requested - 1` of the old log may differ.
        this.gap({ topic: this.topic, reason: 'epoch', from: requested, to: null, epoch: f.epoch });
      } else if (f.from > requested) {
        this.gap({ topic: this.topic, reason: 'trimmed', from: requested, to: f.from - 1 });
      }
    }
    this.epoch = f.epoch;
    this.next = f.from;
    this.setState('subscribed');
    const event = { epoch: f.epoch, head: f.head, from: f.from, recovered: f.recovered };
    this.subscribed = event;
    for (const h of this.handlers) h.onSubscribed(event);
    // Messages consumed while the SUB was in flight earned credit the SUB could not carry.
    this.maybeGrant();
  }

  /** MSG or MSGS for this topic (`frameBytes` long): every handler gets every message. */
  onMessages(first: number, items: readonly MsgsItem[], frameBytes = 0): void {
    if (this.state === 'closed' || this.epoch === undefined) return;
    const share = frameBytes / items.length;
    for (let i = 0; i < items.length; i++) {
      const offset = first + i;
      if (this.next !== undefined && offset < this.next) continue; // never twice
      if (this.next !== undefined && offset > this.next) {
        this.gap({ topic: this.topic, reason: 'trimmed', from: this.next, to: offset - 1 });
      }
      const m = items[i]!;
      this.serverCredit--;
      this.next = offset + 1;
      this.sizes.push(share);
      this.received++;
      const msg: Message = { topic: this.topic, offset, epoch: this.epoch, data: m.data, ts: m.ts, headers: m.headers, orderingKey: m.orderingKey, priority: m.priority ?? 0, traced: m.traced === true };
      for (const h of this.handlers) h.push(msg);
    }
    for (const h of this.handlers) h.drain();
  }

  /** GAP: offsets from..to were trimmed before we read them. */
  onGap(from: number, to: number): void {
    if (this.state === 'closed') return;
    if (this.next !== undefined && to < this.next) return;
    const start = this.next === undefined ? from : Math.max(from, this.next);
    this.next = to + 1;
    this.gap({ topic: this.topic, reason: 'trimmed', from: start, to });
  }

  /** ERROR for this subscription: a refusal (while subscribing) ends it for every handler. */
  onError(err: SluiceError, _re?: number): void {
    const refused = this.state === 'subscribing' || this.state === 'resolving';
    for (const h of [...this.handlers]) h.failed(err, refused);
    if (refused) this.finish();
  }

  /** The client closed (`failed`: for good, with `err` as the reason). */
  clientClosed(err: SluiceError, failed: boolean): void {
    for (const h of [...this.handlers]) h.clientClosed(err, failed);
    this.finish();
  }

  /**
   * A handler consumed up to a new position (undefined: one left, which may free the others): save
   * the position all handlers reached and maybe grant credit.
   */
  consumed(epoch: string | undefined): void {
    let min = Infinity;
    for (const h of this.handlers) {
      const p = h.position;
      if (p && epoch !== undefined && p.epoch !== epoch) { min = 0; break; }
      min = Math.min(min, p ? p.offset : 0);
    }
    epoch ??= this.epoch;
    if (epoch !== undefined && min > 0 && min !== Infinity && (epoch !== this.consumedEpoch || min > this.consumedUpTo)) {
      this.consumedUpTo = min;
      this.consumedEpoch = epoch;
      this.resume?.set(this.topic, { offset: min, epoch });
    }
    this.maybeGrant();
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
      for (const h of this.handlers) h.startAt(saved);
    } else if (from !== undefined) {
      this.next = Math.max(1, Math.floor(from));
    }
    this.setState('subscribing');
    if (this.host.ready) this.subscribeOnWire();
  }

  private gap(g: GapEvent): void {
    for (const h of this.handlers) h.emit('gap', g);
  }

  maybeGrant(): void {
    if (this.state !== 'subscribed' || !this.host.ready) return;
    const window = this.window;
    const held = this.held;
    const deficit = window - this.serverCredit - held;
    const bytesWindow = this.host.maxWindowBytes;
    this.countConsumed(held);
    if (deficit >= Math.max(1, Math.floor(window / 2)) || (bytesWindow > 0 && this.bytesSinceGrant >= bytesWindow / 2)) {
      const n = Math.max(0, deficit);
      this.serverCredit += n;
      this.bytesSinceGrant = 0;
      this.host.sendCredit(this.id, n);
    }
  }

  /**
   * Adds the bytes of the messages the slowest handler consumed since the last call. Handlers get
   * every message in order, so the one that holds the most (`held`) holds the newest `held`: the
   * first `received - held` were consumed by all.
   */
  private countConsumed(held: number): void {
    const consumed = this.received - held;
    while (this.counted < consumed) {
      this.bytesSinceGrant += this.sizes[this.sizesHead++]!;
      this.counted++;
    }
    if (this.sizesHead >= 1024 && this.sizesHead * 2 >= this.sizes.length) {
      this.sizes = this.sizes.slice(this.sizesHead);
      this.sizesHead = 0;
    }
  }

  /** The one place the state changes; every handler follows. */
  private setState(newState: SubscriptionState): void {
    if (this.state === newState) return;
    this.state = newState;
    for (const h of this.handlers) h.mirror(newState);
  }

  private finish(): void {
    if (this.state === 'closed') return;
    this.host.forget(this);
    this.setState('closed');
    this.handlers.clear();
  }
}
