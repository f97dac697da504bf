/**
 * `mintToken`: signs a Sluice token (a JWT) with WebCrypto alone — `crypto.subtle`, `TextEncoder`,
 * `btoa` — so it runs unchanged in browsers, Node 20+, Deno, Bun and edge workers. Nothing here may
 * use a Node API.
 *
 * Algorithms, chosen by the key:
 * - HS256: a secret (string, bytes, an `oct` JWK or an HMAC CryptoKey) shared with the gateway.
 * - ES256: a P-256 private key (PKCS8 PEM, EC JWK or ECDSA CryptoKey); the gateway holds the public key.
 * - EdDSA: an Ed25519 private key (PKCS8 PEM, OKP JWK or Ed25519 CryptoKey); the gateway holds the public key.
 * An edge worker should prefer ES256/EdDSA: it then holds a key that can sign tokens but not
 * verify anyone else's, and the gateway holds nothing that could mint them.
 *
 * Claims (see the gateway's README, "Tokens"): `sub`, `exp`, `iat`, `caps`
 * `{"<topic pattern>": ["sub" | "pub" | "history"]}` (`*` one segment, `>` the rest), `admin`.
 */

export type Capability = 'sub' | 'pub' | 'history';

/** Topic pattern → actions allowed on matching topics. */
export type Caps = Record<string, readonly Capability[]>;

export type TokenAlgorithm = 'HS256' | 'ES256' | 'EdDSA';

/**
 * A signing key: an HS256 secret (string or bytes), a PKCS8 PEM private key (string starting with
 * `-----BEGIN PRIVATE KEY-----`), a JWK (`oct`, EC P-256 or OKP Ed25519 with `d`), or a CryptoKey.
 */
export type SigningKey = string | Uint8Array | JsonWebKey | CryptoKey;

export interface MintTokenOptions {
  key: SigningKey;
  /** Client id. */
  sub: string;
  caps?: Caps;
  /** Grants the admin API and every capability. */
  admin?: boolean;
  /** Lifetime in seconds (default 3600). Ignored when `exp` is given. */
  ttl?: number;
  /** Expiry, seconds since the Unix epoch. */
  exp?: number;
  aud?: string;
  iss?: string;
  /** Key id for gateways configured with a JWK Set. */
  kid?: string;
  /** More claims; the ones above take precedence. */
  claims?: Record<string, unknown>;
  /** Clock in ms since the epoch (default `Date.now`). */
  now?: () => number;
  /** WebCrypto (default `globalThis.crypto.subtle`). */
  subtle?: SubtleCrypto;
}

export interface ImportedKey {
  key: CryptoKey;
  alg: TokenAlgorithm;
}

const DEFAULT_TTL_S = 3600;

/** Signs a token. Import the key once with `importSigningKey` when minting many. */
export async function mintToken(opts: MintTokenOptions): Promise<string> {
  const subtle = opts.subtle ?? globalThis.crypto.subtle;
  if (typeof opts.sub !== 'string' || opts.sub.length === 0) throw new TypeError('mintToken: sub must be a non-empty string');
  const ttl = opts.ttl ?? DEFAULT_TTL_S;
  if (opts.exp === undefined && !(Number.isFinite(ttl) && ttl > 0)) throw new TypeError('mintToken: ttl must be a positive number of seconds');
  const { key, alg } = await importSigningKey(opts.key, subtle);

  const iat = Math.floor((opts.now ?? Date.now)() / 1000);
  const payload: Record<string, unknown> = { ...opts.claims, sub: opts.sub, iat, exp: opts.exp ?? iat + Math.ceil(ttl) };
  if (opts.caps) payload.caps = opts.caps;
  if (opts.admin) payload.admin = true;
  if (opts.aud !== undefined) payload.aud = opts.aud;
  if (opts.iss !== undefined) payload.iss = opts.iss;
  const header: Record<string, string> = { alg, typ: 'JWT' };
  if (opts.kid !== undefined) header.kid = opts.kid;

  const input = `${b64urlJson(header)}.${b64urlJson(payload)}`;
  const signature = await subtle.sign(signParams(alg), key, new TextEncoder().encode(input));
  return `${input}.${b64url(new Uint8Array(signature))}`;
}

/** Turns any accepted key form into a CryptoKey that can sign, and the algorithm it signs with. */
export async function importSigningKey(input: SigningKey, subtle: SubtleCrypto = globalThis.crypto.subtle): Promise<ImportedKey> {
  if (isCryptoKey(input)) return { key: input, alg: algorithmOfCryptoKey(input) };
  if (input instanceof Uint8Array) return { key: await hmac(subtle, 'raw', input), alg: 'HS256' };
  if (typeof input === 'string') {
    if (!input.trimStart().startsWith('-----BEGIN')) return { key: await hmac(subtle, 'raw', new TextEncoder().encode(input)), alg: 'HS256' };
    return importPem(subtle, input);
  }
  if (typeof input === 'object' && input !== null) return importJwk(subtle, input);
  throw new TypeError('mintToken: unsupported key');
}

