/**
 * A real Sentinel deployment for tests: one master, 1–2 replicas and (by default) 3 sentinels,
 * each process in its own dir, with timeouts short enough that a failover takes seconds.
 *
 * Invariants:
 * - Ready means a failover could start right now: the replicas are online and caught up, and
 *   every sentinel monitors the master, knows every replica (link ok) and every other sentinel.
 *   The last part matters: a sentinel that knows no peers cannot gather the votes to fail over,
 *   and sentinels find each other only through hello messages on the master (every 2 s).
 * - `master` and `replicas` are the roles at start. After a failover the roles differ; ask
 *   `currentMaster()` (what a Sentinel-aware client does) and map it with `serverAt`.
 * - A failover is over when every running sentinel names the same new master AND that server
 *   itself answers ROLE as master, so a test can write to it at once.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../src/testing.js';
import { notYet, pollUntil } from './poll.js';
import { HOST, launchRedis, startRedis, waitForReplicas, type AofMode, type RedisServer } from './redis-server.js';
import { fieldsOf, type RedisAddress } from './resp.js';

export interface SentinelOptions {
  /** Replicas of the master (default 1). */
  replicas?: 1 | 2;
  /** Sentinel processes (default 3). */
  sentinels?: number;
  /** The name sentinels monitor the master under (default 'sluice'). */
  masterName?: string;
  /** Sentinels that must agree the master is down (default 2). */
  quorum?: number;
  aof?: AofMode;
  /** `requirepass` of every data node; the sentinels get it as `auth-pass`. */
  requirePass?: string;
  /** No answer for this long and a sentinel deems the master down (default 1000 ms). */
  downAfterMs?: number;
  /**
   * Sentinel's `failover-timeout` (default 3000 ms). It bounds how long a failover may take and
   * sets the pause before another try (2×) when an election fails.
   */
  failoverTimeoutMs?: number;
  /** Bound on the whole setup (default 20 s). */
  readyTimeoutMs?: number;
}

export type SentinelFailover = 'kill' | 'command';

export interface SentinelSetup {
  /** The master at start. */
  readonly master: RedisServer;
  /** The replicas at start. */
  readonly replicas: RedisServer[];
  /** Master and replicas: every data node. */
  readonly servers: RedisServer[];
  readonly sentinels: RedisServer[];
  /** What a Sentinel-aware client is given. */
  readonly sentinelAddrs: RedisAddress[];
  readonly masterName: string;
  /** The master's address according to the first running sentinel. */
  currentMaster(): Promise<RedisAddress>;
  serverAt(addr: { port: number }): RedisServer | undefined;
  /**
   * Fails the current master over and resolves with the new master's address. 'kill' (default)
   * SIGKILLs the master and lets the sentinels notice (down-after, then a vote); 'command' asks a
   * sentinel for SENTINEL FAILOVER, which needs no vote and demotes the old master to a replica.
   */
  failover(opts?: { how?: SentinelFailover; timeoutMs?: number }): Promise<RedisAddress>;
  stop(): Promise<void>;
}

export async function startSentinelSetup(opts: SentinelOptions = {}): Promise<SentinelSetup> {
  const name = opts.masterName ?? 'sluice';
  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  const started: RedisServer[] = [];
  const track = <T extends RedisServer>(s: T): T => (started.push(s), s);
  try {
    // Every data node may become a replica of any other after a failover: all get masterauth.
    const auth = opts.requirePass === undefined ? [] : ['--masterauth', opts.requirePass];
    const common = { aof: opts.aof ?? false, requirePass: opts.requirePass, args: auth, readyTimeoutMs: timeoutMs };
    const master = track(await startRedis(common));
    const replicas = await Promise.all(Array.from({ length: opts.replicas ?? 1 }, async () => track(await startRedis({ ...common, replicaOf: master }))));
    await waitForReplicas(master, replicas, timeoutMs);

    // Sentinels find each other through hello messages published on the master every 2 s, so a
    // fresh deployment needs ~2 s before it could vote. Each conf instead starts with its own id
    // and its peers (`myid`, `known-sentinel`: the lines Sentinel writes itself to remember them
    // across restarts), which is why the ports are chosen up front.
    const peers = await Promise.all(Array.from({ length: opts.sentinels ?? 3 }, async () => ({ port: await freePort(), id: randomBytes(20).toString('hex') })));
    const sentinels = await Promise.all(peers.map(async (me) => track(await launchRedis({
      label: 'sentinel',
      port: me.port,
      readyTimeoutMs: timeoutMs,
      // Sentinel rewrites this file (its id, the peers it found), so each gets its own in its dir.
      prepare: (dir) => writeFileSync(join(dir, 'sentinel.conf'), [
        `sentinel myid ${me.id}`,
        `sentinel monitor ${name} ${HOST} ${master.port} ${opts.quorum ?? 2}`,
        `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${name} ${opts.failoverTimeoutMs ?? 3000}`,
        ...(opts.requirePass === undefined ? [] : [`sentinel auth-pass ${name} ${opts.requirePass}`]),
        ...peers.filter((p) => p !== me).map((p) => `sentinel known-sentinel ${name} ${HOST} ${p.port} ${p.id}`),
        '',
      ].join('\n')),
      argv: ({ port }, dir) => [join(dir, 'sentinel.conf'), '--sentinel', '--port', String(port), '--bind', HOST, '--dir', dir, '--daemonize', 'no'],
    }))));
    const setup = new Setup(name, master, replicas, sentinels);
    await setup.waitReady(timeoutMs);
    return setup;
  } catch (err) {
    await Promise.all(started.map((s) => s.stop()));
    throw err;
  }
}

