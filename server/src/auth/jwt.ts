/**
 * JWT authentication (jose). A token is a JWS in compact form signed with one of:
 * - HS256 and the gateway's shared secret (`SLUICE_AUTH_SECRET`);
 * - EdDSA (Ed25519) or ES256 (P-256) and a private key whose public half the gateway holds
 *   (`SLUICE_AUTH_PUBLIC_KEY`: PEM, JWK or JWK Set), so a token issuer never holds a secret the
 *   gateway could be impersonated with.
 *
 * Claims: `sub` (client id, required), `exp` (required), `caps` (`{"<pattern>": ["sub","pub","history"]}`),
 * `admin: true` (the admin API and every capability), and `aud` / `iss` when configured.
 *
 * Rules:
 * - The algorithm is chosen by the key, never by the token: HS256 is verified only with the secret,
 *   EdDSA/ES256 only with the public key, and any other `alg` (including `none`) is refused. A token
 *   "signed" with the public key's text as an HMAC secret therefore fails (algorithm confusion).
 * - Every failure is an AuthError `unauthorized` with a message that names the reason but never
 *   echoes the token.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { patternError } from '@sluice/client/protocol';
import { CAPABILITIES } from '@sluice/client/token';
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey, type JWSAlgorithm } from 'jose';
import { ConfigError, type AuthConfig } from '../config.js';
import { AuthError, capsAllow, type Action, type Authenticator, type Caps, type Principal } from './auth.js';

const MAX_SUB_CHARS = 256;
/** Verified tokens remembered (until their expiry), so a polling client is not re-verified each time. */
const CACHE_SIZE = 4096;

interface PublicKeys {
  algorithms: JWSAlgorithm[];
  resolve: JWTVerifyGetKey;
}

export class JwtAuthenticator implements Authenticator {
  readonly mode = 'jwt';
  /** Algorithms accepted, for logs and the admin API. */
  readonly algorithms: JWSAlgorithm[];
  private readonly secret: Uint8Array | undefined;
  private readonly keys: PublicKeys | undefined;
  private readonly cache = new Map<string, Principal>();

  constructor(private readonly config: AuthConfig) {
    if (!config.secret && !config.publicKey) throw new ConfigError('JWT authentication needs a secret or a public key');
    this.secret = config.secret ? new TextEncoder().encode(config.secret) : undefined;
    this.keys = config.publicKey ? loadPublicKeys(config.publicKey) : undefined;
    this.algorithms = [...(this.secret ? ['HS256' as const] : []), ...(this.keys?.algorithms ?? [])];
  }

  async authenticate(token: string | undefined): Promise<Principal> {
    if (!token) throw new AuthError('unauthorized', 'a token is required');
    const cached = this.cache.get(token);
    if (cached) {
      if (cached.expiresAt! > Date.now()) return cached;
      this.cache.delete(token);
    }
    const principal = await this.verify(token);
    if (this.cache.size >= CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(token, principal);
    return principal;
  }

  private async verify(token: string): Promise<Principal> {
    const { secret, keys, config } = this;
    const getKey: JWTVerifyGetKey = (header, jws) => {
      if (header.alg === 'HS256' && secret) return secret;
      if (keys && keys.algorithms.includes(header.alg as JWSAlgorithm)) return keys.resolve(header, jws);
      throw new AuthError('unauthorized', `token algorithm ${String(header.alg)} is not accepted`);
    };
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        algorithms: this.algorithms,
        clockTolerance: config.clockSkewS,
        requiredClaims: ['exp', 'sub'],
        ...(config.audience ? { audience: config.audience } : {}),
        ...(config.issuer ? { issuer: config.issuer } : {}),
      }));
    } catch (err) {
      throw new AuthError('unauthorized', reason(err));
    }
    return principalOf(payload, config.clockSkewS);
  }
}

function reason(err: unknown): string {
  if (err instanceof AuthError) return err.message;
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' && err.reason === 'check_failed') return 'token not valid yet (nbf)';
    return `token claim ${err.claim} ${err.reason === 'missing' ? 'missing' : 'invalid'}`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'token algorithm is not accepted';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature invalid';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key matches the token';
  return 'malformed token';
}

