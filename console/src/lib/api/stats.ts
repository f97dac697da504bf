/** /v1/admin/stats: gateway totals and rates; /v1/admin/stats/history: its last ten minutes. */
import type { Admin } from '@sluice/client/protocol';
import { request } from './http.js';

export type Stats = Admin.Stats;
/** One frame of /v1/admin/stream. */
export type Snapshot = Admin.Snapshot;
/** The samples the gateway kept (also the first event of /v1/admin/stream?history=1). */
export type StatsHistory = Admin.StatsHistory;

/** The stats; with `token`, checks that token instead of the signed-in one. */
export function getStats(token?: string): Promise<Stats> {
  return request<Stats>('GET', '/v1/admin/stats', token ? { headers: { authorization: `Bearer ${token}` } } : {});
}
