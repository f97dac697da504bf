/** /v1/admin/topics: one row per topic; /v1/admin/topics/{topic}: a topic and its subscribers. */
import { adminTopicPath, request } from './http.js';

export interface TopicRow {
  topic: string;
  epoch: string;
  head: number;
  first: number;
  count: number;
  bytes: number;
  subscribers: number;
  live: number;
  paused: number;
  msgsPerSec: number;
  lastTs: number;
}

export interface SubscriberRow {
  transport: 'ws' | 'sse';
  connection: string;
  clientId: string;
  client: string;
  remoteAddress: string;
  userAgent: string;
  subId: number;
  state: 'live' | 'paused' | 'catchup';
  /** Credit left; null for SSE (TCP backpressure governs it). */
  credit: number | null;
  /** Last offset delivered. */
  cursor: number;
  lag: number;
  delivered: number;
  since: number;
}

export type TopicDetail = Omit<TopicRow, 'subscribers'> & { subscribers: SubscriberRow[] };

export function listTopics(): Promise<TopicRow[]> {
  return request<TopicRow[]>('GET', '/v1/admin/topics');
}

export function getTopic(topic: string): Promise<TopicDetail> {
  return request<TopicDetail>('GET', adminTopicPath(topic));
}
