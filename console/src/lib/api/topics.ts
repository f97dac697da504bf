/** /v1/admin/topics: one page of topic rows; /v1/admin/topics/{topic}: a topic and its subscribers. */
import type { Admin } from '@sluice/client/protocol';
import { adminTopicPath, request, requestWithHeaders } from './http.js';

export type TopicRow = Admin.TopicRow;
export type SubscriberRow = Admin.SubscriberRow;
export type TopicDetail = Admin.TopicDetail;

export type TopicSortKey = Admin.TopicSortKey;

export interface TopicQuery {
  /** Rows per page. */
  limit: number;
  /** Topics containing it (case-insensitive); '' for all. */
  q: string;
  sort: TopicSortKey;
  descending: boolean;
  /** The `next` of the page before; undefined for the first page. */
  cursor: string | undefined;
}

export interface TopicPage {
  rows: TopicRow[];
  /** The cursor of the page after this one; undefined on the last page. */
  next: string | undefined;
  /** Topics the query matches, over every page. */
  total: number;
}

/** One page of topics, searched, sorted and paged by the gateway. */
export async function listTopics(query: TopicQuery): Promise<TopicPage> {
  const params = new URLSearchParams({ limit: String(query.limit), sort: `${query.descending ? '-' : ''}${query.sort}` });
  if (query.q) params.set('q', query.q);
  if (query.cursor) params.set('cursor', query.cursor);
  const { body, headers } = await requestWithHeaders<TopicRow[]>('GET', `/v1/admin/topics?${params.toString()}`);
  return { rows: body, next: headers.get('sluice-next-cursor') ?? undefined, total: Number(headers.get('sluice-total-count') ?? body.length) };
}

export function getTopic(topic: string): Promise<TopicDetail> {
  return request<TopicDetail>('GET', adminTopicPath(topic));
}
