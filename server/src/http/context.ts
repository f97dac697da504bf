/**
 * What every HTTP route shares: the gateway's parts, and the steps each request goes through —
 * origin check, token, authentication, body (size-capped while it streams in), and a guard that
 * turns any failure of a handler into a counted 500 instead of a crash.
 */
import type { BackupService } from '../log/backup.js';
import type { Tracer } from '../core/trace.js';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { AuthError, type Authenticator, type Principal } from '../auth/auth.js';
import type { Nodes } from '../cluster/nodes.js';
import type { HttpLimits, Limits } from '../config.js';
import type { PublishError, PublishService } from '../core/publish.js';
import type { CursorReader } from '../core/start.js';
import type { Groups } from '../groups/registry.js';
import type { Hub } from '../hub/hub.js';
import type { TopicLog } from '../log/log.js';
import type { Metrics } from '../metrics.js';
import type { RateLimiter } from '../ratelimit.js';
import type { Session } from '../session/session.js';
import type { HeldService } from '../core/held.js';
import { logger } from '../logger.js';
import { Exchange, type RequestInfo } from './exchange.js';
import type { OriginPolicy } from './origins.js';
import type { PeerResolver } from './peer.js';

export interface HttpContext {
  store: TopicLog;
  groups: Groups;
  publisher: PublishService;
  held: HeldService;
  reader: CursorReader;
  hub: Hub;
  auth: Authenticator;
  metrics: Metrics;
  limits: Limits;
  http: HttpLimits;
  origins: OriginPolicy;
  /** The client's address and scheme through trusted proxies (`--trust-proxy`). */
  peers: PeerResolver;
  /** One log line per request (`--access-log`). */
  accessLog: boolean;
  rates: RateLimiter;
  sessions: ReadonlySet<Session>;
  version: string;
  /** This node and the others of its cluster (one node without cluster mode). */
  nodes: Nodes;
  tracer: Tracer;
  /** Backups of the disk store (`POST /v1/admin/backup`); undefined without `--backup-dir`. */
  backups?: BackupService | undefined;
}

/** What every route needs to answer: the origin policy, the peer's address, the metrics and the access log. */
export type HttpBasics = Pick<HttpContext, 'origins' | 'metrics' | 'peers' | 'accessLog'>;

/**
 * Opens an exchange for a request, or answers 403 (in the synchronous top) when the request comes
 * from a browser origin the policy refuses. MUST be called in the synchronous top of a handler.
 */
export function begin(res: HttpResponse, req: HttpRequest, route: string, ctx: HttpBasics): Exchange | undefined {
  const origin = req.getHeader('origin');
  const allowed = !origin || ctx.origins.allows(origin, req.getHeader('host'));
  const ex = new Exchange(res, route, ctx.metrics, allowed ? origin : '', requestInfo(res, req, ctx));
  // Until `readBody` has consumed it, a body is unread: answering early also closes the connection.
  ex.bodyPending = req.getHeader('transfer-encoding') !== '' || Number(req.getHeader('content-length')) > 0;
  if (allowed) return ex;
  ex.error('forbidden', `origin ${origin.slice(0, 200)} is not allowed`);
  return undefined;
}

/** What the access log and the routes know of who asked. MUST be called in the synchronous top of a handler. */
export function requestInfo(res: HttpResponse, req: HttpRequest, ctx: Pick<HttpBasics, 'peers' | 'accessLog'>): RequestInfo {
  const query = ctx.accessLog ? req.getQuery() : undefined;
  return {
    method: req.getMethod(),
    url: ctx.accessLog ? req.getUrl() + (query ? `?${query.replace(/(^|&)token=[^&]*/g, '$1token=***')}` : '') : '',
    peer: ctx.peers.of(res, req),
    userAgent: ctx.accessLog ? req.getHeader('user-agent') : '',
    log: ctx.accessLog,
  };
}

/**
 * The request's token: `Authorization: Bearer <token>`, or the `token` query parameter when
 * `fromQuery` (GET routes only: EventSource cannot set headers). Null when the header is not a
 * Bearer token (another scheme such as Basic, or a malformed one): refused even in dev mode.
 */
export function tokenOf(req: HttpRequest, fromQuery: boolean): string | undefined | null {
  const header = req.getHeader('authorization');
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? m[1] : null;
  }
  if (fromQuery) {
    const q = req.getQuery('token');
    if (q) return q;
  }
  return undefined;
}

/**
 * Authenticates; answers 401 and resolves to undefined when that fails. As RFC 6750 §3.1 says, a
 * request that carries no Bearer token (no Authorization header, or one that is not `Bearer
 * <token>`) gets `WWW-Authenticate: Bearer` with no error code; one whose token is malformed,
 * expired or refused gets `Bearer error="invalid_token"`.
 */
