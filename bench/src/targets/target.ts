/**
 * A target is one system under test: how to start its server (pinned to the server core), how
 * its subscribers and publishers reach it, and how to stop it. Every scenario runs each target
 * through this interface, in the same run, on the same machine.
 */
import type { Publisher } from '../clients/publisher.js';
import type { SubscriberSpec } from '../clients/subscriber.js';

export type TargetId =
  | 'sluice' | 'sluice-auth' | 'sluice-old' | 'uws' | 'socketio' | 'ws' | 'nats'
  // open-loop scenario only: store and durability variants of Sluice (targets/sluice.ts)
  | 'sluice-commit' | 'sluice-memory' | 'sluice-old-memory'
  // queue scenario only (targets/rabbitmq.ts): the machine's RabbitMQ broker
  | 'rabbitmq'
  // cluster scenario (targets/cluster.ts): several server processes on one Redis
  | 'sluice-cluster' | 'socketio-cluster' | 'socketio-streams-cluster';

export interface StartOptions {
  /** Socket.IO: connection state recovery on. NATS: JetStream on. */
  resume?: boolean;
  /** Cluster targets: Redis persistence, AOF with this fsync policy (default: none). */
  aof?: 'always' | 'everysec';
  /** Sluice: write a V8 CPU profile of the gateway into this directory, under this name. */
  profileDir?: string;
  profileName?: string;
  /** Sluice: more `sluice serve` flags (e.g. `--group-ack-wait 2s`). */
  gatewayArgs?: string[];
}

export interface PublisherOptions {
  /** Acknowledged publishing: at most this many awaiting their ack (Sluice, JetStream). */
  window?: number;
  /** Sluice: give every publish a unique idempotency key. */
  keys?: boolean;
  /** NATS: publish into the JetStream stream and wait for its acks. */
  jetstream?: boolean;
}

export interface RunningTarget {
  readonly id: TargetId;
  /** The server process (for RSS, CPU and syscall counts). */
  readonly pid: number;
  /**
   * Every process of the system under test when it is more than one (a cluster's nodes and its
   * Redis): server CPU is their sum. Absent: `[pid]`.
   */
  readonly pids?: readonly number[];
  /** HTTP base URL (Sluice only: the HTTP publish API). */
  readonly httpUrl?: string;
  /** What runs, when the bench did not start it itself (RabbitMQ: version and URL). */
  readonly version?: string;
  /** WebSocket base URL (Sluice, NATS), for clients a scenario makes itself (queue members). */
  readonly wsUrl?: string;
  /** Sluice auth-on: the bearer token clients present. */
  readonly token?: string;
  subscriber(opts?: { credit?: number }): SubscriberSpec;
  publisher(opts?: PublisherOptions): Promise<Publisher>;
  /** Resolves with the exit code if the server dies during the run. */
  readonly exited: Promise<number | null>;
  /** The tail of the server's stdout/stderr, for diagnostics. */
  output(): string;
  stop(): Promise<void>;
}

export interface Target {
  readonly id: TargetId;
  readonly label: string;
  /** Why this target cannot run here, or undefined. */
  unavailable(): string | undefined;
  start(opts?: StartOptions): Promise<RunningTarget>;
}

/** Thrown by `start` when a target is not available in this build (printed as its n/a reason). */
export class NotAvailable extends Error {
  override name = 'NotAvailable';
}
