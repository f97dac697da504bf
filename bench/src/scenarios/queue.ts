/**
 * Scenario 8, queue (issue 12): one queue shared by competing consumers, durable on every side.
 *
 * Throughput — `members` (10) consumers, each holding at most `credit` (64) unacknowledged
 * deliveries and acknowledging each as it arrives (the acks of one socket read together), fed by
 * one publisher of 200-byte messages with at most `window` (1,024) awaiting their publish
 * acknowledgement and `inFlight` (4,096) not yet acknowledged by a member (load/queue-feed.ts):
 * - Sluice: a consumer group of the disk-store gateway (default durability: ACK after the synced
 *   commit), members are raw-frame clients (clients/sluice-member.ts: SUB with `group` and credit,
 *   GROUP_ACK), publishes carry unique idempotency keys;
 * - RabbitMQ: the machine's broker, a durable classic queue, persistent messages, publisher
 *   confirms, consumers with prefetch and manual acks (clients/amqp-*.ts, targets/rabbitmq.ts);
 * - NATS JetStream: the bench's own nats-server, a work-queue stream on a file store with a durable
 *   pull consumer and explicit acks, pullers keeping `credit` requested (clients/jetstream-member.ts).
 * Measured: member acknowledgements per second (start → every message acknowledged), publish →
 * ack latency in that run, and at a fixed rate, the same for all: `latencyLoad` (50%) of the
 * slowest system's max in this run.
 *
 * Redelivery — a member takes `messages` (64) deliveries and never acknowledges them, connected
 * ("silent") or gone (its connection closed); another member waits. Measured: when each message
 * is delivered again, after the moment the system may do so: Sluice and JetStream once the ack
 * wait (`ackWaitMs`) expired, counted from the first delivery; RabbitMQ, which has no ack wait per
 * message, once the consumer's channel is closed (its consumer_timeout is broker-wide and not the
 * bench's to change: the silent case is n/a there).
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { createSubscriber } from '../clients/factory.js';
import { GatewayMetrics } from '../gateway-metrics.js';
import { createDurablePull, createWorkQueue } from '../clients/jetstream.js';
import { NatsConnection } from '../clients/nats-connection.js';
import { NatsPublisher } from '../clients/nats-publisher.js';
import type { Publisher } from '../clients/publisher.js';
import type { Member, SubscriberSpec } from '../clients/subscriber.js';
import { Fleet } from '../load/fleet.js';
import { QueueFeed } from '../load/queue-feed.js';
import type { QueueProfile } from '../options.js';
import { makePayload } from '../payload.js';
import { cpuMeter, SelfCpu, threadCpuMeter } from '../proc-stats.js';
import { isFigures, type Cell, type LoadCpu, type QueueFigures, type RedeliveryFigures } from '../report/results.js';
import { CLI, TOPIC_PREFIX } from '../targets/sluice.js';
import type { RunningTarget, Target, TargetId } from '../targets/target.js';
import { boundBy, StalledError } from './measure.js';
import { withTarget, type Context } from './session.js';

/** The systems the queue scenario compares, in the table's order. */
export const QUEUE_TARGETS: TargetId[] = ['sluice', 'rabbitmq', 'nats'];
const GROUP = 'bench';
const JS_STREAM = 'QUEUE';
const JS_PREFIX = 'q.';
const JS_CONSUMER = 'workers';
/** JetStream's ack wait for the throughput runs: its default (nothing expires within a run). */
const JS_DEFAULT_ACK_WAIT_MS = 30_000;
/** Sluice's documented default ack wait (PROTOCOL.md, "Consumer groups"). */
const SLUICE_DEFAULT_ACK_WAIT_MS = 30_000;

const LABELS: Partial<Record<TargetId, string>> = { sluice: 'Sluice', rabbitmq: 'RabbitMQ', nats: 'NATS JetStream' };

/** How a system's members and publisher reach the queue. */
interface QueueSide {
  member: SubscriberSpec;
  publisher(): Promise<Publisher>;
}

