/**
 * A lean Sluice subscriber: HELLO, SUB with a credit window, and CREDIT re-granted as messages are
 * consumed (half the window at a time, like the SDK; and, with a gateway of protocol 1.5, once half
 * its byte window `maxWindowBytes` was consumed, counting frame bytes), counting MSG/MSGS by their headers only
 * (sluice-frames.ts). Rare frames are decoded with the protocol module. A subscriber stalled to
 * `consume` keeps reading but grants nothing: the gateway must stop sending to it and hold nothing
 * for it. One stalled to `read` keeps the window it asked for and stops reading its socket once
 * SUBSCRIBED, sending a PING every KEEPALIVE_MS (the gateway closes a connection that says nothing
 * for two heartbeats): the gateway must not hold a window's worth of frames for it.
 */
import type WebSocket from 'ws';
import { decodeServerFrame, encode, PROTOCOL_VERSION, protocolMinor, type ClientFrame } from '@sluice/client/protocol';
import { nowUs, readSentUs } from '../payload.js';
import { delivery, forEachPayload, frameType, MSG, MSGS } from './sluice-frames.js';
import { keepAlive, openSocket, pauseReading, resumeReading } from './socket.js';
import { deferred, KEEPALIVE_MS, Tally, type Sink, type Stall, type Subscriber, type SubscriberSpec } from './subscriber.js';

const SUB_ID = 1;

export class SluiceSubscriber implements Subscriber {
  readonly tally = new Tally();
  private ws: WebSocket | undefined;
  private readonly window: number;
  private readonly regrant: number;
  private owed = 0;
  /** Bytes consumed since the last grant, and half the gateway's byte window (0: none, before 1.5). */
  private owedBytes = 0;
  private regrantBytes = 0;
  private stalled = false;
  private notReading = false;
  private stopKeepAlive: (() => void) | undefined;
  private pings = 0;
  private subscribed = false;
  private epoch: string | undefined;
  private waiting: { type: number; d: ReturnType<typeof deferred<Record<string, unknown>>> } | undefined;
  /** The last ERROR frame (or unrecovered epoch change), for diagnostics. */
  lastError = '';
  /** SUBSCRIBED frames received unasked: epoch changes of the topic's log. */
  epochChanges = 0;

  constructor(
    private readonly spec: SubscriberSpec,
    private readonly topicIndex: number | null,
    private readonly sink: Sink,
  ) {
    this.window = spec.credit ?? 64;
    this.regrant = Math.max(1, Math.floor(this.window / 2));
  }

  async open(): Promise<void> {
    await this.connect(undefined);
  }

  stall(how: Stall = 'consume'): void {
    this.stalled = true;
    if (how === 'read') {
      this.notReading = true;
      if (this.subscribed) this.stopReading();
    }
  }

  unstall(): void {
    this.stalled = false;
    if (this.notReading) {
      this.notReading = false;
      this.stopKeepAlive?.();
      this.stopKeepAlive = undefined;
      if (this.ws) resumeReading(this.ws);
    }
    this.grant(true);
  }

  /** Pauses the socket (once subscribed) and keeps the connection alive with PINGs. */
  private stopReading(): void {
    const ws = this.ws;
    if (!ws || this.stopKeepAlive) return;
    pauseReading(ws);
    this.stopKeepAlive = keepAlive(ws, () => encode({ type: 12, n: ++this.pings }), KEEPALIVE_MS);
  }

  async disconnect(): Promise<void> {
    const ws = this.ws;
    if (!ws) return;
    this.ws = undefined;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.close();
    await closed;
  }

  async reconnect(): Promise<{ recovered: boolean }> {
    const s = await this.connect({ from: this.tally.last + 1, epoch: this.epoch });
    return { recovered: s.recovered === true };
  }

  close(): void {
    this.stopKeepAlive?.();
    this.stopKeepAlive = undefined;
    this.ws?.terminate();
    this.ws = undefined;
  }

