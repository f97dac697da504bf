/**
 * Renders a run's results as the tables the bench prints (aligned text) and writes
 * (bench/results/latest.md): one table per scenario, targets as columns, Sluice's ratios to the
 * peers as extra columns, then the goals with their verdicts. Cells a target cannot fill show
 * "n/a" with the reason in a note under the table.
 */
import { isFigures, type Cell, type FanoutFigures, type LoadCpu, type ManyTopicsFigures, type MemoryFigures, type OpenLoopFigures, type NonReadingFigures, type PublishFigures, type QueueFigures, type ReadersPhase, type RedeliveryFigures, type RssOver, type RedisCost, type Results, type ResumeFigures, type SlowFigures } from './results.js';
import type { TargetId } from '../targets/target.js';
import type { GatewaySample } from '../gateway-metrics.js';

interface Grid {
  title: string;
  columns: string[];
  rows: string[][];
  notes: string[];
}

const LABELS: Record<TargetId, string> = {
  sluice: 'Sluice',
  'sluice-commit': 'Sluice disk commit',
  'sluice-memory': 'Sluice memory',
  'sluice-old-memory': 'Sluice old memory',
  'sluice-auth': 'Sluice auth on',
  'sluice-old': 'Sluice old build',
  uws: 'raw uWS',
  socketio: 'Socket.IO',
  ws: 'ws',
  nats: 'NATS ws',
  rabbitmq: 'RabbitMQ',
  'sluice-cluster': 'Sluice, 2 nodes',
  'socketio-cluster': 'Socket.IO + redis-adapter',
  'socketio-streams-cluster': 'Socket.IO + streams-adapter',
};
const ORDER: TargetId[] = ['sluice', 'sluice-commit', 'sluice-memory', 'sluice-auth', 'sluice-old', 'sluice-old-memory', 'uws', 'socketio', 'ws', 'nats', 'rabbitmq', 'sluice-cluster', 'socketio-cluster', 'socketio-streams-cluster'];

function rate(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(0);
}

const threadsOf = (c: LoadCpu) => (c.serverThreads ? `${c.serverThreads.main.toFixed(0)} / ${c.serverThreads.others.toFixed(0)}` : 'n/a');
const statesOf = (g: GatewaySample | undefined) => (g ? `${(g.live * 100).toFixed(0)}% / ${(g.catchup * 100).toFixed(0)}% / ${(g.paused * 100).toFixed(0)}%` : '');
const ms = (us: number) => (us / 1000 >= 100 ? (us / 1000).toFixed(0) : (us / 1000).toFixed(1));
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');

/** Columns for the targets that appear in a scenario; auth-on only once it has a figure. */
function columnsOf<T>(row: Partial<Record<TargetId, Cell<T>>>): TargetId[] {
  return ORDER.filter((id) => row[id] !== undefined && (id !== 'sluice-auth' || isFigures(row[id])));
}

function naNotes<T>(row: Partial<Record<TargetId, Cell<T>>>, notes: Set<string>): void {
  for (const id of ORDER) {
    const c = row[id];
    if (c === undefined || isFigures(c)) continue;
    notes.add(`${LABELS[id]}: ${'na' in (c as object) ? `n/a — ${(c as { na: string }).na}` : `failed — ${(c as { error: string }).error}`}`);
  }
}

function cellOf<T>(c: Cell<T> | undefined, f: (v: T) => string): string {
  if (c === undefined) return '';
  if (isFigures(c)) return f(c);
  return 'na' in (c as object) ? 'n/a' : 'failed';
}

/** Peers whose delivered msgs/s Sluice's is divided by, in the fan-out table. */
const FANOUT_REFS: { id: TargetId; label: string }[] = [
  { id: 'uws', label: 'Sluice÷uWS' },
  { id: 'socketio', label: 'Sluice÷Socket.IO' },
  { id: 'nats', label: 'Sluice÷NATS' },
  { id: 'sluice-old', label: 'Sluice÷old build' },
];

function fanoutGrid(r: Results): Grid | undefined {
  const sizes = Object.keys(r.fanout);
  if (sizes.length === 0) return undefined;
  const ids = [...new Set(sizes.flatMap((n) => columnsOf(r.fanout[n]!)))];
  // Ratio columns for the peers in this run (the three peers always in a default run).
  const refs = FANOUT_REFS.filter((ref) => ids.includes(ref.id));
  const blank = refs.map(() => '');
  const notes = new Set<string>();
  const rows: string[][] = [];
  const fig = (n: string, id: TargetId) => {
    const c = r.fanout[n]![id];
    return isFigures<FanoutFigures>(c) ? c : undefined;
  };
  const cost = (f: FanoutFigures | undefined) => (f ? f.cpu.server / f.deliveredPerSec : undefined);
  for (const n of sizes) {
    const row = r.fanout[n]!;
    naNotes(row, notes);
    const s = fig(n, 'sluice')?.deliveredPerSec;
    rows.push([`${n} subscribers: delivered msgs/s`, ...ids.map((id) => cellOf<FanoutFigures>(row[id], (f) => rate(f.deliveredPerSec))),
      ...refs.map((ref) => ratio(s, fig(n, ref.id)?.deliveredPerSec))]);
    rows.push(['  limited by (server core CPU)', ...ids.map((id) => cellOf<FanoutFigures>(row[id], (f) => `${f.bound} (${f.cpu.server.toFixed(0)}%)`)), ...blank]);
    rows.push(['  server threads: main / others %', ...ids.map((id) => cellOf<FanoutFigures>(row[id], (f) => threadsOf(f.cpu))), ...blank]);
    rows.push(['  server CPU µs per delivery', ...ids.map((id) => cellOf<FanoutFigures>(row[id], (f) => (f.cpu.server * 1e4 / f.deliveredPerSec).toFixed(2))),
      ...refs.map((ref) => (ref.id === 'uws' || ref.id === 'sluice-old' ? ratio(cost(fig(n, ref.id)), cost(fig(n, 'sluice'))) : ''))]);
    rows.push(['  syscalls per delivery', ...ids.map((id) => cellOf<FanoutFigures>(row[id], (f) => (f.syscalls ? f.syscalls.perDelivery.toFixed(3) : 'n/a'))), ...blank]);
    if (fig(n, 'sluice')?.gateway) {
      rows.push(['  Sluice subscriptions live / catch-up / paused', ...ids.map((id) => cellOf<FanoutFigures>(row[id], (f) => statesOf(f.gateway))), ...blank]);
      rows.push(['  Sluice publish → commit ms (mean)', ...ids.map((id) => cellOf<FanoutFigures>(row[id], (f) => (f.gateway ? f.gateway.appendMs.toFixed(1) : ''))), ...blank]);
    }
    const l = fig(n, 'sluice')?.latency ?? fig(n, 'uws')?.latency;
    rows.push([`  latency p50/p99/p99.9 ms @ ${l ? rate(l.rate) : '?'} pub/s`, ...ids.map((id) => cellOf<FanoutFigures>(row[id], latencyOf)), ...blank]);
    for (const id of ids) {
      const f = fig(n, id);
      if (f && (f.gaps || f.dups || !f.drained)) notes.add(`${LABELS[id]} at ${n}: ${f.gaps} gaps, ${f.dups} duplicates${f.drained ? '' : ', not every message arrived'}`);
    }
  }
  return {
    title: 'Fan-out: 1 topic, 200-byte messages (Sluice with credit windows of 64; raw uWS one frame per message)',
    columns: ['', ...ids.map((id) => LABELS[id]), ...refs.map((ref) => ref.label)],
    rows,
    notes: [
      'limited by: "server" = the server core was ≥ 90% busy; "clients" = the load generator\'s core was; "window" = neither (the publisher\'s in-flight window).',
      'Sluice÷uWS (and ÷old build) on the CPU row compares server CPU per delivery (their cost ÷ Sluice\'s): what the ratio would be with both servers saturated.',
      ...notes,
    ],
  };
}

