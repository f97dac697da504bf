/**
 * A NATS JetStream reader, the NATS way to resume: an ephemeral pull consumer from a stream
 * sequence, pulled in windows like Sluice credit (the first pull asks for the whole window, then
 * half of it each time half was received, acknowledging the last one with ack policy "all").
 * It remembers the last stream sequence; `reconnect` makes a new consumer from the next one.
 */
import { nowUs, readSentUs, readSeq } from '../payload.js';
import { createPullConsumer, pull, streamSeq } from './jetstream.js';
import { NatsConnection } from './nats-connection.js';
import { Tally, type Sink, type Subscriber, type SubscriberSpec } from './subscriber.js';

export class JetStreamSubscriber implements Subscriber {
  readonly tally = new Tally();
  private conn: NatsConnection | undefined;
  private lastStreamSeq = 0;
  private readonly window: number;
  private owed = 0;
  private stalled = false;
  private consumer = '';
  private inbox = '';
  private lastReply = '';

  constructor(
    private readonly spec: SubscriberSpec,
    private readonly topicIndex: number | null,
    private readonly sink: Sink,
  ) {
    this.window = spec.credit ?? 64;
  }

  async open(): Promise<void> {
    await this.connect();
  }

  stall(): void {
    this.stalled = true;
  }

  unstall(): void {
    this.stalled = false;
    this.refill(true);
  }

  async disconnect(): Promise<void> {
    const c = this.conn;
    if (!c) return;
    this.conn = undefined;
    c.close();
  }

  async reconnect(): Promise<{ recovered: boolean }> {
    await this.connect();
    return { recovered: true };
  }

  close(): void {
    this.conn?.close();
  }

  private async connect(): Promise<void> {
    const c = await NatsConnection.open(this.spec.url);
    this.conn = c;
    this.tally.closed = false;
    c.onClose = (code) => {
      if (this.conn === c) this.tally.markClosed(code);
    };
    if (this.topicIndex === null) return;
    const stream = this.spec.stream!;
    this.inbox = c.inboxSubject('d');
    c.subscribe(this.inbox, (reply, payload) => {
      if (payload.length === 0) return; // a status message (no payload)
      this.lastReply = reply;
      this.lastStreamSeq = streamSeq(reply);
      this.tally.got(readSeq(payload));
      if (this.sink.latency) this.sink.record(nowUs() - readSentUs(payload));
      this.owed++;
      this.refill(false);
    });
    this.consumer = await createPullConsumer(c, stream, `${this.spec.prefix}${this.topicIndex}`, this.lastStreamSeq + 1);
    this.owed = 0;
    pull(c, stream, this.consumer, this.inbox, this.window);
    await c.flush();
  }

  /** Acks what was received (ack all) and pulls as much again, half a window at a time. */
  private refill(force: boolean): void {
    const c = this.conn;
    if (!c || this.stalled || this.owed === 0 || (!force && this.owed < this.window / 2)) return;
    c.cork();
    c.publish(this.lastReply, '');
    pull(c, this.spec.stream!, this.consumer, this.inbox, this.owed);
    c.uncork();
    this.owed = 0;
  }
}
