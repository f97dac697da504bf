/**
 * `createConsumer` (`@sluice/client/consumer`): a consumer-group member over HTTP, on `fetch` alone,
 * for runtimes that cannot keep a WebSocket open between events — Cloudflare Workers, Deno Deploy,
 * serverless functions. The gateway's routes (README, "Consumer groups"):
 *
 *   POST /v1/topics/{topic}/groups/{group}/lease?max=&wait=&consumer=  → {messages, ackWaitMs}
 *   POST /v1/topics/{topic}/groups/{group}/ack   {offsets, consumer?}   → {results}
 *   POST /v1/topics/{topic}/groups/{group}/nack  {offsets, delay?, reason?, consumer?} → {results}
 *
 * Leases belong to the consumer's name (`consumer`, default the token's `sub`), not to a request:
 * a later request — another invocation of the same worker — may acknowledge them. The gateway hands
 * this consumer new leases only while one of its lease requests waits. A lease not acknowledged
 * within `ackWaitMs` goes back to the group (to any member) as a later attempt, so a handler must be
 * idempotent; an ack after that is refused per offset with `not-leased`.
 *
 * Kept apart from the WebSocket client (its own subpath and browser bundle) because it needs none
 * of it: no MessagePack, no socket — a worker that only consumes ships a few KB.
 */
import { httpPost, wireBytes, type HttpOptions, type WireMessage } from './http.js';
import type { Headers } from './protocol/frames.js';

export { SluiceError, ServerError, NetworkError } from './errors.js';
export type { HttpOptions } from './http.js';
export type { Headers } from './protocol/frames.js';

export interface HttpConsumerOptions extends HttpOptions {
  topic: string;
  group: string;
  /** The member's name: its leases belong to it (default: the token's `sub`; `http` in dev mode). At most 128 characters. */
  consumer?: string;
}

export interface HttpConsumerMessage<T = unknown> {
  topic: string;
  group: string;
  offset: number;
  /** 1 for the first delivery, 2 for the first redelivery, ... */
  attempt: number;
  /** When the gateway stored it (ms since the epoch). */
  ts: number;
  /**
   * The data as JSON carries it. Binary data arrives as a `Uint8Array`. Data JSON cannot carry
   * exactly (README, "Messages in JSON") arrives as its MessagePack bytes, with `encoding: 'msgpack'`.
   */
  data: T;
  encoding?: 'msgpack';
  headers: Headers | undefined;
  orderingKey: string | undefined;
  /** 0–9: the group hands out higher ones first. */
  priority: number;
  /** Acknowledges it: true when the gateway took the ack, false when the lease is no longer this consumer's (or was settled already). */
  ack(): Promise<boolean>;
  /** Gives it back, to be delivered again after `delay` ms or the group's backoff. Same result as `ack`. */
  nack(options?: HttpNackOptions): Promise<boolean>;
}

export interface HttpNackOptions {
  /** Deliver again after this many ms at the earliest (default: the group's backoff for this attempt). */
  delay?: number;
  /** Why; kept in the dead letter's `sluice-reason` header if it ends there (at most 256 bytes). */
  reason?: string;
}

export interface LeaseOptions {
  /** Most messages to take (1–100, default 10). */
  max?: number;
  /** Seconds to wait for the first message (fractions allowed; capped by the gateway's `--max-wait`). Default 0: answer at once. */
  wait?: number;
  signal?: AbortSignal;
}

/** Per offset: acknowledged (or given back), or why not (`not-leased`: no longer this consumer's). */
export type SettleResult = { offset: number; ok: true } | { offset: number; error: { code: string; message: string } };

export interface RunOptions {
  /** Stops the loop: an abort ends the lease request waiting; handlers running finish and are acknowledged first. */
  signal?: AbortSignal;
  /** Handlers at once, and messages leased per request (default 1). */
  concurrency?: number;
  /** Seconds each lease request waits for messages (default 20). */
  wait?: number;
}

