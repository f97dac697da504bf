/**
 * /v1/topics/{topic}/transactions: a topic's prepared (half) messages not resolved yet, a page of
 * them by prepare time (protocol 1.4). Commit and abort are the producer's; the console only shows.
 */
import { request, topicPath } from './http.js';

export interface PreparedItem {
  /** The transaction id. */
  id: string;
  /** When it was prepared (ms since the epoch). */
  preparedAt: number;
  /** `prepared`, or `appending` once committed and being appended. */
  state: string;
  /** Check-backs made so far. */
  checks: number;
  /** While prepared: when the gateway checks back next (ms since the epoch). */
  nextCheck?: number;
  /** The idempotency key it was prepared with. */
  key?: string;
}

export interface PreparedPage {
  count: number;
  items: PreparedItem[];
  /** Give it as `after` for the next page; absent on the last. */
  cursor?: string;
}

export function prepared(topic: string, limit = 50, after?: string): Promise<PreparedPage> {
  const q = new URLSearchParams({ limit: String(limit) });
  if (after) q.set('after', after);
  return request<PreparedPage>('GET', `${topicPath(topic)}/transactions?${q}`);
}
