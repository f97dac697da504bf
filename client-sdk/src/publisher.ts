/**
 * HTTP-only publishing for edge workers and servers: nothing but `fetch`. Every message gets an
 * idempotency key (generated when not given) that stays the same across retries, so retrying
 * after a timeout or a 5xx never stores a message twice.
 */
import { SluiceError } from './errors.js';
import { httpPost, type HttpOptions } from './http.js';
import { randomKey } from './id.js';
import { MAX_KEY_BYTES } from './protocol/limits.js';
import { encodeValue } from './protocol/value.js';
import type { Headers } from './protocol/frames.js';

export interface PublisherOptions extends HttpOptions {
  /** Body encoding for non-binary data: `json` (default) or `msgpack` (keeps binary inside objects). */
  encoding?: 'json' | 'msgpack';
}

export interface HttpPublishResult {
  offset: number;
  epoch: string;
  duplicate: boolean;
}

/** A delayed publish (protocol 1.4): held by the gateway until `due`; `id` cancels it. */
export interface HttpScheduled {
  id: string;
  due: number;
  duplicate: boolean;
}

/** One entry of a batch: a message and the options of a single publish (with delay/at, its result is HttpScheduled). */
export interface BatchMessage extends HttpPublishOptions {
  topic: string;
  data: unknown;
}

export type BatchResult = HttpPublishResult | HttpScheduled | { error: { code: string; message: string } };

/** A prepared (half) message over HTTP; see Client.prepare. */
export interface HttpTransaction {
  readonly id: string;
  readonly topic: string;
  commit(): Promise<HttpPublishResult>;
  abort(): Promise<void>;
}

export interface HttpPublishOptions {
  /** Idempotency key (1–128 bytes); generated when omitted and kept across retries. */
  key?: string;
  /** Message headers (sent as `Sluice-Headers`), as a WebSocket publish's. */
  headers?: Headers;
  /** Ordering key for consumer groups (`Sluice-Ordering-Key`). */
  orderingKey?: string;
  /** Priority 0–9 for consumer groups (`Sluice-Priority`). */
  priority?: number;
  /** Deliver it this many ms from now (protocol 1.4): resolves with HttpScheduled. */
  delay?: number;
  /** Deliver it at this time (ms since the epoch): resolves with HttpScheduled. */
  at?: number;
}

export interface Publisher {
  publish(topic: string, data: unknown, options?: Omit<HttpPublishOptions, 'delay' | 'at'>): Promise<HttpPublishResult>;
  publish(topic: string, data: unknown, options: HttpPublishOptions & ({ delay: number } | { at: number })): Promise<HttpScheduled>;
  /** One request, one store commit; results in the order given. */
  publishBatch(messages: readonly BatchMessage[]): Promise<BatchResult[]>;
  /** Cancels a delayed publish before it is due (idempotent). */
  cancel(topic: string, id: string): Promise<void>;
  /** Prepares a half message: invisible to readers until `commit`. */
  prepare(topic: string, data: unknown, options?: { key?: string; checkUrl?: string }): Promise<HttpTransaction>;
  /** A transaction by id (prepared elsewhere or before a restart). */
  transaction(topic: string, id: string): HttpTransaction;
}

export function createPublisher(options: PublisherOptions): Publisher {
  const post = httpPost(options);

  function body(data: unknown): { body: BodyInit; type: string } {
    if (data instanceof Uint8Array) return { body: data as BodyInit, type: 'application/octet-stream' };
    if (data instanceof ArrayBuffer) return { body: data, type: 'application/octet-stream' };
    if (options.encoding === 'msgpack') return { body: encodeValue(data) as BodyInit, type: 'application/msgpack' };
    return { body: JSON.stringify(data), type: 'application/json' };
  }

  const t = (topic: string) => `/v1/topics/${encodeURIComponent(topic)}`;
  const transaction = (topic: string, id: string): HttpTransaction => ({
    id,
    topic,
    commit: async () => (await post(`${t(topic)}/transactions/${encodeURIComponent(id)}/commit`)) as HttpPublishResult,
    abort: async () => { await post(`${t(topic)}/transactions/${encodeURIComponent(id)}/abort`); },
  });

  return {
    async publish(topic: string, data: unknown, opts: HttpPublishOptions = {}) {
      const b = body(data);
      const h: Record<string, string> = { 'content-type': b.type, 'idempotency-key': keyOf(opts.key) };
      if (opts.headers) h['sluice-headers'] = JSON.stringify(opts.headers);
      if (opts.orderingKey !== undefined) h['sluice-ordering-key'] = opts.orderingKey;
      if (opts.priority !== undefined) h['sluice-priority'] = String(opts.priority);
      if (opts.delay !== undefined) h['sluice-delay'] = String(opts.delay);
      if (opts.at !== undefined) h['sluice-at'] = String(opts.at);
      return (await post(`${t(topic)}/messages`, b.body, h)) as HttpPublishResult & HttpScheduled;
    },
    async publishBatch(messages) {
      const withKeys = messages.map((m) => ({ ...m, key: keyOf(m.key) }));
      const r = await post('/v1/publish', JSON.stringify({ messages: withKeys }), { 'content-type': 'application/json' });
      return (r as { results: BatchResult[] }).results;
    },
    async cancel(topic, id) {
      await post(`${t(topic)}/scheduled/${encodeURIComponent(id)}`, undefined, {}, undefined, 'DELETE');
    },
    async prepare(topic, data, opts = {}) {
      const b = body(data);
      const headers: Record<string, string> = { 'content-type': b.type, 'idempotency-key': keyOf(opts.key) };
      if (opts.checkUrl !== undefined) headers['sluice-check-url'] = opts.checkUrl;
      const r = (await post(`${t(topic)}/transactions`, b.body, headers)) as { id: string };
      return transaction(topic, r.id);
    },
    transaction,
  };
}

/**
 * The key to send: the one given, or a generated one. An empty key is refused rather than sent: the
 * gateway would read it as no key at all, and retries would no longer be deduplicated.
 */
function keyOf(key: string | undefined): string {
  if (key === undefined) return randomKey();
  if (key.length === 0) throw new SluiceError('bad-request', `key must be 1-${MAX_KEY_BYTES} bytes`);
  return key;
}
