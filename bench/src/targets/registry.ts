/**
 * Every target, in the order the table prints them. Sluice runs first: its figures set shared rates.
 * The cluster targets (several processes on one Redis) are run by the cluster scenario only, and
 * RabbitMQ (the machine's broker) by the queue scenario only (run.ts `targetsFor`).
 */
import { socketIoClusterTarget, socketIoStreamsClusterTarget, sluiceClusterTarget } from './cluster.js';
import { natsTarget } from './nats.js';
import { socketIoTarget, uwsTarget, wsTarget } from './node-peer.js';
import { rabbitMqTarget } from './rabbitmq.js';
import { oldBuildConfigured, sluiceAuthTarget, sluiceCommitTarget, sluiceMemoryTarget, sluiceOldMemoryTarget, sluiceOldTarget, sluiceTarget } from './sluice.js';
import type { Target, TargetId } from './target.js';

export const ALL_TARGETS: Target[] = [sluiceTarget, sluiceCommitTarget, sluiceMemoryTarget, sluiceAuthTarget, sluiceOldTarget, sluiceOldMemoryTarget, uwsTarget, socketIoTarget, wsTarget, natsTarget, rabbitMqTarget];

export const CLUSTER_TARGETS: Target[] = [sluiceClusterTarget, socketIoClusterTarget, socketIoStreamsClusterTarget];

/** What runs without `--targets`: everything but the old build unless BENCH_SLUICE_OLD_CLI names one. */
export function defaultTargetIds(): TargetId[] {
  return [...ALL_TARGETS, ...CLUSTER_TARGETS].map((t) => t.id).filter((id) => !id.startsWith('sluice-old') || oldBuildConfigured());
}

export function targetById(id: TargetId): Target {
  return [...ALL_TARGETS, ...CLUSTER_TARGETS].find((t) => t.id === id)!;
}
