/**
 * One NATS client connection over the server's WebSocket listener, speaking the core text
 * protocol minimally: INFO → CONNECT + PING → PONG, SUB, PUB, PING/PONG both ways, and
 * request/reply through an inbox (used for the JetStream API). Writes made between `cork` and
 * `uncork` leave as one WebSocket frame, as NATS clients coalesce their writes.
 */
import { randomBytes } from 'node:crypto';
import type WebSocket from 'ws';
import { CONNECT, NatsParser } from './nats-parser.js';
import { openSocket, pauseReading, resumeReading } from './socket.js';
import { deferred } from './subscriber.js';

export type MsgHandler = (reply: string, payload: Uint8Array, headers: Uint8Array | undefined) => void;

export class NatsConnection {
  private readonly handlers = new Map<number, MsgHandler>();
  private nextSid = 1;
  private pongs: (() => void)[] = [];
  private corked: (string | Uint8Array)[] | undefined;
  private readonly inbox = `_INBOX.${randomBytes(8).toString('hex')}`;
  private replySid = 0;
  private pending: ReturnType<typeof deferred<Uint8Array>> | undefined;
  closed = false;
  closeCode = 0;
  lastError = '';
  onClose: ((code: number) => void) | undefined;

  private ws!: WebSocket;

  private constructor() {}

  static async open(url: string): Promise<NatsConnection> {
    const c = new NatsConnection();
    const info = deferred<void>();
    const parser = new NatsParser({
      msg: (sid, reply, payload, headers) => c.handlers.get(sid)?.(reply, payload, headers),
      ping: () => c.write('PONG\r\n'), // INFO comes first, so `c.ws` is set by then
      pong: () => c.pongs.shift()?.(),
      info: () => info.resolve(),
      err: (text) => {
        c.lastError = text;
        c.pending?.reject(new Error(text));
        c.pending = undefined;
      },
    });
    const ws = await openSocket(url, (data) => parser.feed(data));
    c.ws = ws;
    ws.on('close', (code) => {
      c.closed = true;
      c.closeCode = code;
      info.reject(new Error(`closed (${code})`));
      for (const p of c.pongs) p();
      c.pongs = [];
      c.pending?.reject(new Error(`connection closed (${code}) ${c.lastError}`));
      c.pending = undefined;
      c.onClose?.(code);
    });
    await info.promise;
    c.write(CONNECT);
    await c.flush();
    return c;
  }

  write(data: string | Uint8Array): void {
    if (this.closed) return;
    if (this.corked) this.corked.push(data);
    else this.ws.send(data, { binary: true });
  }

  cork(): void {
    this.corked ??= [];
  }

  uncork(): void {
    const parts = this.corked;
    this.corked = undefined;
    if (!parts || parts.length === 0) return;
    this.write(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))));
  }

  /** Round trip: resolves once the server handled everything sent before. */
  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve) => {
      this.pongs.push(resolve);
      this.write('PING\r\n');
    });
  }

  subscribe(subject: string, handler: MsgHandler): number {
    const sid = this.nextSid++;
    this.handlers.set(sid, handler);
    this.write(`SUB ${subject} ${sid}\r\n`);
    return sid;
  }

  publish(subject: string, payload: Uint8Array | string, reply = ''): void {
    const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    this.write(`PUB ${subject}${reply ? ` ${reply}` : ''} ${size}\r\n`);
    this.write(payload);
    this.write('\r\n');
  }

  /** A fresh subject under this connection's inbox. */
  inboxSubject(name: string): string {
    return `${this.inbox}.${name}`;
  }

  /**
   * Request/reply through the inbox; resolves with the reply payload. One request at a time: the
   * parser reports a message's sid, not its subject, so replies are matched by order.
   */
  async request(subject: string, body: unknown): Promise<Uint8Array> {
    if (this.pending) throw new Error('one NATS request at a time');
    if (!this.replySid) this.replySid = this.subscribe(`${this.inbox}.r`, (_reply, payload) => {
      const d = this.pending;
      this.pending = undefined;
      d?.resolve(Buffer.from(payload));
    });
    const d = deferred<Uint8Array>();
    this.pending = d;
    this.publish(subject, JSON.stringify(body), `${this.inbox}.r`);
    return d.promise;
  }

  pause(): void {
    pauseReading(this.ws);
  }

  resume(): void {
    resumeReading(this.ws);
  }

  close(): void {
    this.ws.terminate();
  }
}
