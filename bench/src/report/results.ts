/**
 * The shape of a run's results, as written to bench/results/latest.json. Every figure is a
 * measurement of this run; a cell a target cannot produce says why (`na`), and a cell that failed
 * says how (`error`).
 */
import type { Machine } from '../machine.js';
import type { Profile } from '../options.js';
import type { SyscallCount } from '../syscalls.js';
import type { GatewaySample } from '../gateway-metrics.js';
import type { TargetId } from '../targets/target.js';

export type Cell<T> = T | { na: string } | { error: string };

export function isFigures<T>(c: Cell<T> | undefined): c is T {
  return typeof c === 'object' && c !== null && !('na' in c) && !('error' in c);
}

export interface Latency {
  /** Publish rate asked for and achieved (messages/s). */
  rate: number;
  achieved: number;
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export interface LoadCpu {
  /** CPU % of the server process (100 = one core), each load worker, and the publishing parent. */
  server: number;
  /** The server's main thread and its other threads (together, and the busiest one). */
  serverThreads?: { main: number; others: number; busiestOther: number };
  workers: number[];
  publisher: number;
}

/**
 * What a stretch of a run cost the bench's Redis (cluster targets), from INFO deltas: `messages`
 * published in it, calls per command (commands a script runs count under their own names, the
 * script itself as evalsha; the bench's own INFO calls are left out), requests read from clients
 * (a pipelined burst is one), and Redis CPU seconds over `seconds` of wall time.
 */
export interface RedisCost {
  messages: number;
  calls: Record<string, number>;
  /** Microseconds per command (a script's include the commands it ran). */
  usec: Record<string, number>;
  reads: number;
  cpuSeconds: number;
  seconds: number;
}

export interface FanoutFigures {
  subscribers: number;
  /** The in-flight window (rounds) of the measured run: the best of the sweep. */
  window: number;
  sweep: { window: number; deliveredPerSec: number; serverCpu: number }[];
  /** What limited the measured run (a core at >= 90%, or the window/latency). */
  bound: 'server' | 'clients' | 'window';
  published: number;
  publishedPerSec: number;
  delivered: number;
  deliveredPerSec: number;
  drained: boolean;
  gaps: number;
  dups: number;
  closed: number;
  cpu: LoadCpu;
  syscalls?: SyscallCount & { deliveries: number; perDelivery: number };
  latency?: Latency;
  serverRssMB: number;
  /** Sluice: subscription states (shares) and mean commit wait over the run, from its /metrics. */
  gateway?: GatewaySample;
  /** Cluster targets: what the max-throughput run cost Redis. */
  redis?: RedisCost;
}

export interface ManyTopicsFigures {
  topics: number;
  window: number;
  sweep: { window: number; deliveredPerSec: number; serverCpu: number }[];
  bound: 'server' | 'clients' | 'window';
  delivered: number;
  deliveredPerSec: number;
  drained: boolean;
  gaps: number;
  dups: number;
  cpu: LoadCpu;
  syscalls?: SyscallCount & { deliveries: number; perDelivery: number };
  gateway?: GatewaySample;
}

/** One step of an open-loop ladder (scenarios/open-loop.ts). */
export interface OpenLoopStep {
  /** Publishes/s asked for, and the deliveries/s that makes. */
  rate: number;
  deliveriesPerSec: number;
  pass: boolean;
  /** Why it failed (empty when it passed). */
  reasons: string[];
  /** Share of the step's deliveries that arrived within the latency bound of the last scheduled send. */
  inWindow: number;
  /** Latency from each message's scheduled send time, µs. */
  p50: number;
  p99: number;
  /** Most the publisher was behind its schedule, ms. */
  behindMs: number;
  /** Server CPU % over the step (100 = one core). */
  serverCpu: number;
  /** Time the server's main thread was runnable but waited for its core (other processes), ms/s. */
  serverWaitMsPerSec: number;
  /** Sluice on the disk store with `flush`: the syncs its ACKs waited for (bucket bounds, ms). */
  sync?: { count: number; p50Ms: number; p99Ms: number };
  gaps: number;
  dups: number;
}

export interface OpenLoopFigures {
  topics: number;
  perTopic: number;
  /** The highest publish rate that passed (msgs/s; 0: none), and in deliveries/s. */
  maxRate: number;
  maxDeliveries: number;
  /** The lowest rate that failed, and why. */
  failedAt?: number;
  failedBecause?: string;
  /** The step at the reference load. */
  reference?: OpenLoopStep;
  steps: OpenLoopStep[];
}

export interface MemoryFigures {
  connections: number;
  /** Server RSS growth per connection: connected only, and connected + subscribed to its own topic. */
  bytesPerConnection: number;
  bytesPerSubscribedConnection: number;
  baselineMB: number;
  connectedMB: number;
  subscribedMB: number;
  /** RSS growth per subscribed connection from N to 1.5N: the per-connection cost alone. */
  marginalBytesPerSubscribedConnection: number;
  /**
   * The same two growths read again after `idleMs` more of idleness (absent in results written
   * before they were measured).
   */
  idleMs?: number;
  idleBytesPerConnection?: number;
  idleBytesPerSubscribedConnection?: number;
}

export interface SlowFigures {
  subscribers: number;
  slow: number;
  /** Fast subscribers' delivered msgs/s and p99 latency (µs) without (mean of A and A') and with slow ones. */
  baselinePerSec: number;
  /** The two baseline runs, before the slow subscribers joined and after they left. */
  baselineRuns: number[];
  withSlowPerSec: number;
  throughputCost: number;
  baselineP99: number;
  withSlowP99: number;
  /** Server RSS at the start of the slow run and its peak (MB). */
  rssStartMB: number;
  rssPeakMB: number;
  /** Peak minus start over the slow run: RSS, and anonymous RSS (heap, buffers; no mapped files). */
  growthMB: number;
  anonGrowthMB: number;
  /** The same over the run without slow subscribers (its length: baselineSeconds). */
  baselineGrowthMB: number;
  baselineAnonGrowthMB: number;
  baselineSeconds: number;
  seconds: number;
  /** What happened to the slow subscribers: buffered / dropped / disconnected / throttled. */
  behaviour: string;
  gaps: number;
  dups: number;
}

/** The reading subscribers over one fixed-rate phase (non-reading scenario). */
export interface ReadersPhase {
  /** Messages/s delivered to all the readers together, and the publish rate achieved (asked: `rate`). */
  deliveredPerSec: number;
  achievedRate: number;
  /** Publish → delivery latency over the phase, µs. */
  p50: number;
  p99: number;
  max: number;
  gaps: number;
  dups: number;
  /** The server process's CPU over the phase (100 = one core). */
  serverCpu: number;
  /** Sluice: subscription states and mean publish → commit wait over the phase, from its /metrics. */
  gateway?: GatewaySample;
}

/** Server memory over a phase: at its start, its peak (and when), and at its end (MB, seconds). */
export interface RssOver {
  startMB: number;
  peakMB: number;
  endMB: number;
  anonStartMB: number;
  anonPeakMB: number;
  anonEndMB: number;
  /** Seconds from the phase's start to the RSS peak and to the anonymous RSS peak. */
  peakAtSeconds: number;
  anonPeakAtSeconds: number;
  seconds: number;
  /** Every sample (every 500 ms): [seconds, RSS MB, anonymous RSS MB]. */
  series: [number, number, number][];
}

export interface NonReadingFigures {
  readers: number;
  nonReading: number;
  /** Sluice: the window the non-reading ones SUB with (the peers have no credit). */
  credit: number;
  rate: number;
  payloadBytes: number;
  /** Readers alone before (A) and after (A') the non-reading ones, and with them (B). */
  before: ReadersPhase;
  after: ReadersPhase;
  during: ReadersPhase;
  /** Mean of A and A' p99 (µs): what B's p99 is compared with. */
  baselineP99: number;
  /** Server memory over B, from before the non-reading ones connected; and over A. */
  rss: RssOver;
  baselineRss: RssOver;
  /**
   * At B's end, MB in the kernel on the server port's connections: the server's send queues and the
   * clients' receive queues (NaN without `ss`).
   */
  kernelSendMB: number;
  kernelReceiveMB: number;
  /** B stopped after this many seconds because the server's RSS passed the bench's cap. */
  cappedAtSeconds?: number;
  /**
   * Non-reading subscribers seen disconnected while not reading (a paused client learns of a close
   * when its keepalive write is refused), and seconds from their connecting to the first (-1: none).
   */
  closedSeen: number;
  firstCloseSeenSeconds: number;
  /** Close codes of every non-reading subscriber seen closed: code → count. */
  closeCodes: Record<number, number>;
  /**
   * The sample of the others that read again: how many, how many of them turned out disconnected,
   * whether the rest all reached the last message without a gap, in how long.
   */
  resumed: number;
  resumedClosed: number;
  resumedComplete: boolean;
  catchUpSeconds: number;
  /** Messages each resumed one received after reading again (mean), their gaps (trimmed included) and duplicates. */
  resumedReceivedMean: number;
  /** Messages each of them was told (GAP) retention had trimmed before it read again (mean). */
  resumedTrimmedMean: number;
  resumedGaps: number;
  resumedDups: number;
  /** Messages published while they were connected (the last sequence each should reach, counted from their first). */
  published: number;
  /** The above as a sentence: buffered / throttled / dropped / disconnected. */
  behaviour: string;
}

export interface ResumeFigures {
  offline: number;
  credit?: number;
  recovered: boolean;
  resubscribeMs: number;
  liveMs: number;
  caughtUp: number;
  catchupPerSec: number;
  gaps: number;
  dups: number;
}

export interface PublishFigures {
  mode: string;
  requests: number;
  messages: number;
  seconds: number;
  reqPerSec: number;
  msgsPerSec: number;
  failures: number;
  firstFailure: string;
  /** `server`: the gateway published to; `all`: every process of a cluster target (its nodes and Redis). */
  cpu: { server: number; client: number; all?: number };
  /** Sluice: mean wait from publish to durable commit (ms), from its /metrics. */
  commitMs?: number;
  /** Cluster targets: what the measured stretch cost Redis. */
  redis?: RedisCost;
  /** Topics the messages went to, round-robin (absent: 1). */
  topics?: number;
}

/** Publish → member acknowledgement latency (µs) over a run. */
export interface AckLatency {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/**
 * Queue scenario, throughput: `members` consumers share one queue, each holding at most `credit`
 * unacknowledged deliveries and acknowledging each as it arrives; one publisher with at most
 * `window` awaiting their publish acknowledgement and `inFlight` not yet acknowledged by a member.
 */
export interface QueueFigures {
  /** What ran, when the bench did not start it (RabbitMQ's version). */
  system?: string;
  members: number;
  credit: number;
  window: number;
  inFlight: number;
  published: number;
  /** Member acknowledgements in the measured run, and per second (start → drained). */
  acked: number;
  seconds: number;
  ackedPerSec: number;
  drained: boolean;
  /** Deliveries in the run that were redeliveries (none expected). */
  redelivered: number;
  errors: number;
  closed: number;
  bound: 'server' | 'clients' | 'window';
  cpu: LoadCpu;
  /** Sluice: mean wait from publish to durable commit in the run (ms), from its /metrics. */
  commitMs?: number;
  /** Publish → ack in the max-throughput run (bounded by `inFlight`: mostly queueing). */
  maxLatency: AckLatency;
  /** Publish → ack at a fixed rate, the same for every system of the run. */
  latency?: Latency;
}

/**
 * Queue scenario, redelivery: a member takes `messages` deliveries and never acknowledges them
 * (connected and silent, or gone: its connection closed); another member is there to take them.
 * `delayMs`: when each was delivered again, after the moment the system may do so (`from`).
 */
export interface RedeliveryFigures {
  case: 'silent' | 'gone';
  messages: number;
  /** The ack wait in force (null: the system has none that applies), and how it was set. */
  ackWaitMs: number | null;
  ackWaitSetBy: string;
  from: string;
  /** Distinct messages delivered again within the wait, and to whom. */
  redelivered: number;
  toOther: number;
  toSame: number;
  /** Attempt numbers seen on the redeliveries (min–max). */
  attempts: [number, number];
  delayMs: { min: number; p50: number; max: number };
}

export interface Goal {
  name: string;
  target: string;
  measured: string;
  verdict: 'goal met' | 'missed' | 'inconclusive' | 'n/a';
  note: string;
}

export interface Results {
  startedAt: string;
  finishedAt: string;
  command: string;
  profile: Profile;
  machine: Machine;
  fanout: Record<string, Partial<Record<TargetId, Cell<FanoutFigures>>>>;
  manyTopics: Partial<Record<TargetId, Cell<ManyTopicsFigures>>>;
  /** Open-loop scenario, by layout (`1000x1`, ...); absent in results written before it existed. */
  openLoop: Record<string, Partial<Record<TargetId, Cell<OpenLoopFigures>>>>;
  memory: Partial<Record<TargetId, Cell<MemoryFigures>>>;
  slow: Partial<Record<TargetId, Cell<SlowFigures>>>;
  nonReading: Partial<Record<TargetId, Cell<NonReadingFigures>>>;
  resume: Record<string, Cell<ResumeFigures>>;
  publish: Record<string, Cell<PublishFigures>>;
  /** Cluster scenario: several nodes on one Redis (scenarios/cluster.ts). */
  cluster: {
    fanout: Record<string, Partial<Record<TargetId, Cell<FanoutFigures>>>>;
    publish: Record<string, Cell<PublishFigures>>;
    resume: Record<string, Cell<ResumeFigures>>;
  };
  /** Queue scenario (scenarios/queue.ts); absent in results written before it existed. */
  queue?: {
    throughput: Partial<Record<TargetId, Cell<QueueFigures>>>;
    /** The fixed rate of the latency runs (msgs/s), 0 when none ran. */
    latencyRate: number;
    redelivery: Record<string, Cell<RedeliveryFigures>>;
    /** The machine's 1-minute load average when the scenario started and ended (other processes count). */
    load?: [number, number];
  };
  goals: Goal[];
  notes: string[];
}
