/**
 * Gateway configuration: defaults, environment variables and `sluice serve` flags.
 * Every option has one name in each form: `--max-frame` ⇔ `SLUICE_MAX_FRAME` ⇔ `maxFrame`.
 */
import {
  DEFAULT_CREDIT,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_MAX_CREDIT,
  DEFAULT_MAX_FRAME,
  DEFAULT_MAX_SUBSCRIPTIONS,
} from '@sluice/client/protocol';
import { DEFAULT_DEDUP_WINDOW_MS, DEFAULT_RETENTION, type Retention } from './log/log.js';
import type { Durability } from './log/disk.js';

export interface Limits {
  maxFrame: number;
  maxCredit: number;
  defaultCredit: number;
  maxSubscriptions: number;
  heartbeatMs: number;
  /** Publishes awaiting their ACK on one connection; beyond it PUB gets `limit-exceeded`. */
  maxInflightPublishes: number;
  /** Send buffer above which a connection is closed as a slow consumer (bytes). */
  maxBackpressure: number;
}

/** Token verification. Neither `secret` nor `publicKey` set: dev mode (no authentication). */
export interface AuthConfig {
  /** HS256 shared secret. */
  secret: string | undefined;
  /** Public key for EdDSA / ES256 tokens: PEM (SPKI), a JWK or a JWK Set as JSON, or a path to a file holding one. */
  publicKey: string | undefined;
  /** Required `aud` claim, when set. */
  audience: string | undefined;
  /** Required `iss` claim, when set. */
  issuer: string | undefined;
  /** Clock skew tolerated on `exp` / `nbf` (seconds). */
  clockSkewS: number;
}

/** The HTTP API's limits. */
export interface HttpLimits {
  /** Largest request body (bytes); enforced while the body streams in. */
  maxBody: number;
  /** Cap on a pull's `wait` (seconds). */
  maxWaitS: number;
  /** Long-polls and SSE streams open at once; beyond it new ones get 429 `limit-exceeded`. */
  maxStreams: number;
}

/** Publish rate limits (messages per second, token bucket with one second of burst); 0 = off. */
export interface RateLimits {
  /** Per WebSocket connection. */
  perConnection: number;
  /** Per client (the token's `sub`; in dev mode the remote address), over every connection and HTTP. */
  perClient: number;
}

export interface Config {
  host: string;
  port: number;
  store: 'disk' | 'memory';
  dataDir: string;
  durability: Durability;
  retention: Retention;
  dedupWindowMs: number;
  limits: Limits;
  auth: AuthConfig;
  /**
   * Origins allowed for browser requests (CORS) and WebSocket upgrades; `*` allows any.
   * Undefined: any origin in dev mode, only the gateway's own origin with authentication on.
   */
  allowedOrigins: string[] | undefined;
  http: HttpLimits;
  rates: RateLimits;
  /** Directory of the built console, served at /console when present. */
  consoleDir: string | undefined;
  /** Print nothing but the listening line and errors. */
  quiet: boolean;
}

export const DEFAULT_LIMITS: Limits = {
  maxFrame: DEFAULT_MAX_FRAME,
  maxCredit: DEFAULT_MAX_CREDIT,
  defaultCredit: DEFAULT_CREDIT,
  maxSubscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
  heartbeatMs: DEFAULT_HEARTBEAT_MS,
  maxInflightPublishes: 10_000,
  maxBackpressure: 16 * 1024 * 1024,
};

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxBody: DEFAULT_MAX_FRAME,
  maxWaitS: 30,
  maxStreams: 100_000,
};

export function defaultConfig(): Config {
  return {
    host: '127.0.0.1',
    port: 9400,
    store: 'disk',
    dataDir: './data',
    durability: 'flush',
    retention: { ...DEFAULT_RETENTION },
    dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS,
    limits: { ...DEFAULT_LIMITS },
    auth: { secret: undefined, publicKey: undefined, audience: undefined, issuer: undefined, clockSkewS: 30 },
    allowedOrigins: undefined,
    http: { ...DEFAULT_HTTP_LIMITS },
    rates: { perConnection: 0, perClient: 0 },
    consoleDir: undefined,
    quiet: false,
  };
}

