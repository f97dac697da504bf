/**
 * What one publish costs the gateway at a fixed rate, in figures that do not depend much on how
 * busy the machine is: CPU time, bytes written, fsyncs and syscalls per 1,000 messages (the
 * latency is printed too, but on a shared machine it says more about the neighbours).
 *
 *   node bench/dist/src/repro/store-cost.js [layout=1000x1] [rate=3000] [seconds=10] [rounds=2] [store=disk|commit|memory]
 *
 * Starts this checkout's gateway and, when BENCH_SLUICE_OLD_CLI names one, that build too, in
 * alternating order each round (new, old, then old, new) so drift of the machine lands on both
 * (BENCH_COST_BUILDS="label=CLI,..." adds more builds);
 * `layout` is topics × subscribers each (1000x1: many small topics; 1x100: fan-out); the
 * open-loop publisher at `rate` msgs/s (publishes, round-robin over the topics) for `seconds` after
 * a 2 s warm-up. Figures are per 1,000 deliveries (= messages at one subscriber per topic). Counts from /proc/PID/stat (CPU of every thread), /proc/PID/io (wchar, write_bytes),
 * /proc/PID/schedstat (the main thread) and `perf stat` on the syscall tracepoints.
 */
import { readFileSync } from 'node:fs';
import { installCleanup, releaseAll, removeDir, tempDir } from '../cleanup.js';
import { SluicePublisher } from '../clients/sluice-publisher.js';
import { Fleet } from '../load/fleet.js';
import { OpenLoop } from '../load/open-loop.js';
import { cpuSeconds } from '../proc-stats.js';
import { countSyscalls } from '../syscalls.js';
import { CLI, launchGateway, OLD_CLI_ENV, TOPIC_PREFIX } from '../targets/sluice.js';

interface Options { topics: number; perTopic: number; rate: number; seconds: number; store: string }

function storeArgs(store: string, dir: string): string[] {
  if (store === 'memory') return ['--store', 'memory'];
  return ['--store', 'disk', '--data', dir, ...(store === 'commit' ? ['--durability', 'commit'] : [])];
}

function procIo(pid: number): { wchar: number; writeBytes: number } {
  const text = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { wchar: field('wchar'), writeBytes: field('write_bytes') };
}

function mainThreadNs(pid: number): { runNs: number; waitNs: number } {
  const [run = 0, wait = 0] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  return { runNs: run, waitNs: wait };
}

async function measure(label: string, cli: string, o: Options): Promise<string> {
  const dir = tempDir('sluice-cost-');
  const { p, port } = await launchGateway({ cli, storeArgs: storeArgs(o.store, dir) });
  const fleet = new Fleet(3);
  try {
    const url = `ws://127.0.0.1:${port}`;
    const opened = await fleet.open({ kind: 'sluice', url, prefix: TOPIC_PREFIX, credit: 64 }, Array.from({ length: o.topics * o.perTopic }, (_, i) => i % o.topics));
    if (opened.failed) throw new Error(`${opened.failed} subscribers failed: ${opened.firstError}`);
    const loop = new OpenLoop(await SluicePublisher.open({ url, prefix: TOPIC_PREFIX, window: 10_000, keys: false }), fleet, o.topics, o.perTopic);
    await loop.step({ rate: o.rate, durationMs: 2000, windowMs: 50, drainMs: 5000 });
    await fleet.phase(true);
    const cpu0 = cpuSeconds(p.pid);
    const io0 = procIo(p.pid);
    const main0 = mainThreadNs(p.pid);
    const calls = countSyscalls(p.pid, o.seconds);
    const r = await loop.step({ rate: o.rate, durationMs: o.seconds * 1000, windowMs: 50, drainMs: 5000 });
    const cpu1 = cpuSeconds(p.pid);
    const io1 = procIo(p.pid);
    const main1 = mainThreadNs(p.pid);
    const sc = await calls;
    const rep = await fleet.report();
    loop.publisher.close();
    const per = 1000 / r.expected;
    const sync = (sc.byName.fdatasync ?? 0) + (sc.byName.fsync ?? 0) + (sc.byName.msync ?? 0);
    const scPer = 1000 / (o.rate * o.perTopic * sc.seconds);
    const h = rep.latency;
    return `| ${label} | ${((cpu1 - cpu0) * 1000 * per).toFixed(1)} | ${((main1.runNs - main0.runNs) / 1e6 * per).toFixed(1)} | ` +
      `${((main1.waitNs - main0.waitNs) / 1e6 / o.seconds).toFixed(0)} | ${((io1.wchar - io0.wchar) / 1024 * per).toFixed(0)} | ${((io1.writeBytes - io0.writeBytes) / 1024 * per).toFixed(0)} | ` +
      `${(sync * scPer).toFixed(1)} | ${(sc.total * scPer).toFixed(0)} | ${(h.quantile(0.5) / 1000).toFixed(1)} / ${(h.quantile(0.99) / 1000).toFixed(1)} | ${(100 * r.inWindow / r.expected).toFixed(1)}% |`;
  } finally {
    await fleet.close();
    await p.stop(30_000);
    removeDir(dir);
  }
}

async function main(): Promise<void> {
  installCleanup();
  const a = process.argv.slice(2);
  const [topics = 1000, perTopic = 1] = (a[0] ?? '1000x1').split('x').map(Number);
  const o: Options = { topics, perTopic, rate: Number(a[1] ?? 3000), seconds: Number(a[2] ?? 10), store: a[4] ?? 'disk' };
  const rounds = Number(a[3] ?? 2);
  const builds: [string, string][] = [['this build', CLI]];
  const old = process.env[OLD_CLI_ENV];
  if (old) builds.push(['old build', old]);
  // More builds to compare (variants of a change): BENCH_COST_BUILDS="label=/path/cli.js,label=/path/cli.js".
  for (const b of (process.env.BENCH_COST_BUILDS ?? '').split(',').filter(Boolean)) {
    const [label = '', cli = ''] = b.split('=');
    builds.push([label, cli]);
  }
  console.log(`${o.topics} topics × ${o.perTopic}, ${o.rate} msgs/s for ${o.seconds} s, store ${o.store}, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log('| build (per 1k deliveries) | CPU ms (all threads) | main thread ms | main waited ms/s | wchar KiB | write_bytes KiB | fsyncs | syscalls | p50 / p99 ms | within 50 ms |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|---:|');
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? builds : [...builds].reverse();
    for (const [label, cli] of order) console.log(await measure(label, cli, o));
  }
  console.log(`load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
}

main().then(
  () => { releaseAll(); process.exit(0); },
  (err: unknown) => { console.error(err); releaseAll(); process.exit(2); },
);
