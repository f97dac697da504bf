/**
 * Non-reading subscribers (issue 14.3): subscribers that take the largest window and never read
 * their socket. 300 Sluice subscribers SUB with credit 4096 (the gateway's maxCredit) and, once
 * SUBSCRIBED, stop reading the TCP socket altogether while staying connected (a PING every few
 * seconds: clients/subscriber.ts `Stall`); for the peers, which have no credit, the same subscribers
 * pause their socket. Beside them a few readers consume as usual (credit 64), on the same topic,
 * fed at a fixed rate of 1 KiB messages. On one server:
 *
 * - A: the readers alone; B: with the non-reading ones connected; A': alone again once they are
 *   gone. The readers' delivered msgs/s, p50/p99 publish → delivery latency, gaps and duplicates
 *   in each; B's p99 is compared with the mean of A's and A''s, so drift does not pass for a cost;
 * - the server's RSS and anonymous RSS sampled every 500 ms over B, from before the non-reading
 *   ones connect: start, peak, end. Anonymous, because the disk store's LMDB map is file-backed and
 *   grows with the log whoever reads it (A shows that growth alone). What the kernel holds at B's
 *   end (the server's send queues, the clients' receive queues) is read with `ss`: the bytes the
 *   non-reading ones were sent are in one or the other. A server past RSS_CAP ends B early (a peer
 *   that buffers without bound would take the machine): recorded, not hidden;
 * - what became of the non-reading ones: how many were seen disconnected while paused (their
 *   keepalive write refused), then a sample of the others reads again and must reach the last
 *   message published, without a gap: from the server's buffers, from the log, or not at all (found
 *   disconnected, with the close code).
 *
 * The non-reading ones cost the load generator nothing while paused (the kernel holds what the
 * server managed to send); only the resumed sample reads its backlog at the end.
 */
import { Feed } from '../load/feed.js';
import { Fleet } from '../load/fleet.js';
import { anonRssBytes, cpuMeter, rssBytes, tcpQueuedBytes } from '../proc-stats.js';
import { isFigures, type NonReadingFigures, type ReadersPhase, type RssOver } from '../report/results.js';
import type { RunningTarget } from '../targets/target.js';
import { checkDrained, fixedRate, openProbe } from './measure.js';
import { withTarget, type Context } from './session.js';
import { GatewayMetrics } from '../gateway-metrics.js';

const MB = 1024 * 1024;
/** A server whose RSS passes this ends the phase with the non-reading subscribers early. */
const RSS_CAP = 6 * 1024 * MB;
const SAMPLE_MS = 500;
/** Longest wait for the resumed sample to reach the last message. */
const CATCH_UP_MS = 120_000;
/**
 * How long the readers may take to receive what was published once a phase stops sending: a peer
 * that fell seconds behind copying every message into 300 buffers is slow, not stalled.
 */
const DRAIN_MS = 60_000;
/** The readers' credit: the bench's usual subscriber. */
const READER_CREDIT = 64;

type Profile = Context['profile']['nonReading'];

/** Samples a process's RSS and anonymous RSS: start, peak (and when), end. */
class RssTrack {
  private readonly t0 = performance.now();
  readonly start: number;
  readonly anonStart: number;
  peak: number;
  anonPeak: number;
  last: number;
  anonLast: number;
  peakAt = 0;
  anonPeakAt = 0;
  readonly series: [number, number, number][] = [];

  constructor(private readonly pid: number) {
    this.start = this.peak = this.last = rssBytes(pid);
    this.anonStart = this.anonPeak = this.anonLast = anonRssBytes(pid);
    this.series.push([0, Math.round(this.start / MB), Math.round(this.anonStart / MB)]);
  }

  sample(): void {
    this.last = rssBytes(this.pid);
    this.anonLast = anonRssBytes(this.pid);
    this.series.push([Math.round(this.seconds() * 10) / 10, Math.round(this.last / MB), Math.round(this.anonLast / MB)]);
    if (this.last > this.peak) {
      this.peak = this.last;
      this.peakAt = this.seconds();
    }
    if (this.anonLast > this.anonPeak) {
      this.anonPeak = this.anonLast;
      this.anonPeakAt = this.seconds();
    }
  }

  seconds(): number {
    return (performance.now() - this.t0) / 1000;
  }

  figures(): RssOver {
    this.sample();
    return {
      startMB: this.start / MB,
      peakMB: this.peak / MB,
      endMB: this.last / MB,
      anonStartMB: this.anonStart / MB,
      anonPeakMB: this.anonPeak / MB,
      anonEndMB: this.anonLast / MB,
      peakAtSeconds: this.peakAt,
      anonPeakAtSeconds: this.anonPeakAt,
      seconds: this.seconds(),
      series: this.series,
    };
  }
}

/**
 * The readers at the fixed rate for `durationMs`, the server's memory sampled into `track`; ends
 * early (returning when) if the server's RSS passes RSS_CAP. The windows allow a second of
 * messages in flight, so they bound a server that falls behind without throttling one that keeps up.
 */
