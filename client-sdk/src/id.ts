/**
 * Random ids for idempotency keys, from the Web Crypto API (browsers, Node 20, Deno, Workers).
 * Same shape as a nanoid (21 URL-safe characters, 126 random bits) without the dependency.
 */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export function randomKey(length = 21): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let id = '';
  for (let i = 0; i < length; i++) id += ALPHABET[bytes[i]! & 63];
  return id;
}
