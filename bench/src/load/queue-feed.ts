/**
 * The publishing loop of the queue scenario. Every message goes to one queue (topic index 0) with
 * its own sequence number (1, 2, ... over every run of this feed), and is consumed by one member.
 * The loop is closed at both ends:
 *
 * - the publisher's own window: at most `window` messages await their publish acknowledgement
 *   (Sluice ACK, RabbitMQ publisher confirm, JetStream ack) — `Publisher.canSend`;
 * - end to end: at most `inFlight` messages published and not yet acknowledged by a member
 *   (the members' acknowledgements reach this process as the load workers' progress). It keeps a
 *   bounded backlog in the queue, so every member always has work, and no run builds a queue that
 *   grows until its end;
 * - rate (optional): never ahead of `rate` messages per second (latency runs).
 *
 * A run stops sending at its deadline, then waits until the members acknowledged everything sent
 * (bounded by `drainTimeoutMs`): its rate is acknowledgements ÷ (start → drained).
 */
import { makePayload } from '../payload.js';
import type { Publisher } from '../clients/publisher.js';
import type { Fleet } from './fleet.js';

export interface QueueRunOptions {
  durationMs: number;
  /** Most messages published and not yet acknowledged by a member. */
  inFlight: number;
  /** Messages per second; omitted: as fast as the windows allow. */
  rate?: number;
  /** Most messages sent per event-loop turn. */
  chunk?: number;
  drainTimeoutMs?: number;
}

export interface QueueRunResult {
  /** Messages published in this run. */
  published: number;
  /** Acknowledgements by members during the run (start → drained or timed out). */
  acked: number;
  /** Start until the last message was sent. */
  sendMs: number;
  /** Start until the members acknowledged everything (or the drain timed out). */
  elapsedMs: number;
  drained: boolean;
}

export class QueueFeed {
  /** Messages sent so far, over every run of this feed. */
  sent = 0;
  private readonly base: number;

  constructor(readonly publisher: Publisher, readonly fleet: Fleet) {
    this.base = fleet.total();
  }

  /** Acknowledgements by the members so far, over every run of this feed. */
  acked(): number {
    return this.fleet.total() - this.base;
  }

  /** Resolves true once the members acknowledged `count`, or false after `timeoutMs`. */
  private waitAcked(count: number, timeoutMs: number): Promise<boolean> {
    if (this.acked() >= count) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { off(); resolve(false); }, timeoutMs);
      const off = this.fleet.onProgress(() => {
        if (this.acked() < count) return;
        clearTimeout(timer);
        off();
        resolve(true);
      });
    });
  }

  async run(o: QueueRunOptions): Promise<QueueRunResult> {
    const { publisher } = this;
    const chunk = o.chunk ?? 256;
    const start = this.sent;
    const acked0 = this.acked();
    const t0 = performance.now();
    let stopped = false;
    let scheduled = false;
    let finishSending!: () => void;
    const sending = new Promise<void>((resolve) => { finishSending = resolve; });
    const deadline = setTimeout(() => { stopped = true; schedule(); }, o.durationMs);
    const ticker = o.rate ? setInterval(() => schedule(), 1) : undefined;

    const pump = () => {
      if (stopped) {
        finishSending();
        return;
      }
      let budget = chunk;
      if (o.rate) budget = Math.min(budget, start + Math.floor((o.rate * (performance.now() - t0)) / 1000) - this.sent);
      const room = o.inFlight - (this.sent - this.acked());
      budget = Math.min(budget, room);
      let n = 0;
      publisher.cork();
      while (n < budget && publisher.canSend()) {
        publisher.send(0, makePayload(++this.sent, 0));
        n++;
      }
      publisher.uncork();
      if (n === chunk && !o.rate) schedule();
      // otherwise: a publish ack, a member's progress or the rate ticker schedules the next pump
    };
    function schedule() {
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        pump();
      });
    }

    const offProgress = this.fleet.onProgress(schedule);
    publisher.onReady = schedule;
    schedule();
    await sending;
    clearTimeout(deadline);
    if (ticker) clearInterval(ticker);
    offProgress();
    publisher.onReady = undefined;
    const sendMs = performance.now() - t0;
    const drained = await this.waitAcked(this.sent, o.drainTimeoutMs ?? 15_000);
    return { published: this.sent - start, acked: this.acked() - acked0, sendMs, elapsedMs: performance.now() - t0, drained };
  }
}
