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

/**
 * The actions a token grants on a topic pattern: `sub` (subscribe, SSE), `pub` (publish), `history`
 * (pull). The one list: the gateway checks these, `sluice token --caps` accepts these.
 */
export const CAPABILITIES = ['sub', 'pub', 'history', 'consume'] as const;

export type Capability = (typeof CAPABILITIES)[number];

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

/** Per algorithm: how WebCrypto imports its key, and how it signs (ES256: r||s, the JWS form). */
const ALGS: Record<TokenAlgorithm, [EcKeyImportParams | HmacImportParams | Algorithm, EcdsaParams | Algorithm]> = {
  HS256: [{ name: 'HMAC', hash: 'SHA-256' }, { name: 'HMAC' }],
  ES256: [{ name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', hash: 'SHA-256' }],
  EdDSA: [{ name: 'Ed25519' }, { name: 'Ed25519' }],
};

const fail = (why: string): never => { throw new TypeError(`mintToken: ${why}`); };

/** Signs a token. Import the key once with `importSigningKey` when minting many. */
export async function mintToken(opts: MintTokenOptions): Promise<string> {
  const subtle = opts.subtle ?? crypto.subtle;
  if (typeof opts.sub !== 'string' || !opts.sub) fail('sub must be a non-empty string');
  const ttl = opts.ttl ?? DEFAULT_TTL_S;
  if (opts.exp === undefined && !(ttl > 0 && ttl < Infinity)) fail('ttl must be a positive number of seconds');
  const { key, alg } = await importSigningKey(opts.key, subtle);

  const iat = Math.floor((opts.now ?? Date.now)() / 1000);
  const payload: Record<string, unknown> = { ...opts.claims, sub: opts.sub, iat, exp: opts.exp ?? iat + Math.ceil(ttl) };
  if (opts.caps) payload.caps = opts.caps;
  if (opts.admin) payload.admin = true;
  if (opts.aud !== undefined) payload.aud = opts.aud;
  if (opts.iss !== undefined) payload.iss = opts.iss;
  const header: Record<string, string> = { alg, typ: 'JWT' };
  if (opts.kid !== undefined) header.kid = opts.kid;

  const input = `${b64url(utf8(JSON.stringify(header)))}.${b64url(utf8(JSON.stringify(payload)))}`;
  return `${input}.${b64url(new Uint8Array(await subtle.sign(ALGS[alg][1], key, utf8(input))))}`;
}

/**
 * Turns any accepted key form into a CryptoKey that can sign, and the algorithm it signs with.
 * A PKCS8 key names its algorithm inside; we read that OID rather than trying imports, because
 * some runtimes (workerd) import a P-256 key as Ed25519 without complaint and fail only at signing.
 */
export async function importSigningKey(input: SigningKey, subtle: SubtleCrypto = crypto.subtle): Promise<ImportedKey> {
  if (typeof CryptoKey !== 'undefined' && input instanceof CryptoKey) {
    const a = input.algorithm as EcKeyAlgorithm;
    const alg = a.name === 'HMAC' ? 'HS256' : a.name === 'Ed25519' ? 'EdDSA' : a.namedCurve === 'P-256' ? 'ES256' : fail(`a ${a.name} key cannot sign tokens`);
    return { key: input, alg };
  }
  const imp = (format: 'raw' | 'pkcs8' | 'jwk', data: Uint8Array<ArrayBuffer> | JsonWebKey, alg: TokenAlgorithm) =>
    subtle.importKey(format as 'jwk', data as JsonWebKey, ALGS[alg][0], false, ['sign']).then((key) => ({ key, alg }));
  if (input instanceof Uint8Array) return imp('raw', input as Uint8Array<ArrayBuffer>, 'HS256');
  if (typeof input === 'string') {
    if (!input.trimStart().startsWith('-----')) return imp('raw', utf8(input), 'HS256');
    const m = /-----BEGIN PRIVATE KEY-----([^-]*)-----END PRIVATE KEY-----/.exec(input);
    const der = m ? Uint8Array.from(atob(m[1]!.replace(/\s+/g, '')), (c) => c.charCodeAt(0)) : fail('a PEM key must be PKCS8 "PRIVATE KEY" (openssl pkcs8 -topk8 -nocrypt)');
    return imp('pkcs8', der as Uint8Array<ArrayBuffer>, pkcs8Algorithm(der as Uint8Array));
  }
  // A JWK's own alg / key_ops / use may not say what WebCrypto expects: the key type decides.
  const { alg: _a, key_ops: _o, use: _u, ...jwk } = input as JsonWebKey;
  if (jwk.kty === 'oct') return imp('jwk', jwk, 'HS256');
  if (!jwk.d) fail('signing needs a private key (a JWK with "d")');
  return imp('jwk', jwk, jwk.crv === 'P-256' ? 'ES256' : jwk.crv === 'Ed25519' ? 'EdDSA' : fail(`unsupported JWK curve ${String(jwk.crv)}`));
}

// DER-encoded OIDs in a PKCS8 PrivateKeyInfo's AlgorithmIdentifier.
const OID_ED25519 = [0x06, 0x03, 0x2b, 0x65, 0x70]; // 1.3.101.112
const OID_EC_PUBLIC_KEY = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]; // 1.2.840.10045.2.1
const OID_P256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]; // 1.2.840.10045.3.1.7

/** The signing algorithm a PKCS8 key is for, from the OIDs at its start. */
export function pkcs8Algorithm(der: Uint8Array): TokenAlgorithm {
  const head = der.subarray(0, 48);
  const has = (oid: number[]) => {
    outer: for (let i = 0; i + oid.length <= head.length; i++) {
      for (let j = 0; j < oid.length; j++) if (head[i + j] !== oid[j]) continue outer;
      return true;
    }
    return false;
  };
  if (has(OID_ED25519)) return 'EdDSA';
  if (has(OID_EC_PUBLIC_KEY)) return has(OID_P256) ? 'ES256' : fail('an EC key must be on the P-256 curve');
  return fail('the PEM key is neither Ed25519 nor P-256');
}

function utf8(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s) as Uint8Array<ArrayBuffer>;
}

function b64url(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