  private async connect(resume: { from: number; epoch: string | undefined } | undefined): Promise<Record<string, unknown>> {
    this.tally.closed = false;
    const base = resume && this.spec.resumeUrl ? this.spec.resumeUrl : this.spec.url;
    const ws = await openSocket(`${base}/v1/ws`, (data) => this.onFrame(data));
    this.ws = ws;
    this.owed = 0;
    this.owedBytes = 0;
    ws.on('close', (code) => {
      if (this.ws === ws) {
        this.tally.markClosed(code);
        this.stopKeepAlive?.();
        this.stopKeepAlive = undefined;
      }
      this.waiting?.d.reject(new Error(`closed (${code}) ${this.lastError}`));
    });
    const welcome = this.expect(2);
    const hello = { type: 1, client: 'sluice-bench', protocol: PROTOCOL_VERSION } as const;
    this.send(this.spec.token ? { ...hello, token: this.spec.token } : hello);
    const w = await welcome;
    const windowBytes = protocolMinor(w.protocol as string | undefined) >= 5 ? (w.maxWindowBytes as number | undefined) ?? 0 : 0;
    this.regrantBytes = windowBytes / 2;
    if (this.topicIndex === null) return {};
    const subscribed = this.expect(4);
    const sub: ClientFrame = { type: 3, subId: SUB_ID, topic: `${this.spec.prefix}${this.topicIndex}`, credit: this.window };
    if (resume) {
      sub.from = resume.from;
      if (resume.epoch) sub.epoch = resume.epoch;
    }
    this.send(sub);
    const s = await subscribed;
    this.epoch = s.epoch as string;
    this.subscribed = true;
    if (this.notReading) this.stopReading();
    return s;
  }

  private expect(type: number): Promise<Record<string, unknown>> {
    const d = deferred<Record<string, unknown>>();
    this.waiting = { type, d };
    return d.promise;
  }

  private send(frame: ClientFrame): void {
    this.ws?.send(encode(frame));
  }

  private grant(force = false): void {
    if (this.stalled || this.owed === 0) return;
    if (!force && this.owed < this.regrant && (this.regrantBytes === 0 || this.owedBytes < this.regrantBytes)) return;
    this.send({ type: 7, subId: SUB_ID, n: this.owed });
    this.owed = 0;
    this.owedBytes = 0;
  }

  private onFrame(b: Buffer): void {
    const type = frameType(b);
    if (type === MSG || type === MSGS) {
      const d = delivery(b);
      if (this.sink.latency) {
        const now = nowUs();
        forEachPayload(b, d, (at) => this.sink.record(now - readSentUs(b, at)));
      }
      this.tally.gotRange(d.first, d.count);
      this.owed += d.count;
      this.owedBytes += b.length;
      this.grant();
      return;
    }
    const f = decodeServerFrame(b);
    switch (f.type) {
      case 11:
        this.tally.errors++;
        this.lastError = `${f.code}: ${f.message}`;
        if (this.waiting) this.waiting.d.reject(new Error(`ERROR ${this.lastError}`));
        return;
      case 12:
        this.send({ type: 13, n: f.n });
        return;
      case 14:
        // Retention trimmed what we needed: announced, never silent. Counted as a gap, and as trimmed.
        this.tally.gaps += f.to - f.from + 1;
        this.tally.trimmed += f.to - f.from + 1;
        this.tally.last = Math.max(this.tally.last, f.to);
        return;
      default:
        if (this.waiting && this.waiting.type === f.type) {
          const w = this.waiting;
          this.waiting = undefined;
          w.d.resolve(f as unknown as Record<string, unknown>);
          return;
        }
        if (f.type === 4) {
          // Unasked SUBSCRIBED (protocol 1.1): the topic's log changed epoch under this
          // subscription — on a shared store, also at the topic's first write. Later messages
          // belong to the new epoch, and a resume MUST name it. Not recovered: counted as an error.
          this.epoch = f.epoch;
          this.epochChanges++;
          if (!f.recovered) {
            this.tally.errors++;
            this.lastError = `epoch changed to ${f.epoch} without recovery (from ${f.from})`;
          }
        }
    }
  }
}
