/**
 * The publishing loop. A Feed publishes round-robin over `topics` topics (message k goes to topic
 * k mod T with sequence floor(k / T) + 1), continuing its numbering across phases, and bounds what
 * is in flight end to end:
 *
 * - window: a message of round r is sent only while r - (the round the probe has received) <=
 *   windowRounds. The probe is one subscriber in this process, so this loop is fast and bounds
 *   what waits in the server; and only while r - (lowest round every fast subscriber of the load
 *   workers has received) <= subscriberWindow, a slower loop (IPC) that bounds what waits for the
 *   subscribers. Together they find the highest rate the server and its subscribers sustain
 *   without an unbounded queue anywhere, for every target alike;
 * - acknowledged publishers (Sluice, JetStream) also bound their unacknowledged publishes;
 * - rate (optional): never ahead of `rate` messages per second (latency runs).
 *
 * A run stops sending at its deadline (after completing the current round), then waits until
 * every fast subscriber received everything (bounded by `drainTimeoutMs`): its elapsed time is
 * start → drained, so the rate it implies counts only messages actually delivered.
 */
import { makePayload } from '../payload.js';
import type { Publisher } from '../clients/publisher.js';
import type { Tally } from '../clients/subscriber.js';
import type { Fleet } from './fleet.js';

export interface RunOptions {
  durationMs: number;
  /** Rounds the probe may lag behind (without a probe: the subscribers). */
  windowRounds: number;
  /** Rounds the slowest fast subscriber may lag behind; default windowRounds. */
  subscriberWindow?: number;
  /** Messages per second; omitted: as fast as the window allows. */
  rate?: number;
  /** Most messages sent per event-loop turn. */
  chunk?: number;
  drainTimeoutMs?: number;
  /** Stops sending early when aborted (the deadline still applies). */
  signal?: AbortSignal;
  /** Bytes per message (default: payload.ts SIZE, 200). */
  payloadBytes?: number;
}

export interface RunResult {
  messages: number;
  /** Start until the last message was sent. */
  sendMs: number;
  /** Start until every fast subscriber had everything (or the drain timed out). */
  elapsedMs: number;
  drained: boolean;
  /** Sequence every fast subscriber should have reached. */
  lastRound: number;
}

export class Feed {
  /** Messages sent so far, over every run of this feed. */
  sent = 0;

  constructor(
    readonly publisher: Publisher,
    readonly fleet: Fleet,
    readonly topics: number,
    /** A subscriber in this process to the last topic of each round (fast feedback), if any. */
    readonly probe?: Tally,
  ) {}

  /** Rounds completely sent: the sequence every subscriber should reach. */
  get rounds(): number {
    return Math.floor(this.sent / this.topics);
  }

  private waitProbe(round: number, timeoutMs: number): Promise<boolean> {
    const probe = this.probe;
    if (!probe || probe.last >= round) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { probe.listener = undefined; resolve(false); }, timeoutMs);
      probe.listener = () => {
        if (probe.last < round) return;
        clearTimeout(timer);
        probe.listener = undefined;
        resolve(true);
      };
    });
  }

  /**
   * Publishes `count` messages as fast as the publisher allows, with no end-to-end window (nobody
   * may be listening), then waits until the server handled or acknowledged them all.
   */
  async publishCount(count: number, chunk = 256): Promise<void> {
    const { publisher, topics } = this;
    const end = this.sent + count;
    while (this.sent < end) {
      await new Promise<void>((resolve) => {
        const pump = () => {
          let budget = chunk;
          publisher.cork();
          while (budget-- > 0 && this.sent < end && publisher.canSend()) {
            const k = this.sent++;
            const topic = k % topics;
            publisher.send(topic, makePayload(Math.floor(k / topics) + 1, topic));
          }
          publisher.uncork();
          if (this.sent >= end) resolve();
          else if (!publisher.canSend()) publisher.onReady = () => { publisher.onReady = undefined; resolve(); };
          else setImmediate(pump);
        };
        pump();
      });
    }
    await publisher.settle();
  }

  async run(o: RunOptions): Promise<RunResult> {
    const { publisher, fleet, topics } = this;
    const chunk = o.chunk ?? 256;
    const start = this.sent;
    const t0 = performance.now();
    let stopped = false;
    let scheduled = false;
    let finishSending!: () => void;
    const sending = new Promise<void>((resolve) => { finishSending = resolve; });
    const stop = () => { stopped = true; schedule(); };
    const deadline = setTimeout(stop, o.durationMs);
    o.signal?.addEventListener('abort', stop, { once: true });
    const ticker = o.rate ? setInterval(() => schedule(), 1) : undefined;

    const pump = () => {
      const finishing = stopped && this.sent % topics !== 0;
      if (stopped && !finishing) {
        finishSending();
        return;
      }
      let budget = chunk;
      if (o.rate && !finishing) {
        const due = start + Math.floor((o.rate * (performance.now() - t0)) / 1000) - this.sent;
        budget = Math.min(budget, due);
      }
      const reached = Math.max(0, fleet.min());
      const probed = this.probe ? this.probe.last : reached;
      const subscriberWindow = o.subscriberWindow ?? o.windowRounds;
      publisher.cork();
      while (budget > 0 && publisher.canSend()) {
        const k = this.sent;
        const seq = Math.floor(k / topics) + 1;
        if (seq - probed > o.windowRounds || seq - reached > subscriberWindow) break;
        const topic = k % topics;
        publisher.send(topic, makePayload(seq, topic, undefined, o.payloadBytes));
        this.sent++;
        budget--;
        if (stopped && this.sent % topics === 0) break;
      }
      publisher.uncork();
      if (stopped && this.sent % topics === 0) finishSending();
      else if (budget === 0 && !o.rate) schedule();
      // otherwise: progress, an ack, or the rate ticker schedules the next pump
    };
    function schedule() {
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        pump();
      });
    }

    const offProgress = fleet.onProgress(schedule);
    publisher.onReady = schedule;
    if (this.probe) this.probe.listener = schedule;
    schedule();
    await sending;
    clearTimeout(deadline);
    if (ticker) clearInterval(ticker);
    offProgress();
    publisher.onReady = undefined;
    if (this.probe) this.probe.listener = undefined;
    o.signal?.removeEventListener('abort', stop);
    const sendMs = performance.now() - t0;
    const lastRound = this.rounds;
    const timeout = o.drainTimeoutMs ?? 15_000;
    // The probe is a subscriber too: it must get everything (a stalled probe would also stop the feed).
    const drained = (await fleet.waitMin(lastRound, timeout)) && (await this.waitProbe(lastRound, timeout));
    return { messages: this.sent - start, sendMs, elapsedMs: performance.now() - t0, drained, lastRound };
  }
}
