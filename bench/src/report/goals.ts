/**
 * The goals from the issues, checked against this run's figures. A verdict is "goal met" or
 * "missed" from the measured ratio; "inconclusive" when the reference was limited by the load
 * generator rather than its server (then its true capacity, and so the ratio, is unknown);
 * "n/a" when a figure is missing. Nothing here tunes or adjusts a number.
 */
import { isFigures, type FanoutFigures, type Goal, type ManyTopicsFigures, type MemoryFigures, type NonReadingFigures, type PublishFigures, type QueueFigures, type Results, type SlowFigures } from './results.js';

const x = (v: number) => `${v.toFixed(2)}×`;

function ratioGoal(name: string, target: string, ours: number | undefined, theirs: number | undefined, min: number, refBound?: string): Goal {
  if (ours === undefined || theirs === undefined || !(theirs > 0)) return { name, target, measured: 'n/a', verdict: 'n/a', note: 'a figure is missing' };
  const r = ours / theirs;
  let verdict: Goal['verdict'] = r >= min ? 'goal met' : 'missed';
  let note = '';
  if (refBound === 'clients') {
    note = 'the reference was limited by the load generator (its client core saturated), so its server could do more: the ratio is an upper bound';
    if (verdict === 'goal met') verdict = 'inconclusive';
  }
  return { name, target, measured: x(r), verdict, note };
}

