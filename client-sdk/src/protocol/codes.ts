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
  description: string;
}

export const ErrorCodes = {
  'bad-frame': { status: 400, retryable: false, description: 'The frame is malformed, of an unknown type, or out of order.' },
  'bad-request': { status: 400, retryable: false, description: 'HTTP: malformed body, query or route.' },
  unauthorized: { status: 401, retryable: false, description: 'Missing, invalid or expired token. Get a fresh token, then retry.' },
  forbidden: { status: 403, retryable: false, description: 'The token does not grant this action on this topic.' },
  'invalid-topic': { status: 400, retryable: false, description: 'The topic name breaks the naming rules or is reserved.' },
  'not-subscribed': { status: 404, retryable: false, description: 'No subscription with this id on this connection.' },
  'already-subscribed': { status: 409, retryable: false, description: 'This connection already has a subscription with this id or topic.' },
  'too-large': { status: 413, retryable: false, description: 'Frame, body, payload or key over its size limit.' },
  'rate-limited': { status: 429, retryable: true, description: 'Too many requests; retry after a pause.' },
  'limit-exceeded': { status: 429, retryable: false, description: 'A per-connection limit (subscriptions, in-flight publishes) is reached.' },
  internal: { status: 500, retryable: true, description: 'The gateway failed; nothing was acknowledged.' },
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
 * as reconnectable (a bug must not leave a page dead) but reports the reason.
 */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  BAD_FRAME: 1007,
  POLICY: 1008,
  TOO_LARGE: 1009,
  INTERNAL: 1011,
  FORBIDDEN: 4003,
  UNAUTHORIZED: 4101,
  SLOW_CONSUMER: 4201,
  KICKED: 4202,
  SHUTTING_DOWN: 4203,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

export type ClosePolicy = 'stop' | 'terminal' | 'refresh-token' | 'reconnect';

export function closePolicy(code: number): ClosePolicy {
  if (code === CloseCode.NORMAL) return 'stop';
  if (code >= 4000 && code < 4100) return 'terminal';
  if (code >= 4100 && code < 4200) return 'refresh-token';
  return 'reconnect';
}
