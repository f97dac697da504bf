/**
 * Scenario 5, resume: a subscriber receives a first stretch live, drops its connection, misses
 * `offline` messages, and reconnects asking to resume where it stopped, while the publisher keeps
 * publishing live at `liveRate`. Measured: whether the server resumed it without loss
 * (`recovered`, gaps, duplicates), the time until it is subscribed again, the time until the first
 * message published after the reconnect arrives (the live tail; everything before it arrived
 * first, in order), and the catch-up rate that implies.
 *
 * Who can: Sluice (SUB from the last offset + 1 with the epoch; credit windows of 64 and 4096),
 * NATS through JetStream (a pull consumer from the next stream sequence, pulling the same windows),
 * Socket.IO through connection state recovery (the server replays what the session missed).
 * Raw uWS and ws keep no history: n/a.
 */
import { Feed } from '../load/feed.js';
import { Fleet } from '../load/fleet.js';
import type { SubscriberSpec } from '../clients/subscriber.js';
import { isFigures, type Cell, type ResumeFigures } from '../report/results.js';
import type { RunningTarget, Target } from '../targets/target.js';
import { withTarget, type Context } from './session.js';

const FIRST_STRETCH = 1000;

/**
 * One resume measurement. `spec`: where the subscriber connects (default: the target's own; the
 * cluster scenario gives one whose `resumeUrl` is another node).
 */
export async function measureResume(ctx: Context, t: RunningTarget, credit: number | undefined, spec: SubscriberSpec = t.subscriber(credit ? { credit } : {})): Promise<ResumeFigures> {
  const { offline, liveRate } = ctx.profile.resume;
  const fleet = new Fleet(1);
  try {
    const opened = await fleet.open(spec, [0]);
    if (opened.failed) throw new Error(`subscriber failed: ${opened.firstError}`);
    const feed = new Feed(await t.publisher({ window: 1000, jetstream: true }), fleet, 1);
    // First stretch, live.
    const first = await feed.run({ durationMs: 60_000, windowRounds: 64, rate: Math.max(liveRate, 10_000), signal: AbortSignal.timeout(FIRST_STRETCH / 10) });
    if (!first.drained) throw new Error('the subscriber did not receive the first stretch');
    await fleet.disconnect();
    // Offline: the backlog, stored (acknowledged) before the reconnect.
    await feed.publishCount(offline);
    const head = feed.rounds;
    // Reconnect while the publisher goes on live.
    const live = new AbortController();
    const publishing = feed.run({ durationMs: 300_000, windowRounds: Number.POSITIVE_INFINITY, rate: liveRate, signal: live.signal, drainTimeoutMs: 30_000 });
    let r;
    try {
      r = await fleet.reconnect(head);
    } finally {
      live.abort();
    }
    const tail = await publishing;
    const report = await fleet.report();
    feed.publisher.close();
    if (!tail.drained) throw new Error(`after resuming, the subscriber did not receive everything (at ${report.min} of ${tail.lastRound})`);
    return {
      offline,
      ...(credit ? { credit } : {}),
      recovered: r.recovered,
      resubscribeMs: r.resubscribeMs,
      liveMs: r.liveMs,
      caughtUp: r.caughtUp,
      catchupPerSec: r.caughtUp / (r.liveMs / 1000),
      gaps: report.gaps,
      dups: report.dups,
    };
  } finally {
    await fleet.close();
  }
}

/** The line the bench prints for a resume cell. */
export function describeResume(cell: Cell<ResumeFigures>): string {
  return isFigures<ResumeFigures>(cell)
    ? `recovered ${cell.recovered}, resubscribed in ${cell.resubscribeMs.toFixed(1)} ms, live tail after ${cell.liveMs.toFixed(0)} ms, catch-up ${(cell.catchupPerSec / 1000).toFixed(0)}k msgs/s${cell.gaps || cell.dups ? `, gaps ${cell.gaps} dups ${cell.dups}` : ''}`
    : JSON.stringify(cell);
}

export async function resume(ctx: Context): Promise<void> {
  const { offline } = ctx.profile.resume;
  ctx.log(`\nresume: a subscriber offline for ${offline} messages reconnects`);
  const put = (key: string, cell: Cell<ResumeFigures>) => {
    ctx.results.resume[key] = cell;
    ctx.log(`  ${key.padEnd(30)} ${describeResume(cell)}`);
  };
  const variants: Record<string, (number | undefined)[]> = { sluice: [64, 4096], 'sluice-old': [64, 4096], nats: [64, 4096], socketio: [undefined] };
  const labels: Record<string, string> = { sluice: 'Sluice', 'sluice-old': 'Sluice old build', nats: 'NATS JetStream', socketio: 'Socket.IO recovery' };
  for (const target of ctx.targets) {
    const credits = variants[target.id];
    if (!credits) {
      put(target.label, { na: 'no history, cannot resume' });
      continue;
    }
    for (const credit of credits) {
      const key = credit ? `${labels[target.id]} (window ${credit})` : labels[target.id]!;
      put(key, await withTarget(ctx, target as Target, { resume: true }, (t) => measureResume(ctx, t, credit), `resume ${key}`));
    }
  }
}
