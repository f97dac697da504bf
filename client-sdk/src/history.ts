/**
 * `client.history`: a page of a topic's stored messages over the HTTP pull route
 * (`GET /v1/topics/{topic}/messages?from=&limit=`). Why HTTP and not the WebSocket: the protocol has
 * one subscription per topic per connection and no fetch frame, and a read of old messages must not
 * move a live subscription's cursor or credit; the pull route already answers exactly this, with the
 * same start rule as a SUB and the `history` capability.
 */
import { errorOf } from './http.js';
export { httpUrl } from './http.js';
import { NetworkError } from './errors.js';
import { decodeValue } from './protocol/value.js';
import type { Headers } from './protocol/frames.js';
import type { Message } from './subscription.js';

export interface HistoryOptions {
  /** First offset wanted (default: the oldest retained message). */
  from?: number;
  /** Most messages in the page (default 100; the gateway caps it at 1000 and about 1 MiB). */
  limit?: number;
  /** The epoch `from` belongs to: another epoch starts the page at the head (`recovered: false`). */
  epoch?: string;
  signal?: AbortSignal;
}

export interface HistoryPage<T = unknown> {
  epoch: string;
  /** The topic's last offset. */
  head: number;
  /** Where the next page starts (`from` of the next call). */
  next: number;
  /** With `from`: whether the page starts exactly there. */
  recovered?: boolean;
  /** Offsets retention removed before `from` (the page starts after them). */
  gap?: { from: number; to: number };
  messages: Message<T>[];
}

/** A message as the pull route renders it. */
interface Wire {
  offset: number;
  ts: number;
  data: unknown;
  encoding?: 'base64' | 'msgpack';
  headers?: Headers;
  orderingKey?: string;
  priority?: number;
  traced?: boolean;
}

/** @internal */
export async function history<T>(
  doFetch: typeof fetch | undefined,
  base: string,
  token: () => Promise<string | undefined>,
  topic: string,
  o: HistoryOptions,
): Promise<HistoryPage<T>> {
  const q = new URLSearchParams();
  if (o.from !== undefined) q.set('from', String(o.from));
  if (o.limit !== undefined) q.set('limit', String(o.limit));
  if (o.epoch !== undefined) q.set('epoch', o.epoch);
  const url = `${base}/v1/topics/${encodeURIComponent(topic)}/messages?${q}`;
  const t = await token();
  let res: Response;
  try {
    res = await (doFetch ?? fetch)(url, { headers: t ? { authorization: `Bearer ${t}` } : {}, signal: o.signal ?? null });
  } catch (err) {
    if (o.signal?.aborted) throw o.signal.reason;
    throw new NetworkError(`request to ${url} failed: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (!res.ok) throw await errorOf(res);
  const page = (await res.json()) as Omit<HistoryPage, 'messages'> & { messages: Wire[] };
  return {
    ...page,
    messages: page.messages.map((w) => {
      let data = w.data;
      if (w.encoding) {
        const bytes = Uint8Array.from(atob(data as string), (c) => c.charCodeAt(0));
        data = bytes;
        if (w.encoding === 'msgpack') try { data = decodeValue(bytes); } catch { /* kept as bytes */ }
      }
      return { topic, offset: w.offset, epoch: page.epoch, data: data as T, ts: w.ts, headers: w.headers, orderingKey: w.orderingKey, priority: w.priority ?? 0, traced: w.traced === true };
    }),
  };
}
