/**
 * The measured phases every throughput scenario uses, so they are measured the same way for
 * every target: a max-throughput run (closed-loop window) with server CPU, load CPU and an
 * optional syscall count in the middle, and a fixed-rate run for latency.
 */
import { Feed, type RunResult } from '../load/feed.js';
import type { Fleet, FleetReport } from '../load/fleet.js';
import { cpuMeter, SelfCpu, threadCpuMeter } from '../proc-stats.js';
import type { Latency, LoadCpu } from '../report/results.js';
import { countSyscalls, type SyscallCount } from '../syscalls.js';
import type { RunningTarget } from '../targets/target.js';
import { createSubscriber } from '../clients/factory.js';
import { GatewayMetrics, type GatewaySample } from '../gateway-metrics.js';
import type { Subscriber } from '../clients/subscriber.js';

export interface ThroughputRun {
  /** Sluice only: its subscription states and commit wait over the run, from its /metrics. */
  gateway?: GatewaySample;
  run: RunResult;
  report: FleetReport;
  cpu: LoadCpu;
  deliveredPerSec: number;
  publishedPerSec: number;
  syscalls?: SyscallCount & { deliveries: number; perDelivery: number };
}

/** Most deliveries the subscriber window may leave in flight (bounds the servers' buffers). */
const MAX_IN_FLIGHT = 512_000;

/** The subscriber window (slow loop) for a probe window: at least as deep, within the budget. */
export function subscriberWindowFor(window: number, subscribersPerRound: number): number {
  return Math.max(window, Math.min(512, Math.floor(MAX_IN_FLIGHT / subscribersPerRound)));
}

/** Opens the publisher's in-process probe: a subscriber to `topic`, counted nowhere. */
export async function openProbe(t: RunningTarget, topic: number): Promise<Subscriber> {
  const probe = createSubscriber(t.subscriber({ credit: 64 }), topic, { latency: false, record: () => undefined });
  await probe.open();
  return probe;
}

/**
 * Windows (in rounds) a sweep tries. Targets differ in where they do best: raw uWS collapses when
 * more than ~32 publishes arrive in one loop turn (DESIGN.md), others need a deeper pipeline.
 */
export function sweepWindows(subscribersPerRound: number): number[] {
  const cap = Math.max(4, Math.floor(MAX_IN_FLIGHT / subscribersPerRound));
  return [...new Set([8, 32, 128, 512].map((w) => Math.min(w, cap)))];
}

export interface SweepPoint {
  window: number;
  deliveredPerSec: number;
  serverCpu: number;
}

/**
 * Short max-throughput probes at each window; returns them all and the best window. The probes
 * also warm the target up. The same sweep runs for every target, so each is measured at its best.
 */
export async function sweep(t: RunningTarget, fleet: Fleet, feed: Feed, windows: number[], probeMs: number, perRound: number): Promise<{ best: number; points: SweepPoint[] }> {
  const points: SweepPoint[] = [];
  for (const window of windows) {
    await fleet.phase(false);
    const server = cpuMeter(t.pids ?? t.pid);
    const run = await checkDrained(fleet, await feed.run({ durationMs: probeMs, windowRounds: window, subscriberWindow: subscriberWindowFor(window, perRound) }));
    const report = await fleet.report();
    points.push({ window, deliveredPerSec: report.received / (run.elapsedMs / 1000), serverCpu: server.percent() });
  }
  const best = points.reduce((a, b) => (b.deliveredPerSec > a.deliveredPerSec ? b : a));
  return { best: best.window, points };
}

/** What limited a max-throughput run: a saturated server core, a saturated client core, or neither. */
export function boundBy(cpu: LoadCpu): 'server' | 'clients' | 'window' {
  const clients = cpu.publisher + cpu.workers.reduce((a, b) => a + b, 0);
  if (cpu.server >= 90) return 'server';
  if (clients >= 90) return 'clients';
  return 'window';
}

/** Subscribers stopped receiving: the run has no figure (a lost or stuck delivery is a finding). */
export class StalledError extends Error {
  override name = 'StalledError';
}

/** A run whose subscribers did not all receive everything: no figure, but what happened. */
async function stalled(fleet: Fleet, run: RunResult): Promise<Error> {
  const r = await fleet.report();
  return new StalledError(`delivery stalled: ${run.lastRound} published, the slowest subscriber (load workers or the publisher's probe) stopped at ${r.min}` +
    ` (${r.gaps} gaps, ${r.closed} subscribers disconnected)`);
}

/** Throws when a run (a warm-up, a probe) left a subscriber behind: later runs would wait on it. */
export async function checkDrained(fleet: Fleet, run: RunResult): Promise<RunResult> {
  if (!run.drained) throw await stalled(fleet, run);
  return run;
}

export async function maxThroughput(
  t: RunningTarget,
  fleet: Fleet,
  feed: Feed,
  o: { durationMs: number; windowRounds: number; subscriberWindow: number; syscallSeconds?: number },
): Promise<ThroughputRun> {
  await fleet.phase(false);
  const server = cpuMeter(t.pids ?? t.pid);
  const threads = threadCpuMeter(t.pid);
  const self = new SelfCpu();
  const metrics = t.id.startsWith('sluice') && t.httpUrl ? new GatewayMetrics(t.httpUrl) : undefined;
  metrics?.start();
  let counting: Promise<ThroughputRun['syscalls']> | undefined;
  if (o.syscallSeconds && o.syscallSeconds > 0) {
    // Count in the middle of the run, away from its start and its drain.
    const secs = Math.min(o.syscallSeconds, Math.max(1, Math.floor(o.durationMs / 1000) - 1));
    counting = (async () => {
      await new Promise((resolve) => setTimeout(resolve, Math.min(500, o.durationMs / 4)));
      const before = fleet.total();
      const count = await countSyscalls(t.pid, secs);
      const deliveries = fleet.total() - before;
      return { ...count, deliveries, perDelivery: deliveries > 0 ? count.total / deliveries : Number.NaN };
    })();
  }
  const run = await feed.run({ durationMs: o.durationMs, windowRounds: o.windowRounds, subscriberWindow: o.subscriberWindow });
  const gateway = metrics?.stop();
  if (!run.drained) throw await stalled(fleet, run);
  const cpu: LoadCpu = { server: server.percent(), serverThreads: threads.percent(), publisher: self.percent(), workers: [] };
  const syscalls = counting ? await counting : undefined;
  const report = await fleet.report();
  cpu.workers = report.workerCpu;
  const secs = run.elapsedMs / 1000;
  return {
    run,
    report,
    cpu,
    deliveredPerSec: report.received / secs,
    publishedPerSec: run.messages / secs,
    ...(syscalls ? { syscalls } : {}),
    ...(gateway ? { gateway } : {}),
  };
}

export async function fixedRate(
  fleet: Fleet,
  feed: Feed,
  o: { durationMs: number; windowRounds: number; subscriberWindow: number; rate: number; payloadBytes?: number; signal?: AbortSignal; drainTimeoutMs?: number },
): Promise<{ latency: Latency; report: FleetReport; run: RunResult }> {
  await fleet.phase(true);
  const run = await feed.run({ ...o, chunk: 1_000_000 });
  if (!run.drained) throw await stalled(fleet, run);
  const report = await fleet.report();
  const h = report.latency;
  return {
    run,
    report,
    latency: {
      rate: o.rate,
      achieved: run.messages / (run.sendMs / 1000),
      count: h.count,
      p50: h.quantile(0.5),
      p99: h.quantile(0.99),
      p999: h.quantile(0.999),
      max: h.max,
    },
  };
}