function latencyOf(f: FanoutFigures): string {
  if (!f.latency) return 'n/a';
  const short = f.latency.achieved < 0.95 * f.latency.rate ? ` (only ${rate(f.latency.achieved)}/s)` : '';
  return `${ms(f.latency.p50)}/${ms(f.latency.p99)}/${ms(f.latency.p999)}${short}`;
}

function manyGrid(r: Results): Grid | undefined {
  const row = r.manyTopics;
  const ids = columnsOf(row);
  if (ids.length === 0) return undefined;
  const notes = new Set<string>();
  naNotes(row, notes);
  const f = (id: TargetId) => (isFigures<ManyTopicsFigures>(row[id]) ? (row[id] as ManyTopicsFigures) : undefined);
  const topics = f('sluice')?.topics ?? f('uws')?.topics ?? 0;
  return {
    title: `Many topics: ${topics} topics × 1 subscriber, publisher round-robin`,
    columns: ['', ...ids.map((id) => LABELS[id]), 'Sluice÷uWS'],
    rows: [
      ['delivered msgs/s', ...ids.map((id) => cellOf<ManyTopicsFigures>(row[id], (v) => rate(v.deliveredPerSec))), ratio(f('sluice')?.deliveredPerSec, f('uws')?.deliveredPerSec)],
      ['  limited by (server core CPU)', ...ids.map((id) => cellOf<ManyTopicsFigures>(row[id], (v) => `${v.bound} (${v.cpu.server.toFixed(0)}%)`)), ''],
      ['  server threads: main / others %', ...ids.map((id) => cellOf<ManyTopicsFigures>(row[id], (v) => threadsOf(v.cpu))), ''],
      ['  syscalls per delivery', ...ids.map((id) => cellOf<ManyTopicsFigures>(row[id], (v) => (v.syscalls ? v.syscalls.perDelivery.toFixed(3) : 'n/a'))), ''],
      ...(f('sluice')?.gateway ? [
        ['  Sluice subscriptions live / catch-up / paused', ...ids.map((id) => cellOf<ManyTopicsFigures>(row[id], (v) => statesOf(v.gateway))), ''],
        ['  Sluice publish → commit ms (mean)', ...ids.map((id) => cellOf<ManyTopicsFigures>(row[id], (v) => (v.gateway ? v.gateway.appendMs.toFixed(1) : ''))), ''],
      ] : []),
    ],
    notes: [...notes],
  };
}

/**
 * Open loop, one table per layout: targets as rows (there are many Sluice variants), the max rate
 * under the latency bound, what failed above it, and p50/p99 and server CPU at the reference load.
 */
function openGrids(r: Results): Grid[] {
  const grids: Grid[] = [];
  for (const [layout, row] of Object.entries(r.openLoop ?? {})) {
    const ids = columnsOf(row);
    if (ids.length === 0) continue;
    const notes = new Set<string>();
    naNotes(row, notes);
    const f = (id: TargetId) => (isFigures<OpenLoopFigures>(row[id]) ? (row[id] as OpenLoopFigures) : undefined);
    const any = ids.map(f).find((v) => v !== undefined);
    const fanout = (any?.perTopic ?? 1) > 1;
    const refRate = any?.reference?.rate;
    const per = (x: number) => (fanout ? `${rate(x)} (${rate(x * any!.perTopic)})` : rate(x));
    grids.push({
      title: `Open loop: ${any?.topics ?? '?'} topic(s) × ${any?.perTopic ?? '?'} subscriber(s) — max rate with ≥ 97% within 50 ms, p99 ≤ 50 ms, backlog ≤ 2 s, no disconnect`,
      columns: ['', fanout ? 'max msgs/s (deliveries/s)' : 'max msgs/s', '÷ raw uWS', '÷ NATS', '÷ Socket.IO', 'first failing step', `p50 / p99 ms @ ${refRate ? rate(refRate) : '?'}/s`, 'server CPU @ ref', 'server waited for its core @ ref'],
      rows: ids.map((id) => {
        const v = f(id);
        if (!v) return [LABELS[id], cellOf(row[id], () => ''), '', '', '', '', '', '', ''];
        const ref = v.reference;
        return [
          LABELS[id],
          per(v.maxRate),
          ratio(v.maxRate, f('uws')?.maxRate),
          ratio(v.maxRate, f('nats')?.maxRate),
          ratio(v.maxRate, f('socketio')?.maxRate),
          v.failedAt ? `${rate(v.failedAt)}: ${v.failedBecause ?? ''}` : 'none',
          ref ? `${ms(ref.p50)} / ${ms(ref.p99)}${ref.pass ? '' : ' (fails)'}${ref.sync ? `; fsync ≤ ${ref.sync.p50Ms} / ${ref.sync.p99Ms}` : ''}` : 'n/a',
          ref ? `${ref.serverCpu.toFixed(0)}%` : 'n/a',
          ref && Number.isFinite(ref.serverWaitMsPerSec) ? `${ref.serverWaitMsPerSec.toFixed(0)} ms/s` : 'n/a',
        ];
      }),
      notes: [...notes, `layout ${layout}; latency from each message's scheduled send time (no coordinated omission); every step on the same server`,
        'fsync (Sluice, disk, flush): p50 / p99 of the syncs its ACKs waited for at the reference load, as histogram bucket bounds (sluice_store_sync_duration_seconds)',
        'server waited: ms per second its main thread was runnable but not running (/proc/PID/schedstat, the main thread only: meaningless for nats-server, whose Go runtime works on other threads) — other processes on its core; a figure taken while it is high is the machine\'s, not the server\'s'],
    });
  }
  return grids;
}

