/**
 * Scenario 6, publish: how fast messages can be stored durably and acknowledged.
 *
 * - WebSocket PUB → ACK, pipelined with at most `window` (1,000) awaiting their ACK, without and
 *   with a unique idempotency key per message (the gateway acknowledges after the synced commit);
 * - HTTP single-message and batch publishing over keep-alive connections (n/a while the gateway
 *   answers 404: the HTTP API is built in parallel);
 * - for reference, NATS JetStream publish with acks (file store; note nats-server does not fsync
 *   each write by default, so it is not the same durability).
 */
import { httpPublish } from '../clients/http-publisher.js';
import { Feed } from '../load/feed.js';
import { Fleet } from '../load/fleet.js';
import { cpuMeter, SelfCpu } from '../proc-stats.js';
import { isFigures, type Cell, type PublishFigures } from '../report/results.js';
import type { RunningTarget } from '../targets/target.js';
import { withTarget, type Context } from './session.js';
import { GatewayMetrics } from '../gateway-metrics.js';

/** Extras of a WebSocket publish run (the cluster scenario's). */
export interface WsPublishOptions {
  /** Topics the messages go to, round-robin (default 1). */
  topics?: number;
  /** Awaited right before and right after the measured stretch, when nothing is in flight. */
  around?: { start(): Promise<void>; stop(): Promise<void> };
}

export async function wsPublish(ctx: Context, t: RunningTarget, mode: string, keys: boolean, jetstream: boolean, o: WsPublishOptions = {}): Promise<PublishFigures> {
  const p = ctx.profile.publish;
  const fleet = new Fleet(1); // no subscribers: the feed needs one only for its window
  try {
    const publisher = await t.publisher({ window: p.window, keys, jetstream });
    const feed = new Feed(publisher, fleet, o.topics ?? 1);
    await feed.publishCount(Math.min(20_000, p.window * 10)); // warm-up
    await o.around?.start();
    const server = cpuMeter(t.pid);
    const all = t.pids ? cpuMeter(t.pids) : undefined;
    const self = new SelfCpu();
    const metrics = t.httpUrl ? new GatewayMetrics(t.httpUrl) : undefined;
    metrics?.start();
    const t0 = performance.now();
    const acked0 = publisher.acked;
    const failures0 = publisher.failures;
    const deadline = t0 + p.durationMs;
    while (performance.now() < deadline && publisher.failures === failures0) await feed.publishCount(p.window * 5);
    const seconds = (performance.now() - t0) / 1000;
    const commitMs = metrics?.stop().appendMs;
    await o.around?.stop();
    const messages = publisher.acked - acked0;
    const figures: PublishFigures = {
      mode,
      requests: messages,
      messages,
      seconds,
      reqPerSec: messages / seconds,
      msgsPerSec: messages / seconds,
      failures: publisher.failures - failures0,
      firstFailure: publisher.firstFailure,
      cpu: { server: server.percent(), client: self.percent(), ...(all ? { all: all.percent() } : {}) },
      ...(commitMs !== undefined ? { commitMs } : {}),
    };
    publisher.close();
    return figures;
  } finally {
    await fleet.close();
  }
}

async function http(ctx: Context, t: RunningTarget, mode: string, batch: number): Promise<Cell<PublishFigures>> {
  const p = ctx.profile.publish;
  if (!t.httpUrl) return { na: 'no HTTP API' };
  const server = cpuMeter(t.pid);
  const self = new SelfCpu();
  const r = await httpPublish({
    baseUrl: t.httpUrl,
    ...(t.token ? { token: t.token } : {}),
    topic: 'bench.http',
    batch,
    keys: true,
    concurrency: p.httpConcurrency,
    durationMs: p.durationMs,
  });
  if (r.missing) return { na: 'HTTP API not built yet (404)' };
  return {
    mode,
    requests: r.requests,
    messages: r.messages,
    seconds: r.seconds,
    reqPerSec: r.requests / r.seconds,
    msgsPerSec: r.messages / r.seconds,
    failures: r.failures,
    firstFailure: r.firstFailure,
    cpu: { server: server.percent(), client: self.percent() },
  };
}

/** The line the bench prints for a publish cell. */
export function describePublish(cell: Cell<PublishFigures>): string {
  return isFigures<PublishFigures>(cell)
    ? `${(cell.msgsPerSec / 1000).toFixed(1)}k msgs/s${cell.reqPerSec !== cell.msgsPerSec ? ` (${(cell.reqPerSec / 1000).toFixed(1)}k req/s)` : ''}${cell.commitMs !== undefined ? `, publish → commit ${cell.commitMs.toFixed(1)} ms` : ''}, cpu server ${cell.cpu.server.toFixed(0)}% client ${cell.cpu.client.toFixed(0)}%${cell.failures ? `, ${cell.failures} failures: ${cell.firstFailure}` : ''}`
    : JSON.stringify(cell);
}

export async function publish(ctx: Context): Promise<void> {
  const p = ctx.profile.publish;
  ctx.log(`\npublish: durable, acknowledged (WebSocket window ${p.window}; HTTP ${p.httpConcurrency} in flight, batches of ${p.httpBatch})`);
  const put = (key: string, cell: Cell<PublishFigures>) => {
    ctx.results.publish[key] = cell;
    ctx.log(`  ${key.padEnd(40)} ${describePublish(cell)}`);
  };
  for (const target of ctx.targets) {
    if (target.id === 'sluice' || target.id === 'sluice-auth' || target.id === 'sluice-old') {
      const label = target.label;
      const first = await withTarget(ctx, target, {}, async (t) => {
        put(`${label}: WebSocket PUB/ACK`, await wsPublish(ctx, t, 'ws', false, false));
        put(`${label}: WebSocket PUB/ACK + idempotency keys`, await wsPublish(ctx, t, 'ws-keys', true, false));
        put(`${label}: HTTP single (+ key)`, await http(ctx, t, 'http-single', 1));
        put(`${label}: HTTP batch ×${p.httpBatch} (+ keys)`, await http(ctx, t, 'http-batch', p.httpBatch));
        return 'measured' as const;
      }, 'publish');
      if (first !== 'measured') put(`${label}: WebSocket PUB/ACK`, first);
    } else if (target.id === 'nats') {
      const cell = await withTarget(ctx, target, { resume: true }, (t) => wsPublish(ctx, t, 'jetstream', false, true), 'publish');
      put('NATS JetStream publish + ack (reference)', cell);
    }
  }
}