/** Turns verified claims into a principal; a claim of the wrong shape refuses the token. */
export function principalOf(claims: Record<string, unknown>, clockSkewS = 0): Principal {
  const { sub, exp, caps: rawCaps, admin: rawAdmin } = claims;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUB_CHARS) {
    throw new AuthError('unauthorized', `token sub must be a string of 1-${MAX_SUB_CHARS} characters`);
  }
  if (typeof exp !== 'number') throw new AuthError('unauthorized', 'token exp must be a number');
  const admin = rawAdmin === true;
  const caps = parseCaps(rawCaps);
  return {
    id: sub,
    admin,
    expiresAt: exp * 1000 + clockSkewS * 1000,
    can: admin ? () => true : (action, topic) => capsAllow(caps, action, topic),
  };
}

/** `caps`: an object of topic pattern → list of actions. Unknown actions are ignored (forward compatible). */
export function parseCaps(raw: unknown): Caps {
  const caps = Object.create(null) as Record<string, Action[]>;
  if (raw === undefined || raw === null) return caps;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new AuthError('unauthorized', 'token caps must be an object');
  for (const [pattern, actions] of Object.entries(raw)) {
    const bad = patternError(pattern, { allowReserved: true });
    if (bad) throw new AuthError('unauthorized', `token caps pattern "${pattern.slice(0, 64)}": ${bad}`);
    if (!Array.isArray(actions) || !actions.every((a) => typeof a === 'string')) {
      throw new AuthError('unauthorized', `token caps for "${pattern.slice(0, 64)}" must be a list of actions`);
    }
    caps[pattern] = CAPABILITIES.filter((a) => actions.includes(a));
  }
  return caps;
}

// ---- keys ----------------------------------------------------------------------------------------

/** The configured value is the key itself (PEM / JSON) or the path of a file holding it. */
function keyText(value: string): string {
  const v = value.trim();
  if (v.startsWith('-----BEGIN') || v.startsWith('{')) return v;
  if (!existsSync(v)) throw new ConfigError(`auth public key: "${v.slice(0, 80)}" is neither a PEM/JWK nor a file`);
  return readFileSync(v, 'utf8').trim();
}

/** Which JWS algorithm a public key verifies. */
function algorithmOf(key: KeyObject): JWSAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new ConfigError(`auth public key: ${key.asymmetricKeyType ?? 'unknown'} keys are not supported (use Ed25519 or P-256)`);
}

function loadPublicKeys(value: string): PublicKeys {
  const text = keyText(value);
  let parsed: unknown;
  if (text.startsWith('{')) {
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ConfigError('auth public key: invalid JSON');
    }
  }
  if (parsed && typeof parsed === 'object' && Array.isArray((parsed as JSONWebKeySet).keys)) {
    // A JWK Set: each key picks its algorithm; `kid` selects among several (key rotation).
    const set = parsed as JSONWebKeySet;
    const algorithms = new Set<JWSAlgorithm>();
    for (const jwk of set.keys) {
      const key = importPublic({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
      const alg = algorithmOf(key);
      if (jwk.alg && jwk.alg !== alg) throw new ConfigError(`auth public key: JWK alg ${jwk.alg} does not fit its key (${alg})`);
      jwk.alg = alg;
      algorithms.add(alg);
    }
    if (algorithms.size === 0) throw new ConfigError('auth public key: the JWK Set is empty');
    return { algorithms: [...algorithms], resolve: createLocalJWKSet(set) };
  }
  const key = parsed
    ? importPublic({ key: parsed as import('node:crypto').JsonWebKey, format: 'jwk' })
    : importPublic(text);
  const alg = algorithmOf(key);
  return { algorithms: [alg], resolve: () => key };
}

/** A public key (a private key given by mistake yields its public half, never itself). */
function importPublic(input: Parameters<typeof createPublicKey>[0]): KeyObject {
  try {
    return createPublicKey(input);
  } catch (err) {
    throw new ConfigError(`auth public key: cannot read it (${(err as Error).message})`);
  }
}

/** The authenticator a configuration asks for: JWT when a secret or key is set, else undefined (dev mode). */
export function jwtFromConfig(config: AuthConfig): JwtAuthenticator | undefined {
  return config.secret || config.publicKey ? new JwtAuthenticator(config) : undefined;
}