export interface HttpConsumer<T = unknown> {
  /** The group's ack wait, as the last lease answer said (undefined before the first). */
  readonly ackWaitMs: number | undefined;
  /** Takes up to `max` messages, waiting up to `wait` seconds for the first. */
  lease(options?: LeaseOptions): Promise<HttpConsumerMessage<T>[]>;
  /** Acknowledges offsets leased to this consumer (any number: sent 1000 per request). */
  ack(offsets: readonly number[]): Promise<SettleResult[]>;
  nack(offsets: readonly number[], options?: HttpNackOptions): Promise<SettleResult[]>;
  /**
   * Leases, handles and settles in a loop until `signal` aborts: a message is acknowledged when its
   * handler resolves (the acks of one batch in one request) and given back when it throws (the
   * group's backoff). A handler may settle its message itself. Rejects when a request fails for
   * good (after retries) or is refused (e.g. `forbidden`); resolves once stopped.
   */
  run(handler: (msg: HttpConsumerMessage<T>) => void | Promise<void>, options?: RunOptions): Promise<void>;
}

/** A message as the lease route sends it: a pulled message with its attempt number. */
interface Wire extends WireMessage {
  attempt: number;
}

const MAX_OFFSETS = 1000;

export function createConsumer<T = unknown>(options: HttpConsumerOptions): HttpConsumer<T> {
  const post = httpPost(options);
  const { topic, group } = options;
  const route = `/v1/topics/${encodeURIComponent(topic)}/groups/${encodeURIComponent(group)}/`;
  const json = { 'content-type': 'application/json' };
  const settled = new WeakSet<HttpConsumerMessage<T>>();
  let ackWaitMs: number | undefined;

  async function settle(action: 'ack' | 'nack', offsets: readonly number[], extra: HttpNackOptions = {}): Promise<SettleResult[]> {
    const out: SettleResult[] = [];
    for (let i = 0; i < offsets.length; i += MAX_OFFSETS) {
      const body: Record<string, unknown> = { ...extra, offsets: offsets.slice(i, i + MAX_OFFSETS) };
      if (options.consumer !== undefined) body.consumer = options.consumer;
      out.push(...((await post(route + action, JSON.stringify(body), json)) as { results: SettleResult[] }).results);
    }
    return out;
  }

  /** Settles one message once; true when the gateway took it. */
  async function one(m: HttpConsumerMessage<T>, action: 'ack' | 'nack', extra?: HttpNackOptions): Promise<boolean> {
    if (settled.has(m)) return false;
    settled.add(m);
    const [r] = await settle(action, [m.offset], extra);
    return r !== undefined && 'ok' in r;
  }

  function message(w: Wire): HttpConsumerMessage<T> {
    const m: HttpConsumerMessage<T> = {
      topic, group, offset: w.offset, attempt: w.attempt, ts: w.ts,
      data: (w.encoding ? wireBytes(w) : w.data) as T,
      headers: w.headers, orderingKey: w.orderingKey, priority: w.priority ?? 0,
      ack: () => one(m, 'ack'),
      nack: (o) => one(m, 'nack', o),
    };
    if (w.encoding === 'msgpack') m.encoding = 'msgpack';
    return m;
  }

  const consumer: HttpConsumer<T> = {
    get ackWaitMs() { return ackWaitMs; },

    async lease(o = {}) {
      const q = new URLSearchParams({ max: String(o.max ?? 10), wait: String(o.wait ?? 0) });
      if (options.consumer !== undefined) q.set('consumer', options.consumer);
      const r = (await post(`${route}lease?${q.toString()}`, undefined, {}, o.signal)) as { messages: Wire[]; ackWaitMs: number };
      ackWaitMs = r.ackWaitMs;
      return r.messages.map(message);
    },

    ack: (offsets) => settle('ack', offsets),
    nack: (offsets, o) => settle('nack', offsets, o),

    async run(handler, o = {}) {
      const concurrency = Math.max(1, Math.min(100, Math.floor(o.concurrency ?? 1)));
      const signal = o.signal;
      while (!signal?.aborted) {
        let batch: HttpConsumerMessage<T>[];
        try {
          batch = await consumer.lease({ max: concurrency, wait: o.wait ?? 20, ...(signal ? { signal } : {}) });
        } catch (err) {
          if (signal?.aborted) return;
          throw err;
        }
        const done: HttpConsumerMessage<T>[] = [];
        const failed: Promise<boolean>[] = [];
        await Promise.all(batch.map(async (m) => {
          try {
            await handler(m);
            done.push(m);
          } catch (err) {
            failed.push(m.nack({ reason: (err instanceof Error ? err.message : String(err)).slice(0, 256) }));
          }
        }));
        const todo = done.filter((m) => !settled.has(m));
        for (const m of todo) settled.add(m);
        if (todo.length > 0) await settle('ack', todo.map((m) => m.offset));
        await Promise.all(failed);
      }
    },
  };
  return consumer;
}
