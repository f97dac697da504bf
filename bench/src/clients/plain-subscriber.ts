/**
 * Subscriber of the protocol-less servers (raw uWS, ws broadcast): the topic is chosen in the URL,
 * the server says `ok` once subscribed, and every binary frame is one payload. Stalling pauses
 * the socket so the server's send buffer for it grows; stalled to `read` it also sends a short
 * text frame every KEEPALIVE_MS, which the servers ignore but which resets their idle timeout.
 * There is no resume.
 */
import type WebSocket from 'ws';
import { nowUs, readSentUs, readSeq } from '../payload.js';
import { keepAlive, openSocket, pauseReading, resumeReading } from './socket.js';
import { deferred, KEEPALIVE_MS, Tally, type Sink, type Stall, type Subscriber, type SubscriberSpec } from './subscriber.js';

export class PlainSubscriber implements Subscriber {
  readonly tally = new Tally();
  private ws: WebSocket | undefined;
  private stalled: Stall | undefined;
  private stopKeepAlive: (() => void) | undefined;

  constructor(
    private readonly spec: SubscriberSpec,
    private readonly topicIndex: number | null,
    private readonly sink: Sink,
  ) {}

  async open(): Promise<void> {
    const topic = this.topicIndex === null ? '' : `&topic=${this.topicIndex}`;
    const ok = deferred<void>();
    const ws = await openSocket(`${this.spec.url}/?role=sub${topic}`, (data, isBinary) => {
      if (!isBinary) {
        ok.resolve();
        return;
      }
      this.tally.got(readSeq(data));
      if (this.sink.latency) this.sink.record(nowUs() - readSentUs(data));
    });
    this.ws = ws;
    ws.on('close', (code) => {
      this.tally.markClosed(code);
      this.stopKeepAlive?.();
      ok.reject(new Error(`closed (${code}) before subscribing`));
    });
    await ok.promise;
    if (this.stalled) this.pause(ws, this.stalled);
  }

  /** Takes effect once subscribed (a subscriber may be told to stall before it opened). */
  stall(how: Stall = 'consume'): void {
    this.stalled = how;
    if (this.ws) this.pause(this.ws, how);
  }

  unstall(): void {
    this.stalled = undefined;
    this.stopKeepAlive?.();
    this.stopKeepAlive = undefined;
    if (this.ws) resumeReading(this.ws);
  }

  private pause(ws: WebSocket, how: Stall): void {
    pauseReading(ws);
    if (how === 'read' && !this.stopKeepAlive) this.stopKeepAlive = keepAlive(ws, () => 'ka', KEEPALIVE_MS);
  }

  async disconnect(): Promise<void> {
    throw new Error('raw WebSocket servers have no resume');
  }

  async reconnect(): Promise<{ recovered: boolean }> {
    throw new Error('raw WebSocket servers have no resume');
  }

  close(): void {
    this.stopKeepAlive?.();
    this.ws?.terminate();
  }
}
