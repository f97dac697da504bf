/**
 * LiveTail: the newest messages of one topic, through the Sluice SDK itself (WebSocket, credit).
 * Pausing stops consuming, so the SDK stops granting credit and the gateway stops sending: the
 * console's own subscription shows up as "paused" in the subscriber list once its window is used
 * up — the log is the buffer.
 */
import { createClient, type Client, type Message, type Subscription } from '@sluice/client';
import { auth } from '../auth.svelte.js';
import { gatewayOrigin } from '../api/http.js';

export interface TailMessage {
  offset: number;
  ts: number;
  data: unknown;
  size: number;
  /** Traced: the row links to its journey. */
  traced: boolean;
}

const KEEP = 200;

export class LiveTail {
  messages = $state<TailMessage[]>([]);
  paused = $state(false);
  status = $state<'connecting' | 'live' | 'reconnecting' | 'error'>('connecting');
  error = $state('');
  private client: Client;
  private sub: Subscription;
  private resume: (() => void) | undefined;

  constructor(readonly topic: string) {
    this.client = createClient({ url: gatewayOrigin, token: auth.token || undefined, client: 'sluice-console' });
    this.client.on('state', (s) => {
      this.status = s.newState === 'connected' ? 'live' : s.newState === 'closed' ? 'error' : s.newState === 'reconnecting' ? 'reconnecting' : 'connecting';
    });
    // A small window: paused, the tail holds at most 16 messages before the gateway stops sending.
    this.sub = this.client.subscribe(topic, (m: Message) => this.take(m), { window: 16 });
    this.sub.ready.catch((err: Error) => { this.status = 'error'; this.error = err.message; });
  }

  togglePause(): void {
    this.paused = !this.paused;
    if (!this.paused) {
      this.resume?.();
      this.resume = undefined;
    }
  }

  close(): void {
    this.resume?.();
    this.client.close();
  }

  private async take(m: Message): Promise<void> {
    // While paused the handler does not return: no credit goes back, the gateway stops sending.
    if (this.paused) await new Promise<void>((resolve) => { this.resume = resolve; });
    const size = m.data instanceof Uint8Array ? m.data.length : JSON.stringify(m.data ?? null)?.length ?? 0;
    const next = [{ offset: m.offset, ts: m.ts, data: m.data, size, traced: m.traced }, ...this.messages];
    this.messages = next.length > KEEP ? next.slice(0, KEEP) : next;
  }
}
