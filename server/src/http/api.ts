/**
 * The HTTP API v1 on the gateway's uWS app (same port as the WebSocket): routes, and the long-lived
 * parts behind them (parked long-polls, event streams, the admin feed).
 *
 *   OPTIONS *                                  CORS preflight
 *   POST    /v1/topics/{topic}/messages        publish one message            (cap: pub)
 *   GET     /v1/topics/{topic}/messages        pull history / long-poll       (cap: history)
 *   GET     /v1/topics/{topic}/events          Server-Sent Events             (cap: sub)
 *   POST    /v1/publish                        publish a batch                (cap: pub, per message)
 *   GET     /v1/topics/{topic}/scheduled       delayed messages held          (cap: pub; held.ts)
 *   DELETE  /v1/topics/{topic}/scheduled/{id}  cancel one                     (cap: pub)
 *   GET     /v1/topics/{topic}/transactions    prepared ones not resolved     (cap: pub)
 *   POST    /v1/topics/{topic}/transactions    prepare a half message         (cap: pub)
 *   POST    /v1/topics/{topic}/transactions/{id}/commit|abort                 (cap: pub)
 *   *       /v1/admin/...                      admin API (admin.ts)           (admin: true)
 *
 * `{topic}` is percent-encoded when it contains `/` (or not: the last path segment names the
 * action, everything before it is the topic). MUST be mounted before `mountNotFound`.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { Admin } from './admin.js';
import { begin, methodNotAllowed, notFound, topicPath, type HttpContext } from './context.js';
import { groupPath, groupRoute, HttpConsumers } from './groups.js';
import { publishBatch, publishOne } from './publish.js';
import { heldPath, heldRoute } from './held.js';
import { LongPolls, pull } from './pull.js';
import { events, TopicStreams } from './sse.js';

export class HttpApi {
  readonly polls: LongPolls;
  readonly streams: TopicStreams;
  readonly admin: Admin;
  readonly consumers: HttpConsumers;

  constructor(app: TemplatedApp, private readonly ctx: HttpContext) {
    const { metrics } = ctx;
    this.polls = new LongPolls(ctx.store, ctx.reader, metrics);
    this.streams = new TopicStreams(ctx.store, ctx.reader, metrics, ctx.limits.heartbeatMs, ctx.tracer);
    this.admin = new Admin(ctx, this.polls, this.streams);
    this.consumers = new HttpConsumers(ctx.groups);
    const open = () => this.openStreams;

    metrics.gauge('sluice_http_long_polls', 'Pull requests parked waiting for a message.', () => this.polls.size);
    metrics.gauge('sluice_sse_streams', 'Open Server-Sent Event streams, by kind.', () => ({
      topic: this.streams.size,
      admin: this.admin.feed.size,
    }), 'kind');

    app.options('/*', (res, req) => {
      const origin = req.getHeader('origin');
      if (!ctx.origins.preflight(res, origin, req.getHeader('host'), req.getHeader('access-control-request-headers'))) {
        begin(res, req, 'preflight', ctx); // answers 403
        return;
      }
      metrics.httpRequest('preflight', 204, 0);
    });
    app.post('/v1/publish', (res, req) => publishBatch(res, req, ctx));
    app.any('/v1/topics/*', (res, req) => {
      const method = req.getMethod();
      const grouped = groupPath(req.getUrl());
      if (grouped && method === 'post') return groupRoute(res, req, grouped, ctx, this.consumers, open);
      const held = heldPath(req.getUrl());
      if (held && heldRoute(res, req, held, ctx)) return;
      if (held) {
        const ex = begin(res, req, 'not_found', ctx);
        if (!ex) return;
        const allow = held.kind === 'scheduled' ? (held.id === undefined ? 'GET, OPTIONS' : 'DELETE, OPTIONS') : held.id === undefined ? 'GET, POST, OPTIONS' : 'POST, OPTIONS';
        return methodNotAllowed(ex, method, allow);
      }
      const path = topicPath(req.getUrl(), '/v1/topics/', ['messages', 'events']);
      if (path?.action === 'messages' && method === 'post') return publishOne(res, req, path.topic, ctx);
      if (path?.action === 'messages' && method === 'get') return pull(res, req, path.topic, ctx, this.polls, open);
      if (path?.action === 'events' && method === 'get') return events(res, req, path.topic, ctx, this.streams, open);
      const ex = begin(res, req, 'not_found', ctx);
      if (!ex) return;
      if (!path) return notFound(ex, method, req.getUrl());
      const allow = path.action === 'messages' ? 'GET, POST, OPTIONS' : 'GET, OPTIONS';
      methodNotAllowed(ex, method, allow);
    });
    this.admin.mount(app, open);
  }

  /** Long-polls and SSE streams held open now (bounded by `maxStreams`). */
  get openStreams(): number {
    return this.polls.size + this.streams.size + this.admin.feed.size + this.consumers.waiting;
  }

  /** Answers parked long-polls, ends every stream, stops the timers. */
  close(): void {
    this.polls.close();
    this.consumers.close();
    this.streams.close();
    this.admin.close();
  }
}
