/**
 * What blocks the gateway's event loop (issue 16): the open-loop latency of many small topics at
 * a fixed rate, with the gateway's own view of its event loop beside it.
 *
 *   node bench/dist/src/repro/loop-stall.js [topics=1000] [rate=5000] [seconds=10] [store=memory|disk|commit] [OUTDIR]
 *
 * Starts this checkout's gateway (and, when BENCH_SLUICE_OLD_CLI names one, that build too) pinned
 * like every bench server, with `--cpu-prof` and `--trace-gc` and a preload (`loop-monitor.ts`)
 * that samples `perf_hooks.monitorEventLoopDelay` and writes the event loop's longest blocks
 * with the time they ended; T subscribers, one per topic, and the open-loop publisher at `rate`
 * msgs/s for `seconds`. Prints the delivery latency (from the scheduled send), the event-loop
 * delay, the GC pauses over 2 ms, the functions the profile's long stretches spent their time
 * in, and the main thread's busy time per message by part of the code (`profile.ts` `areaShares`).
 * The profiles and GC traces stay in OUTDIR (default: a temp dir, printed). BENCH_NODE_ARGS adds
 * Node flags to the gateway (e.g. `--single-threaded-gc`); BENCH_PERF=1 records on-CPU samples with
 * `perf record -g` over the measured stretch (gateway run with `--perf-basic-prof`) into OUTDIR:
 * read them with `perf report -i OUTDIR/this-build.perf.data --no-children --sort symbol`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installCleanup, releaseAll, removeDir, tempDir } from '../cleanup.js';
import { SluicePublisher } from '../clients/sluice-publisher.js';
import { Fleet } from '../load/fleet.js';
import { OpenLoop } from '../load/open-loop.js';
import { nowUs } from '../payload.js';
import { cpuMeter } from '../proc-stats.js';
import { CLI, launchGateway, OLD_CLI_ENV, TOPIC_PREFIX } from '../targets/sluice.js';
import { areaShares } from '../profile.js';
import { longStretches } from './profile-stretches.js';

const MONITOR = fileURLToPath(new URL('./loop-monitor.js', import.meta.url));

function storeArgs(store: string, dir: string): string[] {
  if (store === 'memory') return ['--store', 'memory'];
  return ['--store', 'disk', '--data', dir, ...(store === 'commit' ? ['--durability', 'commit'] : [])];
}

async function measure(label: string, cli: string, o: { topics: number; rate: number; seconds: number; store: string; out: string }): Promise<void> {
  const dir = tempDir('sluice-repro-');
  const name = label.replace(/\W+/g, '-');
  const loopFile = join(o.out, `${name}.loop.json`);
  const { p, port } = await launchGateway({
    cli,
    storeArgs: storeArgs(o.store, dir),
    profileDir: o.out,
    profileName: `${name}.cpuprofile`,
    nodeArgs: [...(process.env.BENCH_PERF ? ['--perf-basic-prof'] : []), ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--trace-gc', '--cpu-prof-interval', '250', '--import', MONITOR],
    env: { SLUICE_LOOP_MONITOR: loopFile },
  });
  const fleet = new Fleet(3);
  try {
    const url = `ws://127.0.0.1:${port}`;
    const opened = await fleet.open({ kind: 'sluice', url, prefix: TOPIC_PREFIX, credit: 64 }, Array.from({ length: o.topics }, (_, i) => i));
    if (opened.failed) throw new Error(`${opened.failed} subscribers failed: ${opened.firstError}`);
    const loop = new OpenLoop(await SluicePublisher.open({ url, prefix: TOPIC_PREFIX, window: 10_000, keys: false }), fleet, o.topics, 1);
    // Warm-up (JIT, first allocation of every topic), then the measured stretch.
    await loop.step({ rate: o.rate, durationMs: 2000, windowMs: 50, drainMs: 5000 });
    await fleet.phase(true);
    const cpu = cpuMeter(p.pid);
    const sched0 = schedstat(p.pid);
    const mark = Date.now();
    const fromUs = nowUs();
    // On-CPU samples (perf counts only the time the gateway ran, not the time it waited for its core).
    const perfData = join(o.out, `${name}.perf.data`);
    const perf = process.env.BENCH_PERF
      ? spawn('perf', ['record', '-F', '1999', '-g', '-p', String(p.pid), '-o', perfData, '--', 'sleep', String(o.seconds)], { stdio: 'ignore' })
      : undefined;
    const r = await loop.step({ rate: o.rate, durationMs: o.seconds * 1000, windowMs: 50, drainMs: 5000 });
    const serverCpu = cpu.percent();
    if (perf) await new Promise((resolve) => perf.once('exit', resolve));
    const sched1 = schedstat(p.pid);
    const toUs = nowUs();
    const until = Date.now();
    const rep = await fleet.report();
    const h = rep.latency;
    console.log(`\n${label}: ${o.topics} topics × 1, ${o.rate} msgs/s for ${o.seconds} s, store ${o.store}, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    console.log(`  delivery latency p50 ${(h.quantile(0.5) / 1000).toFixed(2)} ms  p99 ${(h.quantile(0.99) / 1000).toFixed(1)} ms  p99.9 ${(h.quantile(0.999) / 1000).toFixed(1)} ms  max ${(h.max / 1000).toFixed(1)} ms` +
      `  (${(100 * r.inWindow / r.expected).toFixed(1)}% within 50 ms, drained ${r.drained}, server CPU ${serverCpu.toFixed(0)}%)`);
    loop.publisher.close();
    await p.stop(30_000);
    console.log(`  server main thread waited ${((sched1.waitNs - sched0.waitNs) / 1e6 / o.seconds).toFixed(0)} ms/s for its core (schedstat; other processes on it), ran ${((sched1.runNs - sched0.runNs) / 1e6 / o.seconds).toFixed(0)} ms/s`);
    const monitor = JSON.parse(readFileSync(loopFile, 'utf8')) as {
      seconds: { at: number; p50: number; p99: number; max: number }[];
      blocks: { at: number; ms: number }[];
      gcs: { at: number; ms: number; kind: number }[];
    };
    const during = monitor.seconds.filter((s) => s.at >= mark && s.at <= until + 1000);
    const max = (f: (s: { p50: number; p99: number; max: number }) => number) => Math.max(...during.map(f));
    console.log(`  event-loop delay per second (monitorEventLoopDelay, 1 ms resolution): worst p99 ${max((s) => s.p99).toFixed(1)} ms, worst max ${max((s) => s.max).toFixed(1)} ms`);
    const blocks = monitor.blocks.filter((b) => b.at >= mark && b.at <= until);
    const gaps = blocks.slice(1).map((b, i) => b.at - blocks[i]!.at);
    console.log(`  loop blocks ≥ 5 ms: ${blocks.length} (${(blocks.length / o.seconds).toFixed(1)}/s), median gap ${gaps.length ? gaps.sort((a, b) => a - b)[gaps.length >> 1] : 'n/a'} ms, longest ${Math.max(0, ...blocks.map((b) => b.ms)).toFixed(1)} ms`);
    const gcs = monitor.gcs.filter((g) => g.at >= mark && g.at <= until);
    const kinds: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weak', 16: 'minor' };
    const gcMs = gcs.reduce((a, g) => a + g.ms, 0);
    console.log(`  GC pauses ≥ 1 ms in the stretch (PerformanceObserver): ${gcs.length}, ${gcMs.toFixed(0)} ms in all, longest ${Math.max(0, ...gcs.map((g) => g.ms)).toFixed(1)} ms` +
      ` (${[...new Set(gcs.map((g) => kinds[g.kind] ?? g.kind))].join(', ')}); blocks ≥ 5 ms that ended within 2 ms of a GC: ${blocks.filter((b) => gcs.some((g) => Math.abs(g.at - b.at) < 2 + b.ms)).length}`);
    writeFileSync(join(o.out, `${name}.out`), p.output());
    const gc = gcPauses(p.output());
    console.log(`  --trace-gc (output tail): ${gc.length} pauses ≥ 2 ms: ${gc.map((g) => `${g.kind} ${g.ms.toFixed(1)}`).slice(0, 8).join(', ')}`);
    const prof = readdirSync(o.out).find((f) => f.startsWith(name) && f.endsWith('.cpuprofile'));
    if (prof) {
      console.log('  what the profile\'s stretches of ≥ 5 ms without idle spent their time in (self time):');
      for (const line of longStretches(join(o.out, prof), 5, 12, fromUs, toUs)) console.log(`    ${line}`);
      // Busy time by part of the code, as CPU per message (the main thread's busy time in the stretch ÷ messages sent).
      const areas = areaShares(JSON.parse(readFileSync(join(o.out, prof), 'utf8')) as Parameters<typeof areaShares>[0], fromUs, toUs);
      const busyMs = areas.reduce((a, x) => a + x.ms, 0);
      console.log(`  the main thread's busy time in the stretch by part of the code (uWS's own native work outside a JS call counts as idle): ${busyMs.toFixed(0)} ms, ${((1000 * busyMs) / r.expected).toFixed(1)} µs per message sent`);
      for (const a of areas) console.log(`    ${(a.share * 100).toFixed(1).padStart(5)}%  ${((1000 * a.ms) / r.expected).toFixed(2).padStart(6)} µs/msg  ${a.area}`);
    }
  } finally {
    await fleet.close();
    await p.stop(30_000);
    removeDir(dir);
  }
}

/** The main thread's time on its core and waiting for it (ns), from /proc/PID/schedstat. */
function schedstat(pid: number): { runNs: number; waitNs: number } {
  const [run = 0, wait = 0] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  return { runNs: run, waitNs: wait };
}

function gcPauses(output: string): { kind: string; ms: number }[] {
  const out: { kind: string; ms: number }[] = [];
  for (const m of output.matchAll(/ ms: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Sweep)[^,]*, ([\d.]+) \/ ([\d.]+) ms/g)) {
    const ms = Number(m[2]);
    if (ms >= 2) out.push({ kind: m[1]!, ms });
  }
  return out;
}

async function main(): Promise<void> {
  installCleanup();
  const a = process.argv.slice(2);
  const o = { topics: Number(a[0] ?? 1000), rate: Number(a[1] ?? 5000), seconds: Number(a[2] ?? 10), store: a[3] ?? 'memory', out: a[4] ?? join(tmpdir(), `sluice-loop-${process.pid}`) };
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'README'), 'CPU profiles and event-loop samples of bench/src/repro/loop-stall.ts\n');
  console.log(`profiles and samples in ${o.out}`);
  await measure('this build', CLI, o);
  const old = process.env[OLD_CLI_ENV];
  if (old) await measure('old build', old, o);
}

main().then(
  () => { releaseAll(); process.exit(0); },
  (err: unknown) => { console.error(err); releaseAll(); process.exit(2); },
);
