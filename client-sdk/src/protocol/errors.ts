/**
 * The protocol module's one error class: a frame (or value) that cannot be accepted.
 */

/**
 * A frame that cannot be accepted. `fatal` means it could not be parsed at all (the gateway then
 * closes the socket with 1007); otherwise the connection stays usable and ERROR `code` is sent for
 * request `id` (0 when unknown).
 */
export class FrameError extends Error {
  override name = 'FrameError';
  constructor(
    readonly code: 'bad-frame' | 'too-large',
    message: string,
    readonly id = 0,
    readonly fatal = false,
  ) {
    super(message);
  }
}
