/**
 * The SDK's HTTP requests to a gateway, on `fetch` alone (browsers, Node, Deno, Workers): one POST
 * with a fresh token each time, retried on network errors, 5xx and 429 (honouring Retry-After) with
 * backoff; any other failure rejects at once with a ServerError carrying the gateway's code. Shared
 * by createPublisher and createConsumer.
 */
import { fullJitter, type Backoff } from './backoff.js';
import { NetworkError, ServerError, SluiceError } from './errors.js';
import type { Headers } from './protocol/frames.js';

export interface HttpOptions {
  /**
   * Gateway URL, as for `createClient`: `https://sluice.example.com`, or a WebSocket URL
   * (`ws://` → `http://`, `wss://` → `https://`, a trailing `/v1/ws` dropped).
   */
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
}

/** @internal A POST (or `method`) of `body` with `headers` to `path`; resolves with the answer's JSON. */
export type Post = (path: string, body?: BodyInit, headers?: Record<string, string>, signal?: AbortSignal, method?: 'POST' | 'DELETE') => Promise<unknown>;

/** @internal */
export function httpPost(options: HttpOptions): Post {
  const base = httpUrl(options.url);
  const doFetch = options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
  const attempts = Math.max(1, options.attempts ?? 5);
  const backoff = options.backoff ?? fullJitter({ base: 100, cap: 5000 });

  return async (path, body, extra = {}, signal, method = 'POST') => {
    let lastError: SluiceError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await delay(lastError instanceof RetryAfter ? lastError.ms : backoff(attempt - 1), signal);
      signal?.throwIfAborted();
      const token = options.getToken ? await options.getToken() : options.token;
      const headers: Record<string, string> = { ...extra };
      if (token) headers.authorization = `Bearer ${token}`;
      let res: Response;
      try {
        res = await doFetch(`${base}${path}`, signal ? { method, headers, body, signal } : { method, headers, body });
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
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
  };
}

/** `ws(s)://h/p/v1/ws` → `http(s)://h/p`: the HTTP base of a gateway URL given in either form. */
export function httpUrl(url: string): string {
  return url.replace(/^ws(s?):/i, 'http$1:').replace(/\/+$/, '').replace(/\/v1\/ws$/, '');
}

/** A retryable error that told us how long to wait. */
class RetryAfter extends SluiceError {
  constructor(readonly error: SluiceError, readonly ms: number) {
    super(error.code, error.message);
  }
}

/** @internal The error a failed HTTP answer carries (its `{error: {code, message}}` body, else its status). */
export async function errorOf(res: Response): Promise<ServerError> {
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

/** Waits `ms`, or less when `signal` aborts (the caller then sees the abort). */
function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done);
  });
}

/**
 * A message as the HTTP read routes render it (pull: `GET …/messages`; a group's lease adds
 * `attempt`). Data JSON cannot carry exactly comes base64-encoded, with `encoding` saying what the
 * bytes are (README, "Messages in JSON").
 */
export interface WireMessage {
  offset: number;
  ts: number;
  data: unknown;
  encoding?: 'base64' | 'msgpack';
  headers?: Headers;
  orderingKey?: string;
  priority?: number;
  traced?: boolean;
}

/** The bytes of a `WireMessage` whose `encoding` is set. */
export function wireBytes(w: WireMessage): Uint8Array {
  return Uint8Array.from(atob(w.data as string), (c) => c.charCodeAt(0));
}
