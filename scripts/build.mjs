#!/usr/bin/env node
/**
 * `npm run build`: compiles every TypeScript project (`tsc -b`), then builds the SDK's browser
 * bundles and the console at the same time (neither reads the other's output; both read the
 * compiled SDK). Fails when any step fails; each step's output is printed when it ends, whole.
 * The console's type check (svelte-check) is part of `npm run lint`, not of the build.
 */
import { spawn } from 'node:child_process';
import { chmodSync } from 'node:fs';

/** Runs a command; resolves with its exit code and what it printed. */
function run(command, args) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  return new Promise((resolve) => {
    child.once('error', (err) => resolve({ code: 1, out: `${out}${command}: ${err.message}\n` }));
    child.once('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

function report(name, r) {
  process.stdout.write(r.out);
  if (r.code !== 0) console.error(`build: ${name} failed (exit ${r.code})`);
  return r.code;
}

if (report('tsc -b', await run('npx', ['tsc', '-b'])) !== 0) process.exit(1);
chmodSync('server/dist/src/cli.js', 0o755);
const steps = [
  ['the SDK bundles', run('npm', ['run', 'bundle', '-w', '@sluice/client'])],
  ['the console', run('npm', ['run', 'build', '-w', '@sluice/console'])],
];
let failed = false;
for (const [name, done] of steps) if (report(name, await done) !== 0) failed = true;
process.exit(failed ? 1 : 0);
