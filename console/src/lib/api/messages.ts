/** A topic's messages over the public HTTP API: history by offset, and publishing. */
import { request, topicPath } from './http.js';

export interface StoredMessage {
  offset: number;
  ts: number;
  data: unknown;
  encoding?: 'base64';
  headers?: Record<string, string>;
  /** Published with tracing on (or sampled): its journey is at #/topics/<topic>/trace/<offset>. */
  traced?: boolean;
}

export interface Page {
  epoch: string;
  head: number;
  next: number;
  messages: StoredMessage[];
}

export function history(topic: string, from: number, limit = 50): Promise<Page> {
  return request<Page>('GET', `${topicPath(topic)}/messages?from=${from}&limit=${limit}`);
}

export interface Published {
  offset: number;
  epoch: string;
  duplicate: boolean;
}

export function publishJson(topic: string, json: string, key?: string): Promise<Published> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key) headers['idempotency-key'] = key;
  return request<Published>('POST', `${topicPath(topic)}/messages`, { body: json, headers });
}
