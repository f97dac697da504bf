/**
 * /v1/admin/topics/{topic}/messages/{offset}/trace: a traced message's journey, every node's
 * events merged by time (empty: not traced, or forgotten).
 */
import type { Admin } from '@sluice/client/protocol';
import { adminTopicPath, request } from './http.js';

export type Trace = Admin.Trace;
export type TraceEvent = Admin.TraceEvent;

export function getTrace(topic: string, offset: number): Promise<Trace> {
  return request<Trace>('GET', `${adminTopicPath(topic)}/messages/${offset}/trace`);
}
