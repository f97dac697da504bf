#!/usr/bin/env node
/**
 * Runs every test: the compiled unit and gateway tests (node:test, two files at a time) and, at the
 * same time, the browser end-to-end suite (Playwright, `npm test -w e2e`) when it exists. Both run to
 * the end; the run fails when either fails. Usage: node scripts/test.mjs [name-filter] (a filter runs
 * only the node tests whose path contains it, and no browser tests).
 *
 * Why at the same time: much of either suite's time is spent waiting (on sockets, timers, child
 * processes, Chromium), so on two cores the browser suite (≈ 1.5 min alone) fits mostly inside the
 * node tests (≈ 2 min alone) instead of following them. Both suites start their gateways, Redis and
 * nginx on free ports and in their own temp dirs, so they share nothing; the browser suite keeps
 * one Playwright worker, and the node tests two files at a time. The node tests' report streams as it comes; the browser suite's is held
 * back until the node tests have ended (then printed whole, and streamed from there), so the two
 * never interleave. Each block is framed by a line naming its suite, and the last lines say how
 * each suite ended and how long it took.
 */
import { spawn } from 'node:child_process';
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

const started = Date.now();
const seconds = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
const children = new Set();

/** Runs a command; `done` resolves with its exit code (1 when it died of a signal or did not start) and when it ended. */
function run(command, args, stdio) {
  const child = spawn(command, args, { stdio });
  children.add(child);
  const done = new Promise((resolve) => {
    child.once('error', (err) => { console.error(`${command}: ${err.message}`); resolve({ code: 1, at: seconds() }); });
    child.once('close', (code) => { children.delete(child); resolve({ code: code ?? 1, at: seconds() }); });
  });
  return { child, done };
}

// Stopping this run stops both suites (by their PIDs); their helpers' processes die with them.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    for (const child of children) child.kill(signal);
    process.exit(1);
  });
}

// The browser suite, its output held until the node tests have reported.
let e2e;
const held = [];
let holding = true;
if (!filter && existsSync('e2e/package.json')) {
  e2e = run('npm', ['test', '-w', 'e2e'], ['ignore', 'pipe', 'pipe']);
  const forward = (stream) => (chunk) => { if (holding) held.push([stream, chunk]); else stream.write(chunk); };
  e2e.child.stdout.on('data', forward(process.stdout));
  e2e.child.stderr.on('data', forward(process.stderr));
}

// A test that hangs fails after 5 minutes instead of holding the run; a file whose tests all ended
// exits even if a handle leaked (the processes the helpers start die with their parent).
const guards = ['--test-timeout=300000', '--test-force-exit'];
console.log(`── node:test: ${files.length} files, two at a time${e2e ? '; the browser suite runs meanwhile, its report follows' : ''}`);
const unit = run(process.execPath, ['--enable-source-maps', '--expose-gc', '--test', '--test-reporter=spec', '--test-concurrency=2', ...guards, ...files], 'inherit');
const units = await unit.done;

let browser;
if (e2e) {
  console.log(`── browser suite (Playwright)${children.has(e2e.child) ? ', still running' : ''}:`);
  holding = false;
  for (const [stream, chunk] of held.splice(0)) stream.write(chunk);
  browser = await e2e.done;
}

const verdict = (r) => `${r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`}, ended ${r.at} after the start`;
console.log(`── node:test ${verdict(units)}`);
if (browser) console.log(`── browser suite ${verdict(browser)}`);
process.exit(units.code !== 0 ? units.code : browser?.code ?? 0);
