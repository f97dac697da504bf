/**
 * Open-loop scenario family (issue 16): "how much can it push while staying realtime". Beside the
 * closed-loop scenarios (fan-out, many topics), which answer "how much can it push".
 *
 * For each layout (T topics × S subscribers each, 200-byte messages, publisher round-robin) and
 * each target, on one fresh server: a fixed publish rate sent in 1 ms ticks (load/open-loop.ts),
 * starting at an eighth of the reference load and doubled while a step passes, then bisected
 * between the last rate that passed and the first that failed. A step passes when
 * - ≥ 97% of its deliveries arrived within `windowMs` (the latency bound) of the last scheduled send,
 * - the p99 latency (from each message's scheduled send time) is ≤ `p99BoundMs`,
 * - everything arrived within `drainMs` of the last scheduled send (no backlog over 2 s) and the
 *   publisher was never more than `drainMs` behind its schedule,
 * - no subscriber disconnected.
 * It prints the max rate that passed, and p50/p99 and the server's CPU at the reference load (a
 * step of its own when the ladder did not run it).
 */
import { readFileSync } from 'node:fs';
import { SyncTimes } from '../gateway-metrics.js';
import { Fleet } from '../load/fleet.js';
import { OpenLoop, type StepResult } from '../load/open-loop.js';
import { cpuMeter, runQueueMeter } from '../proc-stats.js';
import { isFigures, type OpenLoopFigures, type OpenLoopStep } from '../report/results.js';
import type { RunningTarget } from '../targets/target.js';
import { withTarget, type Context } from './session.js';

export interface OpenLayout {
  /** Key in the results and on the command line: `1x100`, `1000x1`, ... */
  id: string;
  topics: number;
  perTopic: number;
  /** The reference load, in deliveries/s (= msgs/s when each topic has one subscriber). */
  reference: number;
}

/** Every layout the family knows; the profile (or `--layouts`) picks some. */
export const OPEN_LAYOUTS: OpenLayout[] = [
  { id: '1x100', topics: 1, perTopic: 100, reference: 200_000 },
  { id: '1x1000', topics: 1, perTopic: 1000, reference: 200_000 },
  { id: '1000x1', topics: 1000, perTopic: 1, reference: 20_000 },
  { id: '10000x1', topics: 10_000, perTopic: 1, reference: 20_000 },
];

/** Most deliveries/s a ladder asks for: far beyond what one client core reads. */
const MAX_DELIVERIES = 16_000_000;
/** Steps of halving below the start when even the first step fails. */
const MAX_HALVINGS = 3;
/** Time a server gets to catch up after a failed step before the next one. */
const RECOVER_MS = 10_000;

export async function openLoop(ctx: Context): Promise<void> {
  const p = ctx.profile.open;
  const layouts = OPEN_LAYOUTS.filter((l) => p.layouts.includes(l.id));
  for (const layout of layouts) {
    ctx.log(`\nopen loop: ${layout.topics} topic(s) × ${layout.perTopic} subscriber(s), reference ${layout.reference / layout.perTopic} msgs/s, load ${loadavg()}`);
    const row: Record<string, unknown> = {};
    ctx.results.openLoop[layout.id] = row;
    for (const target of ctx.targets) {
      const cell = await withTarget(ctx, target, {}, (t) => ladder(ctx, t, layout), `open ${layout.id}`);
      row[target.id] = cell;
      ctx.log(`  ${target.label.padEnd(24)} ${describe(cell)}`);
    }
  }
}

/** The machine's load averages (1, 5, 15 min): other processes share these cores. */
export function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
}

