/** /v1/admin/stats: gateway totals and rates. */
import { request } from './http.js';
import type { TopicRow } from './topics.js';

export interface Stats {
  version: string;
  authMode: 'dev' | 'jwt';
  uptimeMs: number;
  connections: number;
  subscriptions: { live: number; paused: number; catchup: number };
  rates: { messagesInPerSec: number; messagesOutPerSec: number; bytesInPerSec: number; bytesOutPerSec: number };
  storeBytes: number;
  topics: number;
  errors: Record<string, number>;
  http: { longPolls: number; eventStreams: number; adminStreams: number };
}

/** One frame of /v1/admin/stream. */
export interface Snapshot {
  stats: Stats;
  topics: TopicRow[];
}

/** The stats; with `token`, checks that token instead of the signed-in one. */
export function getStats(token?: string): Promise<Stats> {
  return request<Stats>('GET', '/v1/admin/stats', token ? { headers: { authorization: `Bearer ${token}` } } : {});
}
