/**
 * Cluster targets: two server processes sharing one Redis (targets/redis.ts), every process pinned
 * to the server core — the two nodes and Redis share it, so "server CPU" is their sum and a
 * cluster is compared with its peers on the same one core, as every other target is.
 *
 * - `sluice-cluster`: two gateways, `sluice serve --store redis --redis-url <the bench's Redis>`
 *   (this checkout's build), default durability (`--redis-min-replicas 0`);
 * - `socketio-cluster`: two Socket.IO servers (servers/socketio-server.ts) with
 *   `@socket.io/redis-adapter`, the classic pub/sub adapter;
 * - `socketio-streams-cluster`: the same with `@socket.io/redis-streams-adapter`.
 *
 * The RunningTarget of a cluster is its first node (subscriber(), publisher(), httpUrl, pid) plus
 * `nodes` and `redis`; a scenario spreads subscribers over `nodes` itself.
 */
import { SocketIoPublisher } from '../clients/socketio-publisher.js';
import { program } from './node-peer.js';
import { startRedis, redisVersion, type RedisServer } from './redis.js';
import { launch } from './server-process.js';
import { CLI, gatewayTarget, launchGateway } from './sluice.js';
import type { RunningTarget, StartOptions, Target, TargetId } from './target.js';

export const NODES = 2;

export interface RunningCluster extends RunningTarget {
  readonly nodes: readonly RunningTarget[];
  readonly redis: RedisServer;
}

/** Joins the nodes and Redis into one RunningTarget (node 1's face), stopping all of them. */
function assemble(id: TargetId, nodes: RunningTarget[], redis: RedisServer): RunningCluster {
  const first = nodes[0]!;
  return {
    ...first,
    id,
    pids: [...nodes.map((n) => n.pid), redis.pid],
    nodes,
    redis,
    exited: Promise.race([...nodes.map((n) => n.exited), redis.exited]),
    output: () => [...nodes.map((n, i) => `--- node ${i + 1} ---\n${n.output()}`), `--- redis ---\n${redis.output()}`].join('\n'),
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      await redis.stop();
    },
  };
}

/** Starts the nodes one by one on a fresh Redis; on a failure stops what was started. */
async function startCluster(id: TargetId, opts: StartOptions, node: (redis: RedisServer, i: number) => Promise<RunningTarget>): Promise<RunningCluster> {
  const redis = await startRedis(opts.aof ? { aof: opts.aof } : {});
  const nodes: RunningTarget[] = [];
  try {
    for (let i = 0; i < NODES; i++) nodes.push(await node(redis, i));
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
    throw err;
  }
  return assemble(id, nodes, redis);
}

abstract class ClusterTarget implements Target {
  abstract readonly id: TargetId;
  abstract readonly label: string;

  unavailable(): string | undefined {
    return redisVersion() ? undefined : 'redis-server not installed';
  }

  abstract start(opts?: StartOptions): Promise<RunningCluster>;
}

class SluiceCluster extends ClusterTarget {
  readonly id = 'sluice-cluster' as const;
  readonly label = `Sluice, ${NODES} nodes on Redis`;

  start(opts: StartOptions = {}): Promise<RunningCluster> {
    return startCluster(this.id, opts, async (redis, i) => {
      const { p, port } = await launchGateway({
        cli: CLI,
        storeArgs: ['--store', 'redis', '--redis-url', redis.url],
        ...(opts.profileDir ? { profileDir: opts.profileDir } : {}),
        ...(opts.profileName ? { profileName: opts.profileName.replace(/\.cpuprofile$/, `-node${i + 1}.cpuprofile`) } : {}),
      });
      return gatewayTarget(this.id, p, port, undefined, () => undefined);
    });
  }
}

class SocketIoCluster extends ClusterTarget {
  constructor(readonly id: TargetId, readonly label: string, private readonly adapter: 'pubsub' | 'streams') {
    super();
  }

  start(opts: StartOptions = {}): Promise<RunningCluster> {
    return startCluster(this.id, opts, async (redis) => {
      const p = await launch(process.execPath, [program('socketio-server'), '0', '--redis', redis.url, '--adapter', this.adapter], { readyPattern: /listening (\d+)/ });
      const url = `ws://127.0.0.1:${p.ready}`;
      return {
        id: this.id,
        pid: p.pid,
        exited: p.exited,
        output: () => p.output(),
        subscriber: () => ({ kind: 'socketio', url, prefix: 't' }),
        publisher: () => SocketIoPublisher.open(url),
        stop: () => p.stop(),
      };
    });
  }
}

export const sluiceClusterTarget = new SluiceCluster();
export const socketIoClusterTarget = new SocketIoCluster('socketio-cluster', `Socket.IO + redis-adapter, ${NODES} nodes`, 'pubsub');
export const socketIoStreamsClusterTarget = new SocketIoCluster('socketio-streams-cluster', `Socket.IO + redis-streams-adapter, ${NODES} nodes`, 'streams');