async function sideOf(t: RunningTarget, q: QueueProfile, credit: number, ackWaitMs = JS_DEFAULT_ACK_WAIT_MS): Promise<QueueSide> {
  switch (t.id) {
    case 'sluice':
      return {
        member: { kind: 'sluice-group', url: t.wsUrl!, prefix: TOPIC_PREFIX, group: GROUP, credit, ...(t.token ? { token: t.token } : {}) },
        publisher: () => t.publisher({ window: q.window, keys: true }),
      };
    case 'rabbitmq':
      return { member: t.subscriber({ credit }), publisher: () => t.publisher({ window: q.window }) };
    case 'nats': {
      const c = await NatsConnection.open(t.wsUrl!);
      try {
        await createWorkQueue(c, JS_STREAM, [`${JS_PREFIX}>`]);
        await createDurablePull(c, JS_STREAM, JS_CONSUMER, { ackWaitMs, maxAckPending: 100_000 });
      } finally {
        c.close();
      }
      return {
        member: { kind: 'jetstream-queue', url: t.wsUrl!, prefix: JS_PREFIX, stream: JS_STREAM, consumer: JS_CONSUMER, credit },
        publisher: () => NatsPublisher.open({ url: t.wsUrl!, prefix: JS_PREFIX, jetstream: { window: q.window } }),
      };
    }
    default:
      throw new Error(`${t.id} has no queue`);
  }
}

/** Opens the members in the load workers, the publisher in this process; runs `body`; closes them. */
async function withQueue<T>(ctx: Context, t: RunningTarget, body: (feed: QueueFeed, fleet: Fleet) => Promise<T>): Promise<T> {
  const q = ctx.profile.queue;
  const side = await sideOf(t, q, q.credit);
  const fleet = new Fleet(Math.min(ctx.profile.workers, q.members));
  try {
    const opened = await fleet.open(side.member, Array.from({ length: q.members }, () => 0));
    if (opened.failed) throw new Error(`${opened.failed} of ${q.members} members could not join: ${opened.firstError}`);
    const publisher = await side.publisher();
    try {
      return await body(new QueueFeed(publisher, fleet), fleet);
    } finally {
      publisher.close();
    }
  } finally {
    await fleet.close();
  }
}

/** A run that did not drain: members reported errors (not retried), or delivery stalled (retried). */
async function notDrained(fleet: Fleet, feed: QueueFeed, what: string): Promise<Error> {
  const r = await fleet.report();
  const state = `${feed.sent} published, ${feed.acked()} acknowledged by members, ${r.closed} members disconnected`;
  if (r.errors > 0) return new Error(`${what}: members reported ${r.errors} errors (${r.firstError}); ${state}`);
  return new StalledError(`${what}: acknowledgements stalled: ${state}`);
}

async function measureMax(ctx: Context, t: RunningTarget): Promise<QueueFigures> {
  const q = ctx.profile.queue;
  return withQueue(ctx, t, async (feed, fleet) => {
    const warm = await feed.run({ durationMs: q.warmupMs, inFlight: q.inFlight });
    if (!warm.drained) throw await notDrained(fleet, feed, 'warm-up');
    await fleet.phase(true);
    const server = cpuMeter(t.pids ?? t.pid);
    const threads = threadCpuMeter(t.pid);
    const self = new SelfCpu();
    const metrics = t.id === 'sluice' && t.httpUrl ? new GatewayMetrics(t.httpUrl) : undefined;
    metrics?.start();
    const run = await feed.run({ durationMs: q.measureMs, inFlight: q.inFlight });
    const commitMs = metrics?.stop().appendMs;
    const cpu: LoadCpu = { server: server.percent(), serverThreads: threads.percent(), publisher: self.percent(), workers: [] };
    if (!run.drained) throw await notDrained(fleet, feed, 'measured run');
    const report = await fleet.report();
    cpu.workers = report.workerCpu;
    const failures = feed.publisher.failures;
    if (failures) throw new Error(`publisher: ${failures} failures, first: ${feed.publisher.firstFailure}`);
    const h = report.latency;
    return {
      ...(t.version ? { system: t.version } : {}),
      members: q.members,
      credit: q.credit,
      window: q.window,
      inFlight: q.inFlight,
      published: run.published,
      acked: run.acked,
      seconds: run.elapsedMs / 1000,
      ackedPerSec: run.acked / (run.elapsedMs / 1000),
      drained: run.drained,
      redelivered: report.redelivered,
      errors: report.errors,
      closed: report.closed,
      bound: boundBy(cpu),
      cpu,
      maxLatency: { count: h.count, p50: h.quantile(0.5), p99: h.quantile(0.99), p999: h.quantile(0.999), max: h.max },
      ...(commitMs !== undefined && Number.isFinite(commitMs) ? { commitMs } : {}),
    };
  });
}

