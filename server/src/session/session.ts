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
  encodeAck,
  encodeLease,
  encodeStr,
  FrameError,
  FrameType,
  isPattern,
  PROTOCOL_VERSION,
  protocolCompatible,
  protocolMinor,
  topicError,
  type EncodedClientFrame,
  type ErrorCode,
  type PubFrame,
  type ResolveFrame,
  type SubFrame,
} from '@sluice/client/protocol';
import { AuthError, type Authenticator, type Principal } from '../auth/auth.js';
import type { Limits } from '../config.js';
import { atExpiry } from '../core/expiry.js';
import { clientKey, PublishError, type Publisher, type PublishService } from '../core/publish.js';
import type { Conn } from '../hub/conn.js';
import { groupError, NotLeased, type Groups, type Member } from '../groups/registry.js';
import type { Hub } from '../hub/hub.js';
import type { SubscriptionView } from '../hub/subscription.js';
import type { Metrics } from '../metrics.js';
import type { RateLimiter } from '../ratelimit.js';
import { randomId } from '../util/id.js';
import type { HeldService } from '../core/held.js';
import { logger } from '../logger.js';

export interface SessionContext {
  hub: Hub;
  groups: Groups;
  publisher: PublishService;
  /** Delayed and prepared publishes (PUB delay / at / prepare, RESOLVE). */
  held: HeldService;
  auth: Authenticator;
  limits: Limits;
  metrics: Metrics;
  version: string;
  /** Publish rate limits (for the connection's own bucket). */
  rates: RateLimiter;
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

/** A consumer-group subscription: a member whose leases go out on this connection as LEASE frames. */
class WsMember implements Member {
  readonly transport = 'ws';
  leased = 0;
  window = 0;
  private waiting = false;
  constructor(
    readonly id: string,
    readonly subId: number,
    readonly topic: string,
    readonly group: string,
    readonly clientId: string,
    private readonly conn: Conn,
    private readonly name: Uint8Array,
    private readonly highWater: number,
    private readonly wake: () => void,
  ) {}

  deliver(offset: number, attempt: number, entry: Uint8Array): void {
    this.conn.send(encodeLease(this.name, offset, attempt, entry));
  }

  /** The socket holds more than the high-water mark unsent: no leases until it drained. */
  blocked(): boolean {
    if (this.conn.closed || this.conn.bufferedAmount() <= this.highWater) return false;
    if (!this.waiting) {
      this.waiting = true;
      void this.conn.drained().then(() => {
        this.waiting = false;
        this.wake();
      });
    }
    return true;
  }
}

/** The subscriptions of a connection that has none; never written to. */
const NO_SUBS: Map<number, SubscriptionView> = new Map();

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
  subs: Map<number, SubscriptionView> = NO_SUBS;
  /** Topics of `subs` and `members`, from the second subscription on (one is found by a scan). */
  private byTopic: Set<string> | undefined;
  /** Consumer-group subscriptions by id. */
  private members: Map<number, WsMember> | undefined;
  private queued: Uint8Array[] | undefined;
  private inflight = 0;
  private cancelExpiry: (() => void) | undefined;
  /** Native fan-out bytes of subscriptions that ended. */
  private endedNativeBytes = 0;
  /** Who publishes on this connection (set at WELCOME). */
  private who: Publisher | undefined;
  /** The byte window of its plain subscriptions: `maxWindowBytes` when HELLO said 1.5 or later, else 0 (none). */
  private windowBytes = 0;

