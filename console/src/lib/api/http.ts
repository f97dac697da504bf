/**
 * The one place the console talks HTTP to the gateway: same origin, admin token as a Bearer
 * header, every error body parsed into an ApiError with the protocol's stable code.
 */
import { auth } from '../auth.svelte.js';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(readonly code: string, message: string, readonly status: number) {
    super(message);
  }
}

/** The gateway's origin: the console is served by it under /console. */
export const gatewayOrigin = location.origin;

export async function request<T>(method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string> } = {}): Promise<T> {
  return (await requestWithHeaders<T>(method, path, init)).body;
}

/** As `request`, with the response's headers (paging cursors, totals). */
export async function requestWithHeaders<T>(method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string> } = {}): Promise<{ body: T; headers: Headers }> {
  const headers: Record<string, string> = { ...init.headers };
  if (auth.token && !headers.authorization) headers.authorization = `Bearer ${auth.token}`;
  let res: Response;
  try {
    res = await fetch(`${gatewayOrigin}${path}`, { method, headers, body: init.body ?? null });
  } catch (err) {
    throw new ApiError('network', `cannot reach the gateway: ${err instanceof Error ? err.message : String(err)}`, 0);
  }
  if (res.status === 401) auth.needed = true;
  const text = await res.text();
  let body: unknown;
  try { body = text ? JSON.parse(text) : undefined; } catch { body = undefined; }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiError(e?.code ?? 'internal', e?.message ?? `HTTP ${res.status}`, res.status);
  }
  return { body: body as T, headers: res.headers };
}

/** An EventSource URL for a GET route: EventSource cannot send headers, so the token rides in the query. */
export function streamUrl(path: string): string {
  const url = new URL(`${gatewayOrigin}${path}`);
  if (auth.token) url.searchParams.set('token', auth.token);
  return url.toString();
}

export const topicPath = (topic: string) => `/v1/topics/${encodeURIComponent(topic)}`;
export const adminTopicPath = (topic: string) => `/v1/admin/topics/${encodeURIComponent(topic)}`;