function memoryGrid(r: Results): Grid | undefined {
  const row = r.memory;
  const ids = columnsOf(row);
  if (ids.length === 0) return undefined;
  const notes = new Set<string>();
  naNotes(row, notes);
  const f = (id: TargetId) => (isFigures<MemoryFigures>(row[id]) ? (row[id] as MemoryFigures) : undefined);
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  return {
    title: `Memory: server RSS per idle connection (${f('sluice')?.connections ?? f('uws')?.connections ?? '?'} connections)`,
    columns: ['', ...ids.map((id) => LABELS[id]), 'Sluice÷uWS'],
    rows: [
      ['connected', ...ids.map((id) => cellOf<MemoryFigures>(row[id], (v) => kib(v.bytesPerConnection))), ratio(f('sluice')?.bytesPerConnection, f('uws')?.bytesPerConnection)],
      ['connected + subscribed to its own topic', ...ids.map((id) => cellOf<MemoryFigures>(row[id], (v) => kib(v.bytesPerSubscribedConnection))), ratio(f('sluice')?.bytesPerSubscribedConnection, f('uws')?.bytesPerSubscribedConnection)],
      ...(ids.some((id) => f(id)?.idleBytesPerConnection !== undefined) ? [
        [`connected, after ${((ids.map(f).find((v) => v?.idleMs !== undefined)?.idleMs ?? 0) / 1000).toFixed(0)} s idle`, ...ids.map((id) => cellOf<MemoryFigures>(row[id], (v) => (v.idleBytesPerConnection === undefined ? '—' : kib(v.idleBytesPerConnection)))), ratio(f('sluice')?.idleBytesPerConnection, f('uws')?.idleBytesPerConnection)],
        ['connected + subscribed, after that idle time', ...ids.map((id) => cellOf<MemoryFigures>(row[id], (v) => (v.idleBytesPerSubscribedConnection === undefined ? '—' : kib(v.idleBytesPerSubscribedConnection)))), ratio(f('sluice')?.idleBytesPerSubscribedConnection, f('uws')?.idleBytesPerSubscribedConnection)],
      ] : []),
      ['each subscribed connection from N to 1.5N', ...ids.map((id) => cellOf<MemoryFigures>(row[id], (v) => kib(v.marginalBytesPerSubscribedConnection))), ratio(f('sluice')?.marginalBytesPerSubscribedConnection, f('uws')?.marginalBytesPerSubscribedConnection)],
    ],
    notes: ['RSS growth ÷ connections, each figure on a fresh server, read once RSS settled right after the connections opened, and again after the idle time; no server was asked to collect garbage.', ...notes],
  };
}

function slowGrid(r: Results): Grid | undefined {
  const row = r.slow;
  const ids = columnsOf(row);
  if (ids.length === 0) return undefined;
  const notes = new Set<string>();
  naNotes(row, notes);
  const any = ids.map((id) => row[id]).find((c) => isFigures<SlowFigures>(c)) as SlowFigures | undefined;
  for (const id of ids) {
    const c = row[id];
    if (isFigures<SlowFigures>(c)) notes.add(`${LABELS[id]}: slow subscribers ${c.behaviour || 'unknown'}`);
  }
  return {
    title: `Slow consumers: ${any?.slow ?? '?'} of ${any?.subscribers ?? '?'} subscribers never consume (Sluice: no credit; others: socket paused), ${any ? any.seconds.toFixed(0) : '?'} s`,
    columns: ['', ...ids.map((id) => LABELS[id])],
    rows: [
      ['fast subscribers msgs/s: none slow (A, A\') → slow', ...ids.map((id) => cellOf<SlowFigures>(row[id], (v) => `${rate(v.baselineRuns[0]!)}, ${rate(v.baselineRuns[1]!)} → ${rate(v.withSlowPerSec)}`))],
      ['  throughput cost', ...ids.map((id) => cellOf<SlowFigures>(row[id], (v) => `${(v.throughputCost * 100).toFixed(1)}%`))],
      ['  p99 ms (fixed rate): none slow → slow', ...ids.map((id) => cellOf<SlowFigures>(row[id], (v) => `${ms(v.baselineP99)} → ${ms(v.withSlowP99)}`))],
      ['server memory growth: anonymous / RSS', ...ids.map((id) => cellOf<SlowFigures>(row[id], (v) => `+${v.anonGrowthMB.toFixed(0)} / +${v.growthMB.toFixed(0)} MB`))],
      ['  same without slow subscribers', ...ids.map((id) => cellOf<SlowFigures>(row[id], (v) => `+${v.baselineAnonGrowthMB.toFixed(0)} / +${v.baselineGrowthMB.toFixed(0)} MB`))],
    ],
    notes: ['Throughput differences of a few % are within run-to-run noise here (see README).', ...notes],
  };
}

