/**
 * Delayed and prepared messages over HTTP (protocol 1.4; the service is core/held.ts):
 *
 *   GET    /v1/topics/{topic}/scheduled?limit=&after=        → {count, nextDue?, items, cursor?}  (cap: pub)
 *   DELETE /v1/topics/{topic}/scheduled/{id}                 → {id, state: "cancelled"}          (cap: pub)
 *   GET    /v1/topics/{topic}/transactions?limit=&after=     → {count, items, cursor?}           (cap: pub)
 *   POST   /v1/topics/{topic}/transactions                   prepare: the body is the message → 201 {id, duplicate}
 *   POST   /v1/topics/{topic}/transactions/{id}/commit       → {offset, epoch, duplicate}        (cap: pub)
 *   POST   /v1/topics/{topic}/transactions/{id}/abort        → {id, state: "aborted"}            (cap: pub)
 *
 * A scheduled message is made by a publish with `Sluice-Delay` / `Sluice-At` (publish.ts). Cancel,
 * commit and abort are idempotent; refusals carry stable codes (unknown-schedule,
 * unknown-transaction, transaction-aborted, already-appended). An item of the scheduled listing is
 * `{id, due, state, key?}`, one of the transactions listing (prepared, not yet resolved: `prepared`,
 * or `appending` once committed) `{id, preparedAt, state, checks, nextCheck?, key?}`; both by time,
 * then id; `limit` is 1–1000 (default 100), `after` the previous page's cursor.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { PublishError } from '../core/publish.js';
import type { HeldRecord } from '../log/held.js';
import { authenticate, begin, guard, refused, tokenOf, uintParam, type HttpContext } from './context.js';
import { publishOne } from './publish.js';

type HeldPath =
  | { kind: 'scheduled'; topic: string; id?: string }
  | { kind: 'transactions'; topic: string; id?: string; action?: 'commit' | 'abort' };

/** `/v1/topics/<topic>/scheduled[/<id>]` or `/v1/topics/<topic>/transactions[/<id>/<commit|abort>]`. */
export function heldPath(url: string): HeldPath | undefined {
  const s = /^\/v1\/topics\/(.+)\/scheduled(?:\/([^/]+))?$/.exec(url);
  const t = s ? undefined : /^\/v1\/topics\/(.+)\/transactions(?:\/([^/]+)\/(commit|abort))?$/.exec(url);
  const m = s ?? t;
  if (!m) return undefined;
  try {
    const topic = decodeURIComponent(m[1]!);
    const id = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
    if (s) return id === undefined ? { kind: 'scheduled', topic } : { kind: 'scheduled', topic, id };
    return id === undefined ? { kind: 'transactions', topic } : { kind: 'transactions', topic, id, action: m[3] as 'commit' | 'abort' };
  } catch {
    return undefined;
  }
}

function scheduledItem(r: HeldRecord): Record<string, unknown> {
  const item: Record<string, unknown> = { id: r.id, due: r.at, state: r.state };
  if (r.key !== undefined) item.key = r.key;
  return item;
}

/** A prepared record: `nextCheck` only while it waits for its producer (not once committed). */
function preparedItem(r: HeldRecord): Record<string, unknown> {
  const item: Record<string, unknown> = { id: r.id, preparedAt: r.at, state: r.state, checks: r.attempts };
  if (r.state === 'prepared') item.nextCheck = r.next;
  if (r.key !== undefined) item.key = r.key;
  return item;
}

/** Serves a held path; false when the method does not fit it (the caller answers 405). */
export function heldRoute(res: HttpResponse, req: HttpRequest, path: HeldPath, ctx: HttpContext): boolean {
  const method = req.getMethod();
  const list = path.id === undefined && method === 'get';
  if (path.kind === 'transactions' && path.id === undefined && !list) {
    if (method !== 'post') return false;
    publishOne(res, req, path.topic, ctx, true);
    return true;
  }
  const route = list ? `${path.kind === 'scheduled' ? 'scheduled' : 'tx'}_list` : path.kind === 'scheduled' ? 'scheduled_cancel' : `tx_${path.action!}`;
  const wanted = path.kind === 'scheduled' ? (path.id === undefined ? 'get' : 'delete') : path.id === undefined ? 'get' : 'post';
  if (method !== wanted) return false;
  const ex = begin(res, req, route, ctx);
  if (!ex) return true;
  const token = tokenOf(req, false);
  const query = new URLSearchParams(req.getQuery() ?? '');
  guard(ex, ctx, async () => {
    const principal = await authenticate(ex, ctx, token);
    if (!principal || !ex.open) return;
    try {
      if (list) {
        if (!principal.can('pub', path.topic)) return ex.error('forbidden', `not allowed to publish to ${path.topic}`);
        const limit = uintParam(query.get('limit') ?? undefined) ?? 100;
        if (!(limit >= 1 && limit <= 1000)) return ex.error('bad-request', 'limit must be 1-1000');
        const kind = path.kind === 'scheduled' ? 'scheduled' : 'prepared';
        const page = await ctx.held.list(path.topic, kind, limit, query.get('after') ?? undefined);
        const body: Record<string, unknown> = { count: page.count, items: page.items.map(kind === 'scheduled' ? scheduledItem : preparedItem) };
        if (page.nextDue !== undefined) body.nextDue = page.nextDue;
        if (page.cursor !== undefined) body.cursor = page.cursor;
        return ex.json(200, body);
      }
      if (path.kind === 'scheduled') {
        await ctx.held.cancel(principal, path.id!, path.topic);
        return ex.json(200, { id: path.id, state: 'cancelled' });
      }
      if (path.action === 'commit') return ex.json(200, await ctx.held.commit(principal, path.id!, path.topic));
      await ctx.held.abort(principal, path.id!, path.topic);
      return ex.json(200, { id: path.id, state: 'aborted' });
    } catch (err) {
      if (!(err instanceof PublishError)) throw err;
      refused(ex, err);
    }
  });
  return true;
}
