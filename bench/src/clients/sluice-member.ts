/**
 * A lean Sluice consumer-group member (protocol 1.2): HELLO, SUB with `group` and a credit — the
 * most unacknowledged leases it holds — then a GROUP_ACK for every LEASE as it arrives. The leases
 * of one socket read are acknowledged together, in one GROUP_ACK carrying their offsets (at most
 * 1,000 per frame): an acknowledgement frees one credit, so no CREDIT frame is ever sent.
 *
 * LEASE is read by its headers only (sluice-frames.ts `lease`, checked against the codec in
 * test/readers.test.ts); every frame it sends is built by the protocol module's `encode`.
 */
import type WebSocket from 'ws';
import { decodeServerFrame, encode, PROTOCOL_VERSION, type ClientFrame } from '@sluice/client/protocol';
import { nowUs, readSentUs, readSeq } from '../payload.js';
import { frameType, lease, LEASE, MSG, MSGS } from './sluice-frames.js';
import { openSocket } from './socket.js';
import { deferred, Tally, type Member, type Sink, type SubscriberSpec } from './subscriber.js';

const SUB_ID = 1;
/** GROUP_ACK carries at most this many offsets (PROTOCOL.md). */
const MAX_ACK_OFFSETS = 1000;

export class SluiceMember implements Member {
  readonly tally = new Tally();
  onDelivery: Member['onDelivery'];
  private ws: WebSocket | undefined;
  private holding = false;
  private pending: number[] = [];
  private flushQueued = false;
  private waiting: { type: number; d: ReturnType<typeof deferred<Record<string, unknown>>> } | undefined;

  constructor(
    private readonly spec: SubscriberSpec,
    private readonly topicIndex: number | null,
    private readonly sink: Sink,
  ) {}

  async open(): Promise<void> {
    const ws = await openSocket(`${this.spec.url}/v1/ws`, (b) => this.onFrame(b));
    this.ws = ws;
    ws.on('close', (code) => {
      this.tally.markClosed(code);
      this.waiting?.d.reject(new Error(`closed (${code}) ${this.tally.lastError}`));
    });
    const welcome = this.expect(2);
    // 1.2 announced: a gateway uses only the features of the lower of the two minors.
    this.send({ type: 1, client: 'sluice-bench-member', protocol: PROTOCOL_VERSION, ...(this.spec.token ? { token: this.spec.token } : {}) });
    await welcome;
    if (this.topicIndex === null) return;
    const subscribed = this.expect(4);
    this.send({ type: 3, subId: SUB_ID, topic: `${this.spec.prefix}${this.topicIndex}`, group: this.spec.group ?? 'bench', credit: this.spec.credit ?? 64 });
    await subscribed;
  }

  /** Takes leases and never acknowledges them. */
  stall(): void {
    this.holding = true;
  }

  unstall(): void {
    this.holding = false;
  }

  /** Closes the connection; its leases stay with the group until they expire (PROTOCOL.md). */
  async disconnect(): Promise<void> {
    const ws = this.ws;
    if (!ws) return;
    this.ws = undefined;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.close();
    await closed;
  }

  reconnect(): Promise<{ recovered: boolean }> {
    return Promise.reject(new Error('a queue member does not resume: a new member joins the group'));
  }

  close(): void {
    this.ws?.terminate();
    this.ws = undefined;
  }

  private expect(type: number): Promise<Record<string, unknown>> {
    const d = deferred<Record<string, unknown>>();
    this.waiting = { type, d };
    return d.promise;
  }

  private send(frame: ClientFrame): void {
    this.ws?.send(encode(frame));
  }

  /** Sends the acknowledgements of this read: runs once the socket's read was handled. */
  private flush = (): void => {
    this.flushQueued = false;
    const offsets = this.pending;
    if (offsets.length === 0) return;
    this.pending = [];
    for (let i = 0; i < offsets.length; i += MAX_ACK_OFFSETS) {
      this.send({ type: 16, subId: SUB_ID, offsets: offsets.slice(i, i + MAX_ACK_OFFSETS) });
    }
    this.tally.ackedSome(offsets.length);
  };

  private onFrame(b: Buffer): void {
    if (frameType(b) === LEASE) {
      const l = lease(b);
      if (l.attempt > 1) this.tally.redelivered++;
      if (this.sink.latency) this.sink.record(nowUs() - readSentUs(b, l.payloadAt));
      this.onDelivery?.(readSeq(b, l.payloadAt), l.attempt, performance.now());
      if (this.holding) return;
      this.pending.push(l.offset);
      if (!this.flushQueued) {
        this.flushQueued = true;
        // Microtasks run once the socket's 'data' handler returned: every LEASE of the read is in.
        queueMicrotask(this.flush);
      }
      return;
    }
    if (frameType(b) === MSG || frameType(b) === MSGS) {
      // A gateway without consumer groups takes SUB's `group` for a plain subscription.
      this.tally.errors++;
      this.tally.lastError = 'the gateway sent MSG/MSGS, not LEASE, to a group member: no consumer groups in this build';
      return;
    }
    const f = decodeServerFrame(b);
    switch (f.type) {
      case 11:
        this.tally.errors++;
        this.tally.lastError = `${f.code}: ${f.message}`;
        if (this.waiting) this.waiting.d.reject(new Error(`ERROR ${this.tally.lastError}`));
        return;
      case 12:
        this.send({ type: 13, n: f.n });
        return;
      default:
        if (this.waiting && this.waiting.type === f.type) {
          const w = this.waiting;
          this.waiting = undefined;
          w.d.resolve(f as unknown as Record<string, unknown>);
        }
    }
  }
}
