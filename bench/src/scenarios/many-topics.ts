/**
 * Scenario 2, many topics: T topics with one subscriber each (T connections), the publisher going
 * round-robin over them, 200-byte messages. Every message reaches exactly one subscriber, so
 * nothing can be shared: this measures the per-message cost (for Sluice: a durable append per
 * message and one frame per delivery; for the others: one publish and one frame).
 */
import { Feed } from '../load/feed.js';
import { Fleet } from '../load/fleet.js';
import { isFigures, type ManyTopicsFigures } from '../report/results.js';
import { boundBy, checkDrained, maxThroughput, openProbe, subscriberWindowFor, sweep } from './measure.js';
import { withTarget, type Context } from './session.js';

/** Windows in rounds of T messages each. */
const WINDOWS = [1, 2, 8, 32];

export async function manyTopics(ctx: Context): Promise<void> {
  const p = ctx.profile.manyTopics;
  const n = p.topics;
  ctx.log(`\nmany topics: ${n} topics × 1 subscriber, publisher round-robin`);
  for (const target of ctx.targets) {
    const cell = await withTarget(ctx, target, {}, async (t) => {
      const fleet = new Fleet(ctx.profile.workers);
      try {
        const opened = await fleet.open(t.subscriber({ credit: 64 }), Array.from({ length: n }, (_, i) => i));
        if (opened.failed > 0) throw new Error(`${opened.failed} of ${n} subscribers failed to connect: ${opened.firstError}`);
        const probe = await openProbe(t, n - 1);
        const feed = new Feed(await t.publisher({ window: 1000 }), fleet, n, probe.tally);
        await checkDrained(fleet, await feed.run({ durationMs: p.warmupMs, windowRounds: 1 }));
        const windows = WINDOWS.filter((w) => w <= subscriberWindowFor(1, n));
        const { best: window, points } = await sweep(t, fleet, feed, windows, p.probeMs, n);
        const m = await maxThroughput(t, fleet, feed, {
          durationMs: p.measureMs,
          windowRounds: window,
          subscriberWindow: subscriberWindowFor(window, n),
          syscallSeconds: ctx.profile.fanout.syscallSeconds,
        });
        feed.publisher.close();
        probe.close();
        const figures: ManyTopicsFigures = {
          topics: n,
          window,
          sweep: points,
          bound: boundBy(m.cpu),
          delivered: m.report.received,
          deliveredPerSec: m.deliveredPerSec,
          drained: m.run.drained,
          gaps: m.report.gaps,
          dups: m.report.dups,
          cpu: m.cpu,
          ...(m.syscalls ? { syscalls: m.syscalls } : {}),
          ...(m.gateway ? { gateway: m.gateway } : {}),
        };
        return figures;
      } finally {
        await fleet.close();
      }
    }, 'many topics');
    ctx.results.manyTopics[target.id] = cell;
    ctx.log(`  ${target.label.padEnd(18)} ${describe(cell)}`);
  }
}

function describe(cell: unknown): string {
  if (!isFigures<ManyTopicsFigures>(cell as ManyTopicsFigures)) return JSON.stringify(cell);
  const f = cell as ManyTopicsFigures;
  return [
    `${(f.deliveredPerSec / 1000).toFixed(0)}k deliveries/s (window ${f.window} rounds, ${f.bound}-bound)`,
    f.drained ? '' : 'NOT DRAINED',
    f.gaps || f.dups ? `gaps ${f.gaps} dups ${f.dups}` : '',
    `cpu server ${f.cpu.server.toFixed(0)}% workers ${f.cpu.workers.map((c) => c.toFixed(0)).join('/')}% pub ${f.cpu.publisher.toFixed(0)}%`,
    f.syscalls ? `syscalls/delivery ${f.syscalls.perDelivery.toFixed(3)}` : '',
  ].filter(Boolean).join(' | ');
}
