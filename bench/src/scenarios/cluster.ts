/**
 * Scenario 7, cluster: two server processes on one Redis (targets/cluster.ts), every process on the
 * server core. Four questions, each measured with an existing scenario's method:
 *
 * a. Fan-out (scenarios/fanout.ts): 1 topic × N subscribers split evenly over the two nodes, the
 *    publisher on node 1, the publisher's probe on node 2 (the longer path bounds the window).
 *    Sluice (Redis store) against Socket.IO with the classic `@socket.io/redis-adapter` and with
 *    `@socket.io/redis-streams-adapter`. Latency at one rate for all: 50% of what Sluice sustained.
 * b. Durable publish (scenarios/publish.ts): WebSocket PUB→ACK, ≤ 1,000 in flight, unique
 *    idempotency keys, on node 1 — the Redis store (no persistence; AOF `always` and `everysec`)
 *    against the disk store (one gateway, `sluice` target). And resume (scenarios/resume.ts): a
 *    subscriber on node 1 drops, N messages are published on node 1, it resumes from its offset on
 *    node 1 or on node 2 (disk store: the same node, for reference).
 * c. Redis cost per published message, from INFO deltas around each measured stretch (RedisCost):
 *    calls per command, requests read from clients (round trips, a pipelined burst counted once),
 *    Redis CPU.
 * d. Hot topic: the publish run of (b) to 1 topic against the same load round-robin over
 *    `spreadTopics` topics. Every key of a topic hashes to one slot (`sl:{topic}:*`), so one topic is
 *    one Redis thread's work in any deployment; this shows what the one-topic batching buys or
 *    costs on one instance.
 */
import type { RedisCost } from '../report/results.js';
import { isFigures, type Cell, type FanoutFigures, type PublishFigures, type ResumeFigures } from '../report/results.js';
import type { RunningCluster } from '../targets/cluster.js';
import { statsDelta, type Aof, type RedisServer, type RedisStats } from '../targets/redis.js';
import type { RunningTarget, Target, TargetId } from '../targets/target.js';
import { describeFanout, measureFanout } from './fanout.js';
import { describePublish, wsPublish } from './publish.js';
import { describeResume, measureResume } from './resume.js';
import { withTarget, type Context } from './session.js';

/** INFO calls the bench itself makes per `stats()` (commandstats, stats, cpu): left out of the figures. */
const OWN_INFO_CALLS = 3;

/**
 * Measures what the stretch between `start()` and `stop()` cost Redis; `cost(messages)` after.
 * Both points MUST be quiet (nothing in flight), or the stretch counts another one's commands.
 */
function redisMeter(redis: RedisServer): { start(): Promise<void>; stop(): Promise<void>; cost(messages: number): RedisCost } {
  let before: RedisStats | undefined;
  let after: RedisStats | undefined;
  let t0 = 0;
  let seconds = 0;
  return {
    async start() {
      before = await redis.stats();
      t0 = performance.now();
    },
    async stop() {
      seconds = (performance.now() - t0) / 1000;
      after = await redis.stats();
    },
    cost(messages: number) {
      const d = statsDelta(before!, after!);
      if (d.calls.info !== undefined) {
        // The bench's own INFO calls: their count is known, their time is not (a few µs each).
        d.calls.info -= OWN_INFO_CALLS;
        if (d.calls.info <= 0) {
          delete d.calls.info;
          delete d.usec.info;
        }
      }
      return { messages, ...d, seconds };
    },
  };
}

const asCluster = (t: RunningTarget) => t as RunningCluster;

/** Redis cost in one line: round trips, commands and Redis CPU per message, then the commands. */
export function describeRedisCost(c: RedisCost): string {
  const per = (n: number) => (n / c.messages).toFixed(3);
  const commands = Object.entries(c.calls).sort((a, b) => b[1] - a[1]);
  const total = commands.reduce((a, [, n]) => a + n, 0);
  return `redis: ${per(c.reads)} reads/msg, ${per(total)} commands/msg (${commands.map(([k, n]) => `${k} ${per(n)} ${((c.usec[k] ?? 0) / c.messages).toFixed(2)}µs`).join(', ')}), ` +
    `${((1000 * c.cpuSeconds * 1000) / c.messages).toFixed(1)} ms CPU per 1000 msgs`;
}

