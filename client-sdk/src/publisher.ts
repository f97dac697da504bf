/**
 * HTTP-only publishing for edge workers and servers: nothing but `fetch`. Every message gets an
 * idempotency key (generated when not given) that stays the same across retries, so retrying
 * after a timeout or a 5xx never stores a message twice.
 */
import { fullJitter, type Backoff } from './backoff.js';
import { NetworkError, ServerError, SluiceError } from './errors.js';
import { randomKey } from './id.js';
import { MAX_KEY_BYTES } from './protocol/limits.js';
import { encodeValue } from './protocol/value.js';

export interface PublisherOptions {
  /** Gateway base URL, e.g. `https://sluice.example.com`. */
  url: string;
  token?: string;
  /** Called before every request for a fresh token; wins over `token`. */
  getToken?: () => string | undefined | Promise<string | undefined>;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** Attempts per call including the first (default 5). */
  attempts?: number;
  /** Delay before retry n (default: full jitter from 100 ms to 5 s). */
  backoff?: Backoff;
  /** Body encoding for non-binary data: `json` (default) or `msgpack` (keeps binary inside objects). */
  encoding?: 'json' | 'msgpack';
}

export interface HttpPublishResult {
  offset: number;
  epoch: string;
  duplicate: boolean;
}

export interface BatchMessage {
  topic: string;
  data: unknown;
  key?: string;
}

export type BatchResult = HttpPublishResult | { error: { code: string; message: string } };

export interface Publisher {
  publish(topic: string, data: unknown, options?: { key?: string }): Promise<HttpPublishResult>;
  /** One request, one store commit; results in the order given. */
  publishBatch(messages: readonly BatchMessage[]): Promise<BatchResult[]>;
}

export function createPublisher(options: PublisherOptions): Publisher {
  const base = options.url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
  const attempts = Math.max(1, options.attempts ?? 5);
  const backoff = options.backoff ?? fullJitter({ base: 100, cap: 5000 });

  async function request(path: string, init: { body: BodyInit; headers: Record<string, string> }): Promise<unknown> {
    let lastError: SluiceError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await delay(lastError instanceof RetryAfter ? lastError.ms : backoff(attempt - 1));
      const token = options.getToken ? await options.getToken() : options.token;
      const headers: Record<string, string> = { ...init.headers };
      if (token) headers.authorization = `Bearer ${token}`;
      let res: Response;
      try {
        res = await doFetch(`${base}${path}`, { method: 'POST', headers, body: init.body });
      } catch (err) {
        lastError = new NetworkError(`request to ${base}${path} failed: ${err instanceof Error ? err.message : String(err)}`, err);
        continue;
      }
      if (res.ok) return res.json();
      const err = await errorOf(res);
      if (res.status === 429 || res.status >= 500) {
        const after = Number(res.headers.get('retry-after'));
        lastError = Number.isFinite(after) && after > 0 ? new RetryAfter(err, Math.min(after * 1000, 30_000)) : err;
        continue;
      }
      throw err;
    }
    throw lastError instanceof RetryAfter ? lastError.error : lastError!;
  }

  function body(data: unknown): { body: BodyInit; type: string } {
    if (data instanceof Uint8Array) return { body: data as BodyInit, type: 'application/octet-stream' };
    if (data instanceof ArrayBuffer) return { body: data, type: 'application/octet-stream' };
    if (options.encoding === 'msgpack') return { body: encodeValue(data) as BodyInit, type: 'application/msgpack' };
    return { body: JSON.stringify(data), type: 'application/json' };
  }

  return {
    async publish(topic, data, opts = {}) {
      const b = body(data);
      const r = await request(`/v1/topics/${encodeURIComponent(topic)}/messages`, {
        body: b.body,
        headers: { 'content-type': b.type, 'idempotency-key': keyOf(opts.key) },
      });
      return r as HttpPublishResult;
    },
    async publishBatch(messages) {
      const withKeys = messages.map((m) => ({ topic: m.topic, data: m.data, key: keyOf(m.key) }));
      const r = await request('/v1/publish', {
        body: JSON.stringify({ messages: withKeys }),
        headers: { 'content-type': 'application/json' },
      });
      return (r as { results: BatchResult[] }).results;
    },
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

/** A retryable error that told us how long to wait. */
class RetryAfter extends SluiceError {
  constructor(readonly error: SluiceError, readonly ms: number) {
    super(error.code, error.message);
  }
}

async function errorOf(res: Response): Promise<ServerError> {
  let code = res.status >= 500 ? 'internal' : 'bad-request';
  let message = `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // not JSON: keep the status
  }
  return new ServerError(code, message, 0, res.status);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