async function readersAt(t: RunningTarget, fleet: Fleet, feed: Feed, p: Profile, durationMs: number, track: RssTrack): Promise<{ phase: ReadersPhase; rss: RssOver; cappedAt?: number }> {
  const abort = new AbortController();
  const server = cpuMeter(t.pid);
  const metrics = t.id.startsWith('sluice') && t.httpUrl ? new GatewayMetrics(t.httpUrl) : undefined;
  metrics?.start();
  let cappedAt: number | undefined;
  const sampler = setInterval(() => {
    track.sample();
    if (cappedAt === undefined && track.last > RSS_CAP) {
      cappedAt = track.seconds();
      abort.abort();
    }
  }, SAMPLE_MS);
  try {
    const l = await fixedRate(fleet, feed, {
      durationMs,
      windowRounds: p.rate,
      subscriberWindow: p.rate,
      rate: p.rate,
      payloadBytes: p.payloadBytes,
      signal: abort.signal,
      drainTimeoutMs: DRAIN_MS,
    });
    return {
      phase: {
        deliveredPerSec: l.report.received / (l.run.elapsedMs / 1000),
        achievedRate: l.latency.achieved,
        p50: l.latency.p50,
        p99: l.latency.p99,
        max: l.latency.max,
        gaps: l.report.gaps,
        dups: l.report.dups,
        serverCpu: server.percent(),
        ...(metrics ? { gateway: metrics.stop() } : {}),
      },
      rss: track.figures(),
      ...(cappedAt !== undefined ? { cappedAt } : {}),
    };
  } finally {
    clearInterval(sampler);
    metrics?.stop();
  }
}

async function run(ctx: Context, t: RunningTarget): Promise<NonReadingFigures> {
  const p = ctx.profile.nonReading;
  const fleet = new Fleet(ctx.profile.workers);
  try {
    const readers = await fleet.open(t.subscriber({ credit: READER_CREDIT }), Array.from({ length: p.readers }, () => 0));
    if (readers.failed > 0) throw new Error(`${readers.failed} of ${p.readers} readers failed to connect: ${readers.firstError}`);
    const probe = await openProbe(t, 0);
    const feed = new Feed(await t.publisher({ window: 1000 }), fleet, 1, probe.tally);
    await checkDrained(fleet, await feed.run({ durationMs: 1000, windowRounds: p.rate, rate: p.rate, payloadBytes: p.payloadBytes }));

    const before = await readersAt(t, fleet, feed, p, p.baselineMs, new RssTrack(t.pid));

    // From before the non-reading ones connect: their connections count as part of their cost.
    const track = new RssTrack(t.pid);
    const connectedAt = Date.now();
    const firstRound = feed.rounds + 1;
    const opened = await fleet.open(t.subscriber({ credit: p.credit }), Array.from({ length: p.nonReading }, () => 0), p.nonReading, true, 64, 'read');
    if (opened.failed > 0) throw new Error(`${opened.failed} of ${p.nonReading} non-reading subscribers failed to connect: ${opened.firstError}`);
    const during = await readersAt(t, fleet, feed, p, p.durationMs, track);
    const queued = tcpQueuedBytes(Number(new URL(t.subscriber().url).port));

    const fate = await fateOfNonReading(fleet, feed.rounds, p, connectedAt);
    await fleet.closeSlow();
    const after = await readersAt(t, fleet, feed, p, p.baselineMs, new RssTrack(t.pid));
    feed.publisher.close();
    probe.close();
    return {
      readers: p.readers,
      nonReading: p.nonReading,
      credit: p.credit,
      rate: p.rate,
      payloadBytes: p.payloadBytes,
      before: before.phase,
      during: during.phase,
      after: after.phase,
      baselineP99: (before.phase.p99 + after.phase.p99) / 2,
      rss: during.rss,
      baselineRss: before.rss,
      kernelSendMB: queued.send / MB,
      kernelReceiveMB: queued.receive / MB,
      ...(during.cappedAt !== undefined ? { cappedAtSeconds: during.cappedAt } : {}),
      ...fate,
      published: feed.rounds - firstRound + 1,
    };
  } finally {
    await fleet.close();
  }
}

type Fate = Pick<NonReadingFigures, 'closedSeen' | 'firstCloseSeenSeconds' | 'closeCodes' | 'resumed' | 'resumedClosed' | 'resumedComplete' | 'catchUpSeconds' | 'resumedReceivedMean' | 'resumedTrimmedMean' | 'resumedGaps' | 'resumedDups' | 'behaviour'>;

/**
 * Tells what the server did with the non-reading subscribers: how many were seen disconnected
 * while not reading (a paused client learns of a close only when a keepalive write is refused, or
 * once it reads again), then lets a sample of the others read again (the rest are closed unread)
 * and waits until the sample reached the last message published, or CATCH_UP_MS.
 */
