/** /v1/admin/connections: WebSocket connections and SSE streams; DELETE closes one. */
import { request } from './http.js';

export interface ConnectionRow {
  transport: 'ws' | 'sse';
  id: string;
  clientId: string;
  client: string;
  userAgent: string;
  remoteAddress: string;
  connectedAt: number;
  subscriptions: number;
  bytesIn: number;
  bytesOut: number;
}

export function listConnections(): Promise<ConnectionRow[]> {
  return request<ConnectionRow[]>('GET', '/v1/admin/connections');
}

/** Closes it (WebSocket close 4202): an SDK client reconnects and resumes. */
export function disconnect(id: string): Promise<unknown> {
  return request('DELETE', `/v1/admin/connections/${encodeURIComponent(id)}`);
}
