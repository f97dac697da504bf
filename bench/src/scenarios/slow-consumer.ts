/**
 * Scenario 4, slow-consumer isolation: N subscribers of one topic, of which a few never consume
 * (Sluice: they grant no credit after their first window; the others: their socket is paused, so
 * the server's send buffers for them fill). On one server: the fast subscribers alone (baseline
 * A), then with the slow ones joined (B), then alone again once the slow ones are gone (A'); B is
 * measured against the mean of A and A', so warm-up and drift do not pass for a cost:
 *
 * - the fast subscribers' max throughput (same probe and subscriber windows in every run) and
 *   their p99 latency at a fixed rate (half of A's publish rate, in B and A' too);
 * - the server's RSS and anonymous RSS over B (start, peak) against A, i.e. what the slow ones
 *   cost it;
 * - what became of the slow subscribers, found by letting them consume again at the end:
 *   throttled (nothing held, everything delivered from the log afterwards), buffered (everything
 *   delivered from server memory), dropped (gaps), or disconnected.
 */
import { Feed } from '../load/feed.js';
import { Fleet } from '../load/fleet.js';
import { anonRssBytes, rssBytes } from '../proc-stats.js';
import { isFigures, type SlowFigures } from '../report/results.js';
import type { RunningTarget } from '../targets/target.js';
import { checkDrained, fixedRate, maxThroughput, openProbe, subscriberWindowFor } from './measure.js';
import { withTarget, type Context } from './session.js';

const MB = 1024 * 1024;
const WINDOW = 32;

interface Phase {
  perSec: number;
  publishedPerSec: number;
  p99: number;
  gaps: number;
  dups: number;
  /** Server RSS and anonymous RSS over the max-throughput run (bytes: start, peak). */
  rss: { start: number; peak: number; anonStart: number; anonPeak: number; seconds: number };
}

/** A max-throughput run with the server's memory sampled, then a fixed-rate run for p99. */
async function phase(t: RunningTarget, fleet: Fleet, feed: Feed, n: number, measureMs: number, rate: number | undefined): Promise<Phase> {
  const subscriberWindow = subscriberWindowFor(WINDOW, n);
  const start = rssBytes(t.pid);
  const anonStart = anonRssBytes(t.pid);
  let peak = start;
  let anonPeak = anonStart;
  const t0 = performance.now();
  const sample = () => {
    peak = Math.max(peak, rssBytes(t.pid));
    anonPeak = Math.max(anonPeak, anonRssBytes(t.pid));
  };
  const sampler = setInterval(sample, 500);
  const m = await maxThroughput(t, fleet, feed, { durationMs: measureMs, windowRounds: WINDOW, subscriberWindow });
  clearInterval(sampler);
  sample();
  const seconds = (performance.now() - t0) / 1000;
  const l = await fixedRate(fleet, feed, { durationMs: Math.min(3000, measureMs), windowRounds: WINDOW, subscriberWindow, rate: rate ?? Math.max(10, m.publishedPerSec / 2) });
  return {
    perSec: m.deliveredPerSec,
    publishedPerSec: m.publishedPerSec,
    p99: l.latency.p99,
    gaps: m.report.gaps + l.report.gaps,
    dups: m.report.dups + l.report.dups,
    rss: { start, peak, anonStart, anonPeak, seconds },
  };
}

/**
 * One server: the fast subscribers alone (baseline), then the same with the slow ones added, so
 * the two runs differ only by the slow subscribers.
 */
