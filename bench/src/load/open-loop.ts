/**
 * The open-loop publishing driver: a fixed publish rate, sent in 1 ms ticks, whatever the server
 * does — no window, no feedback. It answers "how much can it push while staying realtime", where
 * the closed-loop Feed (feed.ts) answers "how much can it push".
 *
 * A step sends a whole number of rounds (message k goes to topic k mod T with sequence
 * floor(k / T) + 1, continuing the numbering of earlier steps), so every subscriber ends a step
 * on the same sequence. Each message carries its *scheduled* send time, not the time it left: a
 * generator (or an acknowledging publisher) that falls behind shows up in the latency instead of
 * hiding it (no coordinated omission).
 */
import { makePayload, nowUs } from '../payload.js';
import type { Publisher } from '../clients/publisher.js';
import type { Fleet } from './fleet.js';

export interface StepOptions {
  /** Messages per second (publishes, not deliveries). */
  rate: number;
  /** Rounded up so that the step sends whole rounds of T messages. */
  durationMs: number;
  /** Deliveries counted this long after the last scheduled send are "within the window". */
  windowMs: number;
  /** The backlog bound: everything must have arrived this long after the last scheduled send. */
  drainMs: number;
}

export interface StepResult {
  rate: number;
  messages: number;
  /** Deliveries expected: messages × subscribers per topic. */
  expected: number;
  /** Deliveries counted by `windowMs` after the last scheduled send. */
  inWindow: number;
  /** Every subscriber had everything within `drainMs` after the last scheduled send. */
  drained: boolean;
  /** Most the publisher was behind its schedule (ms): a generator or an ack window that could not keep up. */
  behindMs: number;
  /** Scheduled duration of the step (ms). */
  scheduledMs: number;
}

export class OpenLoop {
  /** Messages sent so far, over every step. */
  sent = 0;

  constructor(
    readonly publisher: Publisher,
    readonly fleet: Fleet,
    readonly topics: number,
    /** Subscribers of each topic: deliveries per message. */
    readonly perTopic: number,
  ) {}

  get rounds(): number {
    return Math.floor(this.sent / this.topics);
  }

  /** Resolves true once every subscriber has everything sent so far, false after `timeoutMs`. */
  settle(timeoutMs: number): Promise<boolean> {
    return this.fleet.waitMin(this.rounds, timeoutMs);
  }

  async step(o: StepOptions): Promise<StepResult> {
    const { publisher, fleet, topics } = this;
    const rounds = Math.max(1, Math.ceil((o.rate * o.durationMs) / 1000 / topics));
    const count = rounds * topics;
    const start = this.sent;
    const end = start + count;
    const total0 = fleet.total();
    const usPerMsg = 1e6 / o.rate;
    const t0 = performance.now();
    const t0Us = nowUs();
    let behindMs = 0;

    await new Promise<void>((resolve) => {
      const tick = () => {
        const elapsed = performance.now() - t0;
        const due = Math.min(end, start + Math.floor((o.rate * elapsed) / 1000));
        if (due > this.sent) behindMs = Math.max(behindMs, (due - this.sent - 1) * usPerMsg / 1000);
        publisher.cork();
        while (this.sent < due && publisher.canSend()) {
          const k = this.sent;
          const topic = k % topics;
          publisher.send(topic, makePayload(Math.floor(k / topics) + 1, topic, Math.round(t0Us + (k - start) * usPerMsg)));
          this.sent++;
        }
        publisher.uncork();
        if (this.sent >= end) {
          clearInterval(ticker);
          resolve();
        }
      };
      const ticker = setInterval(tick, 1);
    });

    const scheduledMs = (count * usPerMsg) / 1000;
    const lastRound = this.rounds;
    const afterLast = (ms: number) => Math.max(0, t0 + scheduledMs + ms - performance.now());
    await new Promise((resolve) => setTimeout(resolve, afterLast(o.windowMs)));
    const inWindow = fleet.total() - total0;
    const drained = await fleet.waitMin(lastRound, afterLast(o.drainMs));
    return { rate: o.rate, messages: count, expected: count * this.perTopic, inWindow, drained, behindMs, scheduledMs };
  }
}
