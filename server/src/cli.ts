#!/usr/bin/env node
/**
 * The `sluice` command.
 *   sluice serve [--port 9400] [--host 127.0.0.1] [--data ./data] [--store disk|memory] ...
 *   sluice token --sub alice --caps 'chat.>=sub,pub' --ttl 1h [--admin]
 *   sluice keygen [--alg EdDSA|ES256]
 * Every serve flag also reads from the environment (see config.ts / `sluice help`).
 */
import { JwtAuthenticator } from './auth/jwt.js';
import { keygen, mint, parseCaps, parseTtl } from './auth/mint.js';
import { ConfigError, loadConfig, OPTIONS } from './config.js';
import { authFromConfig, startServer, VERSION } from './server.js';

const USAGE = `sluice ${VERSION} — realtime pub/sub gateway

Usage:
  sluice serve [options]     start the gateway
  sluice token --sub <id> [--caps '<pattern>=<actions>;...'] [--ttl 1h] [--admin]
               [--aud <aud>] [--iss <iss>] [--kid <kid>] [--secret <s> | --key <private key file>]
                             print a token (HS256 with SLUICE_AUTH_SECRET unless --key is given;
                             --aud/--iss default to SLUICE_AUTH_AUDIENCE/ISSUER)
  sluice keygen [--alg EdDSA|ES256]
                             print a new key pair (private key: for token issuers; public: for the gateway)
  sluice help                this text

Options (flag / environment variable):
${OPTIONS.map((o) => `  --${o.flag.padEnd(18)} ${o.env.padEnd(24)} ${o.help}`).join('\n')}
  --quiet                                       print only the listening line and errors
`;

async function serve(argv: string[]): Promise<void> {
  const config = loadConfig(argv, process.env);
  const auth = authFromConfig(config);
  if (auth.mode === 'dev') {
    console.warn('sluice: WARNING dev mode — no SLUICE_AUTH_SECRET or SLUICE_AUTH_PUBLIC_KEY set: every client may publish, subscribe and administer, from any origin. Never expose this.');
  }
  const server = await startServer(config, { auth });
  if (!config.quiet) {
    const where = config.store === 'disk' ? `disk store at ${config.dataDir} (durability: ${config.durability})` : 'memory store (nothing survives a restart)';
    console.log(`sluice: ${where}`);
    if (auth instanceof JwtAuthenticator) console.log(`sluice: tokens required (${auth.algorithms.join(', ')})`);
    console.log(server.consoleDir ? `sluice: console at ${server.url}/console/ (from ${server.consoleDir})` : 'sluice: no console build found; /console is not served');
    console.log(`sluice: browser origins: ${server.origins.describe()}`);
    const { perConnection, perClient } = config.rates;
    console.log(`sluice: publish rate limits: ${perConnection ? `${perConnection}/s per connection` : 'none per connection'}, ${perClient ? `${perClient}/s per client` : 'none per client'}`);
  }
  console.log(`sluice listening on ${server.url}`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    if (!config.quiet) console.log(`sluice: ${signal}, draining`);
    server.close().then(
      () => process.exit(0),
      (err: unknown) => { console.error('sluice: shutdown failed', err); process.exit(1); },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** `--name value` / `--name=value` / `--flag` arguments of the small commands; repeated names accumulate. */
function flags(argv: readonly string[], booleans: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const value = eq > 0 ? arg.slice(eq + 1) : booleans.includes(name) ? 'true' : argv[++i];
    if (value === undefined) throw new ConfigError(`--${name} needs a value`);
    out.set(name, [...(out.get(name) ?? []), value]);
  }
  return out;
}

async function token(argv: string[]): Promise<void> {
  const f = flags(argv, ['admin']);
  const known = ['sub', 'caps', 'ttl', 'admin', 'aud', 'iss', 'kid', 'secret', 'key'];
  for (const name of f.keys()) if (!known.includes(name)) throw new ConfigError(`unknown option --${name} (token takes --${known.join(', --')})`);
  const one = (name: string) => f.get(name)?.at(-1);
  const env = process.env;
  const jwt = await mint({
    sub: one('sub') ?? '',
    caps: parseCaps(f.get('caps') ?? []),
    admin: one('admin') === 'true',
    ttlS: parseTtl(one('ttl') ?? '1h'),
    audience: one('aud') ?? (env.SLUICE_AUTH_AUDIENCE || undefined),
    issuer: one('iss') ?? (env.SLUICE_AUTH_ISSUER || undefined),
    kid: one('kid'),
    secret: one('secret') ?? (env.SLUICE_AUTH_SECRET || undefined),
    privateKey: one('key'),
  });
  process.stdout.write(jwt + '\n');
}

function keys(argv: string[]): void {
  const f = flags(argv, []);
  const { privateKey, publicKey } = keygen(f.get('alg')?.at(-1) ?? 'EdDSA');
  process.stdout.write(`${privateKey}${publicKey}`);
}

async function main(): Promise<void> {
  const [command = 'serve', ...rest] = process.argv.slice(2);
  switch (command) {
    case 'serve': return serve(rest);
    case 'token': return token(rest);
    case 'keygen': return keys(rest);
    case 'help': case '--help': case '-h': process.stdout.write(USAGE); return;
    case 'version': case '--version': console.log(VERSION); return;
    default:
      // `sluice --port 1` is `sluice serve --port 1`.
      if (command.startsWith('--')) return serve([command, ...rest]);
      throw new ConfigError(`unknown command "${command}" (try: sluice help)`);
  }
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(`sluice: ${err.message}`);
    process.exit(2);
  }
  console.error('sluice: fatal', err);
  process.exit(1);
});
