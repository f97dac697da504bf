/**
 * Gateway configuration: defaults, environment variables and `sluice serve` flags.
 * Every option has one name in each form: `--max-frame` ⇔ `SLUICE_MAX_FRAME` ⇔ `maxFrame`.
 */
import { DEFAULT_YOUNG_GENERATION } from './young-generation.js';
import { DEFAULT_HELD_OPTIONS, type HeldOptions } from './core/held.js';
import { isIP } from 'node:net';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  DEFAULT_CREDIT,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_MAX_CREDIT,
  DEFAULT_MAX_FRAME,
  DEFAULT_MAX_SUBSCRIPTIONS,
  DEFAULT_MAX_WINDOW_BYTES,
} from '@sluice/client/protocol';
import { DEFAULT_DEDUP_WINDOW_MS, DEFAULT_RETENTION, type Retention } from './log/log.js';
import { MIN_FREE_BYTES, type Durability } from './log/disk.js';
import { LOG_LEVELS, type LogFormat, type LogLevel } from './logger.js';

export interface Limits {
  maxFrame: number;
  maxCredit: number;
  defaultCredit: number;
  maxSubscriptions: number;
  /**
   * Byte window of a plain subscription of a client speaking protocol 1.5 or later: bytes of
   * messages sent on it after its last CREDIT (announced in WELCOME as `maxWindowBytes`).
   */
  maxWindowBytes: number;
  heartbeatMs: number;
  /** Publishes awaiting their ACK on one connection; beyond it PUB gets `limit-exceeded`. */
  maxInflightPublishes: number;
  /** Send buffer above which a connection is closed as a slow consumer (bytes). */
  maxBackpressure: number;
  /** Time allowed from the upgrade to HELLO; beyond it the socket is closed with 4204 (ms). */
  helloTimeoutMs: number;
  /** Open WebSockets; beyond it upgrades get 503 `limit-exceeded`. */
  maxConnections: number;
  /** WebSockets from one address that have not said HELLO yet; beyond it upgrades get 429. */
  maxPendingPerAddress: number;
}

/** Token verification. None of `secret`, `publicKey`, `jwksUrl` set: dev mode (no authentication). */
export interface AuthConfig {
  /** HS256 shared secret. */
  secret: string | undefined;
  /** Public key for RS256 / ES256 / EdDSA tokens: PEM (SPKI), a JWK or a JWK Set as JSON, or a path to a file holding one. */
  publicKey: string | undefined;
  /** An identity provider's JWK Set URL (http or https), fetched and cached (auth/jwt.ts). */
  jwksUrl: string | undefined;
  /** Least time between two fetches of `jwksUrl` (ms): a token with an unknown `kid` refreshes at most this often. */
  jwksCooldownMs: number;
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
  /** Rows of the busiest topics in each admin stream snapshot (`topics`); the full list is paged. */
  adminStreamTopics: number;
}

/** Publish rate limits (messages per second, token bucket with one second of burst); 0 = off. */
export interface RateLimits {
  /** Per WebSocket connection. */
  perConnection: number;
  /** Per client (the token's `sub`; in dev mode the remote address), over every connection and HTTP. */
  perClient: number;
}

/**
 * The hub's memory and batching tunables (no flags: the defaults fit every deployment measured so
 * far). The cache never holds more than retention keeps: whoever builds the hub caps `cacheEntries`
 * and `cacheBytes` by `retention.maxCount` and `retention.maxBytes`.
 */
export interface HubConfig {
  /** Newest messages cached per topic that has local subscribers. */
  cacheEntries: number;
  /** Bytes of that cache per topic. */
  cacheBytes: number;
  /** Bytes of the caches of all topics together. */
  cacheTotalBytes: number;
  /**
   * A connection holding more than this many bytes unsent in the gateway (the kernel's socket
   * buffer comes on top) leaves the native fan-out; catch-up and group leases wait while it does.
   */
  highWater: number;
}

/**
 * The one read policy: how much one read of a topic's log may return, for WebSocket catch-up,
 * event streams and pull pages alike (a pull page may take several reads).
 */
export interface ReadPolicy {
  /** Most messages per read. */
  batch: number;
  /** Most stored bytes per read (at least one message is read when one exists). */
  bytes: number;
}

