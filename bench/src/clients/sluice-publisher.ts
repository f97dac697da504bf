/**
 * Publisher for Sluice over WebSocket: PUB frames (built by the protocol module's `encode`)
 * pipelined up to a window of unacknowledged publishes; every ACK opens the window again.
 * Optionally each PUB carries a unique idempotency key. The data is the payload as `bin`.
 */
import type WebSocket from 'ws';
import { decodeServerFrame, encode } from '@sluice/client/protocol';
import { ACK, ack, frameType } from './sluice-frames.js';
import { cork, openSocket, uncork } from './socket.js';
import type { Publisher } from './publisher.js';
import { deferred } from './subscriber.js';

export interface SluicePublisherOptions {
  url: string;
  prefix: string;
  token?: string;
  /** Most publishes awaiting their ACK. */
  window: number;
  /** Give each PUB a unique idempotency key. */
  keys: boolean;
}

export class SluicePublisher implements Publisher {
  onReady: (() => void) | undefined;
  acked = 0;
  duplicates = 0;
  failures = 0;
  firstFailure = '';
  private inflight = 0;
  private nextReq = 1;
  private idle: (() => void)[] = [];

  private constructor(private readonly ws: WebSocket, private readonly o: SluicePublisherOptions) {
    ws.on('close', (code) => {
      this.failures++;
      this.firstFailure ||= `publisher socket closed (${code})`;
      this.inflight = 0;
      this.wake();
    });
  }

  static async open(o: SluicePublisherOptions): Promise<SluicePublisher> {
    const welcome = deferred<void>();
    let publisher: SluicePublisher | undefined;
    const ws = await openSocket(`${o.url}/v1/ws`, (b) => {
      if (publisher) return publisher.onFrame(b);
      const f = decodeServerFrame(b);
      if (f.type === 2) welcome.resolve();
      else if (f.type === 11) welcome.reject(new Error(`HELLO refused: ${f.code} ${f.message}`));
    });
    ws.once('close', (code) => welcome.reject(new Error(`closed (${code}) before WELCOME`)));
    ws.send(encode(o.token ? { type: 1, token: o.token, client: 'sluice-bench-pub' } : { type: 1, client: 'sluice-bench-pub' }));
    await welcome.promise;
    publisher = new SluicePublisher(ws, o);
    return publisher;
  }

  canSend(): boolean {
    return this.inflight < this.o.window;
  }

  send(topicIndex: number, payload: Uint8Array): void {
    const reqId = this.nextReq++;
    const topic = `${this.o.prefix}${topicIndex}`;
    this.inflight++;
    this.ws.send(encode(this.o.keys
      ? { type: 8, reqId, topic, data: payload, key: `k${reqId}` }
      : { type: 8, reqId, topic, data: payload }));
  }

  cork(): void {
    cork(this.ws);
  }

  uncork(): void {
    uncork(this.ws);
  }

  settle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  close(): void {
    this.ws.terminate();
  }

  /** @internal */
  onFrame(b: Buffer): void {
    if (frameType(b) === ACK) {
      const a = ack(b);
      this.acked++;
      if (a.duplicate) this.duplicates++;
    } else {
      const f = decodeServerFrame(b);
      if (f.type !== 11) return;
      this.failures++;
      this.firstFailure ||= `${f.code}: ${f.message}`;
    }
    this.inflight--;
    if (this.inflight === 0) this.wake();
    this.onReady?.();
  }

  private wake(): void {
    const w = this.idle;
    this.idle = [];
    for (const f of w) f();
  }
}
