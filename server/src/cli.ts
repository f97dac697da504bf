#!/usr/bin/env node
/**
 * The `sluice` command.
 *   sluice serve [--port 9400] [--host 127.0.0.1] [--data ./data] [--store disk|memory] ...
 *   sluice token --sub alice --caps 'chat.>=sub,pub' --ttl 1h [--admin]
 *   sluice keygen [--alg EdDSA|ES256] [--out <prefix>]
 * Every serve flag also reads from the environment (see config.ts / `sluice help`). All commands
 * parse their flags with config.ts `parseFlags`; durations and sizes take units everywhere.
 */
import './young-generation-early.js'; // first: before loading the rest grows V8's young generation
import './limits-env.js'; // before uWS loads (server.js)
import { existsSync, writeFileSync } from 'node:fs';
import { JwtAuthenticator } from './auth/jwt.js';
import { keygen, mint, parseCaps } from './auth/mint.js';
import { ConfigError, loadConfig, OPTIONS, parseDuration, parseFlags, type Flags } from './config.js';
import { configureLogger, defaultLogFormat, logger } from './logger.js';
import type { Admin } from '@sluice/client/protocol';
import { BackupError, backupDiskStore, StoreInUseError } from './log/backup.js';
import { authFromConfig, startServer, VERSION } from './server.js';
import { capYoungGeneration } from './young-generation.js';

const USAGE = `sluice ${VERSION} — realtime pub/sub gateway

Usage:
  sluice serve [options]     start the gateway
  sluice token --sub <id> [--caps '<pattern>=<actions>;...'] [--ttl 1h] [--admin]
               [--aud <aud>] [--iss <iss>] [--kid <kid>] [--secret <s> | --key <private key file>]
                             print a token (HS256 with SLUICE_AUTH_SECRET unless --key is given;
                             --aud/--iss default to SLUICE_AUTH_AUDIENCE/ISSUER; --ttl a duration,
                             bare number: seconds)
  sluice keygen [--alg EdDSA|ES256] [--out <prefix>]
                             a new key pair (private key: for token issuers; public: for the gateway);
                             with --out, written to <prefix>.private.pem (mode 0600) and
                             <prefix>.public.pem, else printed
  sluice backup --url <gateway URL> [--token <admin token>] [--compact]
                             a running gateway copies its disk store, consistently and without a
                             pause, into a new directory under its --backup-dir (POST
                             /v1/admin/backup; --token defaults to SLUICE_ADMIN_TOKEN)
  sluice backup --out <dir> [--data ./data] [--compact]
                             a copy of a STOPPED gateway's data directory (--data defaults to
                             SLUICE_DATA_DIR; refused while a process has it open: use --url)
                             Either way the copy gets a new epoch, so clients resuming on a
                             restored store are told (see README, Production)
  sluice help                this text

Serve options (flag / environment variable):
${OPTIONS.map((o) => `  --${o.flag.padEnd(18)} ${o.env.padEnd(24)} ${o.help}`).join('\n')}
  --quiet                                       print only the listening line and errors

Durations: 500ms, 30s, 5m, 24h, 7d. Sizes: 512KiB, 256MiB, 1GiB (KiB = 1024 bytes), 1kB, 1MB
(kB = 1000 bytes). A bare number keeps the option's unit shown above.
`;

