/** /v1/admin/topics: one row per topic; /v1/admin/topics/{topic}: a topic and its subscribers. */
import type { Admin } from '@sluice/client/protocol';
import { adminTopicPath, request } from './http.js';

export type TopicRow = Admin.TopicRow;
export type SubscriberRow = Admin.SubscriberRow;
export type TopicDetail = Admin.TopicDetail;

export function listTopics(): Promise<TopicRow[]> {
  return request<TopicRow[]>('GET', '/v1/admin/topics');
}

export function getTopic(topic: string): Promise<TopicDetail> {
  return request<TopicDetail>('GET', adminTopicPath(topic));
}