async function fateOfNonReading(fleet: Fleet, lastRound: number, p: Profile, connectedAt: number): Promise<Fate> {
  const before = await fleet.report();
  await fleet.closeSlow(p.resumeSample);
  await fleet.phase(false);
  const t0 = performance.now();
  await fleet.unstall();
  const complete = await fleet.waitSlow(lastRound, CATCH_UP_MS);
  const catchUpSeconds = (performance.now() - t0) / 1000;
  const after = await fleet.report();

  const resumed = after.slowLast.length;
  const open = resumed - after.slowClosed;
  const closeCodes = { ...before.slowCloseCodes };
  for (const [code, n] of Object.entries(after.slowCloseCodes)) closeCodes[Number(code)] = (closeCodes[Number(code)] ?? 0) + n;
  const codes = (c: Record<number, number>) => Object.entries(c).map(([code, n]) => `${n}× ${code}`).join(', ');
  const firstCloseSeenSeconds = before.slowFirstClosedAt >= 0 ? (before.slowFirstClosedAt - connectedAt) / 1000 : -1;
  const receivedMean = open > 0 ? after.slowReceived / open : 0;
  const trimmedMean = open > 0 ? after.trimmed / open : 0;
  const silent = after.gaps - after.trimmed;

  const parts: string[] = [];
  if (before.slowClosed > 0) parts.push(`${before.slowClosed}/${p.nonReading} seen disconnected while not reading (the first after ${firstCloseSeenSeconds.toFixed(0)} s; close ${codes(before.slowCloseCodes)})`);
  const sample = `of ${resumed} that read again`;
  if (resumed === 0) parts.push('none left to read again');
  else {
    const found = after.slowClosed > 0 ? `${after.slowClosed} found disconnected (close ${codes(after.slowCloseCodes)})` : '';
    const trimmed = after.trimmed > 0 ? ` the log still held (${Math.round(trimmedMean)} each trimmed by retention before, announced by GAP)` : '';
    let got = '';
    if (open > 0 && silent > 0) got = `${open} still connected lost ${silent} messages without a GAP`;
    else if (open > 0 && complete) got = `${open} got every message${trimmed}, ${Math.round(receivedMean)} each in ${catchUpSeconds.toFixed(1)} s`;
    else if (open > 0) got = `${open} still catching up after ${(CATCH_UP_MS / 1000).toFixed(0)} s (at ${Math.min(...after.slowLast)} of ${lastRound})`;
    parts.push(`${sample}: ${[found, got].filter(Boolean).join(', ')}`);
  }
  return {
    closedSeen: before.slowClosed,
    firstCloseSeenSeconds,
    closeCodes,
    resumed,
    resumedClosed: after.slowClosed,
    resumedComplete: open > 0 && complete && silent === 0,
    catchUpSeconds,
    resumedReceivedMean: receivedMean,
    resumedTrimmedMean: trimmedMean,
    resumedGaps: after.gaps,
    resumedDups: after.dups,
    behaviour: parts.join('; '),
  };
}

const ms = (us: number) => (us / 1000).toFixed(1);

export async function nonReading(ctx: Context): Promise<void> {
  const p = ctx.profile.nonReading;
  ctx.log(`\nnon-reading subscribers: 1 topic, ${p.readers} readers + ${p.nonReading} subscribers (credit ${p.credit}) that stop reading their socket, ${p.payloadBytes}-byte messages at ${p.rate}/s for ${p.durationMs / 1000} s`);
  for (const target of ctx.targets) {
    const cell = await withTarget(ctx, target, {}, (t) => run(ctx, t), 'non-reading subscribers');
    ctx.results.nonReading[target.id] = cell;
    ctx.log(`  ${target.label.padEnd(18)} ${isFigures<NonReadingFigures>(cell)
      ? `server RSS +${(cell.rss.peakMB - cell.rss.startMB).toFixed(0)} MB at peak (${cell.rss.peakAtSeconds.toFixed(0)} s; anonymous +${(cell.rss.anonPeakMB - cell.rss.anonStartMB).toFixed(0)} MB at ${cell.rss.anonPeakAtSeconds.toFixed(0)} s, +${(cell.rss.anonEndMB - cell.rss.anonStartMB).toFixed(0)} MB at the end) over ${cell.rss.seconds.toFixed(0)} s, ${cell.kernelSendMB.toFixed(0)} + ${cell.kernelReceiveMB.toFixed(0)} MB in kernel queues${cell.cappedAtSeconds !== undefined ? ` (stopped at the ${RSS_CAP / MB / 1024} GiB cap after ${cell.cappedAtSeconds.toFixed(0)} s)` : ''}` +
        `; readers p99 ${ms(cell.before.p99)} / ${ms(cell.after.p99)} ms alone → ${ms(cell.during.p99)} ms (max ${ms(cell.during.max)} ms, ${(cell.during.achievedRate).toFixed(0)} pub/s, server CPU ${cell.before.serverCpu.toFixed(0)}% → ${cell.during.serverCpu.toFixed(0)}%); non-reading: ${cell.behaviour}`
      : JSON.stringify(cell)}`);
  }
}
