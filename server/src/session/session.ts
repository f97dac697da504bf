/**
 * A session: one WebSocket connection speaking protocol v1. It owns the connection's
 * subscriptions and in-flight publishes; it does not know uWebSockets.js (see gateway/ws.ts).
 *
 * States: 'hello' (waiting for HELLO) → 'auth' (token being checked; later frames are queued)
 * → 'open' → 'closed'. Any frame but HELLO first closes the socket with 1008.
 *
 * Rules:
 * - Nothing a client sends may throw out of `receive`: every failure becomes an ERROR frame (and
 *   for unparseable input a 1007 close) and is counted.
 * - A received frame is a view into uWS's buffer, valid only during `receive`; whatever outlives
 *   the call is copied first (queued frames; stored payloads are copied by the store's encoder).
 */
import {
  CloseCode,
  decodeClientFrame,
  encode,
  FrameError,
  isPattern,
  topicError,
  type EncodedClientFrame,
  type ErrorCode,
  type PubFrame,
  type SubFrame,
} from '@sluice/client/protocol';
import { AuthError, type Authenticator, type Principal } from '../auth/auth.js';
import type { Limits } from '../config.js';
import type { Conn } from '../hub/conn.js';
import type { Hub } from '../hub/hub.js';
import { Subscription } from '../hub/subscription.js';
import { StoreUnavailableError, type TopicLog } from '../log/log.js';
import type { Metrics } from '../metrics.js';
import type { RateLimiter, TokenBucket } from '../ratelimit.js';
import { randomId } from '../util/id.js';

export interface SessionContext {
  hub: Hub;
  store: TopicLog;
  auth: Authenticator;
  limits: Limits;
  metrics: Metrics;
  version: string;
  /** Publish rate limits; absent: unlimited. */
  rates?: RateLimiter;
}

export interface PeerInfo {
  remoteAddress: string;
  userAgent: string;
}

type SessionState = 'hello' | 'auth' | 'open' | 'closed';

const PROCESS_START = Date.now();

/** Client names repeat (one app, many connections): keep one string for the last one seen. */
let lastClientName = '';
function intern(name: string): string {
  if (name === lastClientName) return lastClientName;
  return (lastClientName = name);
}

/** The subscriptions of a connection that has none; never written to. */
const NO_SUBS: Map<number, Subscription> = new Map();

/** Frames accepted while the token is being checked. */
const MAX_QUEUED_FRAMES = 256;

export class Session {
  readonly id = randomId(16);
  /** Seconds since the process started (a small integer: V8 keeps it unboxed). */
  private readonly connectedAtS = Math.round((Date.now() - PROCESS_START) / 1000);
  state: SessionState = 'hello';
  principal: Principal | undefined;
  clientName = '';
  bytesIn = 0;
  /** Subscriptions by id (a shared empty map until the first SUB: idle connections stay small). */
  subs: Map<number, Subscription> = NO_SUBS;
  private byTopic: Map<string, Subscription> | undefined;
  private queued: Uint8Array[] | undefined;
  private inflight = 0;
  private expiry: ReturnType<typeof setTimeout> | undefined;
  /** Native fan-out bytes of subscriptions that ended. */
  private endedNativeBytes = 0;
  private readonly bucket: TokenBucket | undefined;

  constructor(
    readonly conn: Conn,
    private readonly ctx: SessionContext,
  ) {
    this.bucket = ctx.rates?.connectionBucket();
  }

  /** Bytes sent to this connection: frames it was sent plus what reached it by native fan-out. */
  get bytesOut(): number {
    let native = this.endedNativeBytes;
    for (const sub of this.subs.values()) native += this.ctx.hub.nativeBytesOut(sub);
    return (this.conn.bytesSent ?? 0) + native;
  }

  /** One WebSocket message from the client. Never throws. */
  receive(bytes: Uint8Array, isBinary: boolean): void {
    this.bytesIn += bytes.length;
    this.ctx.metrics.bytesIn.inc(bytes.length);
    try {
      if (this.state === 'closed') return;
      if (!isBinary) {
        this.fatal(0, 'bad-frame', 'frames must be binary MessagePack', CloseCode.POLICY);
        return;
      }
      if (this.state === 'auth') {
        if ((this.queued ??= []).length >= MAX_QUEUED_FRAMES) {
          this.fatal(0, 'limit-exceeded', 'too many frames before WELCOME', CloseCode.POLICY);
          return;
        }
        this.queued.push(bytes.slice());
        return;
      }
      this.handle(bytes);
    } catch (err) {
      this.failed(err);
    }
  }

