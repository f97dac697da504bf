/**
 * Which browser origins may use the gateway: CORS for the HTTP API and the Origin check of
 * WebSocket upgrades (cross-site WebSocket hijacking), from one allowlist.
 *
 * A request without an Origin header is not a cross-site browser request (curl, servers, edge
 * workers) and always passes; the gateway's own origin (Origin host = Host header, or the origin
 * of `--public-url`) always passes.
 * Any other origin passes only when listed, or when the policy is `*`.
 *
 * Why refuse instead of merely withholding CORS headers: a cross-site "simple" request (a form
 * POST, `text/plain` fetch) reaches the handler without a preflight, so a disallowed origin is
 * answered 403 before anything is done.
 */
import type { HttpResponse } from 'uWebSockets.js';

/** Request headers a browser may send (preflight answer). */
const ALLOWED_HEADERS = 'Authorization, Content-Type, Idempotency-Key, Last-Event-ID';
const ALLOWED_METHODS = 'GET, POST, PUT, DELETE, OPTIONS';

export class OriginPolicy {
  private readonly any: boolean;
  private readonly list: ReadonlySet<string>;

  /** The origin users reach the gateway at (`--public-url`), when set. */
  private readonly own: string | undefined;

  constructor(origins: readonly string[], publicUrl?: string) {
    this.any = origins.includes('*');
    this.list = new Set(origins.filter((o) => o !== '*').map((o) => o.toLowerCase()));
    this.own = publicUrl ? new URL(publicUrl).origin.toLowerCase() : undefined;
  }

  /**
   * The policy a configuration asks for; unset: any origin in dev mode, same origin otherwise.
   * `publicUrl`'s origin is the gateway's own: a proxy that rewrites Host (nginx's default) would
   * otherwise make the console's own requests look cross-site.
   */
  static from(allowed: readonly string[] | undefined, devMode: boolean, publicUrl?: string): OriginPolicy {
    return new OriginPolicy(allowed ?? (devMode ? ['*'] : []), publicUrl);
  }

  allows(origin: string, host: string): boolean {
    if (!origin) return true;
    if (this.any) return true;
    const o = origin.toLowerCase();
    return this.list.has(o) || o === this.own || sameOrigin(o, host);
  }

  describe(): string {
    if (this.any) return 'any origin';
    const own = this.own ? `same origin (and ${this.own})` : 'same origin';
    return this.list.size === 0 ? `${own} only` : `${own} and ${[...this.list].join(', ')}`;
  }

  /** Answers a CORS preflight (OPTIONS) in the synchronous top of its handler. */
  preflight(res: HttpResponse, origin: string, host: string, requestedHeaders: string): boolean {
    if (origin && !this.allows(origin, host)) return false;
    res.writeStatus('204 No Content');
    if (origin) {
      res.writeHeader('access-control-allow-origin', origin);
      res.writeHeader('access-control-allow-methods', ALLOWED_METHODS);
      res.writeHeader('access-control-allow-headers', requestedHeaders || ALLOWED_HEADERS);
      res.writeHeader('access-control-max-age', '600');
      res.writeHeader('vary', 'Origin, Access-Control-Request-Headers');
    }
    res.end();
    return true;
  }
}

function sameOrigin(origin: string, host: string): boolean {
  if (!host) return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}
