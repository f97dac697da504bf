/**
 * @sluice/client/protocol — the wire protocol v1, shared by the gateway and the SDK.
 * Everything that builds or reads a frame lives behind this entry point.
 */
export * from './frames.js';
export * from './codes.js';
export * from './limits.js';
export * from './topics.js';
export type * as Admin from './admin.js';
export {
  FrameError,
  encode,
  encodeValue,
  decodeValue,
  decodeClientFrame,
  decodeServerFrame,
  checkHeaders,
  payloadError,
  encodeEntry,
  decodeEntry,
  entryTs,
  splitEntry,
  encodeMsg,
  encodeMsgs,
  encodeDelivery,
} from './codec.js';
export { encodeStr, utf8Length, skipValue, MsgpackError } from './msgpack.js';