/** A readers' phase that could not publish at the asked rate says so. */
const short = (v: ReadersPhase, asked: number) => (v.achievedRate < 0.95 * asked ? ` (only ${rate(v.achievedRate)}/s)` : '');
const growth = (from: number, to: number) => `${to - from >= 0 ? '+' : ''}${(to - from).toFixed(0)}`;

/** Seconds into the run with non-reading subscribers at which the anonymous growth is shown. */
const MARKS = [1, 2, 5, 10, 20, 60, 120];

/** Anonymous RSS growth at the first sample at or after `s` seconds ('' past the run's end). */
function growthAt(o: RssOver, s: number): string {
  const at = o.series.find(([t]) => t >= s);
  return at ? growth(o.anonStartMB, at[2]) : '';
}

const commitOf = (v: ReadersPhase) => (v.gateway && Number.isFinite(v.gateway.appendMs) ? v.gateway.appendMs.toFixed(1) : 'n/a');

function nonReadingGrid(r: Results): Grid | undefined {
  const row = r.nonReading ?? {};
  const ids = columnsOf(row);
  if (ids.length === 0) return undefined;
  const notes = new Set<string>();
  naNotes(row, notes);
  const any = ids.map((id) => row[id]).find((c) => isFigures<NonReadingFigures>(c)) as NonReadingFigures | undefined;
  const cells = (f: (v: NonReadingFigures) => string) => ids.map((id) => cellOf<NonReadingFigures>(row[id], f));
  const marks = MARKS.filter((m) => m < (any?.rss.seconds ?? 0));
  for (const id of ids) {
    const c = row[id];
    if (!isFigures<NonReadingFigures>(c)) continue;
    notes.add(`${LABELS[id]}: non-reading subscribers: ${c.behaviour}`);
    if (c.cappedAtSeconds !== undefined) notes.add(`${LABELS[id]}: the run with non-reading subscribers stopped after ${c.cappedAtSeconds.toFixed(0)} s, its server's RSS past the bench's cap`);
    const g = c.before.gaps + c.during.gaps + c.after.gaps;
    const d = c.before.dups + c.during.dups + c.after.dups;
    if (g || d) notes.add(`${LABELS[id]}: readers saw ${g} gaps and ${d} duplicates`);
  }
  return {
    title: `Non-reading subscribers: ${any?.nonReading ?? '?'} subscribers stop reading their socket (Sluice: after SUB with credit ${any?.credit ?? '?'}) beside ${any?.readers ?? '?'} readers, ${any?.payloadBytes ?? '?'}-byte messages at ${any?.rate ?? '?'}/s, ${any ? any.rss.seconds.toFixed(0) : '?'} s`,
    columns: ['', ...ids.map((id) => LABELS[id])],
    rows: [
      ['server RSS MB: start → peak (at s) → end', ...cells((v) => `${v.rss.startMB.toFixed(0)} → ${v.rss.peakMB.toFixed(0)} (${v.rss.peakAtSeconds.toFixed(0)} s) → ${v.rss.endMB.toFixed(0)}`)],
      ['  growth: anonymous peak (at s) / RSS peak / anonymous at the end', ...cells((v) => `${growth(v.rss.anonStartMB, v.rss.anonPeakMB)} (${v.rss.anonPeakAtSeconds.toFixed(0)} s) / ${growth(v.rss.startMB, v.rss.peakMB)} / ${growth(v.rss.anonStartMB, v.rss.anonEndMB)} MB`)],
      [`  anonymous growth at ${marks.join(' / ')} s`, ...cells((v) => marks.map((m) => growthAt(v.rss, m)).join(' / '))],
      ['  kernel at the end: server send queues / clients\' receive queues', ...cells((v) => (Number.isFinite(v.kernelSendMB) ? `${v.kernelSendMB.toFixed(0)} / ${v.kernelReceiveMB.toFixed(0)} MB` : 'n/a'))],
      ['  readers alone (A): anonymous / RSS growth', ...cells((v) => `${growth(v.baselineRss.anonStartMB, v.baselineRss.anonPeakMB)} / ${growth(v.baselineRss.startMB, v.baselineRss.peakMB)} MB in ${v.baselineRss.seconds.toFixed(0)} s`)],
      ["readers p99 ms: alone (A, A') → with non-reading", ...cells((v) => `${ms(v.before.p99)}, ${ms(v.after.p99)} → ${ms(v.during.p99)}`)],
      ['  p50 ms', ...cells((v) => `${ms(v.before.p50)}, ${ms(v.after.p50)} → ${ms(v.during.p50)}`)],
      ['  max ms', ...cells((v) => `${ms(v.before.max)}, ${ms(v.after.max)} → ${ms(v.during.max)}`)],
      ['  delivered msgs/s (all readers)', ...cells((v) => `${rate(v.before.deliveredPerSec)}, ${rate(v.after.deliveredPerSec)} → ${rate(v.during.deliveredPerSec)}${short(v.during, v.rate)}`)],
      ['  server CPU', ...cells((v) => `${v.before.serverCpu.toFixed(0)}%, ${v.after.serverCpu.toFixed(0)}% → ${v.during.serverCpu.toFixed(0)}%`)],
      ['  Sluice publish → commit ms (mean)', ...cells((v) => (v.during.gateway ? `${commitOf(v.before)}, ${commitOf(v.after)} → ${commitOf(v.during)}` : ''))],
      ['  Sluice subscriptions live / catch-up / paused (B)', ...cells((v) => statesOf(v.during.gateway))],
      ['non-reading: seen disconnected while not reading', ...cells((v) => (v.closedSeen ? `${v.closedSeen} (first ${v.firstCloseSeenSeconds.toFixed(0)} s)` : 'none'))],
      ['  sample read again: disconnected / rest complete / msgs each / s', ...cells((v) => (v.resumed
        ? `${v.resumedClosed}/${v.resumed} / ${v.resumedClosed === v.resumed ? '-' : v.resumedComplete ? 'yes' : 'NO'} / ${rate(v.resumedReceivedMean)} / ${v.catchUpSeconds.toFixed(1)}`
        : 'none left'))],
      ['  each trimmed by retention before reading (GAP)', ...cells((v) => (v.resumedTrimmedMean ? rate(v.resumedTrimmedMean) : 'none'))],
    ],
    notes: [
      "Anonymous RSS is what the server holds itself; RSS also counts the pages of the disk store's LMDB map it touched, which grow with the log whoever reads it (see 'readers alone').",
      '"read again": a sample of the non-reading subscribers still connected at the end reads its socket again and must reach the last message published without a silent gap ("complete"); what retention trimmed meanwhile is announced by GAP and counted apart.',
      ...notes,
    ],
  };
}

