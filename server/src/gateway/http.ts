/**
 * The gateway's own HTTP routes — liveness, readiness, metrics — and the answer for every path no
 * route matched. Like every route, they answer through an Exchange (http/exchange.ts): JSON errors
 * with their code's status, CORS headers for allowed origins, and request metrics.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { begin, notFound, type HttpBasics } from '../http/context.js';

/** Why the gateway should not get traffic now (draining, store not writable), or undefined. */
export type Readiness = () => string | undefined;

export function mountBasics(app: TemplatedApp, ctx: HttpBasics, healthy: () => boolean, notReady: Readiness): void {
  const health = (method: 'get' | 'head') => app[method]('/healthz', (res, req) => {
    const ex = begin(res, req, 'healthz', ctx);
    if (!ex) return;
    if (healthy()) ex.json(200, { status: 'ok' });
    else ex.json(503, { status: 'draining' });
  });
  health('get');
  health('head');
  app.get('/readyz', (res, req) => {
    const ex = begin(res, req, 'readyz', ctx);
    if (!ex) return;
    const reason = notReady();
    if (reason === undefined) ex.json(200, { status: 'ready' });
    else ex.json(503, { status: 'not-ready', reason });
  });
  app.get('/metrics', (res, req) => {
    const ex = begin(res, req, 'metrics', ctx);
    if (!ex) return;
    ex.send(200, 'text/plain; version=0.0.4', ctx.metrics.render());
  });
}

/** Registered last: everything no route matched. */
export function mountNotFound(app: TemplatedApp, ctx: HttpBasics): void {
  app.any('/*', (res, req) => {
    const ex = begin(res, req, 'not_found', ctx);
    if (ex) notFound(ex, req.getMethod(), req.getUrl());
  });
}
