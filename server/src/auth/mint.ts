/**
 * `sluice token` and `sluice keygen`: command-line values turned into tokens and keys.
 *
 * Signing is not done here: a token is made by the SDK's `mintToken` (WebCrypto), the same code
 * edge workers and backends run, so the CLI and the SDK cannot drift apart. This file only reads
 * what the command line gives (caps spec, key file) with node:crypto, and makes key pairs.
 */
import { createPrivateKey, generateKeyPairSync, type JsonWebKey as NodeJwk, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { patternError } from '@sluice/client/protocol';
import { CAPABILITIES, mintToken, type Capability, type Caps } from '@sluice/client/token';
import { ConfigError } from '../config.js';

export interface MintOptions {
  sub: string;
  caps: Caps;
  admin: boolean;
  ttlS: number;
  audience?: string | undefined;
  issuer?: string | undefined;
  kid?: string | undefined;
  /** HS256 secret. */
  secret?: string | undefined;
  /** Private key for EdDSA / ES256: PEM (PKCS8 or SEC1) or JWK text, or a file holding one. Wins over `secret`. */
  privateKey?: string | undefined;
}

/** `chat.>=sub,pub;news.*=sub` (or one `pattern=actions` per --caps flag) → caps. */
export function parseCaps(specs: readonly string[]): Caps {
  const caps: Record<string, Capability[]> = {};
  for (const spec of specs.flatMap((s) => s.split(';')).map((s) => s.trim()).filter(Boolean)) {
    const eq = spec.lastIndexOf('=');
    if (eq <= 0) throw new ConfigError(`caps must look like 'chat.>=sub,pub', got "${spec}"`);
    const pattern = spec.slice(0, eq).trim();
    const bad = patternError(pattern, { allowReserved: true });
    if (bad) throw new ConfigError(`caps pattern "${pattern}": ${bad}`);
    const actions = spec.slice(eq + 1).split(',').map((a) => a.trim()).filter(Boolean);
    for (const a of actions) {
      if (!(CAPABILITIES as readonly string[]).includes(a)) throw new ConfigError(`caps action "${a}" is not one of ${CAPABILITIES.join(', ')}`);
    }
    caps[pattern] = [...new Set([...(caps[pattern] ?? []), ...(actions as Capability[])])];
  }
  return caps;
}

/** The private key the CLI was given, as a JWK `mintToken` signs with (it reads PKCS8 only; this also takes SEC1). */
function signingJwk(value: string): JsonWebKey {
  let text = value.trim();
  if (!text.startsWith('-----BEGIN') && !text.startsWith('{')) {
    if (!existsSync(text)) throw new ConfigError(`key: "${text.slice(0, 80)}" is neither a PEM/JWK nor a file`);
    text = readFileSync(text, 'utf8').trim();
  }
  let key: KeyObject;
  try {
    key = text.startsWith('{') ? createPrivateKey({ key: JSON.parse(text) as NodeJwk, format: 'jwk' }) : createPrivateKey(text);
  } catch (err) {
    throw new ConfigError(`key: cannot read a private key (${(err as Error).message})`);
  }
  const supported = key.asymmetricKeyType === 'ed25519' || (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1');
  if (!supported) throw new ConfigError(`key: ${key.asymmetricKeyType ?? 'unknown'} keys are not supported (use Ed25519 or P-256)`);
  return key.export({ format: 'jwk' }) as JsonWebKey;
}

/** A token for `sluice token`: EdDSA / ES256 with `privateKey`, else HS256 with `secret`. */
export async function mint(o: MintOptions): Promise<string> {
  if (!o.sub) throw new ConfigError('--sub is required');
  // The secret goes in as bytes: as a string, one starting with "-----" would be taken for a PEM.
  const key = o.privateKey ? signingJwk(o.privateKey) : o.secret ? new TextEncoder().encode(o.secret) : undefined;
  if (!key) throw new ConfigError('no signing key: set SLUICE_AUTH_SECRET, or pass --secret or --key <private key file>');
  return mintToken({ key, sub: o.sub, caps: o.caps, admin: o.admin, ttl: o.ttlS, aud: o.audience, iss: o.issuer, kid: o.kid });
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