function resumeGrid(r: Results): Grid | undefined {
  return resumeTable(r.resume, (offline) => `Resume: a subscriber offline for ${offline} messages reconnects (the publisher goes on live)`);
}

function resumeTable(cells: Record<string, Cell<ResumeFigures>>, title: (offline: number | string) => string): Grid | undefined {
  const keys = Object.keys(cells);
  if (keys.length === 0) return undefined;
  const notes: string[] = [];
  const rows = keys.map((k) => {
    const c = cells[k]!;
    if (!isFigures<ResumeFigures>(c)) {
      notes.push(`${k}: ${'na' in c ? `n/a — ${c.na}` : `failed — ${c.error}`}`);
      return [k, 'n/a', '', '', '', ''];
    }
    return [k, c.recovered ? 'yes' : 'NO', c.resubscribeMs.toFixed(1), c.liveMs.toFixed(0), rate(c.catchupPerSec), c.gaps || c.dups ? `${c.gaps} gaps, ${c.dups} dups` : 'none'];
  });
  const any = keys.map((k) => cells[k]).find((c) => isFigures<ResumeFigures>(c)) as ResumeFigures | undefined;
  return {
    title: title(any?.offline ?? '?'),
    columns: ['', 'resumed', 'resubscribed ms', 'live tail ms', 'catch-up msgs/s', 'loss / duplicates'],
    rows,
    notes,
  };
}

function publishGrid(r: Results): Grid | undefined {
  const keys = Object.keys(r.publish);
  if (keys.length === 0) return undefined;
  const notes: string[] = [];
  const rows = keys.map((k) => {
    const c = r.publish[k]!;
    if (!isFigures<PublishFigures>(c)) {
      notes.push(`${k}: ${'na' in c ? `n/a — ${c.na}` : `failed — ${c.error}`}`);
      return [k, 'n/a', '', '', '', ''];
    }
    if (c.failures) notes.push(`${k}: ${c.failures} failures, first: ${c.firstFailure}`);
    return [k, rate(c.msgsPerSec), c.reqPerSec === c.msgsPerSec ? '' : rate(c.reqPerSec), c.commitMs !== undefined ? c.commitMs.toFixed(1) : '', `${c.cpu.server.toFixed(0)}%`, `${c.cpu.client.toFixed(0)}%`];
  });
  return {
    title: 'Publish: durable and acknowledged (Sluice: ACK after the synced commit)',
    columns: ['', 'msgs/s', 'req/s', 'publish → commit ms', 'server CPU', 'client CPU'],
    rows,
    notes,
  };
}

/**
 * The A/B of a gateway change: this checkout's build (`sluice`) against another (`sluice-old`) in
 * the same run — each figure of both, new ÷ old, and whether the new one is within 5% or better.
 */
function abGrid(r: Results): Grid | undefined {
  const rows: string[][] = [];
  const verdict = (n: number | undefined, o: number | undefined, higherIsBetter: boolean) => {
    if (n === undefined || o === undefined || !(o > 0)) return '';
    const worse = higherIsBetter ? 1 - n / o : n / o - 1;
    return worse > 0.05 ? `new ${(worse * 100).toFixed(1)}% worse` : 'within 5% or better';
  };
  const add = (what: string, n: number | undefined, o: number | undefined, show: (v: number) => string, higherIsBetter: boolean) => {
    rows.push([what, n === undefined ? 'n/a' : show(n), o === undefined ? 'n/a' : show(o), ratio(n, o), higherIsBetter ? 'higher' : 'lower', verdict(n, o, higherIsBetter)]);
  };
  for (const [size, row] of Object.entries(r.fanout)) {
    const n = isFigures<FanoutFigures>(row.sluice) ? row.sluice : undefined;
    const o = isFigures<FanoutFigures>(row['sluice-old']) ? row['sluice-old'] : undefined;
    if (row['sluice-old'] === undefined) continue;
    add(`fan-out ${size}: delivered msgs/s`, n?.deliveredPerSec, o?.deliveredPerSec, rate, true);
    add(`fan-out ${size}: server CPU µs per delivery`, n && n.cpu.server * 1e4 / n.deliveredPerSec, o && o.cpu.server * 1e4 / o.deliveredPerSec, (v) => v.toFixed(3), false);
    add(`fan-out ${size}: latency p50 ms`, n?.latency?.p50, o?.latency?.p50, ms, false);
    add(`fan-out ${size}: latency p99 ms`, n?.latency?.p99, o?.latency?.p99, ms, false);
  }
  const nr = r.nonReading ?? {};
  if (nr['sluice-old'] !== undefined) {
    const n = isFigures<NonReadingFigures>(nr.sluice) ? nr.sluice : undefined;
    const o = isFigures<NonReadingFigures>(nr['sluice-old']) ? nr['sluice-old'] : undefined;
    const mb = (v: number) => `+${v.toFixed(0)} MB`;
    add('non-reading: server anonymous RSS growth (peak)', n && n.rss.anonPeakMB - n.rss.anonStartMB, o && o.rss.anonPeakMB - o.rss.anonStartMB, mb, false);
    add('non-reading: server RSS growth (peak)', n && n.rss.peakMB - n.rss.startMB, o && o.rss.peakMB - o.rss.startMB, mb, false);
    add('non-reading: readers p99 ms with them', n?.during.p99, o?.during.p99, ms, false);
  }
  for (const credit of [64, 4096]) {
    const n = r.resume[`Sluice (window ${credit})`];
    const o = r.resume[`Sluice old build (window ${credit})`];
    if (o === undefined) continue;
    const nf = isFigures<ResumeFigures>(n) ? n : undefined;
    const of = isFigures<ResumeFigures>(o) ? o : undefined;
    add(`resume, window ${credit}: catch-up msgs/s`, nf?.catchupPerSec, of?.catchupPerSec, rate, true);
    add(`resume, window ${credit}: live tail ms`, nf?.liveMs, of?.liveMs, (v) => v.toFixed(0), false);
  }
  for (const key of Object.keys(r.publish)) {
    if (!key.startsWith('Sluice (old build): ')) continue;
    const mode = key.slice('Sluice (old build): '.length);
    const n = r.publish[`Sluice: ${mode}`];
    const o = r.publish[key];
    add(`publish, ${mode}: msgs/s`, isFigures<PublishFigures>(n) ? n.msgsPerSec : undefined, isFigures<PublishFigures>(o) ? o.msgsPerSec : undefined, rate, true);
  }
  if (rows.length === 0) return undefined;
  return {
    title: 'A/B: this build (new) against the old build, same run, same clients',
    columns: ['', 'new', 'old', 'new÷old', 'better when', 'verdict'],
    rows,
    notes: [
      'Each figure comes from a fresh server; quick runs move ±10–30% between runs on this VM, so a single run decides nothing near 5%: repeat it.',
      'A delivered-msgs/s figure limited by the clients\' core (see the fan-out table) says little about the server; compare its CPU per delivery.',
    ],
  };
}