async function measureFixedRate(ctx: Context, t: RunningTarget, rate: number): Promise<NonNullable<QueueFigures['latency']>> {
  const q = ctx.profile.queue;
  return withQueue(ctx, t, async (feed, fleet) => {
    const warm = await feed.run({ durationMs: q.warmupMs / 2, inFlight: q.inFlight, rate });
    if (!warm.drained) throw await notDrained(fleet, feed, 'warm-up');
    await fleet.phase(true);
    const run = await feed.run({ durationMs: q.latencyMs, inFlight: q.inFlight, rate, chunk: 1_000_000 });
    if (!run.drained) throw await notDrained(fleet, feed, 'latency run');
    const h = (await fleet.report()).latency;
    return {
      rate,
      achieved: run.published / (run.sendMs / 1000),
      count: h.count,
      p50: h.quantile(0.5),
      p99: h.quantile(0.99),
      p999: h.quantile(0.999),
      max: h.max,
    };
  });
}

// ---- redelivery -----------------------------------------------------------------------------

/** The gateway build's usage text (it lists every flag), or '' if it cannot be read. */
function gatewayUsage(): string {
  try {
    return execFileSync(process.execPath, [CLI, 'help'], { encoding: 'utf8', timeout: 10_000 });
  } catch {
    return '';
  }
}

/**
 * Sets the group's ack wait through the admin API (`PUT /v1/admin/topics/{topic}/groups/{group}`);
 * returns the HTTP status (0: no answer).
 */
