#!/usr/bin/env node
/**
 * `npm run bench` — measures Sluice and the alternatives in the same run on the same machine and
 * prints a table of figures and ratios; writes bench/results/latest.json and latest.md.
 *
 *   node bench/dist/src/run.js [--full] [--only fanout,many,memory,slow,resume,publish]
 *                              [--targets sluice,uws,socketio,ws,nats,sluice-auth]
 *                              [--workers N] [--profile] [--out DIR]
 *
 * The bench pins itself (and so its load workers) to the client core and every server to the
 * other core when `taskset` exists.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installCleanup, releaseAll } from './cleanup.js';
import { machine } from './machine.js';
import { FULL, QUICK, type Profile } from './options.js';
import type { Results } from './report/results.js';
import { evaluateGoals } from './report/goals.js';
import { renderMarkdown, renderText } from './report/table.js';
import { fanout } from './scenarios/fanout.js';
import { manyTopics } from './scenarios/many-topics.js';
import { memory } from './scenarios/memory.js';
import { publish } from './scenarios/publish.js';
import { resume } from './scenarios/resume.js';
import type { Context } from './scenarios/session.js';
import { slowConsumers } from './scenarios/slow-consumer.js';
import { summariseProfiles } from './profile.js';
import { ALL_TARGETS } from './targets/registry.js';
import type { TargetId } from './targets/target.js';

const SCENARIOS = {
  fanout,
  many: manyTopics,
  memory,
  slow: slowConsumers,
  resume,
  publish,
} as const;
type ScenarioName = keyof typeof SCENARIOS;

/** Scenarios the auth-on variant runs in (where auth adds a cost: connecting, publishing). */
const AUTH_SCENARIOS: ScenarioName[] = ['fanout', 'publish'];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function pinSelf(): void {
  const m = machine();
  if (!m.taskset) return;
  try {
    // -a: every thread of this process; children forked later inherit the mask.
    execFileSync('taskset', ['-a', '-p', '-c', String(m.clientCpu), String(process.pid)], { stdio: 'ignore' });
  } catch (err) {
    m.taskset = false;
    m.notes.push(`could not pin the bench to CPU ${m.clientCpu}: ${(err as Error).message}; nothing is pinned`);
  }
}

async function main(): Promise<void> {
  installCleanup();
  const base: Profile = process.argv.includes('--full') ? FULL : QUICK;
  const profile: Profile = { ...base, workers: Number(arg('workers') ?? base.workers) };
  const only = (arg('only')?.split(',') ?? Object.keys(SCENARIOS)) as ScenarioName[];
  const ids = (arg('targets')?.split(',') ?? ALL_TARGETS.map((t) => t.id)) as TargetId[];
  const outDir = arg('out') ?? fileURLToPath(new URL('../../results', import.meta.url));
  const profileDir = process.argv.includes('--profile') ? join(outDir, 'profiles') : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });

  pinSelf();
  const m = machine();
  const log = (line: string) => console.log(line);
  log(`sluice bench — ${profile.mode} run`);
  log(`machine: ${m.cores} cores, ${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}`);
  log(`peers: ${Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  log(m.taskset ? `pinning: servers on CPU ${m.serverCpu}, bench + ${profile.workers} load workers on CPU ${m.clientCpu}` : `pinning: none (${m.notes.join('; ')})`);
  log(`syscall counts: ${m.perf ? 'perf stat' : m.strace ? 'strace -c -f' : 'not available'}`);

  const results: Results = {
    startedAt: new Date().toISOString(),
    finishedAt: '',
    command: `node bench/dist/src/run.js ${process.argv.slice(2).join(' ')}`.trim(),
    profile,
    machine: m,
    fanout: {},
    manyTopics: {},
    memory: {},
    slow: {},
    resume: {},
    publish: {},
    goals: [],
    notes: [...m.notes],
  };
  for (const name of only) {
    const targets = ALL_TARGETS.filter((t) => ids.includes(t.id) && (t.id !== 'sluice-auth' || AUTH_SCENARIOS.includes(name)));
    const ctx: Context = { profile, targets, results, profileDir, log };
    await SCENARIOS[name](ctx);
  }
  results.finishedAt = new Date().toISOString();
  results.goals = evaluateGoals(results);

  const text = renderText(results);
  log(`\n${text}`);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(outDir, 'latest.md'), renderMarkdown(results));
  log(`\nwrote ${join(outDir, 'latest.json')} and latest.md`);
  if (profileDir) log(`\n${summariseProfiles(profileDir)}`);
}

main().then(
  () => {
    releaseAll();
    process.exit(0);
  },
  (err: unknown) => {
    console.error('bench failed:', err);
    releaseAll();
    process.exit(1);
  },
);
