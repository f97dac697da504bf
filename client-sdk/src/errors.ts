/**
 * Typed errors. Every failure the SDK reports is a SluiceError with a stable `code`: the
 * protocol's codes (codes.ts) for what the gateway answered, and a few SDK-side ones.
 * Gateway text is parsed into these classes in one place (`fromErrorFrame`).
 */
import { isRetryable, type ErrorCode } from './protocol/codes.js';

/**
 * Every code of an error the SDK raises itself (a ServerError carries the gateway's code instead).
 * Its own: `closed` (closed by `close()` or for good by the gateway), `queue-full`, `network` (a
 * request failed below HTTP), `handler` (a message or consumer handler threw). Protocol codes it
 * applies locally: `bad-request` (misuse: no WebSocket in the runtime, iterating a subscription
 * that has a handler, a bad nack delay), `invalid-topic`, `too-large` and `already-subscribed`
 * (checked before sending), `bad-frame` (an empty key or ordering key),
 * `unauthorized` (getToken failed, or a token was refused and there is no getToken), `forbidden`
 * (close 4003). And `protocol-error`: the gateway sent a frame that breaks the protocol (the
 * connection is closed with 4292 and reconnects); `unsupported`: the gateway does not speak what
 * was asked of it (consumer groups need protocol 1.2).
 */
export type ClientErrorCode =
  | 'closed'
  | 'unsupported'
  | 'queue-full'
  | 'network'
  | 'handler'
  | 'protocol-error'
  | Extract<ErrorCode, 'bad-request' | 'invalid-topic' | 'too-large' | 'already-subscribed' | 'unauthorized' | 'forbidden' | 'bad-frame'>;

export class SluiceError extends Error {
  override name = 'SluiceError';
  /** True when the same operation may succeed if tried again later. */
  readonly retryable: boolean;
  constructor(
    /** A ClientErrorCode when the SDK raised it; on a ServerError, the gateway's code (an ErrorCode, or one newer than this SDK). */
    readonly code: string,
    message: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options.retryable ?? isRetryable(code);
  }
}

/** The gateway answered ERROR (WebSocket) or an error body (HTTP). */
export class ServerError extends SluiceError {
  override name = 'ServerError';
  constructor(
    code: string,
    message: string,
    /** The request or subscription id it answered (WebSocket), or the HTTP status. */
    readonly id: number,
    readonly status?: number,
  ) {
    super(code, message);
  }
}

/** The client was closed (by `close()` or a terminal close code) before the operation completed. */
export class ClosedError extends SluiceError {
  override name = 'ClosedError';
  constructor(message = 'the client is closed', cause?: unknown) {
    super('closed', message, { cause, retryable: false });
  }
}

/** A bounded queue is full: the publish was not accepted. */
export class QueueFullError extends SluiceError {
  override name = 'QueueFullError';
  constructor(readonly limit: number) {
    super('queue-full', `publish queue is full (${limit} publishes waiting for the gateway)`, { retryable: true });
  }
}

/** An HTTP request failed below the HTTP layer (DNS, refused, reset). */
export class NetworkError extends SluiceError {
  override name = 'NetworkError';
  constructor(message: string, cause?: unknown) {
    super('network', message, { cause, retryable: true });
  }
}

export function fromErrorFrame(frame: { id: number; code: string; message: string }): ServerError {
  return new ServerError(frame.code, frame.message || frame.code, frame.id);
}
