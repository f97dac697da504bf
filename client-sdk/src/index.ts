/** @sluice/client — the SDK. (The client itself lands with the SDK issue; the protocol is at ./protocol.) */
export * as protocol from './protocol/index.js';
