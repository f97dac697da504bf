/** @sluice/client — the SDK. (The client itself lands with the SDK issue; the protocol is at ./protocol.) */
export * as protocol from './protocol/index.js';
export { mintToken, importSigningKey, type MintTokenOptions, type SigningKey, type Caps, type Capability, type TokenAlgorithm, type ImportedKey } from './token.js';
