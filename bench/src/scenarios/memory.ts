/**
 * Scenario 3, memory: the server's resident memory per idle connection with N connected clients,
 * and per connection when each is also subscribed to its own topic. Each of the two figures comes
 * from a fresh server: RSS after one warm-up client, then after N more, divided by N. Then N/2 more
 * (subscribed ones; the load generator's file limit stops short of 2N): the marginal cost of a connection, without what a process reserves once
 * as it grows (V8 sizes its young generation up to 16 MiB by the allocation rate; with 5,000
 * connections that alone reads as ~3 KiB per connection).
 *
 * RSS is read from /proc once it settled (two readings 250 ms apart within 1%, at most 5 s), and
 * again after the profile's `idleMs` with the clients connected and quiet (their keep-alives
 * only): what a server gives back by itself once the setup burst is over (raw uWS: its young
 * generation shrinks). No server is asked to collect garbage, so the Node servers carry whatever
 * their heaps hold.
 */
import { Fleet } from '../load/fleet.js';
import { rssBytes } from '../proc-stats.js';
import { isFigures, type MemoryFigures } from '../report/results.js';
import type { RunningTarget } from '../targets/target.js';
import { withTarget, type Context } from './session.js';

const MB = 1024 * 1024;

/** RSS once two readings 250 ms apart are within 1% (at most 5 s). */
export async function settledRss(pid: number): Promise<number> {
  let last = rssBytes(pid);
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = rssBytes(pid);
    if (Math.abs(now - last) <= last * 0.01) return now;
    last = now;
  }
  return last;
}

/** RSS before and after N clients (subscribed to their own topics or not). */
async function measure(ctx: Context, t: RunningTarget, n: number, subscribed: boolean): Promise<{ base: number; after: number; idle: number; more?: number }> {
  const fleet = new Fleet(ctx.profile.workers);
  try {
    const spec = t.subscriber({ credit: 64 });
    const warm = await fleet.open(spec, [subscribed ? n : null]);
    if (warm.failed) throw new Error(`warm-up client failed: ${warm.firstError}`);
    const base = await settledRss(t.pid);
    const opened = await fleet.open(spec, Array.from({ length: n }, (_, i) => (subscribed ? i : null)));
    if (opened.failed > 0) throw new Error(`${opened.failed} of ${n} clients failed to connect: ${opened.firstError}`);
    const after = await settledRss(t.pid);
    await new Promise((resolve) => setTimeout(resolve, ctx.profile.memory.idleMs));
    const idle = rssBytes(t.pid);
    if (!subscribed) return { base, after, idle };
    const again = await fleet.open(spec, Array.from({ length: n / 2 }, (_, i) => n + 1 + i));
    if (again.failed > 0) throw new Error(`${again.failed} of ${n / 2} more clients failed to connect: ${again.firstError}`);
    return { base, after, idle, more: await settledRss(t.pid) };
  } finally {
    await fleet.close();
  }
}

export async function memory(ctx: Context): Promise<void> {
  const n = ctx.profile.memory.connections;
  ctx.log(`\nmemory: server RSS per idle connection, ${n} connections`);
  for (const target of ctx.targets) {
    const connected = await withTarget(ctx, target, {}, (t) => measure(ctx, t, n, false), 'memory connected');
    const subscribed = isFigures(connected) ? await withTarget(ctx, target, {}, (t) => measure(ctx, t, n, true), 'memory subscribed') : connected;
    let cell: typeof ctx.results.memory[keyof typeof ctx.results.memory];
    if (!isFigures(connected)) cell = connected;
    else if (!isFigures(subscribed)) cell = subscribed;
    else {
      const figures: MemoryFigures = {
        connections: n,
        bytesPerConnection: (connected.after - connected.base) / n,
        bytesPerSubscribedConnection: (subscribed.after - subscribed.base) / n,
        baselineMB: connected.base / MB,
        connectedMB: connected.after / MB,
        subscribedMB: subscribed.after / MB,
        marginalBytesPerSubscribedConnection: ((subscribed.more ?? subscribed.idle) - subscribed.idle) / (n / 2),
        idleMs: ctx.profile.memory.idleMs,
        idleBytesPerConnection: (connected.idle - connected.base) / n,
        idleBytesPerSubscribedConnection: (subscribed.idle - subscribed.base) / n,
      };
      cell = figures;
    }
    ctx.results.memory[target.id] = cell;
    ctx.log(`  ${target.label.padEnd(18)} ${isFigures<MemoryFigures>(cell)
      ? `${(cell.bytesPerConnection / 1024).toFixed(1)} KiB/connection, ${(cell.bytesPerSubscribedConnection / 1024).toFixed(1)} KiB/subscribed connection (after ${(ctx.profile.memory.idleMs / 1000).toFixed(0)} s idle: ${(cell.idleBytesPerConnection! / 1024).toFixed(1)} / ${(cell.idleBytesPerSubscribedConnection! / 1024).toFixed(1)}), ${(cell.marginalBytesPerSubscribedConnection / 1024).toFixed(1)} KiB for each of ${n / 2} more (RSS ${cell.baselineMB.toFixed(0)} → ${cell.connectedMB.toFixed(0)} / ${cell.subscribedMB.toFixed(0)} MB)`
      : JSON.stringify(cell)}`);
  }
}
