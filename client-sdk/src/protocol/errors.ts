/**
 * The protocol module's one error class: a frame (or value) that cannot be accepted.
 */

/**
 * A frame that cannot be accepted. `fatal` means it could not be parsed at all (the gateway then
 * closes the socket with 1007); otherwise the connection stays usable. Either way the gateway
 * answers ERROR `[11, id, code, message, re]`: `id` is the request's reqId or subId and `re` the
 * type of the frame, each 0 when it could not be read.
 */
export class FrameError extends Error {
  override name = 'FrameError';
  constructor(
    readonly code: 'bad-frame' | 'too-large',
    message: string,
    readonly id = 0,
    readonly fatal = false,
    readonly re = 0,
  ) {
    super(message);
  }
}
