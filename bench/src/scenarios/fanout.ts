/**
 * Scenario 1, fan-out: one topic, N subscribers, 200-byte messages.
 *
 * - Max delivered msgs/s: the closed-loop publisher (load/feed.ts) with an in-flight window;
 *   Sluice subscribers run credit windows of 64 (re-granting 32 at a time); raw uWS publishes one
 *   frame per message. Syscalls per delivery are counted in the middle of the run.
 * - Latency p50/p99/p99.9 at a fixed publish rate: the same rate for every target, a fraction
 *   (`latencyLoad`, 50%) of the publish rate Sluice sustained at that size in this run.
 */
import { Feed } from '../load/feed.js';
import { Fleet } from '../load/fleet.js';
import { rssBytes } from '../proc-stats.js';
import { isFigures, type FanoutFigures } from '../report/results.js';
import { createSubscriber } from '../clients/factory.js';
import type { SubscriberSpec } from '../clients/subscriber.js';
import type { RunningTarget } from '../targets/target.js';
import { boundBy, checkDrained, fixedRate, maxThroughput, subscriberWindowFor, sweep, sweepWindows } from './measure.js';
import { withTarget, type Context } from './session.js';

const MB = 1024 * 1024;

export async function fanout(ctx: Context): Promise<void> {
  const p = ctx.profile.fanout;
  for (const n of p.sizes) {
    ctx.log(`\nfan-out: 1 topic × ${n} subscribers`);
    const row: Record<string, unknown> = {};
    ctx.results.fanout[String(n)] = row;
    let latencyRate: number | undefined;
    for (const target of ctx.targets) {
      const cell = await withTarget(ctx, target, {}, async (t) => {
        const f = await measureFanout(ctx, t, n, { specs: [t.subscriber({ credit: 64 })], probe: t.subscriber({ credit: 64 }), latencyRate });
        // Every target is measured at the same rate: a share of what Sluice sustained (the first
        // Sluice build measured, when an A/B runs two).
        if (target.id === 'sluice' || target.id === 'sluice-old') latencyRate ??= f.latency?.rate;
        return f;
      }, `fan-out ${n}`);
      row[target.id] = cell;
      ctx.log(`  ${target.label.padEnd(18)} ${describeFanout(cell)}`);
    }
  }
}

export interface FanoutLayout {
  /** Where the subscribers connect: `n` subscribers dealt in equal shares over these. */
  specs: SubscriberSpec[];
  /** The publisher's in-process probe (fast feedback of the feed's window). */
  probe: SubscriberSpec;
  /** The fixed publish rate of the latency run; undefined: `latencyLoad` of this run's own rate. */
  latencyRate: number | undefined;
  /** Awaited right before and after the max-throughput run (nothing in flight at either point). */
  around?: { start(): Promise<void>; end(messages: number): Promise<Partial<FanoutFigures>> };
}

/**
 * One target's fan-out figures at `n` subscribers, all on topic 0: warm-up, window sweep,
 * max-throughput run (with syscalls), fixed-rate latency run. The publisher is `t.publisher()`.
 */
export async function measureFanout(ctx: Context, t: RunningTarget, n: number, layout: FanoutLayout): Promise<FanoutFigures> {
  const p = ctx.profile.fanout;
  const fleet = new Fleet(ctx.profile.workers);
  try {
    const shares = layout.specs.map((_, i) => Math.floor(n / layout.specs.length) + (i < n % layout.specs.length ? 1 : 0));
    for (const [i, spec] of layout.specs.entries()) {
      const opened = await fleet.open(spec, Array.from({ length: shares[i]! }, () => 0));
      if (opened.failed > 0) throw new Error(`${opened.failed} of ${shares[i]} subscribers failed to connect to ${spec.url}: ${opened.firstError}`);
    }
    const probe = createSubscriber(layout.probe, 0, { latency: false, record: () => undefined });
    await probe.open();
    const feed = new Feed(await t.publisher({ window: 1000 }), fleet, 1, probe.tally);
    await checkDrained(fleet, await feed.run({ durationMs: p.warmupMs, windowRounds: 32 }));
    const { best: window, points } = await sweep(t, fleet, feed, sweepWindows(n), p.probeMs, n);
    const subscriberWindow = subscriberWindowFor(window, n);
    await layout.around?.start();
    const m = await maxThroughput(t, fleet, feed, { durationMs: p.measureMs, windowRounds: window, subscriberWindow, syscallSeconds: p.syscallSeconds });
    const extra = await layout.around?.end(m.run.messages);
    const figures: FanoutFigures = {
      ...extra,
      subscribers: n,
      window,
      sweep: points,
      bound: boundBy(m.cpu),
      published: m.run.messages,
      publishedPerSec: m.publishedPerSec,
      delivered: m.report.received,
      deliveredPerSec: m.deliveredPerSec,
      drained: m.run.drained,
      gaps: m.report.gaps,
      dups: m.report.dups,
      closed: m.report.closed,
      cpu: m.cpu,
      serverRssMB: (t.pids ?? [t.pid]).reduce((a, pid) => a + rssBytes(pid), 0) / MB,
      ...(m.syscalls ? { syscalls: m.syscalls } : {}),
      ...(m.gateway ? { gateway: m.gateway } : {}),
    };
    const rate = Math.max(10, Math.round(layout.latencyRate ?? m.publishedPerSec * p.latencyLoad));
    const l = await fixedRate(fleet, feed, { durationMs: p.latencyMs, windowRounds: window, subscriberWindow, rate });
    figures.latency = l.latency;
    figures.gaps += l.report.gaps;
    figures.dups += l.report.dups;
    feed.publisher.close();
    probe.close();
    return figures;
  } finally {
    await fleet.close();
  }
}

export function describeFanout(cell: unknown): string {
  if (!isFigures<FanoutFigures>(cell as FanoutFigures)) return JSON.stringify(cell);
  const f = cell as FanoutFigures;
  const k = (x: number) => `${(x / 1000).toFixed(0)}k`;
  const l = f.latency;
  return [
    `${k(f.deliveredPerSec)} deliveries/s (${f.publishedPerSec.toFixed(0)} pub/s, window ${f.window}, ${f.bound}-bound)`,
    f.drained ? '' : 'NOT DRAINED',
    f.gaps || f.dups ? `gaps ${f.gaps} dups ${f.dups}` : '',
    `cpu server ${f.cpu.server.toFixed(0)}% workers ${f.cpu.workers.map((c) => c.toFixed(0)).join('/')}% pub ${f.cpu.publisher.toFixed(0)}%`,
    f.syscalls ? `syscalls/delivery ${f.syscalls.perDelivery.toFixed(3)}` : '',
    l ? `latency @${l.rate}/s p50 ${l.p50}µs p99 ${l.p99}µs p99.9 ${l.p999}µs` : '',
  ].filter(Boolean).join(' | ');
}
