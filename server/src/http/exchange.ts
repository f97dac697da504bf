/**
 * Exchange: one HTTP request/response on uWebSockets.js, with the rules of that API kept in one place.
 *
 * Rules (uWS):
 * - An abort handler is attached at construction: a response not answered in the synchronous top of
 *   its handler MUST have one, and after it fired the response MUST NOT be touched. Every method
 *   here is a no-op once the exchange is aborted or finished.
 * - Every write goes through `res.cork`, so answers from async completions (a store commit, a
 *   long-poll wake-up) go out in one syscall.
 * - `HttpRequest` is valid only in the synchronous top of a handler: routes read what they need
 *   from it there and never keep it.
 *
 * Lifetime: open → done (answered) | streaming (SSE: started, then ended) | aborted (client gone).
 * Each exchange is counted once in `sluice_http_requests_total` (499 when the client left first).
 */
import { ErrorCodes, type ErrorCode } from '@sluice/client/protocol';
import type { HttpResponse } from 'uWebSockets.js';
import { logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Peer } from './peer.js';

const STATUS_TEXT: Record<number, string> = {
  101: 'Switching Protocols', 200: 'OK', 201: 'Created', 204: 'No Content', 301: 'Moved Permanently',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 422: 'Unprocessable Content',
  429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error',
  503: 'Service Unavailable', 507: 'Insufficient Storage',
};

export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? ''}`.trimEnd();
}

export type ResponseHeaders = Record<string, string>;

type ExchangeState = 'open' | 'streaming' | 'done' | 'aborted';

/** What the access log says of a request (read in the synchronous top of its handler). */
export interface RequestInfo {
  method: string;
  /** Path and query, with a `token` query parameter's value replaced (never logged). */
  url: string;
  peer: Peer;
  userAgent: string;
  /** Log the request when it is answered (`--access-log`). */
  log: boolean;
}

/** Response headers a browser may read besides the CORS-safelisted ones. */
const EXPOSED = 'Retry-After, WWW-Authenticate, Sluice-Unanswered-Nodes, Sluice-Next-Cursor, Sluice-Total-Count';

export class Exchange {
  private state: ExchangeState = 'open';
  private abortHandler: (() => void) | undefined;
  private readonly started = performance.now();
  /** The request body is still streaming in: an early answer also closes the connection. */
  bodyPending = false;

  constructor(
    readonly res: HttpResponse,
    /** Route label for metrics. */
    readonly route: string,
    private readonly metrics: Metrics,
    /** The Origin to allow in CORS headers, or '' for none. */
    private readonly corsOrigin: string,
    /** Who asked and how (undefined: routes that need neither, e.g. the console's files). */
    readonly request?: RequestInfo,
  ) {
    res.onAborted(() => {
      const was = this.state;
      this.state = 'aborted';
      if (was === 'open') this.record(499);
      const handler = this.abortHandler;
      this.abortHandler = undefined;
      handler?.();
    });
  }

  /** Not answered yet and the client is still there. */
  get open(): boolean {
    return this.state === 'open';
  }

  /** A started stream whose client is still there. */
  get streaming(): boolean {
    return this.state === 'streaming';
  }

  /** Runs `handler` if the client goes away before the exchange ends (handlers chain). */
  onAbort(handler: () => void): void {
    const prev = this.abortHandler;
    this.abortHandler = prev ? () => { prev(); handler(); } : handler;
  }

  json(status: number, body: unknown, headers?: ResponseHeaders): void {
    this.send(status, 'application/json', JSON.stringify(body), headers);
  }

  /** An error in the shape `{"error": {"code", "message"}}`, counted by code. */
  error(code: ErrorCode, message: string, status: number = ErrorCodes[code].status, headers?: ResponseHeaders): void {
    if (this.state !== 'open') return;
    this.metrics.error(code);
    this.json(status, { error: { code, message } }, headers);
  }

  send(status: number, contentType: string, body: string | Uint8Array, headers?: ResponseHeaders): void {
    if (this.state !== 'open') return;
    this.state = 'done';
    const close = this.bodyPending;
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status));
      if (contentType) this.res.writeHeader('content-type', contentType);
      this.writeCors();
      if (headers) for (const k in headers) this.res.writeHeader(k, headers[k]!);
      this.res.end(body, close);
    });
    this.record(status);
  }

  /**
   * The request was answered by other means (a WebSocket upgrade): nothing more may be written;
   * it is counted with `status`.
   */
  handedOver(status: number): void {
    if (this.state !== 'open') return;
    this.state = 'done';
    this.record(status);
  }

  /** Starts a chunked response (SSE) with `first` as its first chunk. False: already backpressured. */
  stream(headers: ResponseHeaders, first: string): boolean {
    if (this.state !== 'open') return false;
    this.state = 'streaming';
    let ok = false;
    this.res.cork(() => {
      this.res.writeStatus('200 OK');
      this.writeCors();
      for (const k in headers) this.res.writeHeader(k, headers[k]!);
      ok = this.res.write(first);
    });
    this.record(200);
    return ok;
  }

  /** Writes a chunk of a stream; uWS keeps it even when this returns false (= now backpressured). */
  write(chunk: string): boolean {
    if (this.state !== 'streaming') return false;
    let ok = false;
    this.res.cork(() => {
      ok = this.res.write(chunk);
    });
    return ok;
  }

  /**
   * Called when a backpressured stream can take more. uWS does not drain its own buffer while a
   * writable handler is registered: `handler` MUST write something (which flushes the backlog first).
   */
  onWritable(handler: () => void): void {
    this.res.onWritable(() => {
      if (this.state === 'streaming') handler();
      return true;
    });
  }

  /** Ends a stream. */
  end(last = ''): void {
    if (this.state !== 'streaming') return;
    this.state = 'done';
    this.res.cork(() => {
      this.res.end(last);
    });
  }

  private writeCors(): void {
    if (!this.corsOrigin) return;
    this.res.writeHeader('access-control-allow-origin', this.corsOrigin);
    this.res.writeHeader('access-control-expose-headers', EXPOSED);
    this.res.writeHeader('vary', 'Origin');
  }

  private record(status: number): void {
    const seconds = (performance.now() - this.started) / 1000;
    this.metrics.httpRequest(this.route, status, seconds);
    const r = this.request;
    if (r?.log) {
      logger.info('http', {
        method: r.method.toUpperCase(), url: r.url, route: this.route, status, ms: Math.round(seconds * 10_000) / 10,
        address: r.peer.address, via: r.peer.via === r.peer.address ? undefined : r.peer.via, proto: r.peer.proto, ua: r.userAgent || undefined,
      });
    }
  }
}
