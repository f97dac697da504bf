/**
 * Minting an HS256 JWT for the "auth on" Sluice variant, per the token contract in DESIGN.md:
 * `sub`, `exp`, and `caps` mapping topic patterns to actions. Uses node:crypto only.
 */
import { createHmac } from 'node:crypto';

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

export function mintToken(secret: string, claims: Record<string, unknown>): string {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${header}.${body}`).digest('base64url');
  return `${header}.${body}.${sig}`;
}

/** A token allowed to subscribe, publish and read history on every topic, valid for a day. */
export function benchToken(secret: string): string {
  return mintToken(secret, {
    sub: 'sluice-bench',
    exp: Math.floor(Date.now() / 1000) + 24 * 3600,
    caps: { '>': ['sub', 'pub', 'history'] },
  });
}
