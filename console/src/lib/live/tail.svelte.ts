/**
 * LiveTail: the newest messages of one topic, through the Sluice SDK itself (WebSocket, credit) and
 * its Svelte store (`@sluice/client/svelte`). Pausing the store stops consuming, so the SDK stops
 * granting credit and the gateway stops sending: the console's own subscription shows up as
 * "paused" in the subscriber list once its window is used up — the log is the buffer.
 */
import { createClient, type Client, type Message } from '@sluice/client';
import { subscriptionStore, type SubscriptionStore } from '@sluice/client/svelte';
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

function sizeOf(m: Message): number {
  return m.data instanceof Uint8Array ? m.data.length : JSON.stringify(m.data ?? null)?.length ?? 0;
}

export class LiveTail {
  /** Newest first. */
  messages = $state<TailMessage[]>([]);
  paused = $state(false);
  status = $state<'connecting' | 'live' | 'reconnecting' | 'offline' | 'error'>('connecting');
  error = $state('');
  private client: Client;
  private store: SubscriptionStore<unknown>;
  private stop: () => void;

  constructor(readonly topic: string) {
    this.client = createClient({ url: gatewayOrigin, token: auth.token || undefined, client: 'sluice-console' });
    // A small window: paused, the tail holds at most 16 messages before the gateway stops sending.
    this.store = subscriptionStore(this.client, topic, { window: 16, keep: KEEP });
    let seen: Message | undefined;
    this.stop = this.store.subscribe((v) => {
      this.paused = v.paused;
      const c = v.connection;
      this.status = v.state === 'closed' || c === 'failed' || c === 'closed' ? 'error' : c === 'connected' ? 'live' : c === 'suspended' ? 'offline' : c === 'reconnecting' ? 'reconnecting' : 'connecting';
      // The cause, as the SDK reports it (e.g. "forbidden", "network: connect ECONNREFUSED").
      this.error = v.error ? v.error.message : '';
      if (v.last && v.last !== seen) {
        seen = v.last;
        this.messages = v.messages.map((m) => ({ offset: m.offset, ts: m.ts, data: m.data, size: sizeOf(m), traced: m.traced })).reverse();
      }
    });
  }

  togglePause(): void {
    if (this.paused) this.store.resume();
    else this.store.pause();
  }

  close(): void {
    this.stop();
    this.client.close();
  }
}
