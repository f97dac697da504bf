/**
 * Typed errors. Every failure the SDK reports is a SluiceError with a stable `code`: the
 * protocol's codes (codes.ts) for what the gateway answered, and a few SDK-side ones.
 * Gateway text is parsed into these classes in one place (`fromErrorFrame`).
 */
import { isRetryable } from './protocol/codes.js';

/** Codes the SDK itself produces, besides the protocol's. */
export type ClientErrorCode = 'closed' | 'queue-full' | 'timeout' | 'network' | 'disconnected' | 'protocol-error';

export class SluiceError extends Error {
  override name = 'SluiceError';
  /** True when the same operation may succeed if tried again later. */
  readonly retryable: boolean;
  constructor(
    /** A protocol error code (`forbidden`, `too-large`, ...) or a ClientErrorCode. */
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
