/**
 * A RabbitMQ consumer as a queue member: its own AMQP connection and channel, prefetch = the
 * spec's credit (per consumer), manual acknowledgements. The deliveries of one socket read are
 * acknowledged together with one `basic.ack` of the last delivery tag and `multiple` set — the
 * AMQP form of Sluice's GROUP_ACK with several offsets (this member acknowledges everything it
 * got, in order, so nothing unprocessed is acknowledged by it).
 *
 * RabbitMQ tells a redelivery only by its `redelivered` flag (classic queues keep no count): it is
 * reported as attempt 2.
 */
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { nowUs, readSentUs, readSeq } from '../payload.js';
import { Tally, type Member, type Sink, type SubscriberSpec } from './subscriber.js';

/** Socket options of every bench AMQP connection: Nagle off, as `ws` has it for the others. */
export const AMQP_SOCKET = { noDelay: true } as const;

export class AmqpMember implements Member {
  readonly tally = new Tally();
  onDelivery: Member['onDelivery'];
  private conn: ChannelModel | undefined;
  private ch: Channel | undefined;
  private holding = false;
  private last: ConsumeMessage | undefined;
  private unacked = 0;
  private flushQueued = false;

  constructor(
    private readonly spec: SubscriberSpec,
    private readonly topicIndex: number | null,
    private readonly sink: Sink,
  ) {}

  async open(): Promise<void> {
    const conn = await connect(this.spec.url, AMQP_SOCKET);
    this.conn = conn;
    conn.on('error', (err: Error) => { this.tally.lastError = err.message; });
    conn.on('close', () => this.tally.markClosed(0));
    if (this.topicIndex === null) return;
    const ch = await conn.createChannel();
    this.ch = ch;
    ch.on('error', (err: Error) => {
      this.tally.errors++;
      this.tally.lastError = err.message;
    });
    await ch.prefetch(this.spec.credit ?? 64);
    await ch.consume(this.spec.queue!, (m) => this.onMessage(m), { noAck: false });
  }

  stall(): void {
    this.holding = true;
  }

  unstall(): void {
    this.holding = false;
  }

  /**
   * Closes the channel (the broker requeues what it held unacknowledged at once), then the
   * connection.
   */
  async disconnect(): Promise<void> {
    const ch = this.ch;
    const conn = this.conn;
    this.ch = undefined;
    this.conn = undefined;
    await ch?.close().catch(() => undefined);
    await conn?.close().catch(() => undefined);
  }

  reconnect(): Promise<{ recovered: boolean }> {
    return Promise.reject(new Error('a queue member does not resume: a new consumer joins the queue'));
  }

  close(): void {
    const conn = this.conn;
    this.ch = undefined;
    this.conn = undefined;
    void conn?.close().catch(() => undefined);
  }

  private flush = (): void => {
    this.flushQueued = false;
    const m = this.last;
    const n = this.unacked;
    if (!m || !this.ch) return;
    this.last = undefined;
    this.unacked = 0;
    this.ch.ack(m, true);
    this.tally.ackedSome(n);
  };

  private onMessage(m: ConsumeMessage | null): void {
    if (m === null) {
      // The broker cancelled the consumer (the queue was deleted).
      this.tally.markClosed(0);
      return;
    }
    const p = m.content;
    if (m.fields.redelivered) this.tally.redelivered++;
    if (this.sink.latency) this.sink.record(nowUs() - readSentUs(p));
    this.onDelivery?.(readSeq(p), m.fields.redelivered ? 2 : 1, performance.now());
    if (this.holding) return;
    this.last = m;
    this.unacked++;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
  }
}