async function run(ctx: Context, t: RunningTarget): Promise<SlowFigures> {
  const p = ctx.profile.slow;
  const fast = p.subscribers - p.slow;
  const fleet = new Fleet(ctx.profile.workers);
  try {
    const spec = t.subscriber({ credit: 64 });
    const opened = await fleet.open(spec, Array.from({ length: fast }, () => 0));
    if (opened.failed > 0) throw new Error(`${opened.failed} of ${fast} subscribers failed to connect: ${opened.firstError}`);
    const probe = await openProbe(t, 0);
    const feed = new Feed(await t.publisher({ window: 1000 }), fleet, 1, probe.tally);
    await checkDrained(fleet, await feed.run({ durationMs: 500, windowRounds: WINDOW, subscriberWindow: subscriberWindowFor(WINDOW, p.subscribers) }));
    const before = await phase(t, fleet, feed, p.subscribers, p.baselineMs, undefined);

    const slowOpened = await fleet.open(spec, Array.from({ length: p.slow }, () => 0), p.slow, true);
    if (slowOpened.failed > 0) throw new Error(`${slowOpened.failed} slow subscribers failed to connect: ${slowOpened.firstError}`);
    const startedAt = Date.now();
    const rate = Math.max(10, before.publishedPerSec / 2);
    const slow = await phase(t, fleet, feed, p.subscribers, p.slowMs, rate);
    const behaviour = await fateOfSlow(fleet, feed.rounds, p.slow, startedAt);
    await fleet.closeSlow();
    const after = await phase(t, fleet, feed, p.subscribers, p.baselineMs, rate);
    feed.publisher.close();
    probe.close();
    const base = {
      perSec: (before.perSec + after.perSec) / 2,
      p99: (before.p99 + after.p99) / 2,
      rss: before.rss,
      gaps: before.gaps + after.gaps,
      dups: before.dups + after.dups,
    };
    return {
      subscribers: p.subscribers,
      slow: p.slow,
      baselinePerSec: base.perSec,
      withSlowPerSec: slow.perSec,
      throughputCost: 1 - slow.perSec / base.perSec,
      baselineP99: base.p99,
      withSlowP99: slow.p99,
      rssStartMB: slow.rss.start / MB,
      rssPeakMB: slow.rss.peak / MB,
      growthMB: (slow.rss.peak - slow.rss.start) / MB,
      anonGrowthMB: (slow.rss.anonPeak - slow.rss.anonStart) / MB,
      baselineGrowthMB: (base.rss.peak - base.rss.start) / MB,
      baselineAnonGrowthMB: (base.rss.anonPeak - base.rss.anonStart) / MB,
      baselineSeconds: base.rss.seconds,
      seconds: slow.rss.seconds,
      behaviour,
      baselineRuns: [before.perSec, after.perSec],
      gaps: base.gaps + slow.gaps,
      dups: base.dups + slow.dups,
    };
  } finally {
    await fleet.close();
  }
}

/** Lets the slow subscribers consume again and reports what they get. */
async function fateOfSlow(fleet: Fleet, lastRound: number, slow: number, startedAt: number): Promise<string> {
  const before = await fleet.report();
  await fleet.phase(false);
  await fleet.unstall();
  const complete = await fleet.waitSlow(lastRound, 60_000);
  const after = await fleet.report();
  const closed = after.slowClosed;
  const parts: string[] = [];
  if (closed > 0) {
    const when = before.slowFirstClosedAt >= 0 ? ` (the first after ${((before.slowFirstClosedAt - startedAt) / 1000).toFixed(0)} s)` : ' (seen once they read again)';
    parts.push(`${closed}/${slow} disconnected by the server${when}`);
  }
  const open = after.slowLast.length - closed;
  if (after.gaps > 0) parts.push(`dropped ${after.gaps} messages to ${open} still connected`);
  else if (open > 0 && complete) parts.push(`${open} got every message after resuming`);
  else if (open > 0) parts.push(`${open} still catching up after 60 s (at ${Math.min(...after.slowLast)} of ${lastRound})`);
  return parts.join('; ');
}

export async function slowConsumers(ctx: Context): Promise<void> {
  const p = ctx.profile.slow;
  ctx.log(`\nslow consumers: 1 topic × ${p.subscribers} subscribers, ${p.slow} of them not consuming, ${p.slowMs / 1000} s`);
  for (const target of ctx.targets) {
    const cell = await withTarget(ctx, target, {}, (t) => run(ctx, t), 'slow consumers');
    ctx.results.slow[target.id] = cell;
    ctx.log(`  ${target.label.padEnd(18)} ${isFigures<SlowFigures>(cell)
      ? `fast subscribers ${(cell.baselinePerSec / 1000).toFixed(0)}k (A ${(cell.baselineRuns[0]! / 1000).toFixed(0)}k, A' ${(cell.baselineRuns[1]! / 1000).toFixed(0)}k) → ${(cell.withSlowPerSec / 1000).toFixed(0)}k deliveries/s (cost ${(cell.throughputCost * 100).toFixed(1)}%), p99 ${cell.baselineP99} → ${cell.withSlowP99} µs, server RSS +${cell.growthMB.toFixed(1)} MB (anonymous +${cell.anonGrowthMB.toFixed(1)} MB; without slow ones +${cell.baselineGrowthMB.toFixed(1)} / +${cell.baselineAnonGrowthMB.toFixed(1)} MB over ${cell.baselineSeconds.toFixed(0)} s) over ${cell.seconds.toFixed(0)} s; slow ones: ${cell.behaviour}`
      : JSON.stringify(cell)}`);
  }
}