/** Defaults of consumer groups (each group may change its own through the admin API). */
export interface GroupConfig {
  /** How long a lease may go unacknowledged before the message is delivered again (ms). */
  ackWaitMs: number;
  /** Deliveries after which an unacknowledged message is dead-lettered. */
  maxDeliveries: number;
  /** Delays before the 2nd, 3rd, ... delivery after a nack without delay or an expiry (ms); the last repeats. */
  backoffMs: number[];
}

/** Message tracing (see server/src/core/trace.ts). */
export interface TraceConfig {
  /** Fraction of publishes traced without asking (0–1). */
  sample: number;
  /** Messages whose traces a node keeps (the oldest forgotten first). */
  maxTraces: number;
  /** Events kept per message per node (more are counted, not kept). */
  maxEvents: number;
  /** How long a trace is kept (ms). */
  ttlMs: number;
}

/** Cluster mode: several gateways on one Redis (see server/src/log/redis.ts). */
export interface RedisConfig {
  /** redis://, rediss://, redis+sentinel://h:p,h:p/master, or redis+cluster://h:p,h:p */
  url: string;
  /** Replicas that must have a publish before its ACK and before any node shows it (Redis WAIT). */
  minReplicas: number;
  /** How long a Redis command (and WAIT) may take before the publish fails as unavailable (ms). */
  commandTimeoutMs: number;
}

/** The gateway's own log (server/src/logger.ts). */
export interface LogConfig {
  level: LogLevel;
  /** Undefined: pretty on a terminal, JSON lines otherwise. */
  format: LogFormat | undefined;
  /** One line per HTTP request and WebSocket upgrade (info level). */
  access: boolean;
}

/** HTTPS and WSS served by the gateway itself (uWS SSLApp); both paths set, or neither. */
export interface TlsConfig {
  /** PEM certificate chain file. */
  cert: string;
  /** PEM private key file. */
  key: string;
}

export interface Config {
  host: string;
  port: number;
  store: 'disk' | 'memory' | 'redis';
  dataDir: string;
  /**
   * Where `POST /v1/admin/backup` writes the disk store's copies (one new directory each); undefined:
   * the gateway takes no backups (log/backup.ts).
   */
  backupDir: string | undefined;
  /** Free bytes on the data directory's filesystem below which the disk store takes no writes. */
  minFree: number;
  /**
   * Cap on V8's young generation in bytes (both semi-spaces; 0: V8's default, 32 MiB on 64-bit),
   * applied by `sluice serve` (young-generation.ts).
   */
  youngGeneration: number;
  /** The Redis store (cluster mode). */
  redis: RedisConfig;
  groups: GroupConfig;
  trace: TraceConfig;
  /** Delayed and half (transactional) messages (see server/src/core/held.ts). */
  held: HeldOptions;
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
  hub: HubConfig;
  read: ReadPolicy;
  /** Directory of the built console, served at /console when present. */
  consoleDir: string | undefined;
  /**
   * The URL users reach this node at (behind a proxy: the proxy's). Its origin is always allowed
   * (the gateway's own origin, whatever Host header a proxy sends), and the admin API lists it.
   * Undefined: the URL it listens on.
   */
  publicUrl: string | undefined;
  /**
   * Proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed (addresses and CIDRs, or
   * `loopback`); from anyone else those headers are ignored. Empty: none.
   */
  trustProxy: string[];
  tls: TlsConfig | undefined;
  log: LogConfig;
  /** Print nothing but the listening line and errors. */
  quiet: boolean;
}

export const DEFAULT_LIMITS: Limits = {
  maxFrame: DEFAULT_MAX_FRAME,
  maxCredit: DEFAULT_MAX_CREDIT,
  defaultCredit: DEFAULT_CREDIT,
  maxSubscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
  maxWindowBytes: DEFAULT_MAX_WINDOW_BYTES,
  heartbeatMs: DEFAULT_HEARTBEAT_MS,
  maxInflightPublishes: 10_000,
  maxBackpressure: 16 * 1024 * 1024,
  helloTimeoutMs: 5000,
  maxConnections: 100_000,
  maxPendingPerAddress: 64,
};

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxBody: DEFAULT_MAX_FRAME,
  maxWaitS: 30,
  maxStreams: 100_000,
  adminStreamTopics: 20,
};

