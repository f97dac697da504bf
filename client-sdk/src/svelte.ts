/**
 * `@sluice/client/svelte`: a subscription as a Svelte store. It follows Svelte's store contract
 * (`subscribe(run) → unsubscribe`, `run` called at once with the current value and on every
 * change), so `$store` in a component, `derived` and `get` work with it; it needs no svelte at run
 * time and imports nothing of the SDK's code (the client is passed in), so it costs a page nothing
 * it does not use and never duplicates the core in a bundle.
 *
 * Lifetime: the SDK subscription starts when the store gets its first subscriber and ends when the
 * last one leaves (as Svelte's `readable` does); a later subscriber starts a new one.
 *
 * Credit: messages are consumed as they enter the store, so a store never holds the gateway up —
 * except while `pause()`d: then the handler does not return, the SDK re-grants no credit, and once
 * `window` messages are held the gateway stops sending (the log is the buffer); `resume()` goes on.
 */
import type { Client, ClientState } from './client.js';
import type { SluiceError } from './errors.js';
import type { Message, SubscribeOptions, Subscription, SubscriptionState } from './subscription.js';

/** Svelte's store contract (svelte/store `Readable`), written out so svelte is not needed. */
export interface Readable<T> {
  subscribe(run: (value: T) => void, invalidate?: () => void): () => void;
}

export interface SubscriptionStoreValue<T> {
  /** The last `keep` messages, oldest first. */
  messages: Message<T>[];
  /** The newest message, if any. */
  last: Message<T> | undefined;
  /** The subscription's state (`closed` before the first subscriber and after the last leaves). */
  state: SubscriptionState;
  /** The client's connection state. */
  connection: ClientState;
  /** The latest failure: the cause of a `reconnecting`/`suspended`/`failed` client, or a refused subscription. Cleared when connected. */
  error: SluiceError | undefined;
  paused: boolean;
}

export interface SubscriptionStoreOptions extends SubscribeOptions {
  /** Messages kept in `messages` (default 100; 0 keeps only `last`). */
  keep?: number;
}

export interface SubscriptionStore<T> extends Readable<SubscriptionStoreValue<T>> {
  /** Stop consuming: the gateway stops sending once `window` messages are held. */
  pause(): void;
  resume(): void;
}

/** A readable store of `topic`'s messages on `client`, with the subscription's and the connection's state. */
export function subscriptionStore<T = unknown>(client: Client, topic: string, options: SubscriptionStoreOptions = {}): SubscriptionStore<T> {
  const keep = Math.max(0, options.keep ?? 100);
  const runs = new Set<(v: SubscriptionStoreValue<T>) => void>();
  let value: SubscriptionStoreValue<T> = { messages: [], last: undefined, state: 'closed', connection: client.state, error: undefined, paused: false };
  let stop: (() => void) | undefined;
  /** Handlers waiting for `resume()`. */
  let waiting: (() => void)[] = [];
  const wake = () => {
    const w = waiting;
    waiting = [];
    for (const resolve of w) resolve();
  };

  const set = (patch: Partial<SubscriptionStoreValue<T>>) => {
    value = { ...value, ...patch };
    for (const run of runs) run(value);
  };

  const start = () => {
    const sub: Subscription<T> = client.subscribe<T>(topic, async (m) => {
      // Paused, the handler does not return: no credit goes back.
      while (value.paused && stop) await new Promise<void>((resolve) => waiting.push(resolve));
      if (!stop) return;
      const messages = keep === 0 ? [] : value.messages.length >= keep ? [...value.messages.slice(value.messages.length - keep + 1), m] : [...value.messages, m];
      set({ messages, last: m });
    }, options);
    const offs = [
      sub.on('state', (s) => set({ state: s.newState })),
      sub.on('error', (err) => set({ error: err })),
      client.on('state', (s) => set({ connection: s.newState, error: s.newState === 'connected' ? undefined : s.error ?? value.error })),
    ];
    set({ state: sub.state, connection: client.state });
    stop = () => {
      stop = undefined;
      for (const off of offs) off();
      void sub.unsubscribe();
      wake();
    };
  };

  return {
    subscribe(run) {
      if (runs.size === 0) start();
      runs.add(run);
      run(value);
      return () => {
        if (!runs.delete(run) || runs.size > 0) return;
        stop?.();
        value = { ...value, state: 'closed' };
      };
    },
    pause() {
      if (!value.paused) set({ paused: true });
    },
    resume() {
      if (!value.paused) return;
      set({ paused: false });
      wake();
    },
  };
}
