/**
 * Publisher for RabbitMQ: one AMQP connection with a confirm channel, each message persistent
 * (delivery mode 2) and sent to the queue through the default exchange; at most `window` await
 * their publisher confirm. The broker confirms a persistent message routed to a durable queue
 * once it is written to disk (RabbitMQ's "publisher confirms"); the window opens as confirms come.
 */
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { AMQP_SOCKET } from './amqp-member.js';
import type { Publisher } from './publisher.js';

export interface AmqpPublisherOptions {
  url: string;
  queue: string;
  /** Most messages awaiting their confirm. */
  window: number;
}

export class AmqpPublisher implements Publisher {
  onReady: (() => void) | undefined;
  acked = 0;
  failures = 0;
  firstFailure = '';
  private inflight = 0;
  private idle: (() => void)[] = [];
  private closed = false;

  private constructor(private readonly conn: ChannelModel, private readonly ch: ConfirmChannel, private readonly o: AmqpPublisherOptions) {
    const fail = (why: string) => {
      this.failures++;
      this.firstFailure ||= why;
    };
    conn.on('error', (err: Error) => fail(`connection: ${err.message}`));
    ch.on('error', (err: Error) => fail(`channel: ${err.message}`));
    conn.on('close', () => {
      if (!this.closed) fail('publisher connection closed');
      this.inflight = 0;
      this.wake();
    });
  }

  static async open(o: AmqpPublisherOptions): Promise<AmqpPublisher> {
    const conn = await connect(o.url, AMQP_SOCKET);
    const ch = await conn.createConfirmChannel();
    return new AmqpPublisher(conn, ch, o);
  }

  canSend(): boolean {
    return this.inflight < this.o.window;
  }

  send(_topicIndex: number, payload: Uint8Array): void {
    this.inflight++;
    const content = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    this.ch.sendToQueue(this.o.queue, content, { persistent: true }, (err: unknown) => {
      if (err) {
        this.failures++;
        this.firstFailure ||= `nacked: ${String(err)}`;
      } else this.acked++;
      this.inflight--;
      if (this.inflight === 0) this.wake();
      this.onReady?.();
    });
  }

  /** amqplib buffers its own writes; nothing to do. */
  cork(): void {}

  uncork(): void {}

  settle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  close(): void {
    this.closed = true;
    void this.conn.close().catch(() => undefined);
  }

  private wake(): void {
    const w = this.idle;
    this.idle = [];
    for (const f of w) f();
  }
}
