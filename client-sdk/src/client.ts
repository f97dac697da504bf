/**
 * The client: one WebSocket to a gateway, kept alive across drops, carrying subscriptions and
 * publishes. Connection states (transitions in STATES.md), all changed by `setState`:
 *
 *   idle ──connect()/first use──▶ connecting ──WELCOME──▶ connected
 *                                    │  ▲                     │
 *                      drop/timeout  ▼  │ backoff elapsed     │ drop, heartbeat timeout, 42xx/41xx close
 *                                  reconnecting ◀─────────────┘
 *   connecting ──still failing `suspendAfterMs` after the connection was lost──▶ suspended
 *   suspended ──`suspendedRetryMs` elapsed, or connect()──▶ connecting (WELCOME: connected; else suspended)
 *   any ──terminal cause (40xx, upgrade refused 403, a token refused without getToken, or
 *         `maxTokenRefusals` in a row from it)──▶ failed
 *   any ──close()──▶ closed
 * Every change carries its cause (`error`: close code, reason, HTTP status, the runtime's error).
 *
 * Guarantees it keeps:
 * - Every publish carries an idempotency key, generated once and reused for every retry and
 *   reconnect, so a publish whose ACK was lost is stored once. Unacknowledged publishes wait in a
 *   bounded queue and are resent in order after reconnecting.
 * - Every subscription resubscribes after a reconnect from its next offset with its epoch; every
 *   consumer rejoins its group (its old connection's leases come back from the group later).
 * - Request and subscription ids share one counter, so an ERROR's id names exactly one of them even
 *   from a gateway that does not say what the ERROR answers (`re`, protocol 1.1).
 */
import { fullJitter, systemClock, type Backoff, type Clock } from './backoff.js';
import { Emitter } from './emitter.js';
import { Consumer, type ConsumeHandler, type ConsumeOptions, type ConsumerHost } from './consumer.js';
import { ClosedError, ConnectionError, fromErrorFrame, QueueFullError, SluiceError, SuspendedError, TimeoutError } from './errors.js';
import { Feed } from './feed.js';
import { httpUrl, history, type HistoryOptions, type HistoryPage } from './history.js';
import { randomKey } from './id.js';
import { closePolicy, CloseCode } from './protocol/codes.js';
import { decodeServerFrame } from './protocol/decode-server.js';
import { encodeClientFrame } from './protocol/encode.js';
import {
  FrameType,
  PROTOCOL_VERSION,
  protocolCompatible,
  protocolMinor,
  type ClientFrame,
  type ErrorFrame,
  type Headers,
  type PubFrame,
  type ResolveFrame,
  type ResolvedFrame,
  type ResolveOp,
  type ServerFrame,
  type WelcomeFrame,
} from './protocol/frames.js';
import { DEFAULT_CREDIT, MAX_KEY_BYTES, MAX_PRIORITY } from './protocol/limits.js';
import { topicError } from './protocol/topics.js';
import { utf8Length } from './protocol/msgpack.js';
import { memoryResume, type ResumeStore } from './resume.js';
import { Subscription, type MessageHandler, type SubscribeOptions } from './subscription.js';
import {
  globalWebSocket,
  webSocketTransport,
  type Transport,
  type TransportFactory,
  type WebSocketConstructor,
} from './transport.js';

// The client routes frames to feeds and consumers of any payload type.
type AnySubscription = Feed | Consumer<any>;

/**
 * `suspended`: no connection for `suspendAfterMs`; publishes reject, retries go on slower.
 * `failed`: given up for good on a terminal cause (the `error` of the change); like `closed`, final.
 */
export type ClientState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'suspended' | 'failed' | 'closed';

export interface StateChange {
  oldState: ClientState;
  newState: ClientState;
  /** Close code of the disconnect that caused it, if any. */
  code?: number;
  reason?: string;
  /**
   * The cause, when a failure caused it: a ConnectionError (`network`, `not-found`, `timeout`,
   * `disconnected`, … with the close code, the HTTP status of a refused upgrade, and the runtime's
   * error as `cause`), or on `failed` the terminal error (`unauthorized`, `forbidden`, …).
   */
  error?: SluiceError;
}

/**
 * What the debug log sees (`log` option): state changes, frames in and out (a HELLO's token and a
 * PUB's data are left out), reconnect delays. `at`: the clock's ms.
 */
/** A PUB as the debug log shows it: without its data. */
type PubSummary = { type: typeof FrameType.PUB; reqId: number; topic: string; key: string };

export type LogEvent =
  | { at: number; type: 'state'; change: StateChange }
  | { at: number; type: 'in'; frame: ServerFrame }
  | { at: number; type: 'out'; frame: ClientFrame | PubSummary }
  | { at: number; type: 'retry'; attempt: number; delayMs: number };

export interface ClientEvents extends Record<string, unknown> {
  state: StateChange;
  /** Errors not tied to one publish or subscription (e.g. a protocol error on the connection). */
  error: SluiceError;
}

