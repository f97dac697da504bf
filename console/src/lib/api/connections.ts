/** /v1/admin/connections: WebSocket connections and SSE streams; DELETE closes one. */
import type { Admin } from '@sluice/client/protocol';
import { request } from './http.js';

export type ConnectionRow = Admin.ConnectionRow;

export function listConnections(): Promise<ConnectionRow[]> {
  return request<ConnectionRow[]>('GET', '/v1/admin/connections');
}

/** Closes it (WebSocket close 4202): an SDK client reconnects and resumes. */
export function disconnect(id: string): Promise<unknown> {
  return request('DELETE', `/v1/admin/connections/${encodeURIComponent(id)}`);
}