interface Option {
  flag: string;
  env: string;
  help: string;
  set: (c: Config, v: string) => void;
}

const int = (name: string, v: string, min = 0): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new ConfigError(`${name} must be an integer >= ${min}, got "${v}"`);
  return n;
};

const num = (name: string, v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new ConfigError(`${name} must be a number >= 0, got "${v}"`);
  return n;
};

/** `*`, or a comma-separated list of origins (`scheme://host[:port]`). */
export function parseOrigins(v: string): string[] {
  const list = v.split(',').map((o) => o.trim()).filter((o) => o.length > 0);
  for (const o of list) {
    if (o === '*') continue;
    let u: URL;
    try {
      u = new URL(o);
    } catch {
      throw new ConfigError(`allowed-origins: "${o}" is not an origin like https://app.example.com`);
    }
    if (u.origin !== o.replace(/\/$/, '')) throw new ConfigError(`allowed-origins: "${o}" must be an origin only (scheme://host[:port])`);
  }
  return list.map((o) => o.replace(/\/$/, ''));
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const OPTIONS: Option[] = [
  { flag: 'host', env: 'HOST', help: 'address to listen on (default 127.0.0.1)', set: (c, v) => { c.host = v; } },
  { flag: 'port', env: 'PORT', help: 'port (default 9400; 0 picks a free one)', set: (c, v) => { c.port = int('port', v); } },
  {
    flag: 'store', env: 'SLUICE_STORE', help: 'disk (default) or memory',
    set: (c, v) => {
      if (v !== 'disk' && v !== 'memory') throw new ConfigError(`store must be disk or memory, got "${v}"`);
      c.store = v;
    },
  },
  { flag: 'data', env: 'SLUICE_DATA_DIR', help: 'data directory of the disk store (default ./data)', set: (c, v) => { c.dataDir = v; } },
  {
    flag: 'durability', env: 'SLUICE_DURABILITY', help: 'flush (default: ack after fsync) or commit (ack after write; survives a crash, not a power loss)',
    set: (c, v) => {
      if (v !== 'flush' && v !== 'commit') throw new ConfigError(`durability must be flush or commit, got "${v}"`);
      c.durability = v;
    },
  },
  { flag: 'retention-count', env: 'SLUICE_RETENTION_COUNT', help: 'messages kept per topic (default 1000000)', set: (c, v) => { c.retention.maxCount = int('retention-count', v, 1); } },
  { flag: 'retention-age', env: 'SLUICE_RETENTION_AGE_MS', help: 'ms a message is kept (default 7 days)', set: (c, v) => { c.retention.maxAgeMs = int('retention-age', v, 1); } },
  { flag: 'retention-bytes', env: 'SLUICE_RETENTION_BYTES', help: 'bytes kept per topic (default 256 MiB)', set: (c, v) => { c.retention.maxBytes = int('retention-bytes', v, 1); } },
  { flag: 'dedup-window', env: 'SLUICE_DEDUP_WINDOW_MS', help: 'ms an idempotency key is remembered (default 24 h)', set: (c, v) => { c.dedupWindowMs = int('dedup-window', v, 1); } },
  { flag: 'max-frame', env: 'SLUICE_MAX_FRAME', help: 'largest frame in bytes (default 1 MiB)', set: (c, v) => { c.limits.maxFrame = int('max-frame', v, 1024); } },
  { flag: 'max-credit', env: 'SLUICE_MAX_CREDIT', help: 'credit cap per subscription (default 4096)', set: (c, v) => { c.limits.maxCredit = int('max-credit', v, 1); } },
  { flag: 'default-credit', env: 'SLUICE_DEFAULT_CREDIT', help: 'credit of a SUB that names none (default 64)', set: (c, v) => { c.limits.defaultCredit = int('default-credit', v); } },
  { flag: 'max-subscriptions', env: 'SLUICE_MAX_SUBSCRIPTIONS', help: 'subscriptions per connection (default 1000)', set: (c, v) => { c.limits.maxSubscriptions = int('max-subscriptions', v, 1); } },
  { flag: 'heartbeat', env: 'SLUICE_HEARTBEAT_MS', help: 'heartbeat announced to clients in ms (default 20000)', set: (c, v) => { c.limits.heartbeatMs = int('heartbeat', v, 1000); } },
  { flag: 'auth-secret', env: 'SLUICE_AUTH_SECRET', help: 'HS256 secret for tokens (no secret and no public key: dev mode, no auth)', set: (c, v) => { c.auth.secret = v || undefined; } },
  { flag: 'auth-public-key', env: 'SLUICE_AUTH_PUBLIC_KEY', help: 'EdDSA/ES256 public key: PEM, JWK or JWK Set JSON, or a file holding one', set: (c, v) => { c.auth.publicKey = v || undefined; } },
  { flag: 'auth-audience', env: 'SLUICE_AUTH_AUDIENCE', help: 'required aud claim (default: not checked)', set: (c, v) => { c.auth.audience = v || undefined; } },
  { flag: 'auth-issuer', env: 'SLUICE_AUTH_ISSUER', help: 'required iss claim (default: not checked)', set: (c, v) => { c.auth.issuer = v || undefined; } },
  { flag: 'auth-clock-skew', env: 'SLUICE_AUTH_CLOCK_SKEW_S', help: 'seconds of clock skew tolerated on exp/nbf (default 30)', set: (c, v) => { c.auth.clockSkewS = int('auth-clock-skew', v); } },
  {
    flag: 'allowed-origins', env: 'SLUICE_ALLOWED_ORIGINS',
    help: 'comma-separated browser origins for CORS and WebSocket, or * (default: any in dev mode, same origin with auth)',
    set: (c, v) => { c.allowedOrigins = parseOrigins(v); },
  },
  { flag: 'max-body', env: 'SLUICE_MAX_BODY', help: 'largest HTTP request body in bytes (default 1 MiB)', set: (c, v) => { c.http.maxBody = int('max-body', v, 1024); } },
  { flag: 'max-wait', env: 'SLUICE_MAX_WAIT_S', help: 'cap on a pull\'s wait in seconds (default 30)', set: (c, v) => { c.http.maxWaitS = int('max-wait', v, 0); } },
  { flag: 'max-http-streams', env: 'SLUICE_MAX_HTTP_STREAMS', help: 'long-polls plus SSE streams open at once (default 100000)', set: (c, v) => { c.http.maxStreams = int('max-http-streams', v, 1); } },
  { flag: 'rate-limit', env: 'SLUICE_RATE_LIMIT', help: 'publishes/s per WebSocket connection, 0 = off (default off)', set: (c, v) => { c.rates.perConnection = num('rate-limit', v); } },
  { flag: 'rate-limit-client', env: 'SLUICE_RATE_LIMIT_CLIENT', help: 'publishes/s per client over all connections and HTTP, 0 = off (default off)', set: (c, v) => { c.rates.perClient = num('rate-limit-client', v); } },
  { flag: 'console-dir', env: 'SLUICE_CONSOLE_DIR', help: 'directory of the built console (default: console/dist of this repository, when built)', set: (c, v) => { c.consoleDir = v; } },
];

/** Applies environment variables, then flags (`--name value` or `--name=value`), to the defaults. */
export function loadConfig(argv: readonly string[], env: Record<string, string | undefined>): Config {
  const c = defaultConfig();
  for (const o of OPTIONS) {
    const v = env[o.env];
    if (v !== undefined && v !== '') o.set(c, v);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quiet') { c.quiet = true; continue; }
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const o = OPTIONS.find((x) => x.flag === name);
    if (!o) throw new ConfigError(`unknown option --${name}`);
    const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (v === undefined) throw new ConfigError(`--${name} needs a value`);
    o.set(c, v);
  }
  return c;
}