export const DEFAULT_READ_POLICY: ReadPolicy = { batch: 512, bytes: 512 * 1024 };

export const DEFAULT_HUB_CONFIG: HubConfig = {
  cacheEntries: 1024,
  cacheBytes: 512 * 1024,
  cacheTotalBytes: 64 * 1024 * 1024,
  highWater: 128 * 1024,
};

export function defaultConfig(): Config {
  return {
    host: '127.0.0.1',
    port: 9400,
    store: 'disk',
    dataDir: './data',
    backupDir: undefined,
    minFree: MIN_FREE_BYTES,
    youngGeneration: DEFAULT_YOUNG_GENERATION,
    durability: 'flush',
    retention: { ...DEFAULT_RETENTION },
    dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS,
    limits: { ...DEFAULT_LIMITS },
    auth: { secret: undefined, publicKey: undefined, jwksUrl: undefined, jwksCooldownMs: 30_000, audience: undefined, issuer: undefined, clockSkewS: 30 },
    allowedOrigins: undefined,
    http: { ...DEFAULT_HTTP_LIMITS },
    rates: { perConnection: 0, perClient: 0 },
    hub: { ...DEFAULT_HUB_CONFIG },
    read: { ...DEFAULT_READ_POLICY },
    redis: { url: 'redis://127.0.0.1:6379', minReplicas: 0, commandTimeoutMs: 2000 },
    groups: { ackWaitMs: 30_000, maxDeliveries: 5, backoffMs: [1000, 5000, 30_000, 120_000] },
    trace: { sample: 0, maxTraces: 10_000, maxEvents: 100, ttlMs: 60 * 60_000 },
    held: { ...DEFAULT_HELD_OPTIONS, checkAllow: [] },
    consoleDir: undefined,
    publicUrl: undefined,
    trustProxy: [],
    tls: undefined,
    log: { level: 'info', format: undefined, access: false },
    quiet: false,
  };
}

interface Option {
  flag: string;
  env: string;
  help: string;
  /** A flag without a value (`--access-log`); its variable takes 1/true/0/false. */
  boolean?: true;
  /** Applies `v` to `c`; `name` (`--flag` or the variable) is what an error message names. */
  set: (c: Config, v: string, name: string) => void;
}

const int = (name: string, v: string, min = 0): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < min) throw new ConfigError(`${name} must be an integer >= ${min}, got "${v}"`);
  return n;
};

const num = (name: string, v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new ConfigError(`${name} must be a number >= 0, got "${v}"`);
  return n;
};

const DURATION_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const SIZE_BYTES = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 } as const;

/** `<number>[unit]` in the smallest unit, the unit one of `units` (any case; none: `bare`). Undefined if malformed. */
function withUnit(v: string, units: Record<string, number>, bare: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(v.trim());
  if (!m) return undefined;
  const unit = (m[2] || bare).toLowerCase();
  if (!Object.hasOwn(units, unit)) return undefined;
  const n = Number(m[1]) * units[unit]!;
  const whole = Math.round(n);
  return Math.abs(n - whole) < 1e-6 ? whole : n; // 1.1s is 1100 ms, not 1100.0000000000002
}

/**
 * A duration: `500ms`, `30s`, `5m`, `24h`, `7d`, or a bare number in `unit` (each option keeps the
 * unit its bare numbers always had). Returns a whole number of `unit`s, at least `min`.
 */
export function parseDuration(name: string, v: string, unit: 'ms' | 's', min = 0): number {
  const ms = withUnit(v, DURATION_MS, unit);
  const unitName = unit === 's' ? 'seconds' : 'ms';
  if (ms === undefined) throw new ConfigError(`${name} must be a duration like 500ms, 30s, 5m, 24h or 7d (a bare number is ${unitName}), got "${v}"`);
  const n = ms / DURATION_MS[unit];
  if (!Number.isSafeInteger(n)) throw new ConfigError(`${name} must be a whole number of ${unitName}, got "${v}"`);
  if (n < min) throw new ConfigError(`${name} must be at least ${min}${unit}, got "${v}"`);
  return n;
}

