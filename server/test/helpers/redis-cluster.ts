/**
 * A real Redis Cluster for tests: `masters` × (1 + `replicasPerMaster`) redis-server processes
 * with `cluster-enabled yes`, joined by `redis-cli --cluster create`, and a `failover` that
 * promotes a replica the way an operator (or a dying master) would.
 *
 * Invariants:
 * - Ready means converged, not just "created": every running node says cluster_state:ok with all
 *   16384 slots ok, knows every node, sees every running node connected, and gives the same
 *   topology (who serves which slots, who replicates whom); every replica's replication link is
 *   up. `redis-cli --cluster create` returns well before that (replicas still look like empty
 *   masters to some nodes), so tests can only write through any node once this holds.
 * - Every node's cluster bus port is a second free port given with `cluster-port` (the default,
 *   port + 10000, may be taken or past 65535 for ports from the ephemeral range).
 * - Who is master is asked from the cluster each time (`masters()`): the cluster may fail over by
 *   itself when a master stays down longer than the node timeout.
 */
import { execFile } from 'node:child_process';
import { notYet, pollUntil } from './poll.js';
import { baseArgs, HOST, launchRedis, REDIS_CLI, type RedisServer } from './redis-server.js';
import { parseInfo, type RedisAddress } from './resp.js';

export const CLUSTER_SLOTS = 16384;

export interface ClusterOptions {
  /** Default 3, the fewest `redis-cli --cluster create` accepts. */
  masters?: number;
  /** Default 0. With 1, `failover()` has a replica to promote. */
  replicasPerMaster?: 0 | 1;
  /**
   * `cluster-node-timeout` (default 1000 ms): how long a node may be unreachable before it is
   * failing and its replica takes over by itself. It also paces gossip (a node pings every peer
   * it has not heard from for half of it), hence how fast a new cluster converges: ~2 s at
   * 1000 ms, 3–4 s at 2000–3000 ms. Raise it for tests that pause a node on purpose and expect
   * no automatic failover.
   */
  nodeTimeoutMs?: number;
  aof?: 'always' | 'everysec' | false;
  /** Extra redis-server arguments for every node. */
  args?: string[];
  /** Bound on creation and convergence (default 20 s). */
  readyTimeoutMs?: number;
}

export type FailoverMode = 'auto' | 'default' | 'force' | 'takeover';