async function fanoutPart(ctx: Context, targets: Target[]): Promise<void> {
  for (const n of ctx.profile.cluster.sizes) {
    ctx.log(`\ncluster fan-out: 1 topic × ${n} subscribers over 2 nodes on one Redis, publisher on node 1`);
    const row: Partial<Record<TargetId, Cell<FanoutFigures>>> = {};
    ctx.results.cluster.fanout[String(n)] = row;
    let latencyRate: number | undefined;
    for (const target of targets) {
      const cell = await withTarget(ctx, target, {}, async (t) => {
        const { nodes, redis } = asCluster(t);
        const meter = redisMeter(redis);
        const f = await measureFanout(ctx, t, n, {
          specs: nodes.map((node) => node.subscriber({ credit: 64 })),
          probe: nodes[nodes.length - 1]!.subscriber({ credit: 64 }),
          latencyRate,
          around: {
            start: () => meter.start(),
            end: async (messages) => {
              await meter.stop();
              return { redis: meter.cost(messages) };
            },
          },
        });
        if (target.id === 'sluice-cluster') latencyRate = f.latency?.rate;
        return f;
      }, `cluster fan-out ${n}`);
      row[target.id] = cell;
      ctx.log(`  ${target.label.padEnd(42)} ${describeFanout(cell)}`);
      if (isFigures<FanoutFigures>(cell) && cell.redis) ctx.log(`  ${''.padEnd(42)} ${describeRedisCost(cell.redis)}`);
    }
  }
}

interface PublishRun {
  key: string;
  aof?: Aof;
  keys: boolean;
  topics: number;
}

async function publishPart(ctx: Context, disk: Target | undefined, sluiceCluster: Target | undefined): Promise<void> {
  const { spreadTopics } = ctx.profile.cluster;
  ctx.log(`\ncluster publish: durable, acknowledged, WebSocket window ${ctx.profile.publish.window}, on node 1`);
  const put = (key: string, cell: Cell<PublishFigures>) => {
    ctx.results.cluster.publish[key] = cell;
    ctx.log(`  ${key.padEnd(52)} ${describePublish(cell)}`);
    if (isFigures<PublishFigures>(cell) && cell.redis) ctx.log(`  ${''.padEnd(52)} ${describeRedisCost(cell.redis)}`);
  };
  if (disk) {
    put('disk store, 1 topic, keys', await withTarget(ctx, disk, {}, (t) => wsPublish(ctx, t, 'ws-keys', true, false), 'cluster publish disk'));
  }
  if (!sluiceCluster) return;
  const runs: PublishRun[] = [
    { key: 'Redis store, 1 topic, keys', keys: true, topics: 1 },
    { key: `Redis store, ${spreadTopics} topics, keys`, keys: true, topics: spreadTopics },
    { key: 'Redis store, 1 topic, no keys', keys: false, topics: 1 },
    { key: 'Redis store + AOF everysec, 1 topic, keys', aof: 'everysec', keys: true, topics: 1 },
    { key: 'Redis store + AOF always, 1 topic, keys', aof: 'always', keys: true, topics: 1 },
  ];
  for (const r of runs) {
    // A fresh cluster (and Redis) per run: nothing one run stored changes the next one's costs.
    put(r.key, await withTarget(ctx, sluiceCluster, r.aof ? { aof: r.aof } : {}, async (t) => {
      const meter = redisMeter(asCluster(t).redis);
      const f = await wsPublish(ctx, t, r.keys ? 'ws-keys' : 'ws', r.keys, false, { topics: r.topics, around: meter });
      return { ...f, topics: r.topics, redis: meter.cost(f.messages) };
    }, `cluster publish ${r.key}`));
  }
}

async function resumePart(ctx: Context, disk: Target | undefined, sluiceCluster: Target | undefined): Promise<void> {
  ctx.log(`\ncluster resume: a subscriber offline for ${ctx.profile.resume.offline} messages resumes from its offset`);
  const put = (key: string, cell: Cell<ResumeFigures>) => {
    ctx.results.cluster.resume[key] = cell;
    ctx.log(`  ${key.padEnd(44)} ${describeResume(cell)}`);
  };
  for (const credit of [64, 4096]) {
    if (disk) {
      put(`disk store, same node (window ${credit})`, await withTarget(ctx, disk, { resume: true }, (t) => measureResume(ctx, t, credit), `cluster resume disk ${credit}`));
    }
    if (!sluiceCluster) continue;
    for (const where of ['same node', 'other node'] as const) {
      put(`Redis store, ${where} (window ${credit})`, await withTarget(ctx, sluiceCluster, { resume: true }, (t) => {
        const { nodes } = asCluster(t);
        const spec = nodes[0]!.subscriber({ credit });
        if (where === 'other node') spec.resumeUrl = nodes[1]!.subscriber().url;
        return measureResume(ctx, t, credit, spec);
      }, `cluster resume ${where} ${credit}`));
    }
  }
}

export async function cluster(ctx: Context): Promise<void> {
  const byId = (id: TargetId) => ctx.targets.find((t) => t.id === id);
  const clusters = ctx.targets.filter((t) => t.id.endsWith('-cluster'));
  const sluiceCluster = byId('sluice-cluster');
  const disk = byId('sluice');
  await fanoutPart(ctx, clusters);
  await publishPart(ctx, disk, sluiceCluster);
  await resumePart(ctx, disk, sluiceCluster);
}