// ---- queue ----------------------------------------------------------------------------------

const QUEUE_COLUMNS: { id: TargetId; label: string }[] = [
  { id: 'sluice', label: 'Sluice' },
  { id: 'rabbitmq', label: 'RabbitMQ' },
  { id: 'nats', label: 'NATS JetStream' },
];

function queueGrid(r: Results): Grid | undefined {
  const row = r.queue?.throughput ?? {};
  const cols = QUEUE_COLUMNS.filter((c) => row[c.id] !== undefined);
  if (cols.length === 0) return undefined;
  const fig = (id: TargetId) => (isFigures<QueueFigures>(row[id]) ? (row[id] as QueueFigures) : undefined);
  // Older results carry no queue profile: the figures say the same.
  const any = r.profile.queue ?? cols.map((c) => fig(c.id)).find((f) => f);
  const cells = (f: (v: QueueFigures) => string) => cols.map((c) => cellOf<QueueFigures>(row[c.id], f));
  const s = fig('sluice');
  const refs = [
    { id: 'rabbitmq' as const, label: 'Sluice÷RabbitMQ' },
    { id: 'nats' as const, label: 'Sluice÷JetStream' },
  ].filter((x) => row[x.id] !== undefined);
  const blank = refs.map(() => '');
  const clients = (c: LoadCpu) => c.publisher + c.workers.reduce((a, b) => a + b, 0);
  const fixed = r.queue?.latencyRate ?? 0;
  const notes = new Set<string>();
  naNotes(row, notes);
  for (const c of cols) {
    const f = fig(c.id);
    if (f?.system) notes.add(`${c.label} ran: ${f.system}`);
    if (f && (f.redelivered || f.errors || f.closed)) notes.add(`${c.label}: ${f.redelivered} redelivered, ${f.errors} member errors, ${f.closed} members disconnected during the run`);
  }
  return {
    title: `Queue: ${any?.members ?? '?'} members share one queue, 200-byte messages, credit/prefetch ${any?.credit ?? '?'}, manual acks, durable on every side`,
    columns: ['', ...cols.map((c) => c.label), ...refs.map((x) => x.label)],
    rows: [
      ['acked msgs/s (members\' acks, start → all acked)', ...cells((v) => rate(v.ackedPerSec)), ...refs.map((x) => ratio(s?.ackedPerSec, fig(x.id)?.ackedPerSec))],
      ['  limited by (server CPU)', ...cells((v) => `${v.bound} (${v.cpu.server.toFixed(0)}%)`), ...blank],
      ['  server CPU µs per acked message', ...cells((v) => (v.cpu.server * 1e4 / v.ackedPerSec).toFixed(1)), ...blank],
      ['  client CPU: publisher + members %', ...cells((v) => clients(v.cpu).toFixed(0)), ...blank],
      ...(s?.commitMs !== undefined ? [['  Sluice publish → commit ms (mean)', ...cells((v) => (v.commitMs !== undefined ? v.commitMs.toFixed(1) : '')), ...blank]] : []),
      [`  publish → ack p50/p99 ms at max (≤ ${any?.inFlight ?? '?'} in flight)`, ...cells((v) => `${ms(v.maxLatency.p50)}/${ms(v.maxLatency.p99)}`), ...blank],
      [`  publish → ack p50/p99/p99.9 ms @ ${fixed ? rate(fixed) : '?'} msgs/s`, ...cells((v) => (v.latency ? latencyOf({ latency: v.latency } as FanoutFigures) : 'n/a')), ...blank],
    ],
    notes: [
      `One publisher (≤ ${any?.window ?? '?'} awaiting their publish ack: Sluice ACK with a unique idempotency key, RabbitMQ confirm, JetStream ack), ≤ ${any?.inFlight ?? '?'} published and not yet acknowledged by a member; members acknowledge each delivery as it arrives, those of one socket read together.`,
      'Sluice: disk store, ACK after the synced commit; RabbitMQ: durable classic queue, persistent messages (its broker is the machine\'s, not pinned: it may use both cores); JetStream: work-queue stream on a file store (nats-server does not fsync each write by default).',
      `Latency @ a fixed rate: ${r.profile.queue ? `${(r.profile.queue.latencyLoad * 100).toFixed(0)}%` : 'a share'} of the slowest system's max in this run, the same for all; at max it is mostly the time messages wait in the bounded backlog.`,
      ...notes,
    ],
  };
}

