/**
 * Publisher for NATS over the WebSocket listener. Core mode: PUB lines, coalesced into one frame
 * per cork; `settle` is a PING/PONG round trip. JetStream mode: each PUB names a reply inbox and
 * the stream acknowledges it once stored; the window bounds what awaits its ack.
 */
import { NatsConnection } from './nats-connection.js';
import type { Publisher } from './publisher.js';

export interface NatsPublisherOptions {
  url: string;
  prefix: string;
  /** JetStream: wait for the stream's ack of each message, at most `window` outstanding. */
  jetstream?: { window: number };
}

export class NatsPublisher implements Publisher {
  onReady: (() => void) | undefined;
  acked = 0;
  failures = 0;
  firstFailure = '';
  private inflight = 0;
  private idle: (() => void)[] = [];
  private ackInbox = '';

  private constructor(readonly conn: NatsConnection, private readonly o: NatsPublisherOptions) {
    conn.onClose = (code) => {
      this.failures++;
      this.firstFailure ||= `publisher connection closed (${code}) ${conn.lastError}`;
      this.inflight = 0;
      this.wake();
    };
    if (o.jetstream) {
      this.ackInbox = conn.inboxSubject('acks');
      conn.subscribe(this.ackInbox, (_reply, payload) => {
        // {"stream":"S","seq":N} or {"error":{...}}
        if (payload[2] === 101 /* e of "error" */) {
          this.failures++;
          this.firstFailure ||= Buffer.from(payload).toString('utf8');
        } else this.acked++;
        this.inflight--;
        if (this.inflight === 0) this.wake();
        this.onReady?.();
      });
    }
  }

  static async open(o: NatsPublisherOptions): Promise<NatsPublisher> {
    const conn = await NatsConnection.open(o.url);
    const p = new NatsPublisher(conn, o);
    await conn.flush();
    return p;
  }

  canSend(): boolean {
    return !this.o.jetstream || this.inflight < this.o.jetstream.window;
  }

  send(topicIndex: number, payload: Uint8Array): void {
    if (this.o.jetstream) this.inflight++;
    this.conn.publish(`${this.o.prefix}${topicIndex}`, payload, this.ackInbox);
  }

  cork(): void {
    this.conn.cork();
  }

  uncork(): void {
    this.conn.uncork();
  }

  async settle(): Promise<void> {
    if (this.inflight > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    await this.conn.flush();
  }

  close(): void {
    this.conn.close();
  }

  private wake(): void {
    const w = this.idle;
    this.idle = [];
    for (const f of w) f();
  }
}
