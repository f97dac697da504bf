/**
 * A load worker: a child process (child_process.fork) holding a share of the subscribers, so the
 * load generator is never one saturated event loop. It opens subscribers as told, reports
 * progress every few milliseconds (the publisher's feedback), and per phase reports counts,
 * order checks, latency histogram and its own CPU share, so a saturated client is visible.
 */
import { Histogram } from '../histogram.js';
import { SelfCpu } from '../proc-stats.js';
import { createSubscriber } from '../clients/factory.js';
import type { Sink, Stall, Subscriber, SubscriberSpec } from '../clients/subscriber.js';
import type { FromWorker, ToWorker, WorkerReport } from './messages.js';

const PROGRESS_MS = Number(process.env.BENCH_PROGRESS_MS ?? 1);
const OPEN_TIMEOUT_MS = 30_000;

/** Every wait is bounded: a subscriber that never gets its confirmation fails instead of hanging. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(what)), ms); });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const histogram = new Histogram();
const sink: Sink = { latency: false, record: (us) => histogram.record(us) };
/** Slow subscribers record no latency: the histogram is the consuming subscribers'. */
const slowSink: Sink = { latency: false, record: () => undefined };
const subs: Subscriber[] = [];
let cpu = new SelfCpu();
let base = { received: 0, slowReceived: 0, gaps: 0, trimmed: 0, dups: 0, redelivered: 0 };
let lastTotal = -1;

function reply(m: FromWorker): void {
  process.send!(m);
}

async function open(spec: SubscriberSpec, topics: (number | null)[], slow: number, stall: Stall, late: boolean, concurrency: number): Promise<void> {
  let ok = 0;
  let failed = 0;
  let firstError = '';
  let next = 0;
  const opener = async () => {
    while (next < topics.length) {
      const i = next++;
      const s = createSubscriber(spec, topics[i]!, i < slow ? slowSink : sink);
      s.tally.late = late;
      if (i < slow) {
        s.tally.slow = true;
        s.stall(stall);
      }
      try {
        await within(s.open(), OPEN_TIMEOUT_MS, 'timed out connecting and subscribing');
        subs.push(s);
        ok++;
      } catch (err) {
        failed++;
        firstError ||= (err as Error).message;
        s.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, topics.length) }, opener));
  reply({ op: 'opened', ok, failed, firstError });
}

function totals() {
  const t = { received: 0, slowReceived: 0, gaps: 0, trimmed: 0, dups: 0, redelivered: 0 };
  for (const s of subs) {
    if (s.tally.slow) t.slowReceived += s.tally.received;
    else t.received += s.tally.received;
    t.gaps += s.tally.gaps;
    t.trimmed += s.tally.trimmed;
    t.dups += s.tally.dups;
    t.redelivered += s.tally.redelivered;
  }
  return t;
}

/** Lowest and highest `last` of the open fast subscribers, and the lowest of the open slow ones (-1: none). */
function range(): { min: number; max: number; slowMin: number } {
  let min = Number.POSITIVE_INFINITY;
  let slowMin = Number.POSITIVE_INFINITY;
  let max = 0;
  for (const s of subs) {
    const t = s.tally;
    if (t.closed) continue;
    if (t.slow) {
      if (t.last < slowMin) slowMin = t.last;
      continue;
    }
    if (t.last < min) min = t.last;
    if (t.last > max) max = t.last;
  }
  const none = Number.POSITIVE_INFINITY;
  return { min: min === none ? -1 : min, max, slowMin: slowMin === none ? -1 : slowMin };
}