function redeliveryGrid(r: Results): Grid | undefined {
  const cells = r.queue?.redelivery ?? {};
  const keys = Object.keys(cells);
  if (keys.length === 0) return undefined;
  const notes: string[] = [];
  let messages = 0;
  const rows = keys.map((k) => {
    const c = cells[k]!;
    if (!isFigures<RedeliveryFigures>(c)) {
      notes.push(`${k}: ${'na' in c ? `n/a — ${c.na}` : `failed — ${c.error}`}`);
      return [k, 'n/a', '', '', '', ''];
    }
    messages = c.messages;
    const attempts = c.attempts[0] === c.attempts[1] ? `${c.attempts[0]}` : `${c.attempts[0]}–${c.attempts[1]}`;
    return [k, c.ackWaitMs === null ? `none (${c.ackWaitSetBy})` : `${c.ackWaitMs} ms (${c.ackWaitSetBy})`, c.from,
      `${c.redelivered} / ${c.messages} (${c.toOther} to the other)`, attempts,
      // Math.round, not toFixed: no "-0".
      `${Math.round(c.delayMs.min)} / ${Math.round(c.delayMs.p50)} / ${Math.round(c.delayMs.max)}`];
  });
  return {
    title: `Redelivery: a member takes ${messages || '?'} deliveries and never acknowledges them; when does another member get them?`,
    columns: ['', 'ack wait (set by)', 'delay counted from', 'delivered again', 'attempt', 'delay min / p50 / max ms'],
    rows,
    notes: [
      'The first delivery\'s time is when the member received it: the system started its ack wait a little earlier, so a delay may be slightly negative.',
      ...notes,
    ],
  };
}

// ---- cluster --------------------------------------------------------------------------------

const perMsg = (c: RedisCost | undefined, n: number | undefined) => (c && n !== undefined ? (n / c.messages).toFixed(3) : '');
const commandsOf = (c: RedisCost) => Object.values(c.calls).reduce((a, b) => a + b, 0);
const redisCpuPer1000 = (c: RedisCost | undefined) => (c ? ((1e6 * c.cpuSeconds) / c.messages).toFixed(1) : '');

function clusterFanoutGrid(r: Results): Grid | undefined {
  const sizes = Object.keys(r.cluster?.fanout ?? {});
  if (sizes.length === 0) return undefined;
  const ids: TargetId[] = [...new Set(sizes.flatMap((n) => columnsOf(r.cluster.fanout[n]!)))];
  const refs = (['socketio-cluster', 'socketio-streams-cluster'] as const).filter((id) => ids.includes(id));
  const blank = refs.map(() => '');
  const notes = new Set<string>();
  const rows: string[][] = [];
  for (const n of sizes) {
    const row = r.cluster.fanout[n]!;
    naNotes(row, notes);
    const fig = (id: TargetId) => (isFigures<FanoutFigures>(row[id]) ? (row[id] as FanoutFigures) : undefined);
    const cells = (f: (v: FanoutFigures) => string) => ids.map((id) => cellOf<FanoutFigures>(row[id], f));
    rows.push([`${n} subscribers (${Number(n) / 2} per node): delivered msgs/s`, ...cells((v) => rate(v.deliveredPerSec)),
      ...refs.map((id) => ratio(fig('sluice-cluster')?.deliveredPerSec, fig(id)?.deliveredPerSec))]);
    rows.push(['  limited by (server core CPU: both nodes + Redis)', ...cells((v) => `${v.bound} (${v.cpu.server.toFixed(0)}%)`), ...blank]);
    rows.push(['  server CPU µs per delivery (nodes + Redis)', ...cells((v) => (v.cpu.server * 1e4 / v.deliveredPerSec).toFixed(2)), ...blank]);
    rows.push(['  published msgs/s', ...cells((v) => rate(v.publishedPerSec)), ...blank]);
    rows.push(['  Redis CPU ms per 1000 published', ...cells((v) => redisCpuPer1000(v.redis)), ...blank]);
    rows.push(['  Redis requests read / commands per published msg', ...cells((v) => (v.redis ? `${perMsg(v.redis, v.redis.reads)} / ${perMsg(v.redis, commandsOf(v.redis))}` : 'n/a')), ...blank]);
    const l = fig('sluice-cluster')?.latency;
    rows.push([`  latency p50/p99/p99.9 ms @ ${l ? rate(l.rate) : '?'} pub/s`, ...cells(latencyOf), ...blank]);
    for (const id of ids) {
      const f = fig(id);
      if (f && (f.gaps || f.dups || !f.drained)) notes.add(`${LABELS[id]} at ${n}: ${f.gaps} gaps, ${f.dups} duplicates${f.drained ? '' : ', not every message arrived'}`);
    }
  }
  return {
    title: 'Cluster fan-out: 1 topic, 2 nodes on one Redis (all three processes on the server core), publisher on node 1',
    columns: ['', ...ids.map((id) => LABELS[id]), ...refs.map((id) => `Sluice÷${LABELS[id]}`)],
    rows,
    notes: ['Redis figures cover the max-throughput run: its commands and CPU ÷ the messages published in it.', ...notes],
  };
}

function clusterPublishGrid(r: Results): Grid | undefined {
  const keys = Object.keys(r.cluster?.publish ?? {});
  if (keys.length === 0) return undefined;
  const notes: string[] = [];
  const rows = keys.map((k) => {
    const c = r.cluster.publish[k]!;
    if (!isFigures<PublishFigures>(c)) {
      notes.push(`${k}: ${'na' in c ? `n/a — ${c.na}` : `failed — ${c.error}`}`);
      return [k, 'n/a', '', '', '', '', '', ''];
    }
    if (c.failures) notes.push(`${k}: ${c.failures} failures, first: ${c.firstFailure}`);
    const x = c.redis;
    return [k, rate(c.msgsPerSec), c.commitMs !== undefined ? c.commitMs.toFixed(1) : '',
      `${c.cpu.server.toFixed(0)}% (${(c.cpu.server * 1e4 / c.msgsPerSec).toFixed(1)} µs)`, c.cpu.all !== undefined ? `${c.cpu.all.toFixed(0)}%` : '',
      x ? redisCpuPer1000(x) : '', x ? perMsg(x, x.reads) : '', x ? perMsg(x, x.calls.evalsha ?? 0) : '', x ? perMsg(x, commandsOf(x)) : ''];
  });
  return {
    title: 'Cluster publish: durable, acknowledged, WebSocket PUB/ACK ≤ 1,000 in flight, on node 1 (disk store: one gateway)',
    columns: ['', 'msgs/s', 'publish → commit ms', 'gateway CPU (per msg)', 'server core: nodes + Redis', 'Redis CPU ms / 1000 msgs', 'Redis requests read / msg', 'evalsha / msg', 'Redis commands / msg'],
    rows,
    notes: [
      'The two nodes and Redis share the server core: when "server core" nears 100%, the core is the limit, not the gateway.',
      '"Redis requests read" is INFO stats total_reads_processed: socket reads with at least one command (a pipelined burst is one read); "commands" counts what scripts run too.',
      ...notes,
    ],
  };
}

