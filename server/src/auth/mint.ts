/**
 * Token minting for the `sluice token` and `sluice keygen` commands (Node side, jose). Browsers and
 * edge workers use the SDK's `mintToken` (WebCrypto only); both produce the same tokens.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { patternError } from '@sluice/client/protocol';
import { SignJWT } from 'jose';
import { ConfigError } from '../config.js';
import type { Action, Caps } from './auth.js';

export interface MintOptions {
  sub: string;
  caps: Caps;
  admin: boolean;
  ttlS: number;
  audience?: string;
  issuer?: string;
  kid?: string;
  /** HS256 secret, or a private key (PEM / JWK text, or a file holding one) for EdDSA / ES256. */
  secret?: string;
  privateKey?: string;
}

const ACTIONS = new Set<Action>(['sub', 'pub', 'history']);

/** `chat.>=sub,pub;news.*=sub` (or one `pattern=actions` per --caps flag) → caps. */
export function parseCaps(specs: readonly string[]): Caps {
  const caps: Record<string, Action[]> = {};
  for (const spec of specs.flatMap((s) => s.split(';')).map((s) => s.trim()).filter(Boolean)) {
    const eq = spec.lastIndexOf('=');
    if (eq <= 0) throw new ConfigError(`caps must look like 'chat.>=sub,pub', got "${spec}"`);
    const pattern = spec.slice(0, eq).trim();
    const bad = patternError(pattern, { allowReserved: true });
    if (bad) throw new ConfigError(`caps pattern "${pattern}": ${bad}`);
    const actions = spec.slice(eq + 1).split(',').map((a) => a.trim()).filter(Boolean);
    for (const a of actions) if (!ACTIONS.has(a as Action)) throw new ConfigError(`caps action "${a}" is not one of sub, pub, history`);
    caps[pattern] = [...new Set([...(caps[pattern] ?? []), ...(actions as Action[])])];
  }
  return caps;
}

function privateKeyOf(value: string): { key: KeyObject; alg: 'EdDSA' | 'ES256' } {
  let text = value.trim();
  if (!text.startsWith('-----BEGIN') && !text.startsWith('{')) {
    if (!existsSync(text)) throw new ConfigError(`key: "${text.slice(0, 80)}" is neither a PEM/JWK nor a file`);
    text = readFileSync(text, 'utf8').trim();
  }
  let key: KeyObject;
  try {
    key = text.startsWith('{') ? createPrivateKey({ key: JSON.parse(text) as import('node:crypto').JsonWebKey, format: 'jwk' }) : createPrivateKey(text);
  } catch (err) {
    throw new ConfigError(`key: cannot read a private key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType === 'ed25519') return { key, alg: 'EdDSA' };
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return { key, alg: 'ES256' };
  throw new ConfigError(`key: ${key.asymmetricKeyType ?? 'unknown'} keys are not supported (use Ed25519 or P-256)`);
}

export async function mint(o: MintOptions): Promise<string> {
  if (!o.sub) throw new ConfigError('--sub is required');
  let key: KeyObject | Uint8Array;
  let alg: 'HS256' | 'EdDSA' | 'ES256';
  if (o.privateKey) ({ key, alg } = privateKeyOf(o.privateKey));
  else if (o.secret) { key = new TextEncoder().encode(o.secret); alg = 'HS256'; }
  else throw new ConfigError('no signing key: set SLUICE_AUTH_SECRET, or pass --secret or --key <private key file>');
  const claims: Record<string, unknown> = { caps: o.caps };
  if (o.admin) claims.admin = true;
  const jwt = new SignJWT(claims)
    .setProtectedHeader(o.kid ? { alg, typ: 'JWT', kid: o.kid } : { alg, typ: 'JWT' })
    .setSubject(o.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + o.ttlS);
  if (o.audience) jwt.setAudience(o.audience);
  if (o.issuer) jwt.setIssuer(o.issuer);
  return jwt.sign(key);
}

/** A new key pair: the private key (PKCS8 PEM) for whoever mints tokens, the public key (SPKI PEM) for the gateway. */
export function keygen(alg: string): { privateKey: string; publicKey: string } {
  const pair = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : alg === 'EdDSA'
      ? generateKeyPairSync('ed25519')
      : undefined;
  if (!pair) throw new ConfigError(`--alg must be EdDSA or ES256, got "${alg}"`);
  return {
    privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}
