/**
 * Publisher for Socket.IO: a 'pub' event per message on a raw Engine.IO socket; the server emits it
 * to the room. `settle` sends an acknowledged 'sync' event: its ack means every earlier event of
 * this socket was handled.
 */
import type WebSocket from 'ws';
import { payloadText } from '../payload.js';
import { ackId, Byte, connectPacket, eventPacket, PATH } from './engineio.js';
import { cork, openSocket, uncork } from './socket.js';
import type { Publisher } from './publisher.js';
import { deferred } from './subscriber.js';

export class SocketIoPublisher implements Publisher {
  onReady: (() => void) | undefined;
  readonly acked = 0;
  failures = 0;
  firstFailure = '';
  private nextAck = 1;
  private readonly acks = new Map<number, () => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('close', (code) => {
      this.failures++;
      this.firstFailure ||= `publisher socket closed (${code})`;
    });
  }

  /** @internal */
  onPacket(b: Buffer): void {
    if (b.length === 1 && b[0] === Byte.Two) {
      this.ws.send('3');
      return;
    }
    const id = ackId(b.toString('latin1'));
    const done = this.acks.get(id);
    this.acks.delete(id);
    done?.();
  }

  static async open(url: string): Promise<SocketIoPublisher> {
    const connected = deferred<void>();
    let publisher: SocketIoPublisher | undefined;
    const ws = await openSocket(`${url}${PATH}`, (b, _binary, socket) => {
      if (publisher) return publisher.onPacket(b);
      const text = b.toString('latin1');
      if (text === '2') socket.send('3');
      else if (text.startsWith('0{')) socket.send(connectPacket());
      else if (text.startsWith('40')) connected.resolve();
    });
    await connected.promise;
    publisher = new SocketIoPublisher(ws);
    return publisher;
  }

  canSend(): boolean {
    return true;
  }

  send(_topicIndex: number, payload: Uint8Array): void {
    // The payload is ASCII without quotes or backslashes: it is its own JSON string body.
    this.ws.send(`42["pub","${payloadText(payload)}"]`);
  }

  cork(): void {
    cork(this.ws);
  }

  uncork(): void {
    uncork(this.ws);
  }

  settle(): Promise<void> {
    const id = this.nextAck++;
    return new Promise((resolve) => {
      this.acks.set(id, resolve);
      this.ws.send(eventPacket('sync', [], id));
    });
  }

  close(): void {
    this.ws.terminate();
  }
}