export interface ClientOptions {
  /** Gateway URL: `http(s)://host:port` or `ws(s)://host:port[/v1/ws]`. */
  url: string;
  /** A token sent in HELLO. */
  token?: string;
  /** Called before every (re)connect for a fresh token; wins over `token`. */
  getToken?: () => string | undefined | Promise<string | undefined>;
  /**
   * WebSocket constructor. Default: the runtime's global one (browsers, Node 22+, Deno, Workers).
   * Node 20 has none: pass the `ws` package's class (an optional peer dependency). Without either,
   * `createClient` throws a `SluiceError` with code `bad-request`.
   */
  WebSocket?: WebSocketConstructor;
  /** Replaces the WebSocket transport entirely (tests, other transports). */
  transport?: TransportFactory;
  /** Sent in HELLO to name this client in the console. */
  client?: string;
  /** Default resume store for subscriptions (default: in memory). */
  resume?: ResumeStore;
  /** Delay before reconnect attempt n (default: full jitter, 300 ms doubling to 10 s). */
  backoff?: Backoff;
  /** Publishes that may wait for an ACK (queued while offline or in flight) before `publish` rejects (default 1000). */
  maxQueuedPublishes?: number;
  /** Time allowed from the start of an attempt (getToken included) to WELCOME (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * How long the client tries to (re)connect before it enters `suspended` (default 30 s, counted from
   * the start of the first attempt, or from the drop): waiting publishes reject with SuspendedError, new ones
   * reject at once, subscriptions stay and resume once connected. `Infinity`: never suspend.
   */
  suspendAfterMs?: number;
  /** Delay between attempts while `suspended` (default 15 s). `connect()` tries at once. */
  suspendedRetryMs?: number;
  /** Tokens from `getToken` the gateway may refuse in a row (no WELCOME between) before the client fails (default 3). */
  maxTokenRefusals?: number;
  /** The fetch for `history` (default: the global one). */
  fetch?: typeof fetch;
  /** Debug log: `true` logs to `console.debug`; a function receives every LogEvent. Off by default (and then costs nothing). */
  debug?: boolean;
  log?: (event: LogEvent) => void;
  /** Connect now instead of at first use (default false). */
  eager?: boolean;
  /** @internal Timers and time, for tests. */
  clock?: Clock;
}

/**
 * What the gateway announced for the current connection (its WELCOME): `protocol` is the version
 * of the wire protocol it speaks ('1.0' for gateways that do not announce one); `version` is its
 * software version (e.g. '0.1.0'), for logs, not a protocol version; then its limits.
 */
export type ServerInfo = Omit<WelcomeFrame, 'type' | 'protocol'> & { protocol: string };

export interface PublishOptions {
  /** Idempotency key (≤ 128 bytes). Generated when omitted; reused for every retry. */
  key?: string;
  headers?: Headers;
  /**
   * Ordering key (1–128 bytes, protocol 1.2): a consumer group hands out the messages of one key one
   * at a time, in offset order. Every reader sees it as the message's `orderingKey`.
   */
  orderingKey?: string;
  /**
   * Priority 0–9 (default 0; protocol 1.3): a consumer group hands out its ready messages highest
   * priority first. Subscribers still receive offset order.
   */
  priority?: number;
  /** Record this message's journey (protocol 1.3): the console's trace view shows it. */
  trace?: boolean;
  /**
   * Deliver it this many ms from now (protocol 1.4; at most the gateway's max delay, default 7 days):
   * the gateway holds it durably and appends it when due. The result then has `scheduleId` and
   * `due`, and `offset` 0 (the offset is assigned when it is appended).
   */
  delay?: number;
  /** Deliver it at this time (ms since the epoch; protocol 1.4), as `delay`. */
  at?: number;
  /**
   * Reject with TimeoutError (code `timeout`, the `key` to retry with) when no ACK came within this
   * many ms, queued or sent. The message may still be stored; publishing again with the key is safe.
   */
  timeout?: number;
  /** Abort: the publish rejects with `signal.reason` and is no longer (re)sent. Like `timeout`, it may already be stored. */
  signal?: AbortSignal;
}

export interface PublishResult {
  /** Where it was stored; 0 for a delayed publish (not appended yet). */
  offset: number;
  duplicate: boolean;
  /** A delayed publish: its schedule id (for `cancel`) and when it is due. */
  scheduleId?: string;
  due?: number;
}

/** Options of `prepare`: those of a publish, and where the gateway checks back (allow-listed by it). */
export type PrepareOptions = Omit<PublishOptions, 'delay' | 'at'> & { checkUrl?: string };

/**
 * A prepared (half) message (protocol 1.4): stored by the gateway, invisible to every reader until
 * `commit` appends it; `abort` drops it. Both are idempotent and may be called from another client
 * (or over HTTP) with the id.
 */
export interface Transaction {
  readonly id: string;
  readonly topic: string;
  /** Appends the message; resolves with its offset (`duplicate` when it was committed already). */
  commit(options?: RequestOptions): Promise<{ offset: number; duplicate: boolean }>;
  abort(options?: RequestOptions): Promise<void>;
}