async function serve(argv: string[]): Promise<void> {
  const config = loadConfig(argv, process.env);
  if (config.youngGeneration === 0) capYoungGeneration(0);
  configureLogger({ level: config.log.level, format: config.log.format ?? defaultLogFormat() });
  const auth = authFromConfig(config);
  if (auth.mode === 'dev') {
    logger.warn('WARNING dev mode — no SLUICE_AUTH_SECRET, SLUICE_AUTH_PUBLIC_KEY or SLUICE_AUTH_JWKS_URL set: every client may publish, subscribe and administer, from any origin. Never expose this.');
  }
  const server = await startServer(config, { auth });
  const { messagesIn, messagesOut } = server.metrics;
  capYoungGeneration(config.youngGeneration, () => messagesIn.value + messagesOut.value);
  const shown = config.publicUrl ?? server.url;
  if (!config.quiet) {
    const where = config.store === 'disk' ? `disk store at ${config.dataDir} (durability: ${config.durability})`
      : config.store === 'redis' ? `Redis store at ${config.redis.url.replace(/\/\/[^@/]*@/, '//***@')} (cluster mode; ACK after ${config.redis.minReplicas} replica(s))`
      : 'memory store (nothing survives a restart)';
    logger.info(where, { store: config.store, version: VERSION, node: process.versions.node });
    if (auth instanceof JwtAuthenticator) logger.info(`tokens required (${auth.algorithms.join(', ')})`);
    logger.info(server.consoleDir ? `console at ${shown.replace(/\/$/, '')}/console/ (from ${server.consoleDir})` : 'no console build found; /console is not served');
    logger.info(`browser origins: ${server.origins.describe()}`);
    if (config.trustProxy.length > 0) logger.info(`X-Forwarded-For/-Proto believed from ${config.trustProxy.join(', ')}`);
    const { perConnection, perClient } = config.rates;
    logger.info(`publish rate limits: ${perConnection ? `${perConnection}/s per connection` : 'none per connection'}, ${perClient ? `${perClient}/s per client` : 'none per client'}`);
  }
  // Tests and scripts wait for this line (also inside a JSON line), whatever the level: keep its words.
  if (logger.enabled('info')) logger.info(`sluice listening on ${server.url}`, { url: server.url, publicUrl: config.publicUrl });
  else process.stdout.write(`sluice listening on ${server.url}\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    if (!config.quiet) logger.info(`${signal}, draining`, { connections: server.sessions.size });
    const started = Date.now();
    server.close().then(
      () => {
        if (!config.quiet) logger.info('stopped', { ms: Date.now() - started });
        process.exit(0);
      },
      (err: unknown) => { logger.error('shutdown failed', { err }); process.exit(1); },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

const TOKEN_FLAGS = {
  sub: { type: 'string' },
  caps: { type: 'string', multiple: true },
  ttl: { type: 'string' },
  admin: { type: 'boolean' },
  aud: { type: 'string' },
  iss: { type: 'string' },
  kid: { type: 'string' },
  secret: { type: 'string' },
  key: { type: 'string' },
} as const satisfies Flags;

async function token(argv: string[]): Promise<void> {
  const f = parseFlags('token', argv, TOKEN_FLAGS);
  const env = process.env;
  const jwt = await mint({
    sub: f.sub ?? '',
    caps: parseCaps(f.caps ?? []),
    admin: f.admin === true,
    ttlS: parseDuration('--ttl', f.ttl ?? '1h', 's', 1),
    audience: f.aud ?? (env.SLUICE_AUTH_AUDIENCE || undefined),
    issuer: f.iss ?? (env.SLUICE_AUTH_ISSUER || undefined),
    kid: f.kid,
    secret: f.secret ?? (env.SLUICE_AUTH_SECRET || undefined),
    privateKey: f.key,
  });
  process.stdout.write(jwt + '\n');
}

const BACKUP_FLAGS = {
  url: { type: 'string' },
  token: { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  compact: { type: 'boolean' },
} as const satisfies Flags;

async function backup(argv: string[]): Promise<void> {
  const f = parseFlags('backup', argv, BACKUP_FLAGS);
  const compact = f.compact === true;
  if (f.url !== undefined) {
    if (f.data !== undefined || f.out !== undefined) throw new ConfigError('sluice backup --url takes no --data or --out: the gateway writes the copy under its own --backup-dir');
    const r = await backupLive(f.url, f.token ?? (process.env.SLUICE_ADMIN_TOKEN || undefined), compact);
    console.log(`sluice: ${f.url} backed up its store to ${r.dir} (on its host): ${r.topics} topic(s), ${r.bytes} bytes, in ${r.ms} ms; new epoch ${r.epoch} (was ${r.from})`);
    return;
  }
  if (!f.out) throw new ConfigError('sluice backup needs --url <running gateway>, or --out <directory> (new or empty) for a stopped one');
  const data = f.data ?? (process.env.SLUICE_DATA_DIR || './data');
  try {
    const r = await backupDiskStore(data, f.out, { compact });
    if (!r.checked) console.error(`sluice: could not check whether a running gateway has ${data} open (no /proc/locks); a running one is backed up with --url`);
    console.log(`sluice: backed up ${data} to ${r.dir}: ${r.topics} topic(s), ${r.bytes} bytes, in ${r.ms} ms; new epoch ${r.epoch} (was ${r.from})`);
  } catch (err) {
    if (err instanceof BackupError) throw new ConfigError(err.message);
    throw err;
  }
}

/** POST /v1/admin/backup: the gateway at `url` copies its own store. Its refusals exit with code 2. */
async function backupLive(url: string, token: string | undefined, compact: boolean): Promise<Admin.Backup> {
  let endpoint: URL;
  try {
    endpoint = new URL('/v1/admin/backup', url);
  } catch {
    throw new ConfigError(`--url must be the gateway's URL (http://host:port), got "${url.slice(0, 200)}"`);
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') throw new ConfigError(`--url must be an http or https URL, got "${url.slice(0, 200)}"`);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  // Another backup in progress (503 `unavailable`): wait for it, bounded (~2 min).
  for (let attempt = 1; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify(compact ? { compact } : {}) });
    } catch (err) {
      throw new ConfigError(`cannot reach ${endpoint.origin}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (res.status === 201 && body && typeof body === 'object') return body as Admin.Backup;
    const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (res.status === 503 && error?.code === 'unavailable' && attempt < 120) {
      if (attempt === 1) console.error(`sluice: ${error.message ?? 'unavailable'}; waiting`);
      const wait = Math.min(Math.max(Number(res.headers.get('retry-after')) || 1, 1), 10);
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      continue;
    }
    const why = error ? `${error.code}: ${error.message}` : text.slice(0, 300);
    throw new ConfigError(`the gateway at ${endpoint.origin} did not back up (${res.status} ${why})`);
  }
}

const KEYGEN_FLAGS = {
  alg: { type: 'string' },
  out: { type: 'string' },
} as const satisfies Flags;

function keys(argv: string[]): void {
  const f = parseFlags('keygen', argv, KEYGEN_FLAGS);
  const { privateKey, publicKey } = keygen(f.alg ?? 'EdDSA');
  if (f.out === undefined) {
    process.stdout.write(`${privateKey}${publicKey}`);
    return;
  }
  if (!f.out) throw new ConfigError('--out needs a file name prefix');
  const privatePath = `${f.out}.private.pem`;
  const publicPath = `${f.out}.public.pem`;
  // A key is never overwritten (checked for both before writing either); the private one is
  // readable by its owner only.
  for (const path of [privatePath, publicPath]) if (existsSync(path)) throw new ConfigError(`${path} exists; remove it or choose another --out`);
  write(privatePath, privateKey, 0o600);
  write(publicPath, publicKey, 0o644);
  console.log(`sluice: wrote ${privatePath} (private: for whoever mints tokens, --key) and ${publicPath} (public: for the gateway, SLUICE_AUTH_PUBLIC_KEY)`);
}

function write(path: string, text: string, mode: number): void {
  try {
    writeFileSync(path, text, { mode, flag: 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(code === 'EEXIST' ? `${path} exists; remove it or choose another --out` : `cannot write ${path}: ${(err as Error).message}`);
  }
}

async function main(): Promise<void> {
  const [command = 'serve', ...rest] = process.argv.slice(2);
  if (rest.includes('--help') || rest.includes('-h')) { process.stdout.write(USAGE); return; }
  switch (command) {
    case 'serve': return serve(rest);
    case 'token': return token(rest);
    case 'keygen': return keys(rest);
    case 'backup': return backup(rest);
    case 'help': case '--help': case '-h': process.stdout.write(USAGE); return;
    case 'version': case '--version': console.log(VERSION); return;
    default:
      // `sluice --port 1` is `sluice serve --port 1`.
      if (command.startsWith('--')) return serve([command, ...rest]);
      throw new ConfigError(`unknown command "${command}" (try: sluice help)`);
  }
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof StoreInUseError) {
    console.error(`sluice: ${err.message}`);
    process.exit(2);
  }
  logger.error('fatal', { err });
  process.exit(1);
});