function report(): WorkerReport {
  const t = totals();
  let closed = 0;
  let slowClosed = 0;
  let firstSlowClose = Number.POSITIVE_INFINITY;
  let errors = 0;
  const slowLast: number[] = [];
  const slowCloseCodes: Record<number, number> = {};
  for (const s of subs) {
    errors += s.tally.errors;
    if (s.tally.slow) slowLast.push(s.tally.last);
    if (!s.tally.closed) continue;
    if (s.tally.slow) {
      slowClosed++;
      firstSlowClose = Math.min(firstSlowClose, s.tally.closedAtMs);
      slowCloseCodes[s.tally.closeCode] = (slowCloseCodes[s.tally.closeCode] ?? 0) + 1;
    } else closed++;
  }
  const { min, max } = range();
  return {
    subscribers: subs.length,
    received: t.received - base.received,
    slowReceived: t.slowReceived - base.slowReceived,
    gaps: t.gaps - base.gaps,
    trimmed: t.trimmed - base.trimmed,
    dups: t.dups - base.dups,
    redelivered: t.redelivered - base.redelivered,
    closed,
    slowClosed,
    slowFirstClosedAt: firstSlowClose === Number.POSITIVE_INFINITY ? -1 : performance.timeOrigin + firstSlowClose,
    slowCloseCodes,
    errors,
    firstError: subs.find((s) => s.tally.lastError)?.tally.lastError ?? '',
    min,
    max,
    slowLast,
    latency: histogram.toJSON(),
    cpuPercent: cpu.percent(),
  };
}

/** Progress for the publisher's window: sent when something was received, and every 100 ms. */
let lastSent = 0;
setInterval(() => {
  if (subs.length === 0) return;
  let total = 0;
  for (const s of subs) total += s.tally.received;
  const now = performance.now();
  if (total === lastTotal && now - lastSent < 100) return;
  lastTotal = total;
  lastSent = now;
  const r = range();
  reply({ op: 'progress', min: r.min, slowMin: r.slowMin, total });
}, PROGRESS_MS);

async function reconnect(liveAfter: number): Promise<void> {
  // The resume scenario runs one subscriber per worker.
  const s = subs[0]!;
  const t0 = performance.now();
  const before = s.tally.received;
  const gaps0 = s.tally.gaps;
  const dups0 = s.tally.dups;
  const live = new Promise<number>((resolve) => s.tally.onReach(liveAfter + 1, () => resolve(performance.now())));
  const { recovered } = await within(s.reconnect(), OPEN_TIMEOUT_MS, 'timed out resubscribing');
  const subscribed = performance.now();
  const liveAt = await within(live, 300_000, `did not reach the live tail (offset ${liveAfter + 1}) within 300 s`);
  reply({
    op: 'reconnected',
    resume: {
      recovered,
      resubscribeMs: subscribed - t0,
      liveMs: liveAt - t0,
      caughtUp: s.tally.received - before,
      gaps: s.tally.gaps - gaps0,
      dups: s.tally.dups - dups0,
    },
  });
}

process.on('message', (m: ToWorker) => {
  const run = async () => {
    switch (m.op) {
      case 'open':
        await open(m.spec, m.topics, m.slow, m.stall, m.late, m.concurrency);
        return;
      case 'phase':
        histogram.reset();
        sink.latency = m.latency;
        base = totals();
        cpu = new SelfCpu();
        reply({ op: 'phased' });
        return;
      case 'report':
        reply({ op: 'report', report: report() });
        return;
      case 'unstall':
        for (const s of subs) if (s.tally.slow) s.unstall();
        reply({ op: 'unstalled' });
        return;
      case 'close-slow': {
        let kept = 0;
        const keep = new Set(subs.filter((s) => s.tally.slow && !s.tally.closed && kept++ < m.keep));
        for (let i = subs.length - 1; i >= 0; i--) {
          if (!subs[i]!.tally.slow || keep.has(subs[i]!)) continue;
          subs[i]!.close();
          subs.splice(i, 1);
        }
        base = totals();
        reply({ op: 'slow-closed' });
        return;
      }
      case 'disconnect':
        await Promise.all(subs.map((s) => s.disconnect()));
        reply({ op: 'disconnected' });
        return;
      case 'reconnect':
        await reconnect(m.liveAfter);
        return;
      case 'close':
        for (const s of subs) s.close();
        reply({ op: 'closed' });
        setImmediate(() => process.exit(0));
    }
  };
  run().catch((err: unknown) => reply({ op: 'fatal', error: (err as Error).stack ?? String(err) }));
});

process.on('disconnect', () => process.exit(0));
