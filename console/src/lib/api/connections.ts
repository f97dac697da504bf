/** /v1/admin/connections: WebSocket connections and SSE streams; DELETE closes one. */
import type { Admin } from '@sluice/client/protocol';
import { request } from './http.js';

export type ConnectionRow = Admin.ConnectionRow;

export function listConnections(): Promise<ConnectionRow[]> {
  return request<ConnectionRow[]>('GET', '/v1/admin/connections');
}

/**
 * Closes it (WebSocket close 4202): an SDK client reconnects and resumes. `node`, the row's node,
 * sends the request straight to the node that holds it.
 */
export function disconnect(id: string, node?: string): Promise<Admin.Kicked> {
  const query = node ? `?node=${encodeURIComponent(node)}` : '';
  return request<Admin.Kicked>('DELETE', `/v1/admin/connections/${encodeURIComponent(id)}${query}`);
}
