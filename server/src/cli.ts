#!/usr/bin/env node
/**
 * The `sluice` command.
 *   sluice serve [--port 9400] [--host 127.0.0.1] [--data ./data] [--store disk|memory] ...
 * Every flag also reads from the environment (see config.ts / `sluice help`).
 */
import { ConfigError, loadConfig, OPTIONS } from './config.js';
import { startServer, VERSION } from './server.js';

const USAGE = `sluice ${VERSION} — realtime pub/sub gateway

Usage:
  sluice serve [options]     start the gateway
  sluice help                this text

Options (flag / environment variable):
${OPTIONS.map((o) => `  --${o.flag.padEnd(18)} ${o.env.padEnd(24)} ${o.help}`).join('\n')}
  --quiet                                       print only the listening line and errors
`;

async function serve(argv: string[]): Promise<void> {
  const config = loadConfig(argv, process.env);
  if (!config.authSecret) {
    console.warn('sluice: WARNING dev mode — no SLUICE_AUTH_SECRET set, every client may publish, subscribe and administer. Never expose this.');
  } else {
    throw new ConfigError('token authentication is not available in this build yet; unset SLUICE_AUTH_SECRET');
  }
  const server = await startServer(config);
  if (!config.quiet) {
    const where = config.store === 'disk' ? `disk store at ${config.dataDir} (durability: ${config.durability})` : 'memory store (nothing survives a restart)';
    console.log(`sluice: ${where}`);
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

async function main(): Promise<void> {
  const [command = 'serve', ...rest] = process.argv.slice(2);
  switch (command) {
    case 'serve': return serve(rest);
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