export function evaluateGoals(r: Results): Goal[] {
  const goals: Goal[] = [];
  for (const [size, row] of Object.entries(r.fanout)) {
    const s = row.sluice;
    const ours = isFigures<FanoutFigures>(s) ? s.deliveredPerSec : undefined;
    const get = (id: 'uws' | 'socketio' | 'nats') => {
      const c = row[id];
      return isFigures<FanoutFigures>(c) ? c : undefined;
    };
    goals.push(ratioGoal(`fan-out ${size} subscribers: Sluice (credit 64) vs raw uWS, delivered msgs/s`, '≥ 1.0×', ours, get('uws')?.deliveredPerSec, 1.0, get('uws')?.bound));
    goals.push(ratioGoal(`fan-out ${size} subscribers: Sluice vs Socket.IO`, '≥ 10×', ours, get('socketio')?.deliveredPerSec, 10, get('socketio')?.bound));
    goals.push(ratioGoal(`fan-out ${size} subscribers: Sluice vs NATS ws`, '≥ 2×', ours, get('nats')?.deliveredPerSec, 2, get('nats')?.bound));
  }
  for (const [size, row] of Object.entries(r.cluster?.fanout ?? {})) {
    const s = row['sluice-cluster'];
    const io = row['socketio-cluster'];
    const ours = isFigures<FanoutFigures>(s) ? s.deliveredPerSec : undefined;
    const theirs = isFigures<FanoutFigures>(io) ? io : undefined;
    goals.push(ratioGoal(`cluster fan-out ${size} subscribers on 2 nodes: Sluice (Redis store) vs Socket.IO + redis-adapter`, '≥ 3×', ours, theirs?.deliveredPerSec, 3, theirs?.bound));
  }
  const mt = r.manyTopics;
  if (mt.sluice || mt.uws) {
    const s = isFigures<ManyTopicsFigures>(mt.sluice) ? mt.sluice : undefined;
    const u = isFigures<ManyTopicsFigures>(mt.uws) ? mt.uws : undefined;
    goals.push(ratioGoal(`many topics (${s?.topics ?? u?.topics ?? '?'} × 1): Sluice with durable appends vs raw uWS`, '≥ 0.5×', s?.deliveredPerSec, u?.deliveredPerSec, 0.5, u?.bound));
  }
  const mem = r.memory;
  if (mem.sluice || mem.uws) {
    const s = isFigures<MemoryFigures>(mem.sluice) ? mem.sluice : undefined;
    const u = isFigures<MemoryFigures>(mem.uws) ? mem.uws : undefined;
    const g = ratioGoal('idle memory per connection: raw uWS vs Sluice (bytes/connection)', 'Sluice ≤ 1.5× uWS', u?.bytesPerConnection, s?.bytesPerConnection, 1 / 1.5);
    if (s && u) {
      const ratio = s.bytesPerConnection / u.bytesPerConnection;
      g.measured = `${x(ratio)} (${(s.bytesPerConnection / 1024).toFixed(1)} vs ${(u.bytesPerConnection / 1024).toFixed(1)} KiB)`;
      g.note = `subscribed to its own topic: ${x(s.bytesPerSubscribedConnection / u.bytesPerSubscribedConnection)} (${(s.bytesPerSubscribedConnection / 1024).toFixed(1)} vs ${(u.bytesPerSubscribedConnection / 1024).toFixed(1)} KiB); from N to 1.5N: ${x(s.marginalBytesPerSubscribedConnection / u.marginalBytesPerSubscribedConnection)} (${(s.marginalBytesPerSubscribedConnection / 1024).toFixed(1)} vs ${(u.marginalBytesPerSubscribedConnection / 1024).toFixed(1)} KiB)` +
        (s.idleBytesPerSubscribedConnection !== undefined && u.idleBytesPerSubscribedConnection !== undefined
          ? `; subscribed, after ${((s.idleMs ?? 0) / 1000).toFixed(0)} s idle: ${x(s.idleBytesPerSubscribedConnection / u.idleBytesPerSubscribedConnection)} (${(s.idleBytesPerSubscribedConnection / 1024).toFixed(1)} vs ${(u.idleBytesPerSubscribedConnection / 1024).toFixed(1)} KiB)`
          : '');
    }
    goals.push(g);
  }
  const slow = r.slow.sluice;
  if (slow !== undefined) {
    if (isFigures<SlowFigures>(slow)) {
      const costOk = slow.throughputCost < 0.05;
      const memOk = slow.anonGrowthMB < 64;
      const short = slow.seconds < 59 ? ` (this run: ${slow.seconds.toFixed(0)} s, not 60)` : '';
      goals.push({
        name: `slow consumers (${slow.slow} of ${slow.subscribers}): cost to the others, and gateway memory over 60 s`,
        target: '< 5% throughput, < 64 MB',
        measured: `${(slow.throughputCost * 100).toFixed(1)}% throughput, p99 ${(slow.baselineP99 / 1000).toFixed(1)} → ${(slow.withSlowP99 / 1000).toFixed(1)} ms, +${slow.anonGrowthMB.toFixed(1)} MB anonymous (+${slow.growthMB.toFixed(1)} MB RSS)`,
        verdict: costOk && memOk ? 'goal met' : 'missed',
        note: `memory counted as anonymous RSS (the store's LMDB map is file-backed); without slow subscribers it grew +${slow.baselineAnonGrowthMB.toFixed(1)} MB over ${slow.baselineSeconds.toFixed(0)} s${short}`,
      });
    } else goals.push({ name: 'slow consumers', target: '< 5% throughput, < 64 MB', measured: 'n/a', verdict: 'n/a', note: JSON.stringify(slow) });
  }
  const nr = r.nonReading?.sluice;
  if (nr !== undefined) goals.push(nonReadingGoal(nr));
  const q = r.queue?.throughput ?? {};
  if (Object.keys(q).length > 0) {
    const fig = (c: unknown) => (isFigures<QueueFigures>(c as QueueFigures) ? (c as QueueFigures) : undefined);
    const s = fig(q.sluice);
    const any = s ?? fig(q.rabbitmq) ?? fig(q.nats);
    const shape = `${any?.members ?? '?'} members, credit ${any?.credit ?? '?'}, durable`;
    // On a shared machine a queue figure moves with what else runs: the load goes with the verdict.
    const load = r.queue?.load;
    const busy = (g: Goal) => {
      if (load && g.measured !== 'n/a') g.note = [g.note, `machine load average ${load[0].toFixed(1)} → ${load[1].toFixed(1)} during the scenario`].filter(Boolean).join('; ');
      return g;
    };
    if (q.rabbitmq !== undefined) goals.push(busy(ratioGoal(`queue (${shape}): Sluice vs RabbitMQ, acked msgs/s`, '≥ 1.5×', s?.ackedPerSec, fig(q.rabbitmq)?.ackedPerSec, 1.5, fig(q.rabbitmq)?.bound)));
    if (q.nats !== undefined) goals.push(busy(ratioGoal(`queue (${shape}): Sluice vs NATS JetStream, acked msgs/s`, '≥ 1×', s?.ackedPerSec, fig(q.nats)?.ackedPerSec, 1, fig(q.nats)?.bound)));
  }
  const pub = r.publish['Sluice: WebSocket PUB/ACK + idempotency keys'];
  if (pub !== undefined) {
    const ok = isFigures<PublishFigures>(pub);
    goals.push({
      name: 'publish over WebSocket with durable commits and idempotency keys',
      target: '≥ 100,000 msgs/s',
      measured: ok ? `${Math.round(pub.msgsPerSec).toLocaleString('en-US')} msgs/s` : 'n/a',
      verdict: ok ? (pub.msgsPerSec >= 100_000 ? 'goal met' : 'missed') : 'n/a',
      note: ok && pub.failures ? `${pub.failures} failures: ${pub.firstFailure}` : '',
    });
  }
  return goals;
}

