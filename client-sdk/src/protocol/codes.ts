/**
 * Error codes and WebSocket close codes, with the policy each one carries.
 *
 * The codes are stable strings (DESIGN.md); the table is the one place that says whether a failure
 * is worth retrying and which HTTP status carries it. Both the gateway and the SDK read it.
 */

export interface ErrorCodeInfo {
  /** HTTP status used when this code answers an HTTP request. */
  status: number;
  /** True when the same request may succeed later unchanged (back off, then retry). */
  retryable: boolean;
}

/** What each code means is in PROTOCOL.md ("Error codes"); the table keeps only what code acts on. */
export const ErrorCodes = {
  'bad-frame': { status: 400, retryable: false },
  'bad-request': { status: 400, retryable: false },
  unauthorized: { status: 401, retryable: false },
  forbidden: { status: 403, retryable: false },
  'invalid-topic': { status: 400, retryable: false },
  'not-subscribed': { status: 404, retryable: false },
  'already-subscribed': { status: 409, retryable: false },
  'too-large': { status: 413, retryable: false },
  'rate-limited': { status: 429, retryable: true },
  'limit-exceeded': { status: 429, retryable: false },
  internal: { status: 500, retryable: true },
  'insufficient-storage': { status: 507, retryable: true },
  unavailable: { status: 503, retryable: true },
  'not-leased': { status: 409, retryable: false },
  'invalid-group': { status: 400, retryable: false },
  'shutting-down': { status: 503, retryable: true },
  /** Since 1.4: a delayed publish due later than the gateway's maximum delay. */
  'delay-too-long': { status: 400, retryable: false },
  /** Since 1.4: a publish `at` a time already past. */
  'schedule-in-past': { status: 400, retryable: false },
  /** Since 1.4: cancel of a schedule id the gateway does not hold (never, another topic, or forgotten). */
  'unknown-schedule': { status: 404, retryable: false },
  /** Since 1.4: commit / abort of a transaction id the gateway does not hold. */
  'unknown-transaction': { status: 404, retryable: false },
  /** Since 1.4: commit of a transaction that was aborted (by its producer, or by check-back). */
  'transaction-aborted': { status: 409, retryable: false },
  /** Since 1.4: cancel or abort of a held message that is already appended (or being appended). */
  'already-appended': { status: 409, retryable: false },
  /** Since 1.4: a check-back URL given at prepare that the gateway's allow-list does not cover. */
  'check-url-not-allowed': { status: 403, retryable: false },
  'not-found': { status: 404, retryable: false },
  /** Since 1.4, HTTP only: a known path asked with a method it does not serve (405, with `Allow`). */
  'method-not-allowed': { status: 405, retryable: false },
  'idempotency-key-reused': { status: 422, retryable: false },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ErrorCodes;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ErrorCodes, code);
}

export function isRetryable(code: string): boolean {
  return isErrorCode(code) && ErrorCodes[code].retryable;
}

/**
 * WebSocket close codes. Ranges decide what a client does next:
 * - 1000: closed on purpose by the client, do nothing;
 * - 4000–4099: terminal, do not reconnect;
 * - 4100–4199: reconnect with a fresh token;
 * - everything else (1001, 1006, 1011, 42xx, ...): reconnect with backoff.
 * 1007/1008/1009 mean the client sent something the gateway could not accept; the SDK treats them
 * as reconnectable (a bug must not leave a page dead) but reports the reason. 4290–4299 are never
 * sent by a gateway: a client closes its own socket with them (browsers allow a client only 1000
 * and 3000–4999), so the reason shows up in its state changes.
 */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  BAD_FRAME: 1007,
  POLICY: 1008,
  TOO_LARGE: 1009,
  INTERNAL: 1011,
  /** HELLO announced a protocol version the gateway does not speak (another major). Since 1.1. */
  UNSUPPORTED_PROTOCOL: 4002,
  FORBIDDEN: 4003,
  UNAUTHORIZED: 4101,
  SLOW_CONSUMER: 4201,
  KICKED: 4202,
  SHUTTING_DOWN: 4203,
  /** No HELLO within the gateway's deadline after the upgrade (`--hello-timeout`). */
  HELLO_TIMEOUT: 4204,
  /** Client-side: no WELCOME within the connect timeout. */
  CONNECT_TIMEOUT: 4290,
  /** Client-side: no frame within the heartbeat grace after a PING. */
  HEARTBEAT_TIMEOUT: 4291,
  /** Client-side: the gateway sent a malformed frame (or broke the protocol); reconnect with backoff. */
  PROTOCOL_ERROR: 4292,
  /** Client-side: getToken failed; retried with a fresh call. */
  TOKEN_FAILED: 4190,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

export type ClosePolicy = 'stop' | 'terminal' | 'refresh-token' | 'reconnect';

export function closePolicy(code: number): ClosePolicy {
  if (code === CloseCode.NORMAL) return 'stop';
  if (code >= 4000 && code < 4100) return 'terminal';
  if (code >= 4100 && code < 4200) return 'refresh-token';
  return 'reconnect';
}