async function ladder(ctx: Context, t: RunningTarget, layout: OpenLayout): Promise<OpenLoopFigures> {
  const p = ctx.profile.open;
  const fleet = new Fleet(ctx.profile.workers);
  try {
    const n = layout.topics * layout.perTopic;
    const topics = Array.from({ length: n }, (_, i) => i % layout.topics);
    const opened = await fleet.open(t.subscriber({ credit: 64 }), topics);
    if (opened.failed > 0) throw new Error(`${opened.failed} of ${n} subscribers failed to connect: ${opened.firstError}`);
    // Acknowledging publishers may keep the gateway's whole allowance in flight: the open loop
    // must not be throttled by its own ack window before the server is.
    const loop = new OpenLoop(await t.publisher({ window: 10_000 }), fleet, layout.topics, layout.perTopic);
    const steps: OpenLoopStep[] = [];
    const closed0 = (await fleet.report()).closed;
    let disconnected = false;

    const run = async (rate: number): Promise<OpenLoopStep> => {
      await fleet.phase(true);
      const server = cpuMeter(t.pids ?? t.pid);
      const waiting = runQueueMeter(t.pid);
      const syncs = new SyncTimes(t.httpUrl);
      await syncs.begin();
      const r = await loop.step({ rate, durationMs: p.stepMs, windowMs: p.p99BoundMs, drainMs: p.drainMs });
      const cpu = server.percent();
      const report = await fleet.report();
      const closed = report.closed - closed0;
      const s = judge(r, report.latency.quantile(0.5), report.latency.quantile(0.99), closed, cpu, layout, p.p99BoundMs, p.drainMs);
      s.serverWaitMsPerSec = waiting.msPerSec();
      const sync = await syncs.end();
      if (sync) s.sync = sync;
      s.gaps = report.gaps;
      s.dups = report.dups;
      steps.push(s);
      if (closed > 0) disconnected = true;
      // A failed step may leave a backlog: the next step starts once it is gone (or not at all).
      if (!s.pass && !(await loop.settle(RECOVER_MS))) disconnected = true;
      return s;
    };

    const reference = layout.reference / layout.perTopic;
    let rate = reference / 8;
    let lo = 0;
    let hi = Number.POSITIVE_INFINITY;
    // Double while a step passes.
    while (!disconnected && rate * layout.perTopic <= MAX_DELIVERIES) {
      if ((await run(rate)).pass) {
        lo = rate;
        rate *= 2;
      } else {
        hi = rate;
        break;
      }
    }
    // Nothing passed: halve a few times.
    for (let i = 0; lo === 0 && !disconnected && i < MAX_HALVINGS; i++) {
      rate = hi / 2;
      if ((await run(rate)).pass) lo = rate;
      else hi = rate;
    }
    // Bisect between the last pass and the first failure.
    for (let i = 0; lo > 0 && Number.isFinite(hi) && !disconnected && i < p.bisect; i++) {
      const mid = Math.round((lo + hi) / 2);
      if ((await run(mid)).pass) lo = mid;
      else hi = mid;
    }
    // The reference load: the ladder's own step when it ran one, else a step of its own.
    let ref = steps.find((s) => s.rate === reference);
    if (!ref && !disconnected) ref = await run(reference);
    loop.publisher.close();
    const firstFail = steps.find((s) => s.rate === hi);
    return {
      topics: layout.topics,
      perTopic: layout.perTopic,
      maxRate: lo,
      maxDeliveries: lo * layout.perTopic,
      failedAt: Number.isFinite(hi) ? hi : undefined,
      failedBecause: firstFail?.reasons.join(', ') ?? (disconnected ? 'subscribers disconnected' : undefined),
      ...(ref ? { reference: ref } : {}),
      steps,
    };
  } finally {
    await fleet.close();
  }
}

function judge(r: StepResult, p50: number, p99: number, closed: number, cpu: number, layout: OpenLayout, boundMs: number, drainMs: number): OpenLoopStep {
  const reasons: string[] = [];
  const share = r.expected > 0 ? r.inWindow / r.expected : 0;
  if (share < 0.97) reasons.push(`${(share * 100).toFixed(1)}% within ${boundMs} ms`);
  if (!(p99 <= boundMs * 1000)) reasons.push(`p99 ${(p99 / 1000).toFixed(1)} ms`);
  if (!r.drained) reasons.push(`backlog > ${drainMs / 1000} s`);
  if (r.behindMs > drainMs) reasons.push(`publisher ${(r.behindMs / 1000).toFixed(1)} s behind`);
  if (closed > 0) reasons.push(`${closed} disconnected`);
  return {
    rate: r.rate,
    deliveriesPerSec: r.rate * layout.perTopic,
    pass: reasons.length === 0,
    reasons,
    inWindow: share,
    p50,
    p99,
    behindMs: r.behindMs,
    serverCpu: cpu,
    serverWaitMsPerSec: Number.NaN,
    gaps: 0,
    dups: 0,
  };
}

const k = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e4 ? `${(x / 1e3).toFixed(0)}k` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0));

export function describe(cell: unknown): string {
  if (!isFigures<OpenLoopFigures>(cell as OpenLoopFigures)) return JSON.stringify(cell);
  const f = cell as OpenLoopFigures;
  const ref = f.reference;
  return [
    `max ${k(f.maxRate)} msgs/s${f.perTopic > 1 ? ` (${k(f.maxDeliveries)} deliveries/s)` : ''}`,
    f.failedAt ? `fails at ${k(f.failedAt)}: ${f.failedBecause}` : '',
    ref ? `@${k(ref.rate)}/s p50 ${(ref.p50 / 1000).toFixed(2)} ms p99 ${(ref.p99 / 1000).toFixed(1)} ms cpu ${ref.serverCpu.toFixed(0)}%${ref.pass ? '' : ' (fails)'}${ref.sync ? `, fsync p50/p99 ≤ ${ref.sync.p50Ms} / ${ref.sync.p99Ms} ms` : ''}, server waited ${ref.serverWaitMsPerSec.toFixed(0)} ms/s for its core` : '',
    f.steps.some((s) => s.gaps || s.dups) ? `gaps ${f.steps.reduce((a, s) => a + s.gaps, 0)} dups ${f.steps.reduce((a, s) => a + s.dups, 0)}` : '',
  ].filter(Boolean).join(' | ');
}
