/**
 * Publisher for the protocol-less servers (raw uWS, ws broadcast): one binary frame per payload on
 * a `?role=pub` socket. There is no acknowledgement; the end-to-end window of the bench's
 * publishing loop is what keeps it from running ahead.
 */
import type WebSocket from 'ws';
import { cork, openSocket, uncork } from './socket.js';
import type { Publisher } from './publisher.js';
import { deferred } from './subscriber.js';

export class PlainPublisher implements Publisher {
  onReady: (() => void) | undefined;
  readonly acked = 0;
  failures = 0;
  firstFailure = '';

  private constructor(private readonly ws: WebSocket) {
    ws.on('close', (code) => {
      this.failures++;
      this.firstFailure ||= `publisher socket closed (${code})`;
    });
  }

  static async open(url: string): Promise<PlainPublisher> {
    const ok = deferred<void>();
    const ws = await openSocket(`${url}/?role=pub`, () => ok.resolve());
    await ok.promise;
    return new PlainPublisher(ws);
  }

  canSend(): boolean {
    return true;
  }

  send(_topicIndex: number, payload: Uint8Array): void {
    this.ws.send(payload, { binary: true });
  }

  cork(): void {
    cork(this.ws);
  }

  uncork(): void {
    uncork(this.ws);
  }

  async settle(): Promise<void> {
    // No protocol, no round trip: the end-to-end progress of the subscribers is the only signal.
  }

  close(): void {
    this.ws.terminate();
  }
}
