/**
 * A lean Socket.IO subscriber: Engine.IO v4 over a raw WebSocket (engineio.ts), joins one room
 * with an acknowledged 'sub' event, answers pings, and reads each 'm' event's payload in place.
 * With recovery on it keeps the session id and the last offset, and `reconnect` asks the server
 * to replay what it missed (connection state recovery). Stalled, it pauses its socket; stalled to
 * `read` it also sends a pong every KEEPALIVE_MS, as a client's heartbeat would: it cannot see the
 * server's pings, and Engine.IO takes a pong unasked as the sign of life it is.
 */
import type WebSocket from 'ws';
import { nowUs, readSentUs, readSeq, SIZE } from '../payload.js';
import { ackId, Byte, connectPacket, eventOffset, eventPacket, isEvent, M_PAYLOAD_AT, PATH } from './engineio.js';
import { keepAlive, openSocket, pauseReading, resumeReading } from './socket.js';
import { deferred, KEEPALIVE_MS, Tally, type Sink, type Stall, type Subscriber, type SubscriberSpec } from './subscriber.js';

const M = 109; // 'm'

export class SocketIoSubscriber implements Subscriber {
  readonly tally = new Tally();
  private ws: WebSocket | undefined;
  private pid: string | undefined;
  private offset: string | undefined;
  private recovered = false;
  private stalled: Stall | undefined;
  private stopKeepAlive: (() => void) | undefined;

  constructor(
    private readonly spec: SubscriberSpec,
    private readonly topicIndex: number | null,
    private readonly sink: Sink,
  ) {}

  async open(): Promise<void> {
    await this.connect(undefined);
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
    if (how === 'read' && !this.stopKeepAlive) this.stopKeepAlive = keepAlive(ws, () => '3', KEEPALIVE_MS);
  }

  async disconnect(): Promise<void> {
    const ws = this.ws;
    if (!ws) return;
    this.ws = undefined;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.terminate(); // a transport loss, not a namespace disconnect: the server keeps the session
    await closed;
  }

  async reconnect(): Promise<{ recovered: boolean }> {
    if (!this.pid || !this.offset) return { recovered: false };
    await this.connect({ pid: this.pid, offset: this.offset });
    return { recovered: this.recovered };
  }

  close(): void {
    this.stopKeepAlive?.();
    this.ws?.terminate();
  }

  private async connect(resume: { pid: string; offset: string } | undefined): Promise<void> {
    this.tally.closed = false;
    const connected = deferred<void>();
    const subscribed = deferred<void>();
    const ws = await openSocket(`${this.spec.url}${PATH}`, (b, _binary, socket) => {
      if (isEvent(b, M)) {
        this.tally.got(readSeq(b, M_PAYLOAD_AT));
        if (this.sink.latency) this.sink.record(nowUs() - readSentUs(b, M_PAYLOAD_AT));
        if (this.spec.recovery) this.offset = eventOffset(b, M_PAYLOAD_AT + SIZE) ?? this.offset;
        return;
      }
      if (b.length === 1 && b[0] === Byte.Two) {
        socket.send('3');
        return;
      }
      const text = b.toString('latin1');
      if (text.startsWith('0{')) {
        socket.send(connectPacket(resume));
      } else if (text.startsWith('40')) {
        const info = JSON.parse(text.slice(2) || '{}') as { pid?: string };
        if (info.pid) this.pid = info.pid;
        connected.resolve();
      } else if (text.startsWith('44')) {
        connected.reject(new Error(`connect error ${text}`));
      } else if (ackId(text) === 0) {
        subscribed.resolve();
      }
    });
    this.ws = ws;
    ws.on('close', (code) => {
      if (this.ws === ws) {
        this.tally.markClosed(code);
        this.stopKeepAlive?.();
        this.stopKeepAlive = undefined;
      }
      connected.reject(new Error(`closed (${code})`));
      subscribed.reject(new Error(`closed (${code})`));
    });
    await connected.promise;
    // A recovered session is back in its rooms and the server replays what was missed.
    this.recovered = resume !== undefined && this.pid === resume.pid;
    if (this.topicIndex !== null && !this.recovered) {
      ws.send(eventPacket('sub', [`${this.spec.prefix}${this.topicIndex}`], 0));
      await subscribed.promise;
    }
    if (this.stalled) this.pause(ws, this.stalled);
  }
}