async function putAckWait(t: RunningTarget, topic: string, ackWaitMs: number): Promise<number> {
  try {
    const res = await fetch(`${t.httpUrl}/v1/admin/topics/${encodeURIComponent(topic)}/groups/${GROUP}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...(t.token ? { authorization: `Bearer ${t.token}` } : {}) },
      body: JSON.stringify({ ackWaitMs }),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const tick = () => {
      if (cond()) resolve(true);
      else if (performance.now() - t0 > timeoutMs) resolve(false);
      else setTimeout(tick, 2);
    };
    tick();
  });
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function measureRedelivery(ctx: Context, t: RunningTarget, gone: boolean, flag: boolean): Promise<RedeliveryFigures> {
  const q = ctx.profile.queue;
  const { messages } = q.redelivery;
  let ackWaitMs: number | null = q.redelivery.ackWaitMs;
  let setBy = '';
  const side = await sideOf(t, q, messages, ackWaitMs);
  const quiet = { latency: false, record: () => undefined };
  const holder = createSubscriber(side.member, 0, quiet) as Member;
  const taker = createSubscriber(side.member, 0, quiet) as Member;
  let publisher: Publisher | undefined;
  try {
    const first = new Map<number, number>();
    const again = new Map<number, { at: number; attempt: number; same: boolean }>();
    const seen = (same: boolean) => (seq: number, attempt: number, at: number) => {
      if (attempt <= 1 && same) first.set(seq, at);
      else if (!again.has(seq)) again.set(seq, { at, attempt, same });
    };
    holder.stall();
    holder.onDelivery = seen(true);
    await holder.open();
    if (t.id === 'sluice') {
      // The group exists once its first member joined: now its ack wait can be set.
      const status = await putAckWait(t, `${TOPIC_PREFIX}0`, ackWaitMs);
      if (status >= 200 && status < 300) setBy = 'admin API';
      else if (flag) setBy = `gateway flag --group-ack-wait (admin API: ${status || 'no answer'})`;
      else {
        ackWaitMs = SLUICE_DEFAULT_ACK_WAIT_MS;
        setBy = `the default: no --group-ack-wait flag, admin API answered ${status || 'nothing'}`;
      }
    } else if (t.id === 'nats') setBy = 'consumer config (ack_wait)';
    else {
      ackWaitMs = null;
      setBy = 'consumer_timeout is broker-wide, 30 min by default';
    }
    publisher = await side.publisher();
    for (let i = 1; i <= messages; i++) publisher.send(0, makePayload(i, 0));
    await publisher.settle();
    if (publisher.failures) throw new Error(`publisher: ${publisher.firstFailure}`);
    if (!(await until(() => first.size >= messages, 10_000))) {
      throw new Error(`the first member received ${first.size} of ${messages} deliveries${holder.tally.lastError ? ` (${holder.tally.lastError})` : ''}`);
    }
    // The second member joins once the first holds everything, so nothing is shared out before.
    taker.onDelivery = seen(false);
    await taker.open();
    const goneAt = performance.now();
    if (gone) await holder.disconnect();
    const waitMs = (ackWaitMs ?? 0) + 15_000;
    await until(() => again.size >= messages, waitMs);
    if (again.size === 0) throw new Error(`nothing was delivered again within ${waitMs} ms${taker.tally.lastError ? ` (${taker.tally.lastError})` : ''}`);
    const delays = [...again].map(([seq, r]) => r.at - (ackWaitMs === null ? goneAt : first.get(seq)! + ackWaitMs)).sort((a, b) => a - b);
    const attempts = [...again.values()].map((r) => r.attempt);
    return {
      case: gone ? 'gone' : 'silent',
      messages,
      ackWaitMs,
      ackWaitSetBy: setBy,
      from: ackWaitMs === null ? 'the close of its channel' : 'its first delivery + the ack wait',
      redelivered: again.size,
      toOther: [...again.values()].filter((r) => !r.same).length,
      toSame: [...again.values()].filter((r) => r.same).length,
      attempts: [Math.min(...attempts), Math.max(...attempts)],
      delayMs: { min: delays[0]!, p50: quantile(delays, 0.5), max: delays[delays.length - 1]! },
    };
  } finally {
    publisher?.close();
    holder.close();
    taker.close();
  }
}

// ---- the scenario ---------------------------------------------------------------------------

const rate = (v: number) => (v >= 1e4 ? `${(v / 1e3).toFixed(0)}k` : `${(v / 1e3).toFixed(1)}k`);

export function describeQueue(cell: Cell<QueueFigures>): string {
  if (!isFigures<QueueFigures>(cell)) return JSON.stringify(cell);
  const l = cell.maxLatency;
  return `${rate(cell.ackedPerSec)} acked msgs/s, publish → ack p50/p99 ${(l.p50 / 1000).toFixed(1)}/${(l.p99 / 1000).toFixed(1)} ms, ` +
    `${cell.commitMs !== undefined ? `publish → commit ${cell.commitMs.toFixed(1)} ms, ` : ''}cpu server ${cell.cpu.server.toFixed(0)}% clients ${(cell.cpu.publisher + cell.cpu.workers.reduce((a, b) => a + b, 0)).toFixed(0)}% (${cell.bound})` +
    `${cell.redelivered ? `, ${cell.redelivered} redelivered` : ''}`;
}

export function describeRedelivery(cell: Cell<RedeliveryFigures>): string {
  if (!isFigures<RedeliveryFigures>(cell)) return JSON.stringify(cell);
  const d = cell.delayMs;
  return `${cell.redelivered}/${cell.messages} again (${cell.toOther} to the other member), after ${cell.from}: ` +
    `${Math.round(d.min)}/${Math.round(d.p50)}/${Math.round(d.max)} ms min/p50/max; ack wait ${cell.ackWaitMs ?? 'n/a'} (${cell.ackWaitSetBy})`;
}

export async function queue(ctx: Context): Promise<void> {
  const q = ctx.profile.queue;
  const targets = ctx.targets.filter((t) => QUEUE_TARGETS.includes(t.id));
  const results = { throughput: {}, latencyRate: 0, redelivery: {} } as NonNullable<typeof ctx.results.queue>;
  ctx.results.queue = results;
  ctx.log(`\nqueue: ${q.members} members, credit/prefetch ${q.credit}, manual acks; publisher window ${q.window}, ≤ ${q.inFlight} unacknowledged end to end`);
  // Other processes on the machine compete for its two cores and its disk: say how busy it was.
  const load0 = loadavg()[0]!;
  const start = (target: Target, what: string, measure: (t: RunningTarget) => Promise<unknown>) =>
    withTarget(ctx, target, target.id === 'nats' ? { resume: true } : {}, measure, what);

  for (const target of targets) {
    const cell = await start(target, 'queue', (t) => measureMax(ctx, t)) as Cell<QueueFigures>;
    results.throughput[target.id] = cell;
    ctx.log(`  ${LABELS[target.id]!.padEnd(16)} ${describeQueue(cell)}`);
  }

  const maxes = targets.map((t) => results.throughput[t.id]).filter((c) => isFigures<QueueFigures>(c)).map((c) => (c as QueueFigures).ackedPerSec);
  if (maxes.length > 0) {
    const fixed = Math.round(Math.min(...maxes) * q.latencyLoad);
    results.latencyRate = fixed;
    ctx.log(`  latency at ${fixed} msgs/s (${(q.latencyLoad * 100).toFixed(0)}% of the slowest max):`);
    for (const target of targets) {
      const max = results.throughput[target.id];
      if (!isFigures<QueueFigures>(max)) continue;
      const cell = await start(target, 'queue latency', (t) => measureFixedRate(ctx, t, fixed)) as Cell<NonNullable<QueueFigures['latency']>>;
      if (isFigures(cell)) max.latency = cell;
      else ctx.results.notes.push(`${LABELS[target.id]} (queue latency at ${fixed} msgs/s): ${JSON.stringify(cell)}`);
      ctx.log(`    ${LABELS[target.id]!.padEnd(16)} ${isFigures(cell) ? `p50/p99 ${(cell.p50 / 1000).toFixed(1)}/${(cell.p99 / 1000).toFixed(1)} ms (achieved ${rate(cell.achieved)}/s)` : JSON.stringify(cell)}`);
    }
  }

  const { messages, ackWaitMs } = q.redelivery;
  ctx.log(`  redelivery: a member holds ${messages} deliveries and never acknowledges them; ack wait ${ackWaitMs} ms where one can be set`);
  const usage = gatewayUsage();
  const flag = usage.includes('--group-ack-wait');
  const put = (key: string, cell: Cell<RedeliveryFigures>) => {
    results.redelivery[key] = cell;
    ctx.log(`    ${key.padEnd(58)} ${describeRedelivery(cell)}`);
  };
  for (const target of targets) {
    for (const gone of [false, true]) {
      const key = `${LABELS[target.id]}: member ${gone ? 'gone (connection closed)' : 'connected, silent'}`;
      if (target.id === 'rabbitmq' && !gone) {
        put(key, { na: 'no ack wait per message: a connected consumer keeps its unacknowledged messages until its channel closes or the broker-wide consumer_timeout (30 min by default) closes it' });
        continue;
      }
      const opts = target.id === 'nats' ? { resume: true } : target.id === 'sluice' && flag ? { gatewayArgs: ['--group-ack-wait', `${ackWaitMs}ms`] } : {};
      put(key, await withTarget(ctx, target, opts, (t) => measureRedelivery(ctx, t, gone, flag), `queue redelivery ${gone ? 'gone' : 'silent'}`));
    }
    // The gateway waits its backoff before any redelivery, an expired lease's too (default 1 s
    // first): without it, what is left is the expiry itself.
    if (target.id === 'sluice' && flag && usage.includes('--group-backoff')) {
      const opts = { gatewayArgs: ['--group-ack-wait', `${ackWaitMs}ms`, '--group-backoff', '0ms'] };
      put('Sluice --group-backoff 0ms: member connected, silent', await withTarget(ctx, target, opts, (t) => measureRedelivery(ctx, t, false, flag), 'queue redelivery silent no backoff'));
    }
  }
  results.load = [load0, loadavg()[0]!];
  ctx.results.notes.push(`queue: the machine's 1-minute load average was ${load0.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end (the bench's own processes count in it too: compare runs by it, not with 0)`);
}
