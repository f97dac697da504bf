#!/usr/bin/env node
/**
 * One Sluice queue run with its knobs exposed, to find what limits the queue figure: the
 * publisher's window, the end-to-end bound, idempotency keys, the members' credit (and, through
 * BENCH_SLUICE_DURABILITY=commit, the gateway's durability). Same clients and loop as the queue
 * scenario; one fresh gateway; prints one line. Alternate settings in a series: single runs move
 * with the machine.
 *
 *   node bench/dist/src/repro/queue-knobs.js [window=1024] [inFlight=4096] [seconds=5] [keys=1] [credit=64]
 */
import { execFileSync } from 'node:child_process';
import { installCleanup, releaseAll } from '../cleanup.js';
import { GatewayMetrics } from '../gateway-metrics.js';
import { Fleet } from '../load/fleet.js';
import { QueueFeed } from '../load/queue-feed.js';
import { cpuMeter, SelfCpu, threadCpuMeter } from '../proc-stats.js';
import { DURABILITY_ENV, sluiceTarget, TOPIC_PREFIX } from '../targets/sluice.js';

async function main(): Promise<void> {
  installCleanup();
  const [window = 1024, inFlight = 4096, seconds = 5, keys = 1, credit = 64] = process.argv.slice(2).map(Number);
  try {
    execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  } catch {
    // not pinned: the line says so below
  }
  const t = await sluiceTarget.start({});
  const fleet = new Fleet(3);
  try {
    const members = Array.from({ length: 10 }, () => 0);
    const opened = await fleet.open({ kind: 'sluice-group', url: t.wsUrl!, prefix: TOPIC_PREFIX, group: 'bench', credit }, members);
    if (opened.failed) throw new Error(opened.firstError);
    const publisher = await t.publisher({ window, keys: keys === 1 });
    const feed = new QueueFeed(publisher, fleet);
    await feed.run({ durationMs: 1500, inFlight });
    await fleet.phase(true);
    const server = cpuMeter(t.pid);
    const threads = threadCpuMeter(t.pid);
    const self = new SelfCpu();
    const metrics = new GatewayMetrics(t.httpUrl!);
    metrics.start();
    const r = await feed.run({ durationMs: seconds * 1000, inFlight });
    const commitMs = metrics.stop().appendMs;
    const report = await fleet.report();
    const th = threads.percent();
    const h = report.latency;
    console.log(`window ${window}, in flight ${inFlight}, keys ${keys === 1 ? 'on' : 'off'}, credit ${credit}, durability ${process.env[DURABILITY_ENV] ?? 'flush'}: ` +
      `${Math.round(r.acked / (r.elapsedMs / 1000))} acked msgs/s${r.drained ? '' : ' (NOT drained)'}, gateway ${server.percent().toFixed(0)}% ` +
      `(main ${th.main.toFixed(0)}, others ${th.others.toFixed(0)}), publisher ${self.percent().toFixed(0)}%, members ${report.workerCpu.map((c) => c.toFixed(0)).join('/')}%, ` +
      `publish → ack p50/p99 ${(h.quantile(0.5) / 1000).toFixed(1)}/${(h.quantile(0.99) / 1000).toFixed(1)} ms, publish → commit ${commitMs.toFixed(1)} ms` +
      `${report.errors ? `, ${report.errors} member errors (${report.firstError})` : ''}${report.redelivered ? `, ${report.redelivered} redelivered` : ''}`);
    publisher.close();
  } finally {
    await fleet.close();
    await t.stop();
  }
}

main().then(
  () => { releaseAll(); process.exit(0); },
  (err: unknown) => { console.error(err); releaseAll(); process.exit(1); },
);