// ---- keys ----------------------------------------------------------------------------------------

function isCryptoKey(k: unknown): k is CryptoKey {
  return typeof CryptoKey !== 'undefined' ? k instanceof CryptoKey
    : typeof k === 'object' && k !== null && 'algorithm' in k && 'usages' in k;
}

function algorithmOfCryptoKey(k: CryptoKey): TokenAlgorithm {
  const a = k.algorithm as { name: string; namedCurve?: string; hash?: { name: string } };
  if (a.name === 'HMAC') return 'HS256';
  if (a.name === 'ECDSA' && a.namedCurve === 'P-256') return 'ES256';
  if (a.name === 'Ed25519') return 'EdDSA';
  throw new TypeError(`mintToken: a ${a.name} key cannot sign Sluice tokens (use HMAC, ECDSA P-256 or Ed25519)`);
}

function hmac(subtle: SubtleCrypto, format: 'raw', data: Uint8Array): Promise<CryptoKey>;
function hmac(subtle: SubtleCrypto, format: 'jwk', data: JsonWebKey): Promise<CryptoKey>;
function hmac(subtle: SubtleCrypto, format: 'raw' | 'jwk', data: Uint8Array | JsonWebKey): Promise<CryptoKey> {
  const alg = { name: 'HMAC', hash: 'SHA-256' };
  return format === 'raw'
    ? subtle.importKey('raw', data as Uint8Array<ArrayBuffer>, alg, false, ['sign'])
    : subtle.importKey('jwk', data as JsonWebKey, alg, false, ['sign']);
}

async function importPem(subtle: SubtleCrypto, pem: string): Promise<ImportedKey> {
  const m = /-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/.exec(pem);
  if (!m || m[1] !== 'PRIVATE KEY') {
    throw new TypeError('mintToken: a PEM key must be a PKCS8 "PRIVATE KEY" (convert with: openssl pkcs8 -topk8 -nocrypt)');
  }
  const der = fromBase64(m[2]!.replace(/\s+/g, ''));
  // PKCS8 names its algorithm inside; try the two we sign with.
  try {
    return { key: await subtle.importKey('pkcs8', der, { name: 'Ed25519' }, false, ['sign']), alg: 'EdDSA' };
  } catch {
    // not an Ed25519 key
  }
  try {
    return { key: await subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']), alg: 'ES256' };
  } catch {
    throw new TypeError('mintToken: the PEM key is neither Ed25519 nor P-256');
  }
}

async function importJwk(subtle: SubtleCrypto, jwk: JsonWebKey): Promise<ImportedKey> {
  // `alg` / `key_ops` of a JWK made elsewhere may not say what WebCrypto expects; the key decides.
  const { alg: _alg, key_ops: _ops, use: _use, ...bare } = jwk;
  if (bare.kty === 'oct') return { key: await hmac(subtle, 'jwk', bare), alg: 'HS256' };
  if (!bare.d) throw new TypeError('mintToken: the JWK is a public key; signing needs the private key (with "d")');
  if (bare.kty === 'EC' && bare.crv === 'P-256') {
    return { key: await subtle.importKey('jwk', bare, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']), alg: 'ES256' };
  }
  if (bare.kty === 'OKP' && bare.crv === 'Ed25519') {
    return { key: await subtle.importKey('jwk', bare, { name: 'Ed25519' }, false, ['sign']), alg: 'EdDSA' };
  }
  throw new TypeError(`mintToken: unsupported JWK (kty ${String(bare.kty)}, crv ${String(bare.crv)}); use oct, EC P-256 or OKP Ed25519`);
}

function signParams(alg: TokenAlgorithm): AlgorithmIdentifier | EcdsaParams {
  switch (alg) {
    case 'HS256': return { name: 'HMAC' };
    case 'ES256': return { name: 'ECDSA', hash: 'SHA-256' }; // WebCrypto signs r||s, exactly the JWS form
    case 'EdDSA': return { name: 'Ed25519' };
  }
}

// ---- base64url -----------------------------------------------------------------------------------

function b64url(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function b64urlJson(value: unknown): string {
  return b64url(new TextEncoder().encode(JSON.stringify(value)));
}

function fromBase64(b64: string): Uint8Array<ArrayBuffer> {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