/** Issue 14.3's figure: the gateway's memory growth stays small and the readers' p99 moves little. */
export const NON_READING_MAX_MB = 100;
export const NON_READING_MAX_P99 = 1.1;

function nonReadingGoal(c: NonReadingFigures | { na: string } | { error: string }): Goal {
  const target = `< ${NON_READING_MAX_MB} MB, readers' p99 ≤ +${((NON_READING_MAX_P99 - 1) * 100).toFixed(0)}%`;
  if (!isFigures<NonReadingFigures>(c)) return { name: 'non-reading subscribers', target, measured: 'n/a', verdict: 'n/a', note: JSON.stringify(c) };
  const anon = c.rss.anonPeakMB - c.rss.anonStartMB;
  const rss = c.rss.peakMB - c.rss.startMB;
  const p99 = c.during.p99 / c.baselineP99;
  const gaps = c.during.gaps + c.during.dups;
  const kept = c.during.achievedRate >= 0.95 * c.rate;
  const ok = anon < NON_READING_MAX_MB && p99 <= NON_READING_MAX_P99 && gaps === 0 && kept;
  const notes = [`memory counted as anonymous RSS (the store's LMDB map is file-backed); with the readers alone it grew +${(c.baselineRss.anonPeakMB - c.baselineRss.anonStartMB).toFixed(1)} MB anonymous / +${(c.baselineRss.peakMB - c.baselineRss.startMB).toFixed(1)} MB RSS over ${c.baselineRss.seconds.toFixed(0)} s`];
  if (c.rss.seconds < 119) notes.push(`this run: ${c.rss.seconds.toFixed(0)} s, not 120`);
  if (!kept) notes.push(`the publisher reached only ${c.during.achievedRate.toFixed(0)} of ${c.rate} msgs/s`);
  if (gaps) notes.push(`readers saw ${c.during.gaps} gaps, ${c.during.dups} duplicates`);
  if (!c.resumedComplete) notes.push(`non-reading ones read again: ${c.behaviour}`);
  return {
    name: `non-reading subscribers (${c.nonReading} at credit ${c.credit}, ${c.payloadBytes}-byte messages at ${c.rate}/s over 120 s): gateway memory and the readers' p99`,
    target,
    measured: `+${anon.toFixed(1)} MB anonymous (+${rss.toFixed(1)} MB RSS), p99 ${(c.baselineP99 / 1000).toFixed(1)} → ${(c.during.p99 / 1000).toFixed(1)} ms (${p99 >= 2 ? x(p99) : `${p99 >= 1 ? '+' : ''}${((p99 - 1) * 100).toFixed(0)}%`})`,
    verdict: ok ? 'goal met' : 'missed',
    note: notes.join('; '),
  };
}