/** Failure visibility of a commit, abort or cancel, as of a publish: reject after `timeout` ms, or on `signal`. */
export interface RequestOptions {
  /** Reject with TimeoutError when no answer came within this many ms; the request may still take effect (repeating it is safe). */
  timeout?: number;
  /** Abort: rejects with `signal.reason` and is no longer (re)sent. Like `timeout`, it may already have taken effect. */
  signal?: AbortSignal;
}

interface PendingPublish {
  id: number;
  frame: Uint8Array;
  /** What the debug log shows when it is sent (a PUB without its data, or the RESOLVE). */
  logged: PubSummary | ResolveFrame;
  key: string;
  /** ACK, HELD or RESOLVED, as the request expects. */
  resolve(r: unknown): void;
  reject(err: unknown): void;
  /** Connection sequence it was last sent on (0: not sent on the current connection; -1: waiting to retry). */
  sentOn: number;
  attempts: number;
  /** The backoff timer of a retry after a retryable ERROR; cleared on drop and close. */
  retry?: unknown;
  /** `timeout` timer and `signal` listener removal; cleared when it settles. */
  timer?: unknown;
  unlisten?: () => void;
}

export class Client extends Emitter<ClientEvents> {
  state: ClientState = 'idle';
  /** Code, reason and cause of the last disconnect (or failed attempt). */
  lastDisconnect: { code: number; reason: string; error?: SluiceError } | undefined;
  /** WELCOME of the current connection. */
  welcome: WelcomeFrame | undefined;

  private readonly url: string;
  private readonly factory: TransportFactory;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly maxQueued: number;
  private readonly connectTimeoutMs: number;
  private readonly defaultResume: ResumeStore;
  private readonly log: ((e: LogEvent) => void) | undefined;
  /** When the current run of failed attempts began (undefined while connected). */
  private failingSince: number | undefined;
  /** Tokens refused in a row. */
  private refusals = 0;
  /** Why the client failed (state `failed`). */
  private failure: SluiceError | undefined;
  private transport: Transport | undefined;
  /** Increments per connection attempt; callbacks of older transports are ignored. */
  private connSeq = 0;
  private attempt = 0;
  private nextId = 1;
  private readonly subs = new Map<number, AnySubscription>();
  private readonly byTopic = new Map<string, AnySubscription>();
  private readonly pending = new Map<number, PendingPublish>();
  private timers: { connect?: unknown; reconnect?: unknown; heartbeat?: unknown } = {};
  private lastRx = 0;
  private pingSentAt = 0;
  private pingSeq = 0;
  private readonly host: ConsumerHost;

  constructor(private readonly options: ClientOptions) {
    super();
    this.url = wsUrl(options.url);
    const WS = options.WebSocket ?? globalWebSocket();
    if (!options.transport && !WS) {
      throw new SluiceError('bad-request', "no WebSocket in this runtime (Node 20 has none): npm install ws, then createClient({ url, WebSocket }) with import WebSocket from 'ws'");
    }
    this.factory = options.transport ?? webSocketTransport(WS!);
    this.clock = options.clock ?? systemClock;
    this.backoff = options.backoff ?? fullJitter();
    this.maxQueued = options.maxQueuedPublishes ?? 1000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.defaultResume = options.resume ?? memoryResume();
    this.log = options.log ?? (options.debug ? (e) => console.debug('[sluice]', e.type, e) : undefined);
    const self = this;
    this.host = {
      get ready() { return self.state === 'connected'; },
      get maxCredit() { return self.welcome?.maxCredit ?? Number.MAX_SAFE_INTEGER; },
      get groups() { return protocolMinor(self.welcome?.protocol) >= 2; },
      // A byte window applies only when both speak 1.5 (this SDK does): the gateway announced it.
      get maxWindowBytes() { return protocolMinor(self.welcome?.protocol) >= 5 ? self.welcome?.maxWindowBytes ?? 0 : 0; },
      sendSub: (subId, topic, o) => this.sendFrame({ type: FrameType.SUB, subId, topic, ...o }),
      sendCredit: (subId, n) => this.sendFrame({ type: FrameType.CREDIT, subId, n }),
      sendUnsub: (subId) => this.sendFrame({ type: FrameType.UNSUB, subId }),
      sendAck: (subId, offsets) => this.sendFrame({ type: FrameType.GROUP_ACK, subId, offsets }),
      sendNack: (subId, offset, o) => this.sendFrame({ type: FrameType.GROUP_NACK, subId, offset, ...o }),
      forget: (sub) => {
        this.subs.delete(sub.id);
        if (this.byTopic.get(sub.topic) === sub) this.byTopic.delete(sub.topic);
      },
    };
    if (options.eager) this.open();
  }

