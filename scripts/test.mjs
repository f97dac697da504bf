#!/usr/bin/env node
/**
 * Runs every test: the compiled unit and gateway tests (node:test), then the browser
 * end-to-end suite when it exists. Usage: node scripts/test.mjs [name-filter]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const filter = process.argv[2];
const roots = ['client-sdk/dist/test', 'server/dist/test', 'bench/dist/test'];

function find(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return find(p);
    return p.endsWith('.test.js') && (!filter || p.includes(filter)) ? [p] : [];
  });
}

const files = roots.flatMap(find);
if (files.length === 0) {
  console.error('no test files found (did the build run?)');
  process.exit(1);
}
// A test that hangs fails after 5 minutes instead of holding the run; a file whose tests all ended
// exits even if a handle leaked (the processes the helpers start die with their parent).
const guards = ['--test-timeout=300000', '--test-force-exit'];
const unit = spawnSync(process.execPath, ['--enable-source-maps', '--expose-gc', '--test', '--test-reporter=spec', '--test-concurrency=2', ...guards, ...files], { stdio: 'inherit' });
if (unit.status !== 0) process.exit(unit.status ?? 1);

if (!filter && existsSync('e2e/package.json')) {
  const e2e = spawnSync('npm', ['test', '-w', 'e2e'], { stdio: 'inherit' });
  if (e2e.status !== 0) process.exit(e2e.status ?? 1);
}
