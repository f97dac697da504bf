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
import { boundBy, checkDrained, fixedRate, maxThroughput, openProbe, subscriberWindowFor, sweep, sweepWindows } from './measure.js';
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
        const fleet = new Fleet(ctx.profile.workers);
        try {
          const opened = await fleet.open(t.subscriber({ credit: 64 }), Array.from({ length: n }, () => 0));
          if (opened.failed > 0) throw new Error(`${opened.failed} of ${n} subscribers failed to connect: ${opened.firstError}`);
          const probe = await openProbe(t, 0);
          const feed = new Feed(await t.publisher({ window: 1000 }), fleet, 1, probe.tally);
          await checkDrained(fleet, await feed.run({ durationMs: p.warmupMs, windowRounds: 32 }));
          const { best: window, points } = await sweep(t, fleet, feed, sweepWindows(n), p.probeMs, n);
          const subscriberWindow = subscriberWindowFor(window, n);
          const m = await maxThroughput(t, fleet, feed, { durationMs: p.measureMs, windowRounds: window, subscriberWindow, syscallSeconds: p.syscallSeconds });
          const figures: FanoutFigures = {
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
            serverRssMB: rssBytes(t.pid) / MB,
            ...(m.syscalls ? { syscalls: m.syscalls } : {}),
            ...(m.gateway ? { gateway: m.gateway } : {}),
          };
          // Every target is measured at the same rate: a share of what Sluice sustained.
          const rate = Math.max(10, Math.round((latencyRate ?? m.publishedPerSec * p.latencyLoad)));
          if (target.id === 'sluice') latencyRate = rate;
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
      }, `fan-out ${n}`);
      row[target.id] = cell;
      ctx.log(`  ${target.label.padEnd(18)} ${describe(cell)}`);
    }
  }
}

function describe(cell: unknown): string {
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
