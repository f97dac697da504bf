#!/usr/bin/env node
// The `sluice` command. This file is committed, not built: npm links a package's `bin` at install
// time and skips one whose target does not exist yet, and dist/ only appears with the build — so
// `npm ci` in the repository would leave no node_modules/.bin/sluice if bin named dist/src/cli.js.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/src/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('sluice: the gateway is not built yet: run `npm run build` at the repository root');
  process.exit(1);
}
await import(cli.href);