/** An http(s) URL. */
function httpUrl(name: string, v: string): string {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new ConfigError(`${name} must be an http or https URL, got "${v.slice(0, 200)}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`${name} must be an http or https URL, got "${v.slice(0, 200)}"`);
  return url.href;
}

/** A size: `512KiB`, `256MiB`, `1GiB`, `1kB`, `1MB` (KiB = 1024, kB = 1000), or a bare number of bytes; at least `min`. */
export function parseSize(name: string, v: string, min = 0): number {
  const n = withUnit(v, SIZE_BYTES, 'b');
  if (n === undefined) throw new ConfigError(`${name} must be a size like 512KiB, 256MiB, 1GiB, 1kB or 1MB (a bare number is bytes), got "${v}"`);
  if (!Number.isSafeInteger(n)) throw new ConfigError(`${name} must be a whole number of bytes, got "${v}"`);
  if (n < min) throw new ConfigError(`${name} must be at least ${min} bytes, got "${v}"`);
  return n;
}

/** A comma-separated list of addresses and CIDRs (IPv4 or IPv6), or `loopback`. */
export function parseTrustProxy(v: string): string[] {
  const list = v.split(',').map((a) => a.trim()).filter((a) => a.length > 0);
  for (const a of list) {
    if (a === 'loopback') continue;
    const [addr, bits, extra] = a.split('/');
    const family = isIP(addr ?? '');
    const max = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max))) {
      throw new ConfigError(`trust-proxy: "${a}" is not an address, a CIDR like 10.0.0.0/8 or fd00::/8, or loopback`);
    }
  }
  return list;
}

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

/** A boolean variable's value: 1, true, yes, on / 0, false, no, off. */
function bool(name: string, v: string): boolean {
  const t = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off'].includes(t)) return false;
  throw new ConfigError(`${name} must be 1 or 0 (true/false), got "${v}"`);
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const OPTIONS: Option[] = [
  { flag: 'host', env: 'HOST', help: 'address to listen on (default 127.0.0.1)', set: (c, v) => { c.host = v; } },
  { flag: 'port', env: 'PORT', help: 'port (default 9400; 0 picks a free one)', set: (c, v, n) => { c.port = int(n, v); } },
  {
    flag: 'store', env: 'SLUICE_STORE', help: 'disk (default), memory, or redis (cluster mode: several gateways on one Redis)',
    set: (c, v, n) => {
      if (v !== 'disk' && v !== 'memory' && v !== 'redis') throw new ConfigError(`${n} must be disk, memory or redis, got "${v}"`);
      c.store = v;
    },
  },
  {
    flag: 'redis-url', env: 'SLUICE_REDIS_URL',
    help: 'the Redis of --store redis: redis://[:pass@]host:port[/db], rediss://, redis+sentinel://h:p,h:p/master, redis+cluster://h:p,h:p (default redis://127.0.0.1:6379)',
    set: (c, v) => { c.redis.url = v; },
  },
  { flag: 'hello-timeout', env: 'SLUICE_HELLO_TIMEOUT_MS', help: 'time from the WebSocket upgrade to HELLO before the socket is closed with 4204 (default 5s; bare number: ms)', set: (c, v, n) => { c.limits.helloTimeoutMs = parseDuration(n, v, 'ms', 100); } },
  { flag: 'max-connections', env: 'SLUICE_MAX_CONNECTIONS', help: 'open WebSockets at most; beyond, upgrades get 503 limit-exceeded (default 100000)', set: (c, v, n) => { c.limits.maxConnections = int(n, v, 1); } },
  { flag: 'max-pending-per-address', env: 'SLUICE_MAX_PENDING_PER_ADDRESS', help: 'WebSockets from one address still waiting for HELLO; beyond, upgrades get 429 (default 64)', set: (c, v, n) => { c.limits.maxPendingPerAddress = int(n, v, 1); } },
  { flag: 'group-ack-wait', env: 'SLUICE_GROUP_ACK_WAIT_MS', help: 'consumer groups: how long a lease may go unacknowledged (default 30s; bare number: ms)', set: (c, v, n) => { c.groups.ackWaitMs = parseDuration(n, v, 'ms', 1); } },
  { flag: 'group-max-deliveries', env: 'SLUICE_GROUP_MAX_DELIVERIES', help: 'consumer groups: deliveries before a message is dead-lettered (default 5)', set: (c, v, n) => { c.groups.maxDeliveries = int(n, v, 1); } },
  {
    flag: 'group-backoff', env: 'SLUICE_GROUP_BACKOFF', help: 'consumer groups: delays before each redelivery, comma-separated, the last repeats (default 1s,5s,30s,2m)',
    set: (c, v, n) => { c.groups.backoffMs = v.split(',').map((d) => parseDuration(n, d.trim(), 'ms')); },
  },
  {
    flag: 'trace-sample', env: 'SLUICE_TRACE_SAMPLE', help: 'fraction of publishes traced without asking, 0-1 (default 0: only those that ask)',
    set: (c, v, n) => {
      const f = Number(v);
      if (!(v.trim() !== '' && f >= 0 && f <= 1)) throw new Error(`${n} must be a number from 0 to 1, not ${JSON.stringify(v)}`);
      c.trace.sample = f;
    },
  },
  { flag: 'max-delay', env: 'SLUICE_MAX_DELAY_MS', help: 'longest delay a publish may ask for (default 7d; bare number: ms)', set: (c, v, n) => { c.held.maxDelayMs = parseDuration(n, v, 'ms', 0); } },
  { flag: 'tx-check-after', env: 'SLUICE_TX_CHECK_AFTER_MS', help: 'a prepared message unresolved this long is checked back with its producer (default 60s; bare number: ms)', set: (c, v, n) => { c.held.checkAfterMs = parseDuration(n, v, 'ms', 1); } },
  { flag: 'tx-check-url', env: 'SLUICE_TX_CHECK_URL', help: 'check-back URL for prepared messages that give none (default: none; such messages are aborted when checked)', set: (c, v, n) => { httpUrl(n, v); c.held.checkUrl = v; } },
  { flag: 'tx-check-secret', env: 'SLUICE_TX_CHECK_SECRET', help: 'HMAC-SHA256 key the check-back body is signed with (Sluice-Signature header; default: empty key)', set: (c, v) => { c.held.checkSecret = v; } },
  {
    flag: 'tx-check-allow', env: 'SLUICE_TX_CHECK_ALLOW', help: 'comma-separated URL prefixes a check-back URL given at prepare must start with (default: none allowed)',
    set: (c, v, n) => { c.held.checkAllow = v.split(',').map((u) => u.trim()).filter(Boolean).map((u) => httpUrl(n, u) && u); },
  },
  { flag: 'tx-check-attempts', env: 'SLUICE_TX_CHECK_ATTEMPTS', help: 'check-backs answered unknown (or unanswered) before the default, abort, applies (default 5)', set: (c, v, n) => { c.held.maxChecks = int(n, v, 1); } },
  { flag: 'tx-check-backoff', env: 'SLUICE_TX_CHECK_BACKOFF_MS', help: 'delay before the first check-back retry, doubling per attempt up to 60s (default 5s; bare number: ms)', set: (c, v, n) => { c.held.checkBackoffMs = parseDuration(n, v, 'ms', 1); } },
  { flag: 'tx-check-timeout', env: 'SLUICE_TX_CHECK_TIMEOUT_MS', help: 'how long one check-back may take (default 5s; bare number: ms)', set: (c, v, n) => { c.held.checkTimeoutMs = parseDuration(n, v, 'ms', 1); } },
  { flag: 'trace-max', env: 'SLUICE_TRACE_MAX', help: 'traced messages a node keeps the journey of, oldest forgotten first (default 10000)', set: (c, v, n) => { c.trace.maxTraces = int(n, v, 1); } },
  { flag: 'redis-min-replicas', env: 'SLUICE_REDIS_MIN_REPLICAS', help: 'replicas that must have a publish before its ACK and before any node shows it (WAIT; default 0)', set: (c, v, n) => { c.redis.minReplicas = int(n, v); } },
  { flag: 'redis-timeout', env: 'SLUICE_REDIS_TIMEOUT_MS', help: 'how long a Redis command may take before a publish fails as unavailable (default 2s; bare number: ms)', set: (c, v, n) => { c.redis.commandTimeoutMs = parseDuration(n, v, 'ms', 100); } },
  { flag: 'data', env: 'SLUICE_DATA_DIR', help: 'data directory of the disk store (default ./data)', set: (c, v) => { c.dataDir = v; } },
  { flag: 'backup-dir', env: 'SLUICE_BACKUP_DIR', help: 'directory POST /v1/admin/backup (sluice backup --url) copies the disk store into (default: none, no backups)', set: (c, v) => { c.backupDir = v || undefined; } },
  { flag: 'young-generation', env: 'SLUICE_YOUNG_GENERATION', help: 'cap on V8\'s young generation, both semi-spaces (default 8MiB; 0: V8\'s own, 32MiB; bare number: bytes). Bigger: fewer scavenges under load, more memory kept after a burst of connections', set: (c, v, n) => { c.youngGeneration = parseSize(n, v); } },
  { flag: 'min-free', env: 'SLUICE_MIN_FREE', help: 'free space on the data directory\'s filesystem below which the disk store refuses publishes as insufficient-storage, before a write fails (default 1MiB; bare number: bytes)', set: (c, v, n) => { c.minFree = parseSize(n, v); } },
  {
    flag: 'durability', env: 'SLUICE_DURABILITY', help: 'flush (default: ack after fsync) or commit (ack after write; survives a crash, not a power loss)',
    set: (c, v, n) => {
      if (v !== 'flush' && v !== 'commit') throw new ConfigError(`${n} must be flush or commit, got "${v}"`);
      c.durability = v;
    },
  },
  { flag: 'retention-count', env: 'SLUICE_RETENTION_COUNT', help: 'messages kept per topic (default 1000000)', set: (c, v, n) => { c.retention.maxCount = int(n, v, 1); } },
  { flag: 'retention-age', env: 'SLUICE_RETENTION_AGE_MS', help: 'how long a message is kept (default 7d; bare number: ms)', set: (c, v, n) => { c.retention.maxAgeMs = parseDuration(n, v, 'ms', 1); } },
  { flag: 'retention-bytes', env: 'SLUICE_RETENTION_BYTES', help: 'bytes kept per topic (default 256MiB; bare number: bytes)', set: (c, v, n) => { c.retention.maxBytes = parseSize(n, v, 1); } },
  { flag: 'dedup-window', env: 'SLUICE_DEDUP_WINDOW_MS', help: 'how long an idempotency key is remembered (default 24h; bare number: ms)', set: (c, v, n) => { c.dedupWindowMs = parseDuration(n, v, 'ms', 1); } },
  { flag: 'max-frame', env: 'SLUICE_MAX_FRAME', help: 'largest frame (default 1MiB; bare number: bytes)', set: (c, v, n) => { c.limits.maxFrame = parseSize(n, v, 1024); } },
  { flag: 'max-credit', env: 'SLUICE_MAX_CREDIT', help: 'credit cap per subscription (default 4096)', set: (c, v, n) => { c.limits.maxCredit = int(n, v, 1); } },
  { flag: 'default-credit', env: 'SLUICE_DEFAULT_CREDIT', help: 'credit of a SUB that names none (default 64)', set: (c, v, n) => { c.limits.defaultCredit = int(n, v); } },
  { flag: 'max-window-bytes', env: 'SLUICE_MAX_WINDOW_BYTES', help: 'bytes of messages sent on a subscription after its last CREDIT, for clients of protocol 1.5 or later (default 1MiB; bare number: bytes)', set: (c, v, n) => { c.limits.maxWindowBytes = parseSize(n, v, 1024); } },
  { flag: 'max-subscriptions', env: 'SLUICE_MAX_SUBSCRIPTIONS', help: 'subscriptions per connection (default 1000)', set: (c, v, n) => { c.limits.maxSubscriptions = int(n, v, 1); } },
  { flag: 'heartbeat', env: 'SLUICE_HEARTBEAT_MS', help: 'heartbeat announced to clients (default 20s; bare number: ms)', set: (c, v, n) => { c.limits.heartbeatMs = parseDuration(n, v, 'ms', 1000); } },
  { flag: 'auth-secret', env: 'SLUICE_AUTH_SECRET', help: 'HS256 secret for tokens (no secret, public key or JWKS URL: dev mode, no auth)', set: (c, v) => { c.auth.secret = v || undefined; } },
  { flag: 'auth-public-key', env: 'SLUICE_AUTH_PUBLIC_KEY', help: 'RS256/ES256/EdDSA public key: PEM, JWK or JWK Set JSON, or a file holding one', set: (c, v) => { c.auth.publicKey = v || undefined; } },
  { flag: 'auth-jwks-url', env: 'SLUICE_AUTH_JWKS_URL', help: "an identity provider's JWK Set URL (https://…/.well-known/jwks.json), cached, refetched for an unknown kid", set: (c, v, n) => { c.auth.jwksUrl = v ? httpUrl(n, v) : undefined; } },
  { flag: 'auth-jwks-cooldown', env: 'SLUICE_AUTH_JWKS_COOLDOWN_MS', help: 'least time between two fetches of the JWK Set (default 30s; bare number: ms)', set: (c, v, n) => { c.auth.jwksCooldownMs = parseDuration(n, v, 'ms'); } },
  { flag: 'auth-audience', env: 'SLUICE_AUTH_AUDIENCE', help: 'required aud claim (default: not checked)', set: (c, v) => { c.auth.audience = v || undefined; } },
  { flag: 'auth-issuer', env: 'SLUICE_AUTH_ISSUER', help: 'required iss claim (default: not checked)', set: (c, v) => { c.auth.issuer = v || undefined; } },
  { flag: 'auth-clock-skew', env: 'SLUICE_AUTH_CLOCK_SKEW_S', help: 'clock skew tolerated on exp/nbf (default 30s; bare number: seconds)', set: (c, v, n) => { c.auth.clockSkewS = parseDuration(n, v, 's'); } },
  {
    flag: 'allowed-origins', env: 'SLUICE_ALLOWED_ORIGINS',
    help: 'comma-separated browser origins for CORS and WebSocket, or * (default: any in dev mode, same origin with auth)',
    set: (c, v) => { c.allowedOrigins = parseOrigins(v); },
  },
  { flag: 'max-body', env: 'SLUICE_MAX_BODY', help: 'largest HTTP request body (default 1MiB; bare number: bytes)', set: (c, v, n) => { c.http.maxBody = parseSize(n, v, 1024); } },
  { flag: 'max-wait', env: 'SLUICE_MAX_WAIT_S', help: 'cap on a pull\'s wait (default 30s; bare number: seconds)', set: (c, v, n) => { c.http.maxWaitS = parseDuration(n, v, 's'); } },
  { flag: 'admin-stream-topics', env: 'SLUICE_ADMIN_STREAM_TOPICS', help: 'busiest topics (by msgs/s) in each admin stream snapshot; the full list is GET /v1/admin/topics, paged (default 20)', set: (c, v, n) => { c.http.adminStreamTopics = int(n, v, 0); } },
  { flag: 'max-http-streams', env: 'SLUICE_MAX_HTTP_STREAMS', help: 'long-polls plus SSE streams open at once (default 100000)', set: (c, v, n) => { c.http.maxStreams = int(n, v, 1); } },
  { flag: 'rate-limit', env: 'SLUICE_RATE_LIMIT', help: 'publishes/s per WebSocket connection, 0 = off (default off)', set: (c, v, n) => { c.rates.perConnection = num(n, v); } },
  { flag: 'rate-limit-client', env: 'SLUICE_RATE_LIMIT_CLIENT', help: 'publishes/s per client over all connections and HTTP, 0 = off (default off)', set: (c, v, n) => { c.rates.perClient = num(n, v); } },
  {
    flag: 'public-url', env: 'SLUICE_PUBLIC_URL',
    help: 'the URL users reach this node at (behind a proxy: the proxy\'s); its origin is always allowed, the Nodes view shows it (default: the listening URL)',
    set: (c, v, n) => {
      if (v && !/^https?:\/\/[^/]/i.test(v)) throw new ConfigError(`${n} must be an http(s) URL like https://gw1.example.com, got "${v}"`);
      if (v && !URL.canParse(v)) throw new ConfigError(`${n} must be a URL like https://gw1.example.com, got "${v}"`);
      c.publicUrl = v || undefined;
    },
  },
  {
    flag: 'trust-proxy', env: 'SLUICE_TRUST_PROXY',
    help: 'comma-separated addresses/CIDRs (or loopback) of proxies whose X-Forwarded-For/-Proto are believed (default: none)',
    set: (c, v) => { c.trustProxy = parseTrustProxy(v); },
  },
  { flag: 'tls-cert', env: 'SLUICE_TLS_CERT', help: 'PEM certificate (chain) file: serve HTTPS and WSS (with --tls-key)', set: (c, v) => { c.tls = { cert: v, key: c.tls?.key ?? '' }; } },
  { flag: 'tls-key', env: 'SLUICE_TLS_KEY', help: 'PEM private key file of --tls-cert', set: (c, v) => { c.tls = { cert: c.tls?.cert ?? '', key: v }; } },
  {
    flag: 'log-level', env: 'SLUICE_LOG_LEVEL', help: 'debug, info (default), warn, error or silent',
    set: (c, v, n) => {
      if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new ConfigError(`${n} must be one of ${LOG_LEVELS.join(', ')}, got "${v}"`);
      c.log.level = v as LogLevel;
    },
  },
  {
    flag: 'log-format', env: 'SLUICE_LOG_FORMAT', help: 'json or pretty (default: pretty on a terminal, json otherwise)',
    set: (c, v, n) => {
      if (v !== 'json' && v !== 'pretty') throw new ConfigError(`${n} must be json or pretty, got "${v}"`);
      c.log.format = v;
    },
  },
  { flag: 'access-log', env: 'SLUICE_ACCESS_LOG', boolean: true, help: 'log one line per HTTP request and WebSocket upgrade (default off)', set: (c, v, n) => { c.log.access = bool(n, v); } },
  { flag: 'console-dir', env: 'SLUICE_CONSOLE_DIR', help: 'directory of the built console (default: console/dist of this repository when built, else the one packed into @sluice/server)', set: (c, v) => { c.consoleDir = v; } },
];