  constructor(
    readonly conn: Conn,
    private readonly ctx: SessionContext,
  ) {}

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
    this.cancelExpiry?.();
    for (const sub of this.subs.values()) this.endedNativeBytes += this.ctx.hub.unsubscribe(sub);
    // Its leases stay with the group until they expire (then another member gets them).
    for (const m of this.members?.values() ?? []) this.ctx.groups.leave(m.topic, m.group, m);
    this.members = undefined;
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
      if (err.fatal) this.fatal(err.id, err.code, err.message, CloseCode.BAD_FRAME, err.re);
      else this.error(err.id, err.code, err.message, err.re);
      return;
    }
    if (this.state === 'hello') {
      if (frame.type !== FrameType.HELLO) {
        this.fatal(0, 'bad-frame', 'HELLO must be the first frame', CloseCode.POLICY, frame.type);
        return;
      }
      if (!protocolCompatible(frame.protocol)) {
        this.fatal(0, 'bad-frame', `protocol ${String(frame.protocol).slice(0, 20)} is not supported (this gateway speaks ${PROTOCOL_VERSION})`, CloseCode.UNSUPPORTED_PROTOCOL, FrameType.HELLO);
        return;
      }
      // Only a client that announced 1.5 knows to grant credit by bytes consumed (PROTOCOL.md, "Byte window").
      if (protocolMinor(frame.protocol) >= 5) this.windowBytes = this.ctx.limits.maxWindowBytes;
      this.hello(frame.token, frame.client);
      return;
    }
    switch (frame.type) {
      case FrameType.HELLO: return this.error(0, 'bad-frame', 'HELLO was already received', FrameType.HELLO);
      case FrameType.SUB: return this.subscribe(frame);
      case FrameType.UNSUB: return this.unsubscribe(frame.subId);
      case FrameType.CREDIT: return this.credit(frame.subId, frame.n);
      case FrameType.PUB: return this.publish(frame);
      case FrameType.PING: return this.conn.send(encode({ type: FrameType.PONG, n: frame.n }));
      case FrameType.PONG: return;
      case FrameType.GROUP_ACK: return this.groupAck(frame.subId, frame.offsets);
      case FrameType.GROUP_NACK: return this.groupNack(frame.subId, frame.offset, frame.delay, frame.reason);
      case FrameType.RESOLVE: return this.resolveHeld(frame);
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
        // Never the token: the reason, the connection and where it came from.
        logger.warn('authentication failed', { transport: 'ws', reason: message, session: this.id, client: this.clientName || undefined, address: this.conn.remoteAddress });
        this.fatal(0, 'unauthorized', message, CloseCode.UNAUTHORIZED, FrameType.HELLO);
      },
    );
  }

  private welcome(principal: Principal): void {
    if (this.state !== 'auth') return;
    this.principal = principal;
    this.state = 'open';
    this.conn.greeted?.();
    const { limits, auth, rates } = this.ctx;
    this.who = { principal, client: clientKey(auth.mode === 'dev', principal, this.conn.remoteAddress), transport: 'ws' };
    const bucket = rates.connectionBucket();
    if (bucket) this.who.bucket = bucket;
    this.conn.send(encode({
      type: FrameType.WELCOME,
      session: this.id,
      protocol: PROTOCOL_VERSION,
      version: this.ctx.version,
      maxFrame: limits.maxFrame,
      maxCredit: limits.maxCredit,
      heartbeat: limits.heartbeatMs,
      maxSubscriptions: limits.maxSubscriptions,
      maxWindowBytes: limits.maxWindowBytes,
    }));
    if (principal.expiresAt !== undefined) {
      // A token that expires ends its connection: the client reconnects with a fresh one.
      this.cancelExpiry = atExpiry(principal.expiresAt, () => this.fatal(0, 'unauthorized', 'token expired', CloseCode.UNAUTHORIZED));
    }
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

  private subscribe(f: SubFrame): void {
    const { hub, limits } = this.ctx;
    const reason = isPattern(f.topic)
      ? 'wildcard subscriptions are not supported yet'
      : topicError(f.topic, { allowReserved: this.principal!.admin });
    const SUB = FrameType.SUB;
    if (reason) return this.error(f.subId, 'invalid-topic', reason, SUB);
    if (f.group !== undefined) {
      const bad = groupError(f.group);
      if (bad) return this.error(f.subId, 'invalid-group', bad, SUB);
    }
    const action = f.group === undefined ? 'sub' : 'consume';
    if (!this.principal!.can(action, f.topic)) return this.error(f.subId, 'forbidden', `not allowed to ${action === 'sub' ? 'subscribe to' : 'consume'} ${f.topic}`, SUB);
    if (this.subs.has(f.subId) || this.members?.has(f.subId)) return this.error(f.subId, 'already-subscribed', `subscription id ${f.subId} is in use`, SUB);
    if (this.holds(f.topic)) return this.error(f.subId, 'already-subscribed', `already subscribed to ${f.topic}`, SUB);
    if (this.subs.size + (this.members?.size ?? 0) >= limits.maxSubscriptions) {
      return this.error(f.subId, 'limit-exceeded', `at most ${limits.maxSubscriptions} subscriptions per connection`, SUB);
    }
    if (f.group !== undefined) return this.consume(f, f.group);
    const { view, opened } = hub.subscribe(this.conn, {
      id: f.subId, topic: f.topic, clientId: this.clientId, credit: f.credit ?? limits.defaultCredit, from: f.from, epoch: f.epoch,
      windowBytes: this.windowBytes,
    });
    this.index(f.topic);
    if (this.subs === NO_SUBS) this.subs = new Map();
    this.subs.set(f.subId, view);
    opened.catch((err: unknown) => {
      this.forget(view);
      this.failed(err, f.subId, FrameType.SUB);
    });
  }

  /**
   * SUB with a group: joins it as a member. SUBSCRIBED goes out before the first LEASE: the member
   * gets its credit only after it.
   */
  private consume(f: SubFrame, group: string): void {
    const { groups, limits } = this.ctx;
    const member = new WsMember(`${this.id}:${f.subId}`, f.subId, f.topic, group, this.clientId, this.conn, encodeStr(f.topic),
      this.ctx.hub.highWater, () => groups.poke(f.topic, group));
    this.index(f.topic);
    (this.members ??= new Map()).set(f.subId, member);
    groups.join(f.topic, group, member, f.from).then(
      ({ position, epoch, head }) => {
        if (this.members?.get(f.subId) !== member) return groups.leave(f.topic, group, member);
        this.conn.send(encode({ type: FrameType.SUBSCRIBED, subId: f.subId, epoch, head, from: position, recovered: true }));
        member.window = Math.min(f.credit ?? limits.defaultCredit, limits.maxCredit);
        groups.poke(f.topic, group);
      },
      (err: unknown) => {
        this.members?.delete(f.subId);
        this.byTopic?.delete(f.topic);
        this.failed(err, f.subId, FrameType.SUB);
      },
    );
  }

  /** Whether the connection subscribes to `topic` (plain or in a group). */
  private holds(topic: string): boolean {
    if (this.byTopic) return this.byTopic.has(topic);
    for (const sub of this.subs.values()) if (sub.topic === topic) return true;
    for (const m of this.members?.values() ?? []) if (m.topic === topic) return true;
    return false;
  }

  /**
   * Notes a subscription's topic before it is added. Most connections hold one subscription: the
   * set of topics is made at the second (with the first), and until then `holds` scans.
   */
  private index(topic: string): void {
    if (!this.byTopic) {
      if (this.subs.size === 0 && (this.members?.size ?? 0) === 0) return;
      this.byTopic = new Set();
      for (const sub of this.subs.values()) this.byTopic.add(sub.topic);
      for (const m of this.members?.values() ?? []) this.byTopic.add(m.topic);
    }
    this.byTopic.add(topic);
  }

  private groupAck(subId: number, offsets: readonly number[]): void {
    const m = this.members?.get(subId);
    if (!m) return this.error(subId, 'not-subscribed', `no group subscription ${subId}`, FrameType.GROUP_ACK);
    this.ctx.groups.ack(m.topic, m.group, m, offsets).then((refused) => {
      if (refused.length === 0) return;
      const list = refused.slice(0, 10).join(', ') + (refused.length > 10 ? ', …' : '');
      this.error(subId, 'not-leased', `offsets ${list} are not leased to this member (never, to another, expired, or already acknowledged)`, FrameType.GROUP_ACK);
    }, (err: unknown) => this.failed(err, subId, FrameType.GROUP_ACK));
  }

  private groupNack(subId: number, offset: number, delay: number | undefined, reason: string | undefined): void {
    const m = this.members?.get(subId);
    if (!m) return this.error(subId, 'not-subscribed', `no group subscription ${subId}`, FrameType.GROUP_NACK);
    this.ctx.groups.nack(m.topic, m.group, m, offset, delay, reason).catch((err: unknown) => {
      if (err instanceof NotLeased) this.error(subId, 'not-leased', err.message, FrameType.GROUP_NACK);
      else this.failed(err, subId, FrameType.GROUP_NACK);
    });
  }

  private unsubscribe(subId: number): void {
    const m = this.members?.get(subId);
    if (m) {
      this.members!.delete(subId);
      this.byTopic?.delete(m.topic);
      this.ctx.groups.leave(m.topic, m.group, m);
      this.conn.send(encode({ type: FrameType.UNSUBSCRIBED, subId }));
      return;
    }
    const sub = this.subs.get(subId);
    if (!sub) return this.error(subId, 'not-subscribed', `no subscription ${subId}`, FrameType.UNSUB);
    this.forget(sub);
    this.conn.send(encode({ type: FrameType.UNSUBSCRIBED, subId }));
  }

  private forget(sub: SubscriptionView): void {
    this.endedNativeBytes += this.ctx.hub.unsubscribe(sub);
    this.subs.delete(sub.id);
    this.byTopic?.delete(sub.topic);
  }

  private credit(subId: number, n: number): void {
    const m = this.members?.get(subId);
    if (m) return this.ctx.groups.grant(m.topic, m.group, m, n, this.ctx.limits.maxCredit);
    const sub = this.subs.get(subId);
    if (!sub) return this.error(subId, 'not-subscribed', `no subscription ${subId}`, FrameType.CREDIT);
    this.ctx.hub.grant(sub, n);
  }

  private publish(f: PubFrame<Uint8Array, unknown>): void {
    const { limits } = this.ctx;
    if (this.inflight >= limits.maxInflightPublishes) {
      return this.error(f.reqId, 'limit-exceeded', `at most ${limits.maxInflightPublishes} publishes awaiting ACK`, FrameType.PUB);
    }
    this.inflight++;
    // One shape for every request (the frames' shapes vary with their optional fields, and the
    // publish service's property reads would see all of them: measured slower than this copy).
    const req = { topic: f.topic, data: f.data, key: f.key, headers: f.headers, orderingKey: f.orderingKey, priority: f.priority, trace: f.trace };
    if (f.prepare || f.delay !== undefined || f.at !== undefined) {
      const held = f.prepare ? this.ctx.held.prepare(this.who!, req, f.checkUrl) : this.ctx.held.schedule(this.who!, req, { delay: f.delay, at: f.at });
      held.then(
        (h) => {
          this.inflight--;
          this.conn.send(encode(h.due === undefined
            ? { type: FrameType.HELD, reqId: f.reqId, id: h.id, duplicate: h.duplicate }
            : { type: FrameType.HELD, reqId: f.reqId, id: h.id, due: h.due, duplicate: h.duplicate }));
        },
        (err: unknown) => {
          this.inflight--;
          this.publishFailed(err, f.reqId, FrameType.PUB);
        },
      );
      return;
    }
    this.ctx.publisher.publish(this.who!, req).then(
      (r) => {
        this.inflight--;
        this.conn.send(encodeAck(f.reqId, r.offset, r.duplicate));
      },
      (err: unknown) => {
        this.inflight--;
        this.publishFailed(err, f.reqId, FrameType.PUB);
      },
    );
  }

  private publishFailed(err: unknown, reqId: number, re: number): void {
    // On the WebSocket, a malformed publish is a bad frame (bad-request is HTTP's name for it).
    if (err instanceof PublishError) this.error(reqId, err.code === 'bad-request' ? 'bad-frame' : err.code, err.message, re);
    else this.failed(err, reqId, re);
  }

  /** RESOLVE: commit / abort a prepared message, cancel a scheduled one (all idempotent). */
  private resolveHeld(f: ResolveFrame): void {
    const { held } = this.ctx;
    const principal = this.who!.principal;
    const done = f.op === 'commit'
      ? held.commit(principal, f.id).then((r) => encode({ type: FrameType.RESOLVED, reqId: f.reqId, outcome: 'committed', offset: r.offset, duplicate: r.duplicate }))
      : f.op === 'abort'
        ? held.abort(principal, f.id).then(() => encode({ type: FrameType.RESOLVED, reqId: f.reqId, outcome: 'aborted' }))
        : held.cancel(principal, f.id).then(() => encode({ type: FrameType.RESOLVED, reqId: f.reqId, outcome: 'cancelled' }));
    done.then((bytes) => this.conn.send(bytes), (err: unknown) => this.publishFailed(err, f.reqId, FrameType.RESOLVE));
  }

  // ---- errors -------------------------------------------------------------------------------

  /** ERROR for request `id` of frame type `re` (0: none; see PROTOCOL.md, ERROR). */
  private error(id: number, code: ErrorCode, message: string, re = 0): void {
    this.ctx.metrics.error(code);
    this.conn.send(encode({ type: FrameType.ERROR, id, code, message, re }));
  }

  private fatal(id: number, code: ErrorCode, message: string, closeCode: number, re = 0): void {
    if (this.state === 'closed') return;
    this.error(id, code, message, re);
    this.conn.close(closeCode, message.slice(0, 120));
    this.closed();
  }

  /** An unexpected failure in a handler: counted, logged, answered with `internal`; the process goes on. */
  private failed(err: unknown, id = 0, re = 0): void {
    this.ctx.metrics.handlerFailures.inc();
    logger.error(`session ${this.id} handler failed`, { err });
    if (this.state !== 'closed') this.error(id, 'internal', 'the gateway failed to handle this request', re);
  }
}

