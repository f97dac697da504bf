/**
 * FakeServer: an in-process peer that speaks the real protocol (the real codec) to the SDK
 * through a fake transport, so a test can script exactly what the gateway says and when — drops,
 * refusals, lost ACKs — without a network. FakeClock drives the SDK's timers by hand.
 *
 * Why: the client's state machine and its credit/resume bookkeeping must be tested against
 * situations a real gateway produces only rarely. To extend: add helpers that send frames; keep
 * assertions in the tests.
 */
import {
  decodeClientFrame,
  decodeValue,
  encode,
  type ClientFrame,
  type ServerFrame,
} from '../../src/protocol/index.js';
import type { Clock } from '../../src/backoff.js';
import type { Transport, TransportFactory, TransportHandlers } from '../../src/transport.js';

/** A client frame with its PUB payload (and headers) decoded. */
export type Received = ClientFrame;

export class FakeConnection implements Transport {
  readonly received: Received[] = [];
  private readPos = 0;
  closed: { code: number; reason: string } | undefined;
  bufferedAmount = 0;

  constructor(readonly url: string, private readonly handlers: TransportHandlers) {}

  /** Transport API (called by the SDK). */
  send(bytes: Uint8Array): void {
    const f = decodeClientFrame(bytes);
    if (f.type === 8) {
      const out: ClientFrame = { type: 8, reqId: f.reqId, topic: f.topic, data: decodeValue(f.data) };
      if (f.key !== undefined) out.key = f.key;
      if (f.headers !== undefined) out.headers = f.headers as Record<string, string>;
      if (f.orderingKey !== undefined) out.orderingKey = f.orderingKey;
      this.received.push(out);
    } else {
      this.received.push(f as ClientFrame);
    }
  }

  close(code = 1000, reason = ''): void {
    if (this.closed) return;
    this.closed = { code, reason };
    this.handlers.close(code, reason);
  }

  // ---- test side ----

  open(): void {
    this.handlers.open();
  }

  reply(frame: ServerFrame): void {
    this.handlers.message(encode(frame));
  }

  /** Sends bytes as they are: for frames the encoder would never produce (malformed, from old gateways). */
  replyRaw(bytes: Uint8Array): void {
    this.handlers.message(bytes);
  }

  /** The gateway drops the connection (`error`: what the runtime would report with it). */
  drop(code = 1006, reason = 'dropped', error?: unknown): void {
    if (this.closed) return;
    this.closed = { code, reason };
    this.handlers.close(code, reason, error);
  }

  /** Takes the next received frame matching `match` (frames are taken in order). */
  take<T extends Received['type']>(type: T): Extract<Received, { type: T }> {
    while (this.readPos < this.received.length) {
      const f = this.received[this.readPos++]!;
      if (f.type === type) return f as Extract<Received, { type: T }>;
    }
    throw new Error(`no ${type} frame received; got ${JSON.stringify(this.received)}`);
  }

  all<T extends Received['type']>(type: T): Extract<Received, { type: T }>[] {
    return this.received.filter((f) => f.type === type) as Extract<Received, { type: T }>[];
  }

  /** HELLO → WELCOME. */
  welcome(overrides: Partial<Extract<ServerFrame, { type: 2 }>> = {}): Extract<Received, { type: 1 }> {
    const hello = this.take(1);
    this.reply({ type: 2, session: 's', version: 'fake', maxFrame: 1 << 20, maxCredit: 4096, heartbeat: 20_000, ...overrides });
    return hello;
  }
}

export class FakeServer {
  readonly connections: FakeConnection[] = [];
  /** Open each connection automatically (on a microtask), like a reachable gateway. */
  autoOpen = true;

  readonly factory: TransportFactory = (url, handlers) => {
    const c = new FakeConnection(url, handlers);
    this.connections.push(c);
    if (this.autoOpen) queueMicrotask(() => { if (!c.closed) c.open(); });
    return c;
  };

  get last(): FakeConnection {
    const c = this.connections.at(-1);
    if (!c) throw new Error('no connection yet');
    return c;
  }
}

/** Manual time: `advance(ms)` fires due timers in order. */
export class FakeClock implements Clock {
  private t = 1_000_000;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }

  get pending(): number {
    return this.timers.size;
  }
}

/** Lets queued microtasks (promise callbacks) run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}