export interface RedisCluster {
  /** Every node, in creation order: the first `masters` were created as masters. */
  readonly nodes: RedisServer[];
  /** What a cluster client is given: every node's address. */
  readonly startupNodes: RedisAddress[];
  /** redis://… of the first node. */
  readonly url: string;
  /** The running nodes that serve slots now, as the cluster sees it. */
  masters(): Promise<RedisServer[]>;
  /** The nodes that replicate `master` now. */
  replicasOf(master: RedisServer): Promise<RedisServer[]>;
  nodeAt(addr: { port: number }): RedisServer | undefined;
  /** `redis-cli -c` (follows MOVED/ASK) against the first running node. */
  cli(...args: string[]): Promise<string>;
  /**
   * Promotes a replica of the master on `masterPort` with CLUSTER FAILOVER and waits until every
   * running node agrees that it serves those slots. Mode 'auto' (the default) is a coordinated
   * failover when the master runs and FORCE when it is down (no handshake with a dead master);
   * TAKEOVER skips the vote of the other masters too. Resolves with the new master.
   */
  failover(masterPort: number, opts?: { mode?: FailoverMode; timeoutMs?: number }): Promise<RedisServer>;
  /** Waits until the running nodes have converged again (e.g. after a restart). */
  waitConverged(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** One line of CLUSTER NODES. */
interface NodeLine {
  id: string;
  port: number;
  flags: string[];
  masterId: string | undefined;
  linkState: string;
  slots: string[];
}

export async function startRedisCluster(opts: ClusterOptions = {}): Promise<RedisCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicasPerMaster ?? 0;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 20_000;
  if (masters < 3) throw new Error('a Redis Cluster needs at least 3 masters');
  const started = await Promise.allSettled(Array.from({ length: masters * (1 + replicas) }, () => launchRedis({
    label: 'cluster-node',
    needsBusPort: true,
    argv: ({ port, busPort }, dir) => [
      ...baseArgs(port, dir, ''),
      '--cluster-enabled', 'yes',
      '--cluster-config-file', 'nodes.conf',
      '--cluster-port', String(busPort),
      '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1000),
      ...(opts.aof ? ['--appendonly', 'yes', '--appendfsync', opts.aof] : ['--appendonly', 'no']),
      ...(opts.args ?? []),
    ],
  })));
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const cluster = new Cluster(nodes);
  try {
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    await create(nodes, replicas, readyTimeoutMs);
    await cluster.waitConverged(readyTimeoutMs);
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/**
 * `redis-cli --cluster create` takes the first `masters` addresses as masters and assigns the rest
 * as replicas. It needs empty nodes that know no other node, and `--cluster-yes` to skip its
 * interactive confirmation; it warns that replicas share a host with their master (they all do
 * here) and goes on. It returns once the nodes have met, before the cluster has converged.
 */
function create(nodes: RedisServer[], replicas: number, timeoutMs: number): Promise<void> {
  const args = ['--cluster', 'create', ...nodes.map((n) => `${HOST}:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'];
  return new Promise((resolve, reject) => {
    execFile(REDIS_CLI, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err || !stdout.includes('All 16384 slots covered')) {
        reject(new Error(`redis-cli ${args.join(' ')} failed: ${err?.message ?? ''}\n${stdout}\n${stderr}`.trim()));
      } else resolve();
    });
  });
}

class Cluster implements RedisCluster {
  readonly startupNodes: RedisAddress[];
  readonly url: string;

  constructor(readonly nodes: RedisServer[]) {
    this.startupNodes = nodes.map((n) => ({ host: n.host, port: n.port }));
    this.url = nodes[0]?.url ?? '';
  }

  nodeAt(addr: { port: number }): RedisServer | undefined {
    return this.nodes.find((n) => n.port === addr.port);
  }

  private running(): RedisServer[] {
    return this.nodes.filter((n) => n.isRunning());
  }

  /** CLUSTER NODES as seen by `node` (the first running node by default). */
  private async view(node = this.running()[0]): Promise<NodeLine[]> {
    if (!node) throw new Error('no cluster node is running');
    return parseNodes(String(await node.call('CLUSTER', 'NODES')));
  }

  async masters(): Promise<RedisServer[]> {
    const lines = await this.view();
    return lines
      .filter((l) => l.flags.includes('master') && !l.flags.includes('fail') && l.slots.length > 0)
      .flatMap((l) => this.nodeAt(l) ?? []);
  }

  async replicasOf(master: RedisServer): Promise<RedisServer[]> {
    const lines = await this.view();
    const id = lines.find((l) => l.port === master.port)?.id;
    return lines.filter((l) => id !== undefined && l.masterId === id && !l.flags.includes('fail')).flatMap((l) => this.nodeAt(l) ?? []);
  }

  cli(...args: string[]): Promise<string> {
    const node = this.running()[0];
    if (!node) return Promise.reject(new Error('no cluster node is running'));
    return node.cli('-c', ...args);
  }

  async failover(masterPort: number, opts: { mode?: FailoverMode; timeoutMs?: number } = {}): Promise<RedisServer> {
    const old = this.nodeAt({ port: masterPort });
    if (!old) throw new Error(`no cluster node on port ${masterPort}`);
    const lines = await this.view();
    const oldLine = lines.find((l) => l.port === masterPort);
    if (!oldLine?.flags.includes('master') || oldLine.slots.length === 0) {
      const hint = old.isRunning() ? '' : ' (a master down for longer than nodeTimeoutMs is failed over by the cluster itself: see masters())';
      throw new Error(`node :${masterPort} is not a master serving slots${hint}`);
    }
    const candidate = lines
      .filter((l) => l.masterId === oldLine.id && !l.flags.some((f) => f === 'fail' || f === 'fail?'))
      .map((l) => this.nodeAt(l))
      .find((n) => n?.isRunning());
    if (!candidate) throw new Error(`master :${masterPort} has no running replica to promote`);
    const mode = opts.mode ?? 'auto';
    const how = mode === 'auto' ? (old.isRunning() ? 'default' : 'force') : mode;
    await candidate.call('CLUSTER', 'FAILOVER', ...(how === 'default' ? [] : [how.toUpperCase()])).catch((err: Error) => {
      // The cluster may have promoted it by itself since we looked (the master is down): fine.
      if (!/send CLUSTER FAILOVER to a replica/.test(err.message)) throw err;
    });
    // Converged on the new master: every running node gives it the old master's slots.
    await pollUntil(`cluster failover of :${masterPort} to :${candidate.port} (${how})`, async () => {
      for (const node of this.running()) {
        const promoted = (await this.view(node)).find((l) => l.port === candidate.port);
        if (!promoted?.flags.includes('master') || promoted.slots.join() !== oldLine.slots.join()) {
          notYet(`node :${node.port} sees :${candidate.port} as ${promoted?.flags.join(',') ?? 'unknown'} with slots [${promoted?.slots.join(' ') ?? ''}]`);
        }
      }
    }, { timeoutMs: opts.timeoutMs ?? 15_000, intervalMs: 50, context: () => candidate.logTail(15) });
    await this.waitConverged(opts.timeoutMs ?? 15_000);
    return candidate;
  }

  async waitConverged(timeoutMs = 15_000): Promise<void> {
    await pollUntil('cluster converged (cluster_state:ok everywhere, one topology)', async () => {
      const running = this.running();
      let topo: string | undefined;
      for (const node of running) {
        const info = parseInfo(String(await node.call('CLUSTER', 'INFO')));
        const state = `state ${info.get('cluster_state')}, slots ok ${info.get('cluster_slots_ok')}, known nodes ${info.get('cluster_known_nodes')}`;
        if (info.get('cluster_state') !== 'ok' || info.get('cluster_slots_ok') !== String(CLUSTER_SLOTS) || info.get('cluster_known_nodes') !== String(this.nodes.length)) {
          notYet(`node :${node.port}: ${state}`);
        }
        const lines = await this.view(node);
        const map = topology(lines);
        if (topo !== undefined && map !== topo) notYet(`node :${node.port} sees ${map}; node :${running[0]!.port} sees ${topo}`);
        topo = map;
        for (const l of lines) {
          const peer = this.nodeAt(l);
          if (peer?.isRunning() && (l.linkState !== 'connected' || l.flags.some((f) => f === 'fail' || f === 'fail?' || f === 'handshake'))) {
            notYet(`node :${node.port} sees :${l.port} as ${l.flags.join(',')} ${l.linkState}`);
          }
        }
        const me = lines.find((l) => l.flags.includes('myself'));
        if (me?.flags.includes('slave')) {
          const repl = parseInfo(String(await node.call('INFO', 'replication')));
          if (repl.get('master_link_status') !== 'up') notYet(`replica :${node.port} link ${repl.get('master_link_status')}`);
        }
      }
    }, { timeoutMs, intervalMs: 50, context: () => this.running().map((n) => `[:${n.port}]\n${n.logTail(8)}`).join('\n') });
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

/**
 * Who serves which slots and who replicates whom, as one comparable string: nodes agree on the
 * cluster when their CLUSTER NODES give the same topology (links and epochs aside).
 */
function topology(lines: NodeLine[]): string {
  const portOf = new Map(lines.map((l) => [l.id, l.port]));
  return lines.map((l) => {
    if (l.flags.includes('master')) return `:${l.port} master [${l.slots.join(' ')}]`;
    if (l.flags.includes('slave')) return `:${l.port} replica of :${portOf.get(l.masterId ?? '') ?? '?'}`;
    return `:${l.port} ${l.flags.join(',')}`;
  }).sort().join(', ');
}

/** `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot> …` per line. */
function parseNodes(text: string): NodeLine[] {
  return text.trim().split('\n').map((line) => {
    const [id = '', addr = '', flags = '', master = '-', , , , linkState = '', ...slots] = line.trim().split(' ');
    return {
      id,
      port: Number(/:(\d+)/.exec(addr)?.[1] ?? 0),
      flags: flags.split(','),
      masterId: master === '-' ? undefined : master,
      linkState,
      // Importing/migrating markers ([slot->-id]) are not ownership.
      slots: slots.filter((s) => !s.startsWith('[')),
    };
  });
}
