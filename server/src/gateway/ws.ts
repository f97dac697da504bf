/**
 * uWebSockets.js wiring for /v1/ws: upgrade → open → message/drain → close, each handed to a
 * Session. The only file that touches uWS WebSocket objects. An upgrade goes through the same
 * response stack as every HTTP route (origin check, JSON error, request metrics).
 *
 * Outbox: frames a session sends from async completions (ACKs after a commit, catch-up reads) are
 * queued per connection and written once per loop turn inside one cork, so a commit that
 * acknowledges a thousand publishes costs a few syscalls, not a thousand.
 */
import { CloseCode } from '@sluice/client/protocol';
import type { TemplatedApp, WebSocket, us_socket_context_t, HttpResponse, HttpRequest } from 'uWebSockets.js';
import type { Conn } from '../hub/conn.js';
import { begin, clientAddress, type HttpBasics } from '../http/context.js';
import { logger } from '../logger.js';
import { Session, type SessionContext } from '../session/session.js';

/**
 * What uWS keeps per socket. uWS copies these properties onto its WebSocket object, so there is
 * one: the peer's details from the upgrade, replaced by the connection once it is open.
 */
interface UserData {
  conn: UwsConn | { remoteAddress: string; userAgent: string };
}

function connOf(ws: WebSocket<UserData>): UwsConn | undefined {
  const c = ws.getUserData().conn;
  return c instanceof UwsConn ? c : undefined;
}

/** A send buffer below this resolves `drained()`. */
const LOW_WATER = 64 * 1024;

/** Connections with queued frames, written at the end of the loop turn. */
class Outbox {
  private readonly dirty = new Set<UwsConn>();
  private scheduled = false;

  constructor(readonly metrics: SessionContext['metrics']) {}

  mark(conn: UwsConn): void {
    this.dirty.add(conn);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flushAll());
    }
  }

  private flushAll(): void {
    this.scheduled = false;
    for (const conn of this.dirty) conn.flush();
    this.dirty.clear();
  }
}

/**
 * One WebSocket. Thousands of idle ones must cost little: queues and waiter lists exist only
 * while in use, and the connection's id is its session's.
 */
export class UwsConn implements Conn {
  closed = false;
  bytesSent = 0;
  session: Session | undefined;
  /** Set while the connection has not said HELLO (see `Greeting`). */
  waiting: Greeting | undefined;
  readonly openedAt = Date.now();
  private queue: Uint8Array[] | undefined;
  /** Bytes in `queue`. */
  private queued = 0;
  private drainWaiters: (() => void)[] | undefined;

  constructor(
    private readonly ws: WebSocket<UserData>,
    private readonly outbox: Outbox,
    readonly remoteAddress: string,
    readonly userAgent: string,
  ) {}

  get id(): string {
    return this.session?.id ?? '';
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    this.queued += frame.length;
    if (this.queue) {
      this.queue.push(frame);
      return;
    }
    this.queue = [frame];
    this.outbox.mark(this);
  }

  flush(): void {
    if (this.closed || !this.queue) return;
    const frames = this.queue;
    this.queue = undefined;
    this.queued = 0;
    let dropped = false;
    this.ws.cork(() => {
      for (const f of frames) {
        // 2 = dropped: the send buffer passed maxBackpressure. Never lose a frame silently.
        if (this.closed) break;
        if (this.ws.send(f, true) === 2) { dropped = true; break; }
        this.bytesSent += f.length;
      }
    });
    if (dropped) this.slow();
    else this.onDrain(); // the kernel may have taken it all: no uWS drain event would follow
  }

  join(topic: string): void {
    if (!this.closed) this.ws.subscribe(topic);
  }

  leave(topic: string): void {
    if (!this.closed) this.ws.unsubscribe(topic);
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.queued + this.ws.getBufferedAmount();
  }

  drained(): Promise<void> {
    if (this.bufferedAmount() < LOW_WATER) return Promise.resolve();
    return new Promise((resolve) => (this.drainWaiters ??= []).push(resolve));
  }

  greeted(): void {
    this.waiting?.done(this);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.flush();
    if (this.closed) return;
    this.ws.end(code, reason);
    this.markClosed();
  }

  /** uWS `drain`. */
  onDrain(): void {
    if (this.drainWaiters && this.bufferedAmount() < LOW_WATER) this.wake();
  }

  /** uWS `close` (or our own end()). */
  markClosed(): void {
    this.waiting?.done(this);
    this.closed = true;
    this.queue = undefined;
    this.queued = 0;
    this.wake();
  }

  /** The send buffer passed maxBackpressure: close (the client resumes from its offset). */
  slow(): void {
    this.outbox.metrics.slowConsumerCloses.inc();
    if (this.closed) return;
    try {
      this.ws.end(CloseCode.SLOW_CONSUMER, 'send buffer over the backpressure limit');
    } catch {
      // uWS may have closed it already (closeOnBackpressureLimit).
    }
    this.markClosed();
  }

  private wake(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = undefined;
    if (waiters) for (const w of waiters) w();
  }
}

