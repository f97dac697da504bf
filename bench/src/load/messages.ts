/**
 * The messages between the bench (parent) and its load workers, over the fork IPC channel.
 * Plain data only. Each request gets exactly one reply with the same `op` plus `ed`/'report'.
 */
import type { HistogramData } from '../histogram.js';
import type { Stall, SubscriberSpec } from '../clients/subscriber.js';

export type ToWorker =
  | {
    op: 'open';
    spec: SubscriberSpec;
    /** Topic index per subscriber to open (null: connect only, no subscription). */
    topics: (number | null)[];
    /** How many of them (the first ones) are slow: they never consume. */
    slow: number;
    /** How the slow ones stop consuming. */
    stall: Stall;
    /** Messages are already flowing: each subscriber's first message is its start. */
    late: boolean;
    concurrency: number;
  }
  | { op: 'phase'; latency: boolean }
  | { op: 'report' }
  | { op: 'unstall' }
  /** Closes the slow subscribers but the first `keep` still open (all: keep 0). */
  | { op: 'close-slow'; keep: number }
  | { op: 'disconnect' }
  | { op: 'reconnect'; liveAfter: number }
  | { op: 'close' };

export interface WorkerReport {
  subscribers: number;
  /** Messages received by fast / slow subscribers since the phase began. */
  received: number;
  slowReceived: number;
  gaps: number;
  /** Of the gaps, those the server announced (Sluice GAP: trimmed by retention). */
  trimmed: number;
  dups: number;
  /** Queue members: deliveries that were redeliveries, since the phase began. */
  redelivered: number;
  /** Subscribers whose connection closed (fast, slow). */
  closed: number;
  slowClosed: number;
  /** When the first slow subscriber's connection closed (ms since the Unix epoch), or -1. */
  slowFirstClosedAt: number;
  /** Close codes of the slow subscribers whose connection closed: code → count. */
  slowCloseCodes: Record<number, number>;
  errors: number;
  /** The first subscriber's last error (queue members), '' when none. */
  firstError: string;
  /** Lowest `last` sequence among the open fast subscribers (-1: none), and the highest. */
  min: number;
  max: number;
  /** Last sequence seen by each slow subscriber. */
  slowLast: number[];
  latency: HistogramData;
  cpuPercent: number;
}

export interface ResumeReport {
  recovered: boolean;
  /** ms from the reconnect until subscribed again. */
  resubscribeMs: number;
  /** ms from the reconnect until the first message published after it arrived. */
  liveMs: number;
  /** Messages received between reconnect and the live tail. */
  caughtUp: number;
  gaps: number;
  dups: number;
}

export type FromWorker =
  | { op: 'opened'; ok: number; failed: number; firstError: string }
  | { op: 'phased' }
  | { op: 'report'; report: WorkerReport }
  | { op: 'unstalled' }
  | { op: 'slow-closed' }
  | { op: 'disconnected' }
  | { op: 'reconnected'; resume: ResumeReport }
  | { op: 'closed' }
  | { op: 'progress'; min: number; slowMin: number; total: number }
  | { op: 'fatal'; error: string };