/** The flags a command takes, in `parseArgs` form. */
export type Flags = NonNullable<ParseArgsConfig['options']>;

/** What `parseFlags` returns for `O`: each flag's value, typed by its spec. */
export type FlagValues<O extends Flags> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>>['values'];

/** The flags of `sluice serve`: every OPTIONS flag takes a value unless `boolean`; `--quiet` takes none. */
const SERVE_FLAGS: Flags = {
  ...Object.fromEntries(OPTIONS.map((o) => [o.flag, { type: o.boolean ? 'boolean' as const : 'string' as const }])),
  quiet: { type: 'boolean' },
};

/** Applies environment variables, then flags (`--name value` or `--name=value`; the last one wins), to the defaults. */
export function loadConfig(argv: readonly string[], env: Record<string, string | undefined>): Config {
  const c = defaultConfig();
  for (const o of OPTIONS) {
    const v = env[o.env];
    if (v !== undefined && v !== '') o.set(c, v, o.env);
  }
  const flags = parseFlags('serve', argv, SERVE_FLAGS);
  for (const o of OPTIONS) {
    const v = flags[o.flag];
    if (typeof v === 'string') o.set(c, v, `--${o.flag}`);
    else if (v === true) o.set(c, 'true', `--${o.flag}`);
  }
  if (flags.quiet === true) c.quiet = true;
  if (c.tls && (!c.tls.cert || !c.tls.key)) throw new ConfigError('--tls-cert and --tls-key go together (SLUICE_TLS_CERT, SLUICE_TLS_KEY)');
  if (c.backupDir !== undefined && c.store !== 'disk') throw new ConfigError(`--backup-dir (SLUICE_BACKUP_DIR) backs up the disk store; the ${c.store} store has none`);
  return c;
}

/**
 * The one flag parser of every `sluice` command: `node:util` `parseArgs`, strict (unknown flags,
 * missing values and stray arguments are errors), its errors turned into ConfigError (exit code 2).
 */
export function parseFlags<O extends Flags>(command: string, argv: readonly string[], options: O): FlagValues<O> {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigError(flagError(command, err));
  }
}

function flagError(command: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const flag = /'(-[^' ]+)/.exec(message)?.[1];
  const positional = /'([^']*)'/.exec(message)?.[1];
  switch ((err as { code?: string }).code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${flag ?? message} for sluice ${command} (see: sluice help)`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument "${positional ?? message}" for sluice ${command} (options look like --name value)`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (flag && /argument missing/.test(message)) return `${flag} needs a value`;
      if (flag && /ambiguous/.test(message)) return `${flag} needs a value (write ${flag}=-… for one that starts with "-")`;
      if (flag && /does not take an argument/.test(message)) return `${flag} takes no value`;
      return message;
    default:
      return message;
  }
}
