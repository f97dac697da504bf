#!/usr/bin/env node
/**
 * `npm run bench` — measures Sluice and the alternatives in the same run on the same machine and
 * prints a table of figures and ratios; writes bench/results/latest.json and latest.md.
 *
 *   node bench/dist/src/run.js [--full] [--only fanout,many,open,memory,slow,nonreading,resume,publish,cluster,queue]
 *                              [--targets sluice,sluice-commit,sluice-memory,uws,socketio,ws,nats,rabbitmq,sluice-auth,
 *                                         sluice-old,sluice-old-memory,sluice-cluster,socketio-cluster,socketio-streams-cluster]
 *                              [--sizes N,N] [--layouts 1x100,1x1000,1000x1,10000x1] [--connections N] [--workers N] [--profile] [--out DIR]
 *
 * The bench pins itself (and so its load workers) to the client core and every server to the
 * other core when `taskset` exists. `sluice-old` is another gateway build (BENCH_SLUICE_OLD_CLI),
 * for an A/B in one run; `--sizes` replaces the fan-out sizes of the profile. `rabbitmq` (the
 * machine's broker, not started by the bench) runs in the queue scenario only.
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
import { OPEN_LAYOUTS, openLoop } from './scenarios/open-loop.js';
import { memory } from './scenarios/memory.js';
import { publish } from './scenarios/publish.js';
import { resume } from './scenarios/resume.js';
import type { Context } from './scenarios/session.js';
import { slowConsumers } from './scenarios/slow-consumer.js';
import { nonReading } from './scenarios/nonreading.js';
import { summariseProfiles } from './profile.js';
import { cluster } from './scenarios/cluster.js';
import { QUEUE_TARGETS, queue } from './scenarios/queue.js';
import { ALL_TARGETS, CLUSTER_TARGETS, defaultTargetIds } from './targets/registry.js';
import { DURABILITY_ENV, OLD_CLI_ENV } from './targets/sluice.js';
import type { Target } from './targets/target.js';
import type { TargetId } from './targets/target.js';

const SCENARIOS = {
  fanout,
  many: manyTopics,
  open: openLoop,
  memory,
  slow: slowConsumers,
  nonreading: nonReading,
  resume,
  publish,
  cluster,
  queue,
} as const;
type ScenarioName = keyof typeof SCENARIOS;

/** Scenarios the auth-on variant runs in (where auth adds a cost: connecting, publishing). */
const AUTH_SCENARIOS: ScenarioName[] = ['fanout', 'publish'];
/**
 * Scenarios the old build runs in: the A/B of a gateway change (delivery, catch-up, publishing,
 * what non-reading subscribers cost).
 */
const OLD_BUILD_SCENARIOS: ScenarioName[] = ['fanout', 'many', 'nonreading', 'resume', 'publish', 'memory'];
/** Store variants of Sluice: they run in the open-loop scenario only. */
const OPEN_ONLY: TargetId[] = ['sluice-commit', 'sluice-memory', 'sluice-old-memory'];

/**
 * The non-reading scenario runs Sluice (and its old build) against the two peers of its issue: raw
 * uWS (closes at its backpressure limit) and Socket.IO (buffers); each run takes minutes in full.
 */
const NONREADING_TARGETS: TargetId[] = ['sluice', 'sluice-old', 'uws', 'socketio'];

/**
 * The targets a scenario runs, of those selected. The cluster scenario runs the cluster targets and
 * the disk-store gateway (`sluice`) as its reference; no other scenario runs a cluster. The queue
 * scenario runs Sluice, RabbitMQ and NATS (JetStream); no other scenario runs RabbitMQ.
 */
function targetsFor(name: ScenarioName, ids: TargetId[]): Target[] {
  if (name === 'cluster') return [...ALL_TARGETS.filter((t) => t.id === 'sluice'), ...CLUSTER_TARGETS].filter((t) => ids.includes(t.id));
  if (name === 'queue') return ALL_TARGETS.filter((t) => ids.includes(t.id) && QUEUE_TARGETS.includes(t.id));
  if (name === 'open') return ALL_TARGETS.filter((t) => ids.includes(t.id) && t.id !== 'rabbitmq' && t.id !== 'sluice-auth');
  return ALL_TARGETS.filter((t) => ids.includes(t.id) && t.id !== 'rabbitmq' && !OPEN_ONLY.includes(t.id)
    && (t.id !== 'sluice-auth' || AUTH_SCENARIOS.includes(name))
    && (t.id !== 'sluice-old' || OLD_BUILD_SCENARIOS.includes(name))
    && (name !== 'nonreading' || NONREADING_TARGETS.includes(t.id)));
}

/**
 * `--targets` order, when given, is the run order (an A/B can run the old build first); the
 * default is the table's order, Sluice first.
 */
function inOrder(targets: Target[], ids: TargetId[], given: boolean): Target[] {
  return given ? [...targets].sort((a, b) => ids.indexOf(a.id) - ids.indexOf(b.id)) : targets;
}

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
  const sizes = arg('sizes')?.split(',').map(Number);
  const layouts = arg('layouts')?.split(',');
  for (const l of layouts ?? []) if (!OPEN_LAYOUTS.some((o) => o.id === l)) throw new Error(`unknown layout ${l} (${OPEN_LAYOUTS.map((o) => o.id).join(', ')})`);
  const profile: Profile = {
    ...base,
    workers: Number(arg('workers') ?? base.workers),
    ...(sizes ? { fanout: { ...base.fanout, sizes } } : {}),
    ...(layouts ? { open: { ...base.open, layouts } } : {}),
    ...(arg('connections') ? { memory: { ...base.memory, connections: Number(arg('connections')) } } : {}),
  };
  const only = (arg('only')?.split(',') ?? Object.keys(SCENARIOS)) as ScenarioName[];
  for (const name of only) if (!(name in SCENARIOS)) throw new Error(`unknown scenario ${name} (${Object.keys(SCENARIOS).join(', ')})`);
  const ids = (arg('targets')?.split(',') ?? defaultTargetIds()) as TargetId[];
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
  const oldCli = process.env[OLD_CLI_ENV];
  if (ids.some((id) => id.startsWith('sluice-old'))) log(`old build (sluice-old): ${oldCli ?? 'not set'}`);

  const results: Results = {
    startedAt: new Date().toISOString(),
    finishedAt: '',
    command: `node bench/dist/src/run.js ${process.argv.slice(2).join(' ')}`.trim(),
    profile,
    machine: m,
    fanout: {},
    manyTopics: {},
    openLoop: {},
    memory: {},
    slow: {},
    nonReading: {},
    resume: {},
    publish: {},
    cluster: { fanout: {}, publish: {}, resume: {} },
    queue: { throughput: {}, latencyRate: 0, redelivery: {} },
    goals: [],
    notes: [
      ...m.notes,
      ...(ids.some((id) => id.startsWith('sluice-old')) ? [`sluice-old runs ${oldCli ?? '(not set)'}; sluice runs this checkout's build`] : []),
      ...(process.env[DURABILITY_ENV] ? [`disk-store gateways run with --durability ${process.env[DURABILITY_ENV]} (${DURABILITY_ENV})`] : []),
    ],
  };
  for (const name of only) {
    const ctx: Context = { profile, targets: inOrder(targetsFor(name, ids), ids, arg('targets') !== undefined), results, profileDir, log };
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