  /** The socket closed: end every subscription. */
  closed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.expiry) clearTimeout(this.expiry);
    for (const sub of this.subs.values()) {
      this.ctx.hub.detach(sub);
      this.endedNativeBytes += sub.nativeBytes;
    }
    this.subs = NO_SUBS;
    this.byTopic = undefined;
    this.queued = undefined;
  }

  /** Closes the connection from the server side (admin disconnect, shutdown). */
  disconnect(code: number, reason: string): void {
    this.conn.close(code, reason);
  }

  get peer(): PeerInfo {
    return this.conn;
  }

  /** When it connected (ms since the epoch, to the second). */
  get connectedAt(): number {
    return PROCESS_START + this.connectedAtS * 1000;
  }

  get clientId(): string {
    return this.principal?.id ?? '';
  }

  // ---- dispatch -----------------------------------------------------------------------------

  private handle(bytes: Uint8Array): void {
    let frame: EncodedClientFrame;
    try {
      frame = decodeClientFrame(bytes, this.ctx.limits.maxFrame);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      if (err.fatal) this.fatal(0, err.code, err.message, CloseCode.BAD_FRAME);
      else this.error(err.id, err.code, err.message);
      return;
    }
    if (this.state === 'hello') {
      if (frame.type !== 1) {
        this.fatal(0, 'bad-frame', 'HELLO must be the first frame', CloseCode.POLICY);
        return;
      }
      this.hello(frame.token, frame.client);
      return;
    }
    switch (frame.type) {
      case 1: return this.error(0, 'bad-frame', 'HELLO was already received');
      case 3: return this.subscribe(frame);
      case 5: return this.unsubscribe(frame.subId);
      case 7: return this.credit(frame.subId, frame.n);
      case 8: return this.publish(frame);
      case 12: return this.conn.send(encode({ type: 13, n: frame.n }));
      case 13: return;
      default: {
        const never: never = frame;
        return this.error(0, 'bad-frame', `unhandled frame ${JSON.stringify(never)}`);
      }
    }
  }

  private hello(token: string | undefined, client: string | undefined): void {
    this.state = 'auth';
    this.clientName = intern((client ?? '').slice(0, 256));
    // Dev mode answers at once: no promise per connection.
    const now = this.ctx.auth.mode === 'dev' && this.ctx.auth.authenticateNow?.(token);
    if (now) {
      this.welcome(now);
      return;
    }
    this.ctx.auth.authenticate(token).then(
      (principal) => this.welcome(principal),
      (err: unknown) => {
        if (this.state !== 'auth') return;
        const message = err instanceof AuthError ? err.message : 'authentication failed';
        this.fatal(0, 'unauthorized', message, CloseCode.UNAUTHORIZED);
      },
    );
  }

  private welcome(principal: Principal): void {
    if (this.state !== 'auth') return;
    this.principal = principal;
    this.state = 'open';
    const { limits } = this.ctx;
    this.conn.send(encode({
      type: 2,
      session: this.id,
      version: this.ctx.version,
      maxFrame: limits.maxFrame,
      maxCredit: limits.maxCredit,
      heartbeat: limits.heartbeatMs,
      maxSubscriptions: limits.maxSubscriptions,
    }));
    if (principal.expiresAt !== undefined) this.armExpiry(principal.expiresAt);
    const queued = this.queued ?? [];
    this.queued = undefined;
    for (const bytes of queued) {
      if (this.state !== 'open') break;
      try {
        this.handle(bytes);
      } catch (err) {
        this.failed(err);
      }
    }
  }

  /** A token that expires ends its connection: the client reconnects with a fresh one. */
  private armExpiry(expiresAt: number): void {
    const ms = expiresAt - Date.now();
    const fire = () => this.fatal(0, 'unauthorized', 'token expired', CloseCode.UNAUTHORIZED);
    if (ms <= 0) return fire();
    // setTimeout takes at most 2^31-1 ms; longer tokens re-arm.
    this.expiry = setTimeout(() => (Date.now() >= expiresAt ? fire() : this.armExpiry(expiresAt)), Math.min(ms, 2 ** 31 - 1));
    this.expiry.unref?.();
  }

  private subscribe(f: SubFrame): void {
    const { hub, limits } = this.ctx;
    const reason = isPattern(f.topic)
      ? 'wildcard subscriptions are not supported yet'
      : topicError(f.topic, { allowReserved: this.principal!.admin });
    if (reason) return this.error(f.subId, 'invalid-topic', reason);
    if (!this.principal!.can('sub', f.topic)) return this.error(f.subId, 'forbidden', `not allowed to subscribe to ${f.topic}`);
    if (this.subs.has(f.subId)) return this.error(f.subId, 'already-subscribed', `subscription id ${f.subId} is in use`);
    if (this.byTopic?.has(f.topic)) return this.error(f.subId, 'already-subscribed', `already subscribed to ${f.topic}`);
    if (this.subs.size >= limits.maxSubscriptions) {
      return this.error(f.subId, 'limit-exceeded', `at most ${limits.maxSubscriptions} subscriptions per connection`);
    }
    const sub = new Subscription(f.subId, f.topic, this.conn, this.clientId);
    if (this.subs === NO_SUBS) this.subs = new Map();
    this.subs.set(f.subId, sub);
    (this.byTopic ??= new Map()).set(f.topic, sub);
    const resume = f.from === undefined ? {} : f.epoch === undefined ? { from: f.from } : { from: f.from, epoch: f.epoch };
    hub.attach(sub, f.credit ?? limits.defaultCredit, resume).then(
      (at) => {
        if (!at || sub.state === 'closed') return;
        this.conn.send(encode({ type: 4, subId: f.subId, ...at }));
        hub.start(sub);
      },
      (err: unknown) => {
        this.forget(sub);
        this.failed(err, f.subId);
      },
    );
  }

  private unsubscribe(subId: number): void {
    const sub = this.subs.get(subId);
    if (!sub) return this.error(subId, 'not-subscribed', `no subscription ${subId}`);
    this.forget(sub);
    this.conn.send(encode({ type: 6, subId }));
  }

  private forget(sub: Subscription): void {
    this.ctx.hub.detach(sub);
    this.endedNativeBytes += sub.nativeBytes;
    this.subs.delete(sub.id);
    this.byTopic?.delete(sub.topic);
  }

  private credit(subId: number, n: number): void {
    const sub = this.subs.get(subId);
    if (!sub) return this.error(subId, 'not-subscribed', `no subscription ${subId}`);
    this.ctx.hub.grant(sub, n);
  }

  private publish(f: PubFrame<Uint8Array, Uint8Array>): void {
    const { store, limits, metrics } = this.ctx;
    const reason = topicError(f.topic);
    if (reason) return this.error(f.reqId, 'invalid-topic', reason);
    if (!this.principal!.can('pub', f.topic)) return this.error(f.reqId, 'forbidden', `not allowed to publish to ${f.topic}`);
    if (this.inflight >= limits.maxInflightPublishes) {
      return this.error(f.reqId, 'limit-exceeded', `at most ${limits.maxInflightPublishes} publishes awaiting ACK`);
    }
    const { rates } = this.ctx;
    if (rates?.enabled) {
      const client = this.ctx.auth.mode === 'dev' ? `addr:${this.peer.remoteAddress}` : `sub:${this.clientId}`;
      const wait = rates.take(client, 1, this.bucket);
      if (wait > 0) return this.error(f.reqId, 'rate-limited', `publish rate limit reached; retry in ${wait} ms`);
    }
    this.inflight++;
    const started = performance.now();
    const input = f.key === undefined
      ? (f.headers ? { data: f.data, headers: f.headers } : { data: f.data })
      : (f.headers ? { data: f.data, key: f.key, headers: f.headers } : { data: f.data, key: f.key });
    store.append(f.topic, [input]).then(
      ([r]) => {
        this.inflight--;
        metrics.appendSeconds.observe((performance.now() - started) / 1000);
        if (r!.duplicate) metrics.duplicates.inc();
        else metrics.messagesIn.inc();
        this.conn.send(encode({ type: 9, reqId: f.reqId, offset: r!.offset, duplicate: r!.duplicate }));
      },
      (err: unknown) => {
        this.inflight--;
        if (err instanceof StoreUnavailableError) this.error(f.reqId, err.code, err.message);
        else this.failed(err, f.reqId);
      },
    );
  }

  // ---- errors -------------------------------------------------------------------------------

  private error(id: number, code: ErrorCode, message: string): void {
    this.ctx.metrics.error(code);
    this.conn.send(encode({ type: 11, id, code, message }));
  }

  private fatal(id: number, code: ErrorCode, message: string, closeCode: number): void {
    if (this.state === 'closed') return;
    this.error(id, code, message);
    this.conn.close(closeCode, message.slice(0, 120));
    this.closed();
  }

  /** An unexpected failure in a handler: counted, logged, answered with `internal`; the process goes on. */
  private failed(err: unknown, id = 0): void {
    this.ctx.metrics.handlerFailures.inc();
    console.error(`sluice: session ${this.id} handler failed`, err);
    if (this.state !== 'closed') this.error(id, 'internal', 'the gateway failed to handle this request');
  }
}