/**
 * Connections that have not said HELLO yet: counted per remote address (an upgrade beyond
 * `maxPendingPerAddress` is refused) and closed with 4204 once `helloTimeoutMs` passed — one sweep
 * a fraction of the deadline, over a set in opening order, so a connection costs no timer.
 */
class Greeting {
  private readonly conns = new Set<UwsConn>();
  private readonly perAddress = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly timeoutMs: number) {}

  pending(address: string): number {
    return this.perAddress.get(address) ?? 0;
  }

  add(conn: UwsConn): void {
    conn.waiting = this;
    this.conns.add(conn);
    this.perAddress.set(conn.remoteAddress, this.pending(conn.remoteAddress) + 1);
    this.timer ??= setInterval(() => this.sweep(), Math.max(50, Math.min(1000, this.timeoutMs / 4)));
    this.timer.unref();
  }

  done(conn: UwsConn): void {
    if (conn.waiting !== this) return;
    conn.waiting = undefined;
    this.conns.delete(conn);
    const n = this.pending(conn.remoteAddress) - 1;
    if (n > 0) this.perAddress.set(conn.remoteAddress, n);
    else this.perAddress.delete(conn.remoteAddress);
    if (this.conns.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private sweep(): void {
    const late = Date.now() - this.timeoutMs;
    for (const conn of this.conns) {
      if (conn.openedAt > late) break; // in opening order: the rest are younger
      this.done(conn);
      conn.close(CloseCode.HELLO_TIMEOUT, `no HELLO within ${this.timeoutMs} ms`);
    }
  }
}

export interface WsOptions {
  ctx: SessionContext;
  sessions: Set<Session>;
  /** Origin policy and metrics, as for HTTP routes. */
  http: HttpBasics;
}

/** The last client address seen: connections from one address (NAT, a proxy) share the string. */
let lastAddress = '';
function shared(addr: string): string {
  if (addr === lastAddress) return lastAddress;
  return (lastAddress = addr);
}

export function mountWebSocket(app: TemplatedApp, opts: WsOptions): void {
  const { ctx, sessions } = opts;
  const { limits, metrics } = ctx;
  const outbox = new Outbox(metrics);
  const greeting = new Greeting(limits.helloTimeoutMs);
  // uWS closes the socket itself (1006 for the client) above maxPayloadLength; between maxFrame
  // and that, the session answers ERROR too-large and the connection survives.
  const hardLimit = limits.maxFrame + 64 * 1024;
  // Idle timeout: two heartbeats without a frame (rounded up to uWS's 4 s granularity).
  const idleTimeout = Math.max(8, Math.ceil((2 * limits.heartbeatMs) / 1000 / 4) * 4);

  app.ws<UserData>('/v1/ws', {
    maxPayloadLength: hardLimit,
    maxBackpressure: limits.maxBackpressure,
    closeOnBackpressureLimit: true,
    idleTimeout,
    sendPingsAutomatically: true,
    upgrade: (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => {
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const userAgent = req.getHeader('user-agent');
      const ex = begin(res, req, 'upgrade', opts.http); // answers 403 for a refused origin
      if (!ex) return;
      if (sessions.size >= limits.maxConnections) {
        return ex.error('limit-exceeded', `at most ${limits.maxConnections} connections`, 503, { 'retry-after': '1' });
      }
      const address = shared(clientAddress(ex));
      if (greeting.pending(address) >= limits.maxPendingPerAddress) {
        return ex.error('limit-exceeded', `at most ${limits.maxPendingPerAddress} connections per address waiting for HELLO`, 429, { 'retry-after': '1' });
      }
      ex.handedOver(101);
      res.upgrade<UserData>(
        { conn: { remoteAddress: address, userAgent } },
        key, protocol, extensions, context,
      );
    },
    open: (ws) => {
      const data = ws.getUserData();
      const conn = new UwsConn(ws, outbox, data.conn.remoteAddress, data.conn.userAgent);
      const session = new Session(conn, ctx);
      conn.session = session;
      data.conn = conn;
      greeting.add(conn);
      sessions.add(session);
      metrics.connectionsTotal.inc();
    },
    message: (ws, message, isBinary) => {
      connOf(ws)?.session?.receive(new Uint8Array(message), isBinary);
    },
    drain: (ws) => {
      connOf(ws)?.onDrain();
    },
    dropped: (ws) => {
      // Only reachable if a publish passed maxBackpressure; closeOnBackpressureLimit closes it.
      connOf(ws)?.slow();
    },
    close: (ws, code) => {
      const conn = connOf(ws);
      if (!conn) return;
      conn.markClosed();
      if (conn.session) {
        const s = conn.session;
        s.closed();
        sessions.delete(s);
        if (logger.enabled('debug')) {
          logger.debug('connection closed', {
            session: s.id, clientId: s.clientId || undefined, client: s.clientName || undefined, address: conn.remoteAddress,
            code, ms: Date.now() - conn.openedAt, bytesIn: s.bytesIn, bytesOut: s.bytesOut,
          });
        }
      }
    },
  });
}
