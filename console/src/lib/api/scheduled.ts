/**
 * /v1/topics/{topic}/scheduled: a topic's delayed messages held by the gateway (count, next due, a
 * page of them by due time), and cancelling one before it is due (protocol 1.4).
 */
import { request, topicPath } from './http.js';

export interface ScheduledItem {
  id: string;
  /** When it is due (ms since the epoch). */
  due: number;
  /** `scheduled`, or `appending` once due and being appended. */
  state: string;
  /** The idempotency key it was published with. */
  key?: string;
}

export interface ScheduledPage {
  count: number;
  nextDue?: number;
  items: ScheduledItem[];
  /** Give it as `after` for the next page; absent on the last. */
  cursor?: string;
}

export function scheduled(topic: string, limit = 50, after?: string): Promise<ScheduledPage> {
  const q = new URLSearchParams({ limit: String(limit) });
  if (after) q.set('after', after);
  return request<ScheduledPage>('GET', `${topicPath(topic)}/scheduled?${q}`);
}

/** Cancels one before it is due; `already-appended` once it was. */
export function cancelScheduled(topic: string, id: string): Promise<{ id: string; state: 'cancelled' }> {
  return request('DELETE', `${topicPath(topic)}/scheduled/${encodeURIComponent(id)}`);
}
