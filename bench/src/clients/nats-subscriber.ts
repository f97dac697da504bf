/**
 * A lean core-NATS subscriber over the WebSocket listener: one SUB on subject `${prefix}${i}`,
 * confirmed by a PING/PONG round trip, payloads read in place. Core NATS keeps no history, so
 * there is no resume (see jetstream-subscriber.ts for that). Stalling pauses the socket.
 */
import { nowUs, readSentUs, readSeq } from '../payload.js';
import { NatsConnection } from './nats-connection.js';
import { Tally, type Sink, type Subscriber, type SubscriberSpec } from './subscriber.js';

export class NatsSubscriber implements Subscriber {
  readonly tally = new Tally();
  private conn: NatsConnection | undefined;
  private stalled = false;

  constructor(
    private readonly spec: SubscriberSpec,
    private readonly topicIndex: number | null,
    private readonly sink: Sink,
  ) {}

  async open(): Promise<void> {
    const c = await NatsConnection.open(this.spec.url);
    this.conn = c;
    c.onClose = (code) => this.tally.markClosed(code);
    if (this.topicIndex === null) return;
    c.subscribe(`${this.spec.prefix}${this.topicIndex}`, (_reply, payload) => {
      this.tally.got(readSeq(payload));
      if (this.sink.latency) this.sink.record(nowUs() - readSentUs(payload));
    });
    await c.flush();
    if (this.stalled) c.pause();
  }

  /**
   * Takes effect once subscribed (a subscriber may be told to stall before it opened). Either way
   * the socket is paused; no keepalive is needed within a run: nats-server pings every 2 minutes
   * and gives up after 2 unanswered pings.
   */
  stall(): void {
    this.stalled = true;
    this.conn?.pause();
  }

  unstall(): void {
    this.stalled = false;
    this.conn?.resume();
  }

  async disconnect(): Promise<void> {
    throw new Error('core NATS has no resume');
  }

  async reconnect(): Promise<{ recovered: boolean }> {
    throw new Error('core NATS has no resume');
  }

  close(): void {
    this.conn?.close();
  }
}
