/**
 * A NATS JetStream puller as a queue member: one connection (over the server's WebSocket listener,
 * like every NATS client of the bench) pulling from a shared durable consumer with explicit acks.
 * It keeps at most `credit` messages requested or unacknowledged: a first pull of `credit`, then,
 * each time half of that was acknowledged, a pull for as many again — a prefetch of `credit` in
 * JetStream's terms. Every message is acknowledged on its own (explicit ack: an empty message to
 * its reply subject); the acks of one socket read leave in one WebSocket frame, with the pull.
 */
import { nowUs, readSentUs, readSeq } from '../payload.js';
import { deliveryCount, pull } from './jetstream.js';
import { NatsConnection } from './nats-connection.js';
import { Tally, type Member, type Sink, type SubscriberSpec } from './subscriber.js';

export class JetStreamMember implements Member {
  readonly tally = new Tally();
  onDelivery: Member['onDelivery'];
  private conn: NatsConnection | undefined;
  private inbox = '';
  private holding = false;
  private pending: string[] = [];
  private owed = 0;
  private flushQueued = false;
  private readonly credit: number;

  constructor(
    private readonly spec: SubscriberSpec,
    private readonly topicIndex: number | null,
    private readonly sink: Sink,
  ) {
    this.credit = spec.credit ?? 64;
  }

  async open(): Promise<void> {
    const c = await NatsConnection.open(this.spec.url);
    this.conn = c;
    c.onClose = (code) => this.tally.markClosed(code);
    if (this.topicIndex === null) return;
    this.inbox = c.inboxSubject('q');
    c.subscribe(this.inbox, (reply, payload) => this.onMessage(reply, payload));
    pull(c, this.spec.stream!, this.spec.consumer!, this.inbox, this.credit);
    await c.flush();
  }

  stall(): void {
    this.holding = true;
  }

  unstall(): void {
    this.holding = false;
  }

  /** Closes the connection: what it held is delivered again once the consumer's ack wait expired. */
  async disconnect(): Promise<void> {
    this.conn?.close();
    this.conn = undefined;
  }

  reconnect(): Promise<{ recovered: boolean }> {
    return Promise.reject(new Error('a queue member does not resume: a new puller joins the consumer'));
  }

  close(): void {
    this.conn?.close();
    this.conn = undefined;
  }

  private flush = (): void => {
    this.flushQueued = false;
    const c = this.conn;
    const replies = this.pending;
    if (!c || replies.length === 0) return;
    this.pending = [];
    c.cork();
    for (const r of replies) c.publish(r, '');
    this.owed += replies.length;
    if (this.owed >= this.credit / 2) {
      pull(c, this.spec.stream!, this.spec.consumer!, this.inbox, this.owed);
      this.owed = 0;
    }
    c.uncork();
    this.tally.ackedSome(replies.length);
  };

  private onMessage(reply: string, payload: Uint8Array): void {
    if (payload.length === 0) return; // a status message (no payload)
    const attempt = deliveryCount(reply);
    if (attempt > 1) this.tally.redelivered++;
    if (this.sink.latency) this.sink.record(nowUs() - readSentUs(payload));
    this.onDelivery?.(readSeq(payload), attempt, performance.now());
    if (this.holding) return;
    this.pending.push(reply);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
  }
}
