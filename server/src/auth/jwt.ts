/**
 * JWT authentication (jose). A token is a JWS in compact form signed with one of:
 * - HS256 and the gateway's shared secret (`SLUICE_AUTH_SECRET`);
 * - RS256 (RSA ≥ 2048 bits; what Auth0, Cognito and Firebase issue), ES256 (P-256), ES384 (P-384)
 *   or EdDSA (Ed25519) and a private key whose public half the gateway holds
 *   (`SLUICE_AUTH_PUBLIC_KEY`: PEM, JWK or JWK Set), so a token issuer never holds a secret the
 *   gateway could be impersonated with;
 * - the same asymmetric algorithms with the keys an identity provider publishes as a JWK Set at a
 *   URL (`SLUICE_AUTH_JWKS_URL`). Why jose's remote JWK Set rather than our own fetch: it already
 *   selects keys by `kid` and algorithm, caches the set (10 minutes here), refetches it when a token
 *   names a `kid` it lacks — at most once per cooldown (`--auth-jwks-cooldown`, 30 s), so a flood of
 *   forged `kid`s costs the provider one request per cooldown — and shares one fetch among concurrent
 *   verifications. On top of it, the last set fetched keeps serving when a refetch fails (the
 *   provider is down), so an outage of the provider does not lock out holders of valid tokens.
 *
 * Claims: `sub` (client id, required), `exp` (required), `caps` (`{"<pattern>": ["sub","pub","history"]}`),
 * `admin: true` (the admin API and every capability), and `aud` / `iss` when configured.
 *
 * Rules:
 * - The algorithm is chosen by the key, never by the token: HS256 is verified only with the secret,
 *   the asymmetric ones only with a public key (configured or fetched), and any other `alg`
 *   (including `none`) is refused. A token
 *   "signed" with the public key's text as an HMAC secret therefore fails (algorithm confusion).
 * - Every failure is an AuthError `unauthorized` with a message that names the reason but never
 *   echoes the token.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { patternError } from '@sluice/client/protocol';
import { CAPABILITIES } from '@sluice/client/token';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey, type JWSAlgorithm } from 'jose';
import { ConfigError, type AuthConfig } from '../config.js';
import { logger } from '../logger.js';
import { AuthError, capsAllow, type Action, type Authenticator, type Caps, type Principal } from './auth.js';

const MAX_SUB_CHARS = 256;
/** Verified tokens remembered (until their expiry), so a polling client is not re-verified each time. */
const CACHE_SIZE = 4096;

interface PublicKeys {
  algorithms: JWSAlgorithm[];
  resolve: JWTVerifyGetKey;
}

/** Algorithms a JWK Set fetched from a URL may use: asymmetric only (never HS256: algorithm confusion). */
export const REMOTE_ALGORITHMS: JWSAlgorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'];
/** How long a fetched JWK Set is used before it is fetched again (ms). */
const JWKS_MAX_AGE_MS = 10 * 60_000;
/** How long a JWK Set fetch may take (ms). */
const JWKS_TIMEOUT_MS = 5_000;

export class JwtAuthenticator implements Authenticator {
  readonly mode = 'jwt';
  /** Algorithms accepted, for logs and the admin API. */
  readonly algorithms: JWSAlgorithm[];
  private readonly secret: Uint8Array | undefined;
  private readonly keys: PublicKeys | undefined;
  private readonly remote: RemoteKeys | undefined;
  private readonly cache = new Map<string, Principal>();

