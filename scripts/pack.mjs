#!/usr/bin/env node
/**
 * npm lifecycle helper for the published packages, run in the package's directory:
 *   node ../scripts/pack.mjs prepack    (npm pack / npm publish, before the tarball is made)
 *   node ../scripts/pack.mjs postpack   (after)
 *
 * prepack MUST fail when the package is not built: every file its package.json points at (main,
 * types, bin, exports) has to exist. It checks instead of building because the build is the
 * repository's (`npm run build` at the root: project references, the SDK bundle, the console),
 * and a pack that quietly runs half of it could ship a stale piece.
 *
 * For @sluice/server, prepack also copies the built console (../console/dist) into console-dist/,
 * where the gateway finds it when installed from the tarball (server/src/http/console.ts), and the
 * HTTP API's description (../docs/openapi.json) into openapi.json, which the gateway serves at
 * /v1/openapi.json (server/src/http/openapi.ts) and the package exports as
 * `@sluice/server/openapi.json`; postpack removes both copies, so the repository keeps serving its
 * own console/dist and docs/openapi.json.
 */
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const [step] = process.argv.slice(2);
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const CONSOLE_BUILD = '../console/dist';
const CONSOLE_COPY = 'console-dist';
const OPENAPI = '../docs/openapi.json';
const OPENAPI_COPY = 'openapi.json';

function fail(message) {
  console.error(`pack ${pkg.name}: ${message}`);
  process.exit(1);
}

/** Every path package.json names: main, types, bin targets and exports targets. */
function targets(p) {
  const out = [p.main, p.types, ...Object.values(p.bin ?? {})];
  const walk = (v) => {
    if (typeof v === 'string') out.push(v);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(p.exports);
  return out.filter((t) => typeof t === 'string' && !t.includes('*'));
}

if (step === 'prepack') {
  // openapi.json is one of the copies made below, not a build output.
  const missing = targets(pkg).filter((t) => !existsSync(t) && t !== `./${OPENAPI_COPY}`);
  if (missing.length) fail(`not built (missing ${missing.join(', ')}): run \`npm run build\` at the repository root first`);
  if (pkg.name === '@sluice/server') {
    if (!existsSync(join(CONSOLE_BUILD, 'index.html'))) fail(`no console build in ${CONSOLE_BUILD}: run \`npm run build\` at the repository root first`);
    rmSync(CONSOLE_COPY, { recursive: true, force: true });
    cpSync(CONSOLE_BUILD, CONSOLE_COPY, { recursive: true });
    if (!existsSync(OPENAPI)) fail(`no ${OPENAPI}`);
    cpSync(OPENAPI, OPENAPI_COPY);
  }
} else if (step === 'postpack') {
  if (pkg.name === '@sluice/server') {
    rmSync(CONSOLE_COPY, { recursive: true, force: true });
    rmSync(OPENAPI_COPY, { force: true });
  }
} else {
  fail(`unknown step "${step}" (prepack or postpack)`);
}
