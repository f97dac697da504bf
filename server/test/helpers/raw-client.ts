/**
 * RawClient: a protocol-level WebSocket client for gateway tests. It speaks frames, not SDK
 * calls, so a test controls credit, ids and malformed input exactly, and sees every frame.
 *
 * Why it exists: the gateway's contracts (credit exactness, resume, error codes) are tested
 * against what goes over the wire. Waiting is always for a frame (`next`, `until`), never a sleep.
 * To extend: add a waiter helper built on `next`; keep assertions in the tests.
 */
import WebSocket from 'ws';
import {
  decodeServerFrame,
  encode,
  type ClientFrame,
  type MsgsItem,
  type ServerFrame,
  type WelcomeFrame,
} from '@sluice/client/protocol';

export interface Delivered {
  topic: string;
  offset: number;
  data: unknown;
  ts: number;
}

export class RawClient {
  readonly frames: ServerFrame[] = [];
  /** Index of the next frame `next` looks at. */
  private readPos = 0;
  private waiters: (() => void)[] = [];
  private pingSeq = 0;
  closeInfo: { code: number; reason: string } | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;
  welcome: WelcomeFrame | undefined;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        this.wake();
        resolve(this.closeInfo);
      });
    });
    ws.on('message', (data: Buffer) => {
      this.frames.push(decodeServerFrame(new Uint8Array(data)));
      this.wake();
    });
  }

  /**
   * Opens a socket (`ca`: the certificate authority a wss:// gateway's certificate must chain to); unless `hello: false`, sends HELLO
   * (with `protocol` when given; none: a 1.0 client) and waits for WELCOME.
   */
  static async connect(url: string, opts: { hello?: boolean; token?: string; protocol?: string; headers?: Record<string, string>; ca?: string | Buffer } = {}): Promise<RawClient> {
    const wsUrl = url.replace(/^http/, 'ws') + '/v1/ws'; // https → wss
    const ws = new WebSocket(wsUrl, { headers: opts.headers, ...(opts.ca === undefined ? {} : { ca: opts.ca }) });
    ws.binaryType = 'nodebuffer';
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const c = new RawClient(ws);
    if (opts.hello !== false) {
      const hello: ClientFrame = opts.token ? { type: 1, token: opts.token, client: 'raw-test' } : { type: 1, client: 'raw-test' };
      if (opts.protocol !== undefined) hello.protocol = opts.protocol;
      c.send(hello);
      c.welcome = (await c.next((f) => f.type === 2)) as WelcomeFrame;
    }
    return c;
  }

  send(frame: ClientFrame): void {
    this.ws.send(encode(frame));
  }

  sendRaw(data: Uint8Array | string, binary = true): void {
    this.ws.send(data, { binary });
  }

  /** The next frame (after those already taken) that matches; frames skipped stay in `frames`. */
  async next(match: (f: ServerFrame) => boolean = () => true, timeoutMs = 10_000): Promise<ServerFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.readPos < this.frames.length) {
        const f = this.frames[this.readPos++]!;
        if (match(f)) return f;
      }
      if (this.closeInfo) throw new Error(`socket closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a frame; last frames: ${JSON.stringify(this.frames.slice(-3))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Round trip: when PONG arrives, every frame the gateway sent before it has arrived too. */
  async barrier(): Promise<void> {
    const n = ++this.pingSeq + 1_000_000;
    this.send({ type: 12, n });
    await this.next((f) => f.type === 13 && f.n === n);
  }

  /** Subscribes and returns SUBSCRIBED. */
  async subscribe(subId: number, topic: string, opts: { from?: number; epoch?: string; credit?: number } = {}) {
    this.send({ type: 3, subId, topic, ...opts });
    const f = await this.next((x) => (x.type === 4 && x.subId === subId) || (x.type === 11 && x.id === subId));
    if (f.type === 11) throw new Error(`SUB ${subId} failed: ${f.code} ${f.message}`);
    return f as Extract<ServerFrame, { type: 4 }>;
  }

  /** Publishes and waits for the ACK (or throws on ERROR). */
  async publish(reqId: number, topic: string, data: unknown, key?: string) {
    this.send(key === undefined ? { type: 8, reqId, topic, data } : { type: 8, reqId, topic, data, key });
    const f = await this.next((x) => (x.type === 9 && x.reqId === reqId) || (x.type === 11 && x.id === reqId));
    if (f.type === 11) throw new Error(`PUB ${reqId} failed: ${f.code} ${f.message}`);
    return f as Extract<ServerFrame, { type: 9 }>;
  }

  /** Every message delivered so far (MSG and MSGS expanded), in arrival order. */
  delivered(topic?: string): Delivered[] {
    const out: Delivered[] = [];
    for (const f of this.frames) {
      if (f.type === 10 && (!topic || f.topic === topic)) out.push({ topic: f.topic, offset: f.offset, data: f.data, ts: f.ts });
      if (f.type === 15 && (!topic || f.topic === topic)) {
        f.messages.forEach((m: MsgsItem, i: number) => out.push({ topic: f.topic, offset: f.first + i, data: m.data, ts: m.ts }));
      }
    }
    return out;
  }

  /** Waits until at least `count` messages of `topic` were delivered. */
  async waitDelivered(topic: string, count: number, timeoutMs = 10_000): Promise<Delivered[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = this.delivered(topic);
      if (d.length >= count) return d;
      const left = deadline - Date.now();
      if (left <= 0 || this.closeInfo) {
        throw new Error(`expected ${count} messages on ${topic}, got ${d.length}${this.closeInfo ? ` (closed ${this.closeInfo.code})` : ''}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /**
   * Reads `count` messages of a subscription, granting credit as they arrive the way a consumer
   * does (the head can exceed any one grant: credit is capped at maxCredit).
   */
  async consume(subId: number, topic: string, count: number, timeoutMs = 20_000): Promise<Delivered[]> {
    const deadline = Date.now() + timeoutMs;
    let granted = this.delivered(topic).length;
    for (;;) {
      const got = this.delivered(topic);
      if (got.length >= count) return got;
      if (got.length >= granted) {
        this.send({ type: 7, subId, n: 1024 });
        granted = got.length + 1024;
      }
      await this.waitDelivered(topic, Math.min(count, got.length + 1), Math.max(1, deadline - Date.now()));
    }
  }

  close(): void {
    this.ws.close();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