class Setup implements SentinelSetup {
  readonly servers: RedisServer[];
  readonly sentinelAddrs: RedisAddress[];

  constructor(
    readonly masterName: string,
    readonly master: RedisServer,
    readonly replicas: RedisServer[],
    readonly sentinels: RedisServer[],
  ) {
    this.servers = [master, ...replicas];
    this.sentinelAddrs = sentinels.map((s) => ({ host: s.host, port: s.port }));
  }

  serverAt(addr: { port: number }): RedisServer | undefined {
    return this.servers.find((s) => s.port === addr.port);
  }

  private async masterSeenBy(sentinel: RedisServer): Promise<RedisAddress> {
    const reply = await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName);
    if (!Array.isArray(reply)) throw new Error(`sentinel :${sentinel.port} does not know master ${this.masterName}`);
    return { host: String(reply[0]), port: Number(reply[1]) };
  }

  currentMaster(): Promise<RedisAddress> {
    const sentinel = this.sentinels.find((s) => s.isRunning());
    if (!sentinel) return Promise.reject(new Error('no sentinel is running'));
    return this.masterSeenBy(sentinel);
  }

  async waitReady(timeoutMs: number): Promise<void> {
    const replicas = this.replicas.length;
    const peers = this.sentinels.length - 1;
    await pollUntil(`sentinels monitoring ${this.masterName} with ${replicas} replica(s) and ${peers} peer(s) each`, async () => {
      for (const s of this.sentinels) {
        const m = fieldsOf(await s.call('SENTINEL', 'MASTER', this.masterName));
        if (m.flags !== 'master' || m['num-slaves'] !== String(replicas) || m['num-other-sentinels'] !== String(peers)) {
          notYet(`sentinel :${s.port}: flags ${m.flags}, ${m['num-slaves']} replicas, ${m['num-other-sentinels']} peers`);
        }
        const seen = await s.call('SENTINEL', 'REPLICAS', this.masterName);
        for (const r of Array.isArray(seen) ? seen.map(fieldsOf) : []) {
          if (r.flags !== 'slave' || r['master-link-status'] !== 'ok') notYet(`sentinel :${s.port} sees replica :${r.port} as ${r.flags}, link ${r['master-link-status']}`);
        }
        // Known is not enough: a peer it cannot reach (flags 'disconnected', 's_down') gives no vote.
        const others = await s.call('SENTINEL', 'SENTINELS', this.masterName);
        for (const p of Array.isArray(others) ? others.map(fieldsOf) : []) {
          if (p.flags !== 'sentinel') notYet(`sentinel :${s.port} sees sentinel :${p.port} as ${p.flags}`);
        }
      }
    }, { timeoutMs, intervalMs: 50, context: () => this.sentinels.map((s) => `[sentinel :${s.port}]\n${s.logTail(8)}`).join('\n') });
  }

  async failover(opts: { how?: SentinelFailover; timeoutMs?: number } = {}): Promise<RedisAddress> {
    const old = await this.currentMaster();
    if ((opts.how ?? 'kill') === 'kill') {
      const server = this.serverAt(old);
      if (!server) throw new Error(`the master :${old.port} is not one of this setup's servers`);
      await server.kill('SIGKILL');
    } else {
      await this.sentinels.find((s) => s.isRunning())!.call('SENTINEL', 'FAILOVER', this.masterName);
    }
    return pollUntil(`sentinels replacing master :${old.port}`, async () => {
      let agreed: RedisAddress | undefined;
      for (const s of this.sentinels.filter((x) => x.isRunning())) {
        const seen = await this.masterSeenBy(s);
        if (seen.port === old.port) notYet(`sentinel :${s.port} still names :${old.port}`);
        if (agreed && seen.port !== agreed.port) notYet(`sentinels name both :${agreed.port} and :${seen.port}`);
        agreed = seen;
      }
      if (!agreed) throw new Error('no sentinel is running');
      const server = this.serverAt(agreed);
      const role = await server?.call('ROLE');
      if (!Array.isArray(role) || role[0] !== 'master') notYet(`:${agreed.port} answers ROLE ${JSON.stringify(role)}`);
      return agreed;
    }, { timeoutMs: opts.timeoutMs ?? 20_000, intervalMs: 50, context: () => this.sentinels.map((s) => `[sentinel :${s.port}]\n${s.logTail(10)}`).join('\n') });
  }

  async stop(): Promise<void> {
    await Promise.all([...this.sentinels, ...this.servers].map((s) => s.stop()));
  }
}