  /**
   * Connects if not connected; resolves once connected. Rejects with the cause if the client closes,
   * fails or suspends first. While `suspended` it tries at once.
   */
  connect(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.ended()) return Promise.reject(this.ended());
    if (this.state === 'idle' || this.state === 'suspended') {
      this.clearTimer('reconnect');
      this.open();
    }
    return new Promise((resolve, reject) => {
      const off = this.on('state', (s) => {
        if (s.newState === 'connected') { off(); resolve(); }
        if (s.newState === 'closed' || s.newState === 'failed' || s.newState === 'suspended') { off(); reject(s.error ?? new ClosedError(`closed: ${s.reason ?? ''}`)); }
      });
    });
  }

  /**
   * A page of `topic`'s stored messages, read over HTTP (`GET /v1/topics/{topic}/messages`, the
   * `history` capability): from offset `from` (default: the oldest retained), at most `limit`
   * (default 100, at most 1000). Messages are shaped as a subscription's. `next` is where the next
   * page starts; a `gap` says what retention removed before `from`.
   */
  history<T = unknown>(topic: string, options: HistoryOptions = {}): Promise<HistoryPage<T>> {
    return history<T>(this.options.fetch, httpUrl(this.options.url), () => this.token(), topic, options);
  }

  /** Closes for good: pending publishes reject with ClosedError, subscriptions end. */
  close(): void {
    this.shutdown('closed', CloseCode.NORMAL, 'closed by the client', new ClosedError());
  }

  /** The error that ends every call once closed or failed. */
  private ended(): SluiceError | undefined {
    return this.state === 'closed' ? new ClosedError() : this.state === 'failed' ? this.failure : undefined;
  }

  /**
   * Subscribes to `topic`. With `onMessage`, messages are handed to it one at a time (credit is
   * re-granted as it completes); without, iterate the subscription with `for await`. Several
   * subscriptions of one topic share one wire subscription; each gets every message (feed.ts).
   */
  subscribe<T = unknown>(topic: string, onMessage?: MessageHandler<T> | SubscribeOptions, options: SubscribeOptions = {}): Subscription<T> {
    if (typeof onMessage === 'object') { options = onMessage; onMessage = undefined; }
    let feed = this.byTopic.get(topic);
    if (!(feed instanceof Feed)) {
      this.checkTopic(topic);
      feed = this.add(new Feed(this.host, this.nextId++, topic, options.resume === false ? undefined : (options.resume ?? this.defaultResume), options.from));
    }
    const sub = new Subscription<T>(feed, onMessage, { window: DEFAULT_CREDIT, ...options });
    feed.add(sub);
    return sub;
  }

  /**
   * Joins consumer group `group` of `topic` (protocol 1.2): the group's messages are shared among
   * its members, each to one member at a time. With `handler`, up to `concurrency` run at once; a
   * message is acknowledged when its handler resolves and given back (nack: the group's backoff)
   * when it throws. Without, iterate the consumer with `for await` and call `msg.ack()` or
   * `msg.nack()` on each message. One subscription or consumer per topic per client.
   */
  consume<T = unknown>(topic: string, group: string, handler?: ConsumeHandler<T> | ConsumeOptions, options: ConsumeOptions = {}): Consumer<T> {
    if (typeof handler === 'object') { options = handler; handler = undefined; }
    this.checkTopic(topic);
    const consumer = this.add(new Consumer<T>(this.host, this.nextId++, topic, group, handler, options));
    if (this.state === 'connected') consumer.subscribeOnWire();
    return consumer;
  }

  private checkTopic(topic: string): void {
    const ended = this.ended();
    if (ended) throw ended;
    const reason = topicError(topic);
    if (reason) throw new SluiceError('invalid-topic', reason);
    if (this.byTopic.has(topic)) throw new SluiceError('already-subscribed', `this client already subscribes to ${topic}`);
  }

  private add<S extends AnySubscription>(sub: S): S {
    this.subs.set(sub.id, sub);
    this.byTopic.set(sub.topic, sub);
    if (this.state === 'idle') this.open();
    return sub;
  }

  /**
   * Publishes and resolves once the gateway stored it (or recognised it as a duplicate).
   * While disconnected it waits in a bounded queue; it is resent with the same key until acknowledged.
   */
  publish(topic: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    const ended = this.ended();
    if (ended) return Promise.reject(ended);
    if (this.state === 'suspended') return Promise.reject(new SuspendedError('the client is suspended: no connection to the gateway', this.lastDisconnect?.error));
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    const reason = topicError(topic);
    if (reason) return Promise.reject(new SluiceError('invalid-topic', reason));
    const key = options.key ?? randomKey();
    // The gateway's rules, checked before anything is queued: an empty key would be refused.
    if (key.length === 0) return Promise.reject(new SluiceError('bad-frame', `key must be 1-${MAX_KEY_BYTES} bytes`));
    if (utf8Length(key) > MAX_KEY_BYTES) return Promise.reject(new SluiceError('too-large', `key longer than ${MAX_KEY_BYTES} bytes`));
    const orderingKey = options.orderingKey;
    if (orderingKey !== undefined && (orderingKey.length === 0 || utf8Length(orderingKey) > MAX_KEY_BYTES)) {
      return Promise.reject(new SluiceError('bad-frame', `orderingKey must be 1-${MAX_KEY_BYTES} bytes`));
    }
    const priority = options.priority;
    if (priority !== undefined && !(Number.isInteger(priority) && priority >= 0 && priority <= MAX_PRIORITY)) {
      return Promise.reject(new SluiceError('bad-frame', `priority must be an integer 0-${MAX_PRIORITY}`));
    }
    for (const field of ['delay', 'at'] as const) {
      const v = options[field];
      if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) return Promise.reject(new SluiceError('bad-frame', `${field} must be a whole number of ms, 0 or more`));
    }
    const id = this.nextId++;
    const pub: PubFrame = { type: FrameType.PUB, reqId: id, topic, data, key };
    if (options.headers) pub.headers = options.headers;
    if (orderingKey !== undefined) pub.orderingKey = orderingKey;
    if (priority) pub.priority = priority;
    if (options.trace) pub.trace = true;
    if (options.delay !== undefined) pub.delay = options.delay;
    if (options.at !== undefined) pub.at = options.at;
    if ((options as PrepareOptions & { prepare?: boolean }).prepare) {
      pub.prepare = true;
      const checkUrl = (options as PrepareOptions).checkUrl;
      if (checkUrl !== undefined) pub.checkUrl = checkUrl;
    }
    const { timeout, signal } = options;
    return this.request<PublishResult>(id, pub, { key, what: `the publish to ${topic}`, timeout, signal });
  }

  /**
   * Prepares a half message (protocol 1.4): the gateway stores it, invisible to every subscriber and
   * group, until the returned transaction's `commit` (or `abort`). Left unresolved, the gateway
   * checks back with the producer (its `--tx-check-url`, or `checkUrl` if its allow-list takes it).
   */
  async prepare(topic: string, data: unknown, options: PrepareOptions = {}): Promise<Transaction> {
    const r = await this.publish(topic, data, { ...options, prepare: true } as PublishOptions);
    return this.transaction(r.scheduleId!, topic);
  }

  /** A transaction by id (one prepared elsewhere, or before a restart), to commit or abort it. */
  transaction(id: string, topic = ''): Transaction {
    return {
      id,
      topic,
      commit: (options) => this.resolveHeld(id, 'commit', options).then((r) => ({ offset: r.offset ?? 0, duplicate: r.duplicate ?? false })),
      abort: (options) => this.resolveHeld(id, 'abort', options).then(() => undefined),
    };
  }

  /** Cancels a delayed publish by its schedule id before it is due (again: the same answer). */
  cancel(scheduleId: string, options: RequestOptions = {}): Promise<void> {
    return this.resolveHeld(scheduleId, 'cancel', options).then(() => undefined);
  }

  private resolveHeld(id: string, op: ResolveOp, options: RequestOptions = {}): Promise<ResolvedFrame> {
    const ended = this.ended();
    if (ended) return Promise.reject(ended);
    if (this.state === 'suspended') return Promise.reject(new SuspendedError('the client is suspended: no connection to the gateway', this.lastDisconnect?.error));
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    const reqId = this.nextId++;
    const { timeout, signal } = options;
    return this.request<ResolvedFrame>(reqId, { type: FrameType.RESOLVE, reqId, id, op }, { key: id, what: `the ${op} of ${id}`, timeout, signal });
  }

  /**
   * Sends a request answered by its reqId (ACK, HELD or RESOLVED; resent on reconnect and after
   * retryable errors), settled by `settle`: answered, refused, timed out or aborted.
   */
  private request<T>(id: number, frame: PubFrame | ResolveFrame, options: { key: string; what: string; timeout?: number | undefined; signal?: AbortSignal | undefined }): Promise<T> {
    const { key, what, timeout, signal } = options;
    if (this.pending.size >= this.maxQueued) return Promise.reject(new QueueFullError(this.maxQueued));
    let bytes: Uint8Array;
    try {
      bytes = encodeClientFrame(frame);
    } catch (err) {
      // Data the protocol cannot carry (a Date, a typed array, a cycle): refused before it leaves.
      return Promise.reject(new SluiceError('bad-request', (err as Error).message));
    }
    if (this.welcome && bytes.length > this.welcome.maxFrame) {
      return Promise.reject(new SluiceError('too-large', `publish of ${bytes.length} bytes exceeds maxFrame ${this.welcome.maxFrame}`));
    }
    const logged: PubSummary | ResolveFrame = frame.type === FrameType.PUB ? { type: FrameType.PUB, reqId: id, topic: frame.topic, key } : frame;
    return new Promise<T>((resolve, reject) => {
      const p: PendingPublish = { id, frame: bytes, logged, key, resolve: resolve as (r: unknown) => void, reject, sentOn: 0, attempts: 0 };
      this.pending.set(id, p);
      if (timeout !== undefined) {
        p.timer = this.clock.setTimeout(() => this.settle(p, new TimeoutError(`no answer to ${what} within ${timeout} ms`, key)), timeout);
      }
      if (signal) {
        const abort = () => this.settle(p, signal.reason);
        signal.addEventListener('abort', abort);
        p.unlisten = () => signal.removeEventListener('abort', abort);
      }
      if (this.state === 'idle') this.open();
      else if (this.state === 'connected') this.sendPublish(p);
    });
  }

  /** The gateway of the current connection: protocol and software versions, limits. Undefined while not connected. */
  get serverInfo(): ServerInfo | undefined {
    if (!this.welcome) return undefined;
    const { type: _, ...info } = this.welcome;
    return { ...info, protocol: info.protocol ?? '1.0' };
  }

  /** Publishes waiting for an ACK (queued or in flight). */
  get queuedPublishes(): number {
    return this.pending.size;
  }

  // ---- connection lifecycle --------------------------------------------------------------------

  /** The one place the state changes. */
  private setState(newState: ClientState, code?: number, reason?: string, error?: SluiceError): void {
    if (this.state === newState) return;
    const change: StateChange = { oldState: this.state, newState };
    if (code !== undefined) change.code = code;
    if (reason !== undefined) change.reason = reason;
    if (error) change.error = error;
    this.state = newState;
    this.log?.({ at: this.clock.now(), type: 'state', change });
    this.emit('state', change);
  }

  private open(): void {
    const seq = ++this.connSeq;
    this.failingSince ??= this.clock.now();
    this.setState('connecting');
    // The connect timeout covers getToken too: a token that never comes is a failed attempt.
    this.timers.connect = this.clock.setTimeout(() => {
      if (seq !== this.connSeq || this.state !== 'connecting') return;
      if (this.transport) this.transport.close(CloseCode.CONNECT_TIMEOUT, 'connect timeout');
      else this.dropped(CloseCode.CONNECT_TIMEOUT, 'connect timeout (getToken did not answer)');
    }, this.connectTimeoutMs);
    void this.token().then(
      (token) => {
        if (seq !== this.connSeq || this.state !== 'connecting') return;
        this.transport = this.factory(this.url, {
          open: () => {
            if (seq !== this.connSeq) return;
            this.sendFrame({ type: FrameType.HELLO, token, client: this.options.client, protocol: PROTOCOL_VERSION });
          },
          message: (bytes) => { if (seq === this.connSeq) this.receive(bytes); },
          close: (code, reason, error) => { if (seq === this.connSeq) this.dropped(code, reason, error); },
        });
      },
      (err: unknown) => {
        if (seq !== this.connSeq || this.state !== 'connecting') return;
        this.emit('error', new SluiceError('unauthorized', `getToken failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err, retryable: true }));
        this.dropped(CloseCode.TOKEN_FAILED, 'getToken failed', err);
      },
    );
  }

  private async token(): Promise<string | undefined> {
    return this.options.getToken ? await this.options.getToken() : this.options.token;
  }

  /**
   * The connection ended (or never opened): decide between reconnecting, suspending and failing.
   * `cause`: what the transport or getToken reported.
   */
  private dropped(code: number, reason: string, cause?: unknown): void {
    this.transport = undefined;
    this.clearTimer('connect');
    this.clearTimer('heartbeat');
    this.welcome = undefined;
    const error = disconnectError(code, reason, cause);
    this.lastDisconnect = { code, reason, error };
    for (const sub of this.subs.values()) sub.connectionLost();
    for (const p of this.pending.values()) {
      // WELCOME resends everything not sent on the new connection: a pending retry is moot.
      this.clearRetry(p);
      p.sentOn = 0;
    }
    if (this.ended()) return;
    const status = error.status;
    const policy = status === 403 ? 'terminal' : status === 401 ? 'refresh-token' : closePolicy(code);
    if (policy === 'terminal') {
      const code2 = code === CloseCode.FORBIDDEN || status === 403 ? 'forbidden' : code === CloseCode.UNSUPPORTED_PROTOCOL ? 'unsupported' : 'closed';
      return this.shutdown('failed', code, reason, new SluiceError(code2, `the gateway refused the connection: ${status ? `HTTP ${status}` : code} ${reason}`, { cause: error, retryable: false }));
    }
    if (policy === 'refresh-token' && code !== CloseCode.TOKEN_FAILED) {
      if (!this.options.getToken) {
        return this.shutdown('failed', code, reason, new SluiceError('unauthorized', `token refused (${reason}); give the client getToken to refresh it`, { cause: error, retryable: false }));
      }
      if (++this.refusals >= (this.options.maxTokenRefusals ?? 3)) {
        return this.shutdown('failed', code, reason, new SluiceError('unauthorized', `the gateway refused ${this.refusals} tokens from getToken in a row (${reason})`, { cause: error, retryable: false }));
      }
    }
    const now = this.clock.now();
    const left = (this.failingSince ?? now) + (this.options.suspendAfterMs ?? 30_000) - now;
    let delay: number;
    if (left <= 0) {
      this.setState('suspended', code, reason, error);
      for (const p of [...this.pending.values()]) this.settle(p, new SuspendedError(`no connection to the gateway: ${error.message}`, error, p.key));
      delay = this.options.suspendedRetryMs ?? 15_000;
    } else {
      this.setState('reconnecting', code, reason, error);
      // The last attempt before the deadline is made at the deadline.
      delay = Math.min(this.backoff(this.attempt++), left);
    }
    this.log?.({ at: now, type: 'retry', attempt: this.attempt, delayMs: delay });
    this.timers.reconnect = this.clock.setTimeout(() => {
      this.timers.reconnect = undefined;
      if (this.state === 'reconnecting' || this.state === 'suspended') this.open();
    }, delay);
  }

  /** Ends the client for good: `closed` by close(), `failed` on a terminal cause (`err`). */
  private shutdown(state: 'closed' | 'failed', code: number, reason: string, err: SluiceError): void {
    if (this.ended()) return;
    this.connSeq++;
    this.clearTimer('connect');
    this.clearTimer('reconnect');
    this.clearTimer('heartbeat');
    const t = this.transport;
    this.transport = undefined;
    if (state === 'failed') this.failure = err;
    this.setState(state, code, reason, state === 'failed' ? err : undefined);
    t?.close(CloseCode.NORMAL, reason.slice(0, 120));
    for (const p of [...this.pending.values()]) this.settle(p, err);
    for (const sub of [...this.subs.values()]) sub.clientClosed(err, state === 'failed');
  }

  private clearTimer(name: keyof Client['timers']): void {
    if (this.timers[name] !== undefined) this.clock.clearTimeout(this.timers[name]);
    this.timers[name] = undefined;
  }

  private clearRetry(p: PendingPublish): void {
    if (p.retry !== undefined) this.clock.clearTimeout(p.retry);
    p.retry = undefined;
  }

  /** A publish is done: it leaves the queue, its timers and listener go; resolved with `r` or rejected with it. */
  private settle(p: PendingPublish, r: unknown, ok = false): void {
    if (!this.pending.delete(p.id)) return;
    this.clearRetry(p);
    if (p.timer !== undefined) this.clock.clearTimeout(p.timer);
    p.unlisten?.();
    if (ok) p.resolve(r);
    else p.reject(r);
  }

  private send(bytes: Uint8Array): void {
    this.transport?.send(bytes);
  }

  private sendFrame(f: ClientFrame): void {
    this.log?.({ at: this.clock.now(), type: 'out', frame: f.type === FrameType.HELLO ? { ...f, token: f.token && '<redacted>' } : f });
    this.send(encodeClientFrame(f));
  }

  private sendPublish(p: PendingPublish): void {
    p.sentOn = this.connSeq;
    p.attempts++;
    this.log?.({ at: this.clock.now(), type: 'out', frame: p.logged });
    this.send(p.frame);
  }

  // ---- frames ----------------------------------------------------------------------------------

  private receive(bytes: Uint8Array): void {
    this.lastRx = this.clock.now();
    this.pingSentAt = 0;
    let f: ServerFrame;
    try {
      f = decodeServerFrame(bytes);
    } catch (err) {
      // FrameError: nothing of the frame is used.
      return this.protocolError(`malformed frame from the gateway: ${(err as Error).message}`, err);
    }
    this.log?.({ at: this.lastRx, type: 'in', frame: f });
    switch (f.type) {
      case FrameType.WELCOME: return this.welcomed(f);
      case FrameType.SUBSCRIBED: return this.subs.get(f.subId)?.onSubscribed(f);
      case FrameType.UNSUBSCRIBED: return;
      case FrameType.ACK: return this.answered(f.reqId, { offset: f.offset, duplicate: f.duplicate });
      case FrameType.MSG: return this.subscription(f.topic)?.onMessages(f.offset, [f], bytes.length);
      case FrameType.MSGS: return this.subscription(f.topic)?.onMessages(f.first, f.messages, bytes.length);
      case FrameType.GAP: return this.subscription(f.topic)?.onGap(f.from, f.to);
      case FrameType.ERROR: return this.serverError(f);
      case FrameType.PING: return this.sendFrame({ type: FrameType.PONG, n: f.n });
      case FrameType.PONG: return;
      case FrameType.LEASE: {
        const c = this.byTopic.get(f.topic);
        return c instanceof Consumer ? c.onLease(f) : undefined;
      }
      case FrameType.HELD: {
        const r: PublishResult = { offset: 0, duplicate: f.duplicate, scheduleId: f.id };
        if (f.due !== undefined) r.due = f.due;
        return this.answered(f.reqId, r);
      }
      case FrameType.RESOLVED: return this.answered(f.reqId, f);
      default: {
        const never: never = f;
        return void never;
      }
    }
  }

  /** ACK, HELD or RESOLVED: the request with this reqId is answered. */
  private answered(reqId: number, r: unknown): void {
    const p = this.pending.get(reqId);
    if (p) this.settle(p, r, true);
  }

  private subscription(topic: string): Feed | undefined {
    const s = this.byTopic.get(topic);
    return s instanceof Feed ? s : undefined;
  }

  /**
   * The gateway broke the protocol: nothing of the frame is used. Reported as an `error` event and as
   * the reason of the state change; the socket is closed with PROTOCOL_ERROR and the client
   * reconnects with backoff (subscriptions resume from what was delivered before).
   */
  private protocolError(reason: string, cause: unknown): void {
    this.emit('error', new SluiceError('protocol-error', reason, { cause, retryable: true }));
    // A close reason is at most 123 bytes of UTF-8: keep it short and ASCII.
    this.transport?.close(CloseCode.PROTOCOL_ERROR, reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 120));
  }

  private welcomed(f: WelcomeFrame): void {
    if (!protocolCompatible(f.protocol)) {
      return this.protocolError(`the gateway speaks protocol ${f.protocol}; this client speaks ${PROTOCOL_VERSION}`, undefined);
    }
    this.clearTimer('connect');
    this.welcome = f;
    this.attempt = 0;
    this.refusals = 0;
    this.failingSince = undefined;
    this.setState('connected');
    this.armHeartbeat();
    for (const sub of this.subs.values()) sub.subscribeOnWire();
    for (const p of this.pending.values()) if (p.sentOn !== this.connSeq) this.sendPublish(p);
  }

  /**
   * ERROR goes to what it answers. `re` (1.1) names the kind of request, so a reqId and a subId with
   * the same number cannot be mistaken for each other; from a 1.0 gateway (`re` 0) the id is looked
   * up among publishes, then subscriptions. Anything unmatched is a connection-level `error` event.
   */
  private serverError(f: ErrorFrame): void {
    const err = fromErrorFrame(f);
    const re = f.re ?? 0;
    const p = re === 0 || re === FrameType.PUB || re === FrameType.RESOLVE ? this.pending.get(f.id) : undefined;
    if (p) {
      if (err.retryable && this.state === 'connected') {
        // The same key makes the retry safe; back off so a struggling gateway is not hammered.
        // The timer is tracked (p.retry) so that a drop or close() leaves none behind.
        const seq = this.connSeq;
        p.sentOn = -1;
        this.clearRetry(p);
        p.retry = this.clock.setTimeout(() => {
          p.retry = undefined;
          if (this.pending.has(p.id) && seq === this.connSeq && this.state === 'connected') this.sendPublish(p);
        }, this.backoff(p.attempts));
        return;
      }
      return this.settle(p, err);
    }
    const bySub = re === 0 || re === FrameType.SUB || re === FrameType.UNSUB || re === FrameType.CREDIT || re === FrameType.GROUP_ACK || re === FrameType.GROUP_NACK;
    const sub = bySub ? this.subs.get(f.id) : undefined;
    if (sub) return sub.onError(err, re);
    this.emit('error', err);
  }

  // ---- heartbeat -------------------------------------------------------------------------------

  /** Pings after `heartbeat` ms of silence; a connection silent for another half heartbeat is dead. */
  private armHeartbeat(): void {
    const hb = this.welcome?.heartbeat ?? 20_000;
    const seq = this.connSeq;
    this.lastRx = this.clock.now();
    const check = () => {
      if (seq !== this.connSeq || this.state !== 'connected') return;
      const now = this.clock.now();
      const grace = Math.min(hb / 2, 10_000);
      if (this.pingSentAt > 0 && now - this.pingSentAt >= grace) {
        this.transport?.close(CloseCode.HEARTBEAT_TIMEOUT, 'heartbeat timeout');
        return;
      }
      if (this.pingSentAt === 0 && now - this.lastRx >= hb) {
        this.pingSentAt = now;
        this.sendFrame({ type: FrameType.PING, n: ++this.pingSeq });
        this.timers.heartbeat = this.clock.setTimeout(check, grace);
        return;
      }
      const wait = this.pingSentAt > 0 ? grace - (now - this.pingSentAt) : hb - (now - this.lastRx);
      this.timers.heartbeat = this.clock.setTimeout(check, Math.max(wait, 1));
    };
    this.timers.heartbeat = this.clock.setTimeout(check, hb);
  }
}

/**
 * Why a connection ended, as an error: the one place that reads what runtimes say. `ws` reports a
 * refused upgrade as "Unexpected server response: 404"; a browser reports nothing but 1006.
 */
function disconnectError(code: number, reason: string, cause: unknown): ConnectionError {
  const m = /server response: (\d{3})/.exec(cause instanceof Error ? cause.message : '');
  const status = m ? Number(m[1]) : undefined;
  const what =
    status === 404 ? 'not-found'
    : status === 401 ? 'unauthorized'
    : status === 403 ? 'forbidden'
    : code === CloseCode.CONNECT_TIMEOUT || code === CloseCode.HEARTBEAT_TIMEOUT ? 'timeout'
    : code === CloseCode.PROTOCOL_ERROR ? 'protocol-error'
    : code === CloseCode.TOKEN_FAILED || (code >= 4100 && code < 4200) ? 'unauthorized'
    : code === 1006 || code === 1005 ? 'network'
    : 'disconnected';
  const message = status ? `the gateway refused the WebSocket upgrade: HTTP ${status}` : `${what}: ${reason || 'connection closed'} (${code})`;
  return new ConnectionError(what, message, code, status, cause);
}

/** `http://h:p` → `ws://h:p/v1/ws`; a URL with a path is kept as given. */
export function wsUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/v1/ws';
  return u.toString();
}

export function createClient(options: ClientOptions): Client {
  return new Client(options);
}