/** Calls (or µs) per published message of every command, for each run that measured Redis. */
function redisCommandsGrid(r: Results, what: 'calls' | 'usec' = 'calls'): Grid | undefined {
  const runs: { label: string; cost: RedisCost }[] = [];
  for (const [k, c] of Object.entries(r.cluster?.publish ?? {})) if (isFigures<PublishFigures>(c) && c.redis) runs.push({ label: `publish: ${k}`, cost: c.redis });
  for (const [n, row] of Object.entries(r.cluster?.fanout ?? {})) {
    for (const id of ORDER) {
      const c = row[id];
      if (isFigures<FanoutFigures>(c) && c.redis) runs.push({ label: `fan-out ${n}: ${LABELS[id]}`, cost: c.redis });
    }
  }
  if (runs.length === 0) return undefined;
  const commands = [...new Set(runs.flatMap((run) => Object.keys(run.cost.calls)))].sort();
  if (what === 'usec') {
    return {
      title: 'Redis time per published message by command, µs (INFO commandstats usec deltas ÷ messages)',
      columns: ['', ...commands, 'Redis CPU'],
      rows: runs.map((run) => [run.label, ...commands.map((cmd) => ((run.cost.usec[cmd] ?? 0) / run.cost.messages).toFixed(2)), ((1e6 * run.cost.cpuSeconds) / run.cost.messages).toFixed(2)]),
      notes: ['evalsha\'s time includes the commands its script ran (each also under its own name): the script\'s own overhead is evalsha minus those. "Redis CPU" is the process\'s user + system CPU, network included.'],
    };
  }
  return {
    title: 'Redis commands per published message (INFO commandstats deltas ÷ messages)',
    columns: ['', ...commands, 'requests read'],
    rows: runs.map((run) => [run.label, ...commands.map((cmd) => perMsg(run.cost, run.cost.calls[cmd] ?? 0)), perMsg(run.cost, run.cost.reads)]),
    notes: [
      'Commands a Lua script runs count under their own names (the APPEND script: info, hmget, xadd, get/set per key, hset, spublish); the script call itself is evalsha.',
      'Background commands of the nodes (each second: set + get of the incarnation key, hmget per quiet followed topic) are in the counts; the bench\'s own INFO calls are not.',
    ],
  };
}

function clusterResumeGrid(r: Results): Grid | undefined {
  return resumeTable(r.cluster?.resume ?? {}, (offline) => `Cluster resume: a subscriber on node 1 offline for ${offline} messages published on node 1 resumes from its offset`);
}

function goalsGrid(r: Results): Grid {
  return {
    title: 'Goals',
    columns: ['goal', 'target', 'measured', 'verdict'],
    rows: r.goals.map((g) => [g.name, g.target, g.measured, g.verdict]),
    notes: r.goals.filter((g) => g.note).map((g) => `${g.name}: ${g.note}`),
  };
}

function grids(r: Results): Grid[] {
  return [
    fanoutGrid(r), manyGrid(r), ...openGrids(r), memoryGrid(r), slowGrid(r), nonReadingGrid(r), resumeGrid(r), publishGrid(r), queueGrid(r), redeliveryGrid(r), abGrid(r),
    clusterFanoutGrid(r), clusterPublishGrid(r), redisCommandsGrid(r), redisCommandsGrid(r, 'usec'), clusterResumeGrid(r), goalsGrid(r),
  ].filter((g): g is Grid => g !== undefined);
}

function text(g: Grid): string {
  const all = [g.columns, ...g.rows];
  const widths = g.columns.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [g.title, line(g.columns), ...g.rows.map(line), ...g.notes.map((n) => `  * ${n}`)].join('\n');
}

function markdown(g: Grid): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [
    `### ${g.title}`,
    '',
    `| ${g.columns.map(esc).join(' | ')} |`,
    `|${g.columns.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...g.rows.map((row) => `| ${row.map(esc).join(' | ')} |`),
    '',
    ...g.notes.map((n) => `- ${n}`),
  ].join('\n');
}

function header(r: Results): string[] {
  const m = r.machine;
  return [
    `${r.profile.mode} run, ${r.startedAt} → ${r.finishedAt}`,
    `machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}`,
    `versions: ${Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join('; ')}`,
    m.taskset ? `pinning: every server on CPU ${m.serverCpu}; the bench, its publisher and ${r.profile.workers} load workers on CPU ${m.clientCpu}` : `pinning: none (${m.notes.join('; ')})`,
    `syscall counts: ${m.perf ? 'perf stat (syscall tracepoints)' : m.strace ? 'strace -c -f' : 'not available'}; open-file limit ${m.openFiles} per process`,
  ];
}

export function renderText(r: Results): string {
  return [...header(r), '', ...grids(r).map(text).join('\n\n').split('\n'), ...r.notes.map((n) => `note: ${n}`)].join('\n');
}

export function renderMarkdown(r: Results): string {
  return [
    '# Sluice bench — latest results',
    '',
    ...header(r).map((l) => `- ${l}`),
    `- command: \`${r.command}\``,
    '',
    grids(r).map(markdown).join('\n\n'),
    ...r.notes.map((n) => `- note: ${n}`),
    '',
  ].join('\n');
}
