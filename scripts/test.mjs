#!/usr/bin/env node
/**
 * Runs every test after the build (`npm test` builds first): the compiled unit and gateway tests
 * (node:test, two files at a time) and, at the same time, the lint (`npm run lint`) and the browser
 * end-to-end suite (Playwright, `npm test -w e2e`) when it exists. All run to the end; the run
 * fails when any fails. Usage: node scripts/test.mjs [name-filter] (a filter runs only the node
 * tests whose path contains it: no lint, no browser tests).
 *
 * Why at the same time: much of each suite's time is spent waiting (on sockets, timers, child
 * processes, Chromium), so on two cores the lint (≈ 20 s alone) and the browser suite (≈ 1 min
 * alone) fit mostly inside the node tests (≈ 2 min alone) instead of following them. The suites
 * start their gateways, Redis and nginx on free ports and in their own temp dirs, so they share
 * nothing; the browser suite keeps one Playwright worker. The node tests report file by file as
 * each ends; the others' reports are held back until the node tests have ended (then printed whole, lint
 * first, and the browser suite streamed from there), so reports never interleave. Each block is
 * framed by a line naming its suite, and the last lines say how each suite ended and when.
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

// The longest files (each 6–20 s alone, longest first: measured one at a time on a quiet machine)
// start first, so the run does not end with one of them running alone while the other slots have
// nothing left; the rest follow in directory order.
const LONGEST = ['pack', 'log-redis', 'cluster-failover', 'cluster', 'delayed', 'cluster-admin', 'backup', 'cluster-groups', 'log', 'transactions', 'auth', 'cli', 'harness', 'admin'];
const rank = (p) => {
  const i = LONGEST.indexOf(p.slice(p.lastIndexOf('/') + 1, -'.test.js'.length));
  return i < 0 ? LONGEST.length : i;
};
const files = roots.flatMap(find).sort((a, b) => rank(a) - rank(b));
// Files that mostly wait (wall time 2.7–3.4× their CPU time, measured one at a time: failure
// detection, failovers, timeouts) run one at a time in a lane of their own beside the others, so
// their waiting does not hold one of the CPU-bound slots.
const WAITING = ['cluster-failover', 'cluster-admin', 'admin', 'groups', 'http-pull'];
const waits = (p) => WAITING.includes(p.slice(p.lastIndexOf('/') + 1, -'.test.js'.length));
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

/** A suite whose output is kept until `release()`, then written whole and streamed from there on. */
function held(name, command, args) {
  const r = run(command, args, ['ignore', 'pipe', 'pipe']);
  const chunks = [];
  let holding = true;
  const forward = (stream) => (chunk) => { if (holding) chunks.push([stream, chunk]); else stream.write(chunk); };
  r.child.stdout.on('data', forward(process.stdout));
  r.child.stderr.on('data', forward(process.stderr));
  return {
    name,
    done: r.done,
    release() {
      console.log(`── ${name}${children.has(r.child) ? ', still running' : ''}:`);
      holding = false;
      for (const [stream, chunk] of chunks.splice(0)) stream.write(chunk);
    },
  };
}

// Stopping this run stops every suite (by their PIDs); their helpers' processes die with them.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    for (const child of children) child.kill(signal);
    process.exit(1);
  });
}

const others = [];
if (!filter) {
  others.push(held('lint', 'npm', ['run', 'lint']));
  if (existsSync('e2e/package.json')) others.push(held('browser suite (Playwright)', 'npm', ['test', '-w', 'e2e']));
}

// Each file runs in its own process, as `node --test` would run it, CONCURRENCY at a time, the
// longest first (Node 20's `node --test` sorts the files by path, so it cannot be told the order).
// A test that hangs fails after 5 minutes instead of holding the run; a file whose tests all ended
// exits even if a handle leaked (the processes the helpers start die with their parent). A file's
// report is printed whole when it ends; the counts at its end are summed into one at the end.
// Files at a time: SLUICE_TEST_CONCURRENCY, default 2, while the lint or the browser suite runs;
// SLUICE_TEST_CONCURRENCY_ALONE, default 4, once both have ended. With them alongside, 3 was not
// faster than 2 on two cores (147.6 against 145.0 s, quiet machine): the run is CPU-bound there.
// The files left by then are the short ones (0.5–2 s, mostly waiting on sockets and process
// start-up), which 2 at a time left half the CPU idle for the last ~35 s.
const CONCURRENCY = Number(process.env.SLUICE_TEST_CONCURRENCY ?? 2);
const ALONE = Math.max(CONCURRENCY, Number(process.env.SLUICE_TEST_CONCURRENCY_ALONE ?? 4));
const flags = ['--enable-source-maps', '--expose-gc', '--test-reporter=spec', '--test-timeout=300000', '--test-force-exit'];
console.log(`── node:test: ${files.length} files, ${CONCURRENCY} at a time and those that mostly wait one at a time beside them${others.length ? ` (${ALONE} once the others end)` : ''}, each reported when it ends${others.length ? `; meanwhile ${others.map((o) => o.name).join(' and ')}, reported after` : ''}`);
const counts = new Map();
const failedFiles = [];
async function runFile(file) {
  const r = run(process.execPath, [...flags, file], ['ignore', 'pipe', 'pipe']);
  let out = '';
  r.child.stdout.on('data', (d) => { out += d; });
  r.child.stderr.on('data', (d) => { out += d; });
  const { code } = await r.done;
  const lines = out.split('\n').filter((line) => {
    const m = /^ℹ (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ([\d.]+)$/.exec(line);
    if (m) counts.set(m[1], (counts.get(m[1]) ?? 0) + Number(m[2]));
    return !m;
  });
  if (code !== 0) failedFiles.push(`${file} (exit ${code})`);
  process.stdout.write(`── ${file}${code === 0 ? '' : ` FAILED (exit ${code})`}, ${seconds()}\n${lines.join('\n').trimEnd()}\n`);
}
const queue = files.filter((f) => !waits(f));
const lane = files.filter(waits);
const worker = async () => {
  for (let file; (file = queue.shift() ?? lane.shift()) !== undefined;) await runFile(file);
};
const workers = Array.from({ length: CONCURRENCY }, worker);
workers.push((async () => {
  for (let file; (file = lane.shift()) !== undefined;) await runFile(file);
})());
// More workers once the other suites have ended (at once when there are none).
workers.push(Promise.all(others.map((o) => o.done)).then(() => Promise.all(Array.from({ length: ALONE - CONCURRENCY }, worker))));
await Promise.all(workers);
for (const [k, v] of counts) console.log(`ℹ ${k} ${k === 'duration_ms' ? `${(v / 1000).toFixed(1)} s summed over the files` : v}`);
for (const f of failedFiles) console.log(`✖ ${f}`);
const results = [['node:test', { code: failedFiles.length ? 1 : 0, at: seconds() }]];

for (const o of others) {
  o.release();
  results.push([o.name, await o.done]);
}

for (const [name, r] of results) console.log(`── ${name} ${r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`}, ended ${r.at} after the start`);
process.exit(results.find(([, r]) => r.code !== 0)?.[1].code ?? 0);
