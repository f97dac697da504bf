/**
 * HTTP routes of the gateway and the helpers every route uses: JSON errors in the shape
 * `{"error": {"code", "message"}}` with the status the code table gives.
 */
import { ErrorCodes, type ErrorCode } from '@sluice/client/protocol';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Metrics } from '../metrics.js';

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden',
  404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict', 413: 'Payload Too Large',
  415: 'Unsupported Media Type', 422: 'Unprocessable Content', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 503: 'Service Unavailable', 507: 'Insufficient Storage',
};

export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? ''}`.trimEnd();
}

export function sendJson(res: HttpResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.cork(() => {
    res.writeStatus(statusLine(status)).writeHeader('content-type', 'application/json');
    for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
    res.end(JSON.stringify(body));
  });
}

export function sendError(
  res: HttpResponse,
  metrics: Metrics,
  code: ErrorCode,
  message: string,
  status: number = ErrorCodes[code].status,
  headers: Record<string, string> = {},
): void {
  metrics.error(code);
  sendJson(res, status, { error: { code, message } }, headers);
}

/** Why the gateway should not get traffic now (draining, store not writable), or undefined. */
export type Readiness = () => string | undefined;

export function mountBasics(app: TemplatedApp, metrics: Metrics, healthy: () => boolean, notReady: Readiness): void {
  app.get('/healthz', (res) => {
    if (healthy()) sendJson(res, 200, { status: 'ok' });
    else sendJson(res, 503, { status: 'draining' });
  });
  app.get('/readyz', (res) => {
    const reason = notReady();
    if (reason === undefined) sendJson(res, 200, { status: 'ready' });
    else sendJson(res, 503, { status: 'not-ready', reason });
  });
  app.get('/metrics', (res) => {
    const body = metrics.render();
    res.cork(() => {
      res.writeStatus('200 OK').writeHeader('content-type', 'text/plain; version=0.0.4').end(body);
    });
  });
}

/** Registered last: everything no route matched. */
export function mountNotFound(app: TemplatedApp, metrics: Metrics): void {
  app.any('/*', (res, req) => {
    sendError(res, metrics, 'bad-request', `no route for ${req.getMethod().toUpperCase()} ${req.getUrl()}`, 404);
  });
}
