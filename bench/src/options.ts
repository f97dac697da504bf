/**
 * Sizes and durations of a run. `quick` (the default, a few minutes) keeps every scenario but
 * smaller and shorter; `--full` uses the sizes the goals are stated for.
 */

export interface Profile {
  mode: 'quick' | 'full';
  /** Load worker processes the subscribers are spread over. */
  workers: number;
  fanout: {
    sizes: number[];
    warmupMs: number;
    /** Each window of the sweep runs this long. */
    probeMs: number;
    measureMs: number;
    latencyMs: number;
    /** Fraction of Sluice's max publish rate used for the latency runs. */
    latencyLoad: number;
    /** Seconds of syscall counting inside the measured run. */
    syscallSeconds: number;
  };
  manyTopics: { topics: number; warmupMs: number; probeMs: number; measureMs: number };
  /**
   * Open-loop scenario (scenarios/open-loop.ts): the layouts run (`1x100`, `1x1000`, `1000x1`,
   * `10000x1`), each step's length, the pass bounds (p99 and "within the window", the backlog) and
   * how many bisection steps follow the doubling.
   */
  open: { layouts: string[]; stepMs: number; p99BoundMs: number; drainMs: number; bisect: number };
  /**
   * Memory scenario: N connections; after the reading once RSS settled, another after `idleMs` of
   * idleness (what a process gives back by itself once the setup burst is over).
   */
  memory: { connections: number; idleMs: number };
  slow: { subscribers: number; slow: number; baselineMs: number; slowMs: number };
  /**
   * Non-reading subscribers (issue 14.3): `nonReading` subscribers SUB with `credit` (the gateway's
   * maxCredit) and stop reading their socket, beside `readers` that consume (credit 64), on one
   * topic fed `rate` messages/s of `payloadBytes`: the readers alone for `baselineMs` before and
   * after, with the non-reading ones for `durationMs`; then `resumeSample` of them read again.
   */
  nonReading: { readers: number; nonReading: number; credit: number; rate: number; payloadBytes: number; baselineMs: number; durationMs: number; resumeSample: number };
  resume: { offline: number; liveRate: number };
  publish: { durationMs: number; window: number; httpConcurrency: number; httpBatch: number };
  /**
   * Cluster scenario: fan-out sizes over the nodes (phases as in `fanout`), and the topics the
   * spread load of the hot-topic comparison goes to (publish and resume take their sizes above).
   */
  cluster: { sizes: number[]; spreadTopics: number };
  /**
   * Queue scenario: members sharing one queue, each with `credit` (prefetch) unacknowledged; the
   * publisher's window of unacknowledged publishes and the end-to-end bound `inFlight`; phases;
   * the latency runs' rate as a share of the slowest system's max; the redelivery runs' messages
   * and ack wait.
   */
  queue: QueueProfile;
}

export interface QueueProfile {
  members: number;
  credit: number;
  window: number;
  inFlight: number;
  warmupMs: number;
  measureMs: number;
  latencyMs: number;
  latencyLoad: number;
  redelivery: { messages: number; ackWaitMs: number };
}

export const QUICK: Profile = {
  mode: 'quick',
  workers: 3,
  fanout: { sizes: [100, 1000], warmupMs: 500, probeMs: 750, measureMs: 3000, latencyMs: 2000, latencyLoad: 0.5, syscallSeconds: 2 },
  manyTopics: { topics: 2000, warmupMs: 1000, probeMs: 1000, measureMs: 4000 },
  open: { layouts: ['1000x1'], stepMs: 1500, p99BoundMs: 50, drainMs: 2000, bisect: 2 },
  memory: { connections: 2000, idleMs: 10_000 },
  slow: { subscribers: 300, slow: 10, baselineMs: 4000, slowMs: 10_000 },
  nonReading: { readers: 10, nonReading: 300, credit: 4096, rate: 5000, payloadBytes: 1024, baselineMs: 5000, durationMs: 20_000, resumeSample: 30 },
  resume: { offline: 20_000, liveRate: 1000 },
  publish: { durationMs: 3000, window: 1000, httpConcurrency: 32, httpBatch: 100 },
  cluster: { sizes: [1000], spreadTopics: 100 },
  queue: { members: 10, credit: 64, window: 1024, inFlight: 4096, warmupMs: 1000, measureMs: 4000, latencyMs: 3000, latencyLoad: 0.5, redelivery: { messages: 64, ackWaitMs: 2000 } },
};

export const FULL: Profile = {
  mode: 'full',
  workers: 3,
  fanout: { sizes: [100, 1000, 5000], warmupMs: 1000, probeMs: 1500, measureMs: 8000, latencyMs: 6000, latencyLoad: 0.5, syscallSeconds: 4 },
  manyTopics: { topics: 10_000, warmupMs: 2000, probeMs: 1500, measureMs: 10_000 },
  open: { layouts: ['1x100', '1x1000', '1000x1', '10000x1'], stepMs: 3000, p99BoundMs: 50, drainMs: 2000, bisect: 3 },
  memory: { connections: 10_000, idleMs: 30_000 },
  slow: { subscribers: 1000, slow: 10, baselineMs: 10_000, slowMs: 60_000 },
  nonReading: { readers: 10, nonReading: 300, credit: 4096, rate: 5000, payloadBytes: 1024, baselineMs: 10_000, durationMs: 120_000, resumeSample: 10 },
  resume: { offline: 100_000, liveRate: 1000 },
  publish: { durationMs: 10_000, window: 1000, httpConcurrency: 64, httpBatch: 100 },
  cluster: { sizes: [1000], spreadTopics: 100 },
  queue: { members: 10, credit: 64, window: 1024, inFlight: 4096, warmupMs: 2000, measureMs: 10_000, latencyMs: 6000, latencyLoad: 0.5, redelivery: { messages: 64, ackWaitMs: 2000 } },
};
