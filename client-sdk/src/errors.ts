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
 * was asked of it (consumer groups need protocol 1.2). Connection failures (ConnectionError): `network`
 * (refused, reset, DNS, or nothing said), `not-found` (the upgrade was answered 404: a wrong path),
 * `timeout` (no WELCOME in time, heartbeat lost), `disconnected` (the gateway closed the socket).
 * `timeout` also rejects a publish whose `timeout` ran out; `suspended` rejects publishes when the
 * client gives up waiting for a connection.
 */
export type ClientErrorCode =
  | 'closed'
  | 'unsupported'
  | 'queue-full'
  | 'network'
  | 'handler'
  | 'protocol-error'
  | 'timeout'
  | 'suspended'
  | 'disconnected'
  | 'not-found'
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

/**
 * Why a connection attempt failed or a connection ended: the close code and reason, the HTTP status
 * when the upgrade was answered with one (and the runtime says so: `ws` does, browsers never do), and
 * in `cause` the runtime's own error (e.g. `ws`'s `connect ECONNREFUSED 127.0.0.1:9400`) when it
 * exposes one. Carried by `state` events as `error`.
 */
export class ConnectionError extends SluiceError {
  override name = 'ConnectionError';
  constructor(code: string, message: string, readonly closeCode: number, readonly status?: number, cause?: unknown, retryable = true) {
    super(code, message, { cause, retryable });
  }
}

/**
 * A publish that was not acknowledged within its `timeout`. It may still have been stored (the
 * ACK may be what was lost): publishing again with the same `key` is safe, a duplicate is answered
 * with the original offset.
 */
export class TimeoutError extends SluiceError {
  override name = 'TimeoutError';
  constructor(message: string, readonly key: string) {
    super('timeout', message, { retryable: true });
  }
}

/**
 * The client could not connect for `suspendAfterMs` and gave up on what was waiting (state
 * `suspended`): publishes reject with this, and new ones at once until it connects again. `cause`:
 * the last connection failure. A publish that was sent may have been stored: retry with `key`.
 */
export class SuspendedError extends SluiceError {
  override name = 'SuspendedError';
  constructor(message: string, cause?: unknown, readonly key?: string) {
    super('suspended', message, { cause, retryable: true });
  }
}

export function fromErrorFrame(frame: { id: number; code: string; message: string }): ServerError {
  return new ServerError(frame.code, frame.message || frame.code, frame.id);
}