  constructor(private readonly config: AuthConfig) {
    if (!config.secret && !config.publicKey && !config.jwksUrl) throw new ConfigError('JWT authentication needs a secret, a public key or a JWKS URL');
    this.secret = config.secret ? new TextEncoder().encode(config.secret) : undefined;
    this.keys = config.publicKey ? loadPublicKeys(config.publicKey) : undefined;
    this.remote = config.jwksUrl ? new RemoteKeys(config.jwksUrl, config.jwksCooldownMs) : undefined;
    const algorithms = new Set<JWSAlgorithm>([...(this.secret ? ['HS256' as const] : []), ...(this.keys?.algorithms ?? [])]);
    if (this.remote) for (const alg of REMOTE_ALGORITHMS) algorithms.add(alg);
    this.algorithms = [...algorithms];
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
    const { secret, keys, remote, config } = this;
    const getKey: JWTVerifyGetKey = async (header, jws) => {
      const alg = header.alg as JWSAlgorithm;
      if (alg === 'HS256' && secret) return secret;
      if (keys && keys.algorithms.includes(alg)) {
        try {
          return await keys.resolve(header, jws);
        } catch (err) {
          // A kid the configured set lacks may be the provider's: ask it, when there is one.
          if (!(remote && err instanceof errors.JWKSNoMatchingKey)) throw err;
        }
      }
      if (remote && REMOTE_ALGORITHMS.includes(alg)) return remote.resolve(header, jws);
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

const RSA_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];

/**
 * Which JWS algorithm a public key verifies: Ed25519 → EdDSA, P-256 → ES256, P-384 → ES384, RSA
 * (at least 2048 bits) → RS256, or the RSA algorithm its JWK names (`alg`).
 */
function algorithmOf(key: KeyObject, jwkAlg?: string): JWSAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1') return 'ES384';
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new ConfigError(`auth public key: an RSA key of ${bits} bits is too short (at least 2048)`);
    return (jwkAlg && RSA_ALGORITHMS.includes(jwkAlg) ? jwkAlg : 'RS256') as JWSAlgorithm;
  }
  throw new ConfigError(`auth public key: ${key.asymmetricKeyType ?? 'unknown'} keys are not supported (use RSA, P-256, P-384 or Ed25519)`);
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
      const alg = algorithmOf(key, jwk.alg);
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
  const alg = algorithmOf(key, parsed ? (parsed as { alg?: string }).alg : undefined);
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

/**
 * An identity provider's JWK Set at a URL (jose's remote set; see the header), which keeps serving
 * the last set it fetched when a refetch fails. Fetched once at startup so the first token does
 * not wait for it; failures are logged at most once per cooldown.
 */
class RemoteKeys {
  private readonly remote: ReturnType<typeof createRemoteJWKSet>;
  /** The last set fetched, as jose holds it, and a local resolver over it. */
  private lastGood: { jwks: JSONWebKeySet; resolve: JWTVerifyGetKey } | undefined;
  private lastLogged = 0;

  constructor(private readonly url: string, private readonly cooldownMs: number) {
    this.remote = createRemoteJWKSet(new URL(url), { cooldownDuration: cooldownMs, cacheMaxAge: JWKS_MAX_AGE_MS, timeoutDuration: JWKS_TIMEOUT_MS });
    this.remote.reload().then(() => this.remember(), (err: unknown) => this.log(err));
  }

  async resolve(...args: Parameters<JWTVerifyGetKey>): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> {
    try {
      const key = await this.remote(...args);
      this.remember();
      return key;
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JOSENotSupported || err instanceof errors.JWKSMultipleMatchingKeys) throw err;
      // The provider did not answer (or answered nonsense): use what it said last, if anything.
      this.log(err);
      if (this.lastGood) return this.lastGood.resolve(...args);
      throw new AuthError('unauthorized', 'the signing keys (JWKS) could not be fetched');
    }
  }

  private remember(): void {
    const jwks = this.remote.jwks();
    if (jwks && jwks !== this.lastGood?.jwks) this.lastGood = { jwks, resolve: createLocalJWKSet(jwks) };
  }

  private log(err: unknown): void {
    const now = Date.now();
    if (now - this.lastLogged < Math.max(this.cooldownMs, 1000)) return;
    this.lastLogged = now;
    logger.warn(`cannot fetch the JWK Set${this.lastGood ? '; using the last one fetched' : ''}`, { url: this.url, err });
  }
}

/** The authenticator a configuration asks for: JWT when a secret, key or JWKS URL is set, else undefined (dev mode). */
export function jwtFromConfig(config: AuthConfig): JwtAuthenticator | undefined {
  return config.secret || config.publicKey || config.jwksUrl ? new JwtAuthenticator(config) : undefined;
}
