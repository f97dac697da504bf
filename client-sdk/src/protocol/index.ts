/**
 * @sluice/client/protocol — the wire protocol v1, shared by the gateway and the SDK.
 * Everything that builds or reads a frame lives behind this entry point.
 */
export * from './frames.js';
export * from './codes.js';
export * from './limits.js';
export * from './topics.js';
export type * as Admin from './admin.js';
export { FrameError } from './errors.js';
export { encode } from './encode.js';
export { encodeValue, decodeValue, checkHeaders, payloadError, checkMessage, MessageFault } from './value.js';
export { decodeClientFrame } from './decode-client.js';
export { decodeServerFrame } from './decode-server.js';
export { encodeEntry, entrySize, writeEntry, decodeEntry, entryTs, entryMeta, splitEntry, encodeMsg, encodeMsgs, encodeDelivery, encodeLease, encodeAck } from './entry.js';
export { encodeStr, utf8Length, skipValue, MsgpackError } from './msgpack.js';
