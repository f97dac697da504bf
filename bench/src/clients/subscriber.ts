/**
 * What every bench subscriber is, whatever it speaks: it counts what it receives per topic
 * sequence (a Tally), reports latencies to the worker's Sink, and can be made slow, dropped and
 * resumed. The implementations (one per wire) live next to this file.
 */

export type SubscriberKind =
  | 'sluice' | 'plain' | 'socketio' | 'nats' | 'jetstream'
  // queue members (scenarios/queue.ts): each message goes to one of them, which acknowledges it
  | 'sluice-group' | 'amqp' | 'jetstream-queue';

/** How to reach a target, as the parent sends it to a worker (plain data). */
export interface SubscriberSpec {
  kind: SubscriberKind;
  /** Base URL of the WebSocket endpoint (ws://127.0.0.1:PORT); RabbitMQ: the AMQP URL. */
  url: string;
  /** Sluice: `reconnect` goes there instead (resuming on another node of a cluster). */
  resumeUrl?: string;
  /** Sluice: HELLO token (auth on). */
  token?: string;
  /** Sluice topic / NATS subject / Socket.IO room of topic i is `${prefix}${i}`. */
  prefix: string;
  /**
   * Sluice credit window (and JetStream pull window); re-granted by half of it. Queue members: the
   * most unacknowledged deliveries a member holds (Sluice group credit, AMQP prefetch, JetStream
   * pull requests outstanding).
   */
  credit?: number;
  /** JetStream stream name. */
  stream?: string;
  /** Sluice queue member: the consumer group to join. */
  group?: string;
  /** RabbitMQ queue member: the queue to consume. */
  queue?: string;
  /** JetStream queue member: the durable pull consumer to pull from. */
  consumer?: string;
  /** Socket.IO: the server keeps state for recovery (each event carries an offset). */
  recovery?: boolean;
}

/** Per-subscriber delivery accounting. `last` is the highest sequence seen (1-based). */
export class Tally {
  last = 0;
  received = 0;
  gaps = 0;
  /** Of `gaps`, those the server announced (Sluice GAP: retention trimmed them), not silent losses. */
  trimmed = 0;
  dups = 0;
  closed = false;
  closeCode = 0;
  closedAtMs = 0;
  /** Set for slow subscribers: they are left out of the progress minimum. */
  slow = false;
  /** Joined while messages were already flowing: the first sequence received is its start. */
  late = false;
  errors = 0;
  /** The last error this subscriber saw (queue members), for the report. */
  lastError = '';
  /** Queue members: deliveries that were a redelivery (attempt 2 or more, or flagged redelivered). */
  redelivered = 0;
  /** Called after every delivery (the publisher's in-process probe uses it). */
  listener: (() => void) | undefined;
  private watchSeq = Number.POSITIVE_INFINITY;
  private onWatch: (() => void) | undefined;

  got(seq: number): void {
    if (this.late && this.received === 0) this.last = seq - 1;
    this.received++;
    if (seq === this.last + 1) this.last = seq;
    else if (seq > this.last) {
      this.gaps += seq - this.last - 1;
      this.last = seq;
    } else this.dups++;
    if (this.last >= this.watchSeq) this.fire();
    this.listener?.();
  }

  /** Calls `cb` once, as soon as `last` reaches `seq`. */
  onReach(seq: number, cb: () => void): void {
    this.watchSeq = seq;
    this.onWatch = cb;
    if (this.last >= seq) this.fire();
  }

  private fire(): void {
    const cb = this.onWatch;
    this.watchSeq = Number.POSITIVE_INFINITY;
    this.onWatch = undefined;
    cb?.();
  }

  /** `count` consecutive sequences from `first`. */
  gotRange(first: number, count: number): void {
    if (count <= 0) return;
    if (this.late && this.received === 0) this.last = first - 1;
    if (first === this.last + 1) {
      this.received += count;
      this.last = first + count - 1;
      if (this.last >= this.watchSeq) this.fire();
      this.listener?.();
      return;
    }
    for (let i = 0; i < count; i++) this.got(first + i);
  }

  /**
   * Queue members: `n` deliveries acknowledged. Members receive an unordered share of the topic,
   * so nothing here checks order: `received` counts acknowledgements, `last` stays 0.
   */
  ackedSome(n: number): void {
    this.received += n;
    this.listener?.();
  }

  markClosed(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.closeCode = code;
    this.closedAtMs = performance.now();
  }
}

/**
 * How a slow subscriber stops consuming:
 * - `consume`: it stops taking messages. Sluice grants no more credit but keeps reading its socket
 *   (the gateway must stop sending and hold nothing); the peers, which have no credit, pause their
 *   socket.
 * - `read`: once subscribed it stops reading its socket altogether, whatever credit it holds (a
 *   Sluice subscriber keeps the window it asked for), so the kernel's buffers fill and then the
 *   server's. The connection stays alive: every KEEPALIVE_MS it sends what its wire lets a client
 *   send unasked (keepAliveFrame), because a paused socket cannot see, let alone answer, the
 *   server's pings, and idle timeouts would otherwise close it and end the measurement early.
 */
export type Stall = 'consume' | 'read';

/** Well inside every server's idle limit (Sluice: two heartbeats, 40 s; raw uWS 40 s; Engine.IO 25 + 20 s). */
export const KEEPALIVE_MS = 5000;

/** Where subscribers report latencies; `latency` false means: do not read timestamps at all. */
export interface Sink {
  latency: boolean;
  record(us: number): void;
}

export interface Subscriber {
  readonly tally: Tally;
  /** Connects and subscribes (topic index null: connects only). Resolves once subscribed. */
  open(): Promise<void>;
  /** Stops consuming (see Stall); takes effect once subscribed if called before `open`. */
  stall(how?: Stall): void;
  /** Consumes again: reads its socket again and, for Sluice, grants what it owes. */
  unstall(): void;
  /** Drops the connection, keeping the position for `reconnect`. */
  disconnect(): Promise<void>;
  /** Reconnects and resumes from the position kept; resolves when subscribed again. */
  reconnect(): Promise<{ recovered: boolean }>;
  close(): void;
}

/**
 * A queue member: a subscriber that acknowledges each delivery as it arrives (acks of one socket
 * read may leave together). Stalled, it takes deliveries and never acknowledges them: what a hung
 * worker does.
 */
export interface Member extends Subscriber {
  /**
   * Called for every delivery before it is acknowledged (in-process observers: the redelivery
   * measurement): the payload's sequence, the attempt (1 = first delivery; RabbitMQ only says
   * "redelivered", read as 2) and performance.now().
   */
  onDelivery: ((seq: number, attempt: number, atMs: number) => void) | undefined;
}

/** A promise with its resolve/reject outside, for waiting on a frame. */
export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