export async function authenticate(ex: Exchange, ctx: HttpContext, token: string | undefined | null): Promise<Principal | undefined> {
  if (token === null) {
    ex.error('unauthorized', 'the Authorization header must be "Bearer <token>"', 401, { 'www-authenticate': 'Bearer' });
    return undefined;
  }
  try {
    return await ctx.auth.authenticate(token);
  } catch (err) {
    const message = err instanceof AuthError ? err.message : 'authentication failed';
    logger.warn('authentication failed', { transport: 'http', route: ex.route, reason: message, address: clientAddress(ex) });
    ex.error('unauthorized', message, 401, { 'www-authenticate': token ? INVALID_TOKEN : 'Bearer' });
    return undefined;
  }
}

const INVALID_TOKEN = 'Bearer error="invalid_token"';

/** Answers a refused publish: its code's status, and `Retry-After` (whole seconds, at least 1) when it says when to retry. */
export function refused(ex: Exchange, err: PublishError): void {
  const after = err.retryAfterMs === undefined ? undefined : { 'retry-after': String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))) };
  ex.error(err.code, err.message, undefined, after);
}

/**
 * Long-polls, event streams and admin streams share one cap (`--max-http-streams`). Answers 429
 * `limit-exceeded` and returns true when it is reached.
 */
export function streamsFull(ex: Exchange, ctx: HttpContext, open: () => number): boolean {
  if (open() < ctx.http.maxStreams) return false;
  ex.error('limit-exceeded', `at most ${ctx.http.maxStreams} long-polls and event streams at once`);
  return true;
}

/** The client's address (through trusted proxies) of an exchange opened by `begin`. */
export function clientAddress(ex: Exchange): string {
  return ex.request?.peer.address ?? Buffer.from(ex.res.getRemoteAddressAsText()).toString();
}

/**
 * Reads the request body, refusing it with 413 (and closing the connection) as soon as more than
 * `cap` bytes were declared or arrived. Resolves to undefined when it was refused or the client left.
 * MUST be called in the synchronous top of the handler (uWS delivers the body only to a handler
 * registered there).
 */
export function readBody(ex: Exchange, contentLength: string, cap: number): Promise<Uint8Array | undefined> {
  const declared = contentLength ? Number(contentLength) : -1;
  if (declared > cap) {
    ex.error('too-large', `body of ${declared} bytes exceeds ${cap}`);
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    let done = false;
    const parts: Buffer[] = [];
    let total = 0;
    ex.onAbort(() => {
      if (!done) { done = true; resolve(undefined); }
    });
    ex.res.onData((chunk, isLast) => {
      if (done) return;
      total += chunk.byteLength;
      if (total > cap) {
        done = true;
        ex.error('too-large', `body exceeds ${cap} bytes`);
        resolve(undefined);
        return;
      }
      // uWS reuses the chunk's memory after this call returns: copy it.
      if (chunk.byteLength > 0) parts.push(Buffer.from(chunk.slice(0)));
      if (isLast) {
        done = true;
        ex.bodyPending = false;
        resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, total));
      }
    });
  });
}

/** Runs an async handler; a failure is counted, logged and answered 500 `internal`. */
export function guard(ex: Exchange, ctx: HttpContext, handler: () => Promise<void> | void): void {
  const failed = (err: unknown) => {
    ctx.metrics.handlerFailures.inc();
    logger.error('HTTP handler failed', { route: ex.route, err });
    ex.error('internal', 'the gateway failed to handle this request');
  };
  try {
    const p = handler();
    if (p) p.catch(failed);
  } catch (err) {
    failed(err);
  }
}

/** Splits `/v1/topics/<topic>/<action>` (topic percent-decoded; it may contain `/`). */
export function topicPath(url: string, prefix: string, actions: readonly string[]): { topic: string; action: string } | undefined {
  const rest = url.slice(prefix.length);
  for (const action of actions) {
    const suffix = action ? `/${action}` : '';
    if (suffix && !rest.endsWith(suffix)) continue;
    const raw = rest.slice(0, rest.length - suffix.length);
    if (!raw) return undefined;
    try {
      return { topic: decodeURIComponent(raw), action };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The answer for a path no route serves. */
export function notFound(ex: Exchange, method: string, url: string): void {
  ex.error('not-found', `no route for ${method.toUpperCase()} ${url.slice(0, 300)}`);
}

/**
 * The answer for a known path asked with a method it does not serve: 405 `method-not-allowed`
 * with `Allow` naming the methods it does (RFC 9110 §15.5.6), e.g. `GET, POST, OPTIONS`.
 */
export function methodNotAllowed(ex: Exchange, method: string, allow: string): void {
  ex.error('method-not-allowed', `${method.toUpperCase()} is not allowed here (allowed: ${allow})`, 405, { allow });
}

/** Parses an unsigned integer query parameter: undefined when absent, NaN when malformed. */
export function uintParam(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  return /^\d{1,16}$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : Number.NaN;
}
