/**
 * One real redis-server (or Sentinel) process for tests: its own free port, its own temp dir, its
 * log in that dir. `startRedis` is the public entry (see redis.ts); `launchRedis` is the shared
 * machinery the cluster and Sentinel helpers build on.
 *
 * Invariants:
 * - A RedisServer is ready when it answers PING with PONG (not LOADING, not refused), nothing
 *   less; a timeout or an early exit throws with the tail of its log.
 * - `restart()` reuses the port, the dir and the argv, so an AOF, a nodes.conf or a rewritten
 *   sentinel.conf in the dir is what the new process starts from.
 * - The port is chosen free just before the bind; if another process wins that race (the log says
 *   "Address already in use"), a first start retries on new ports. A restart cannot: its port is
 *   part of its identity (replicas, cluster peers and sentinels know it).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../src/testing.js';
import { notYet, pollUntil } from './poll.js';
import { isRunning, ownedTempDir, removeOwnedDir, spawnOwned, stopProcess, tail } from './processes.js';
import { parseInfo, redisCall, type RedisAddress, type Reply } from './resp.js';

export const REDIS_SERVER = '/usr/bin/redis-server';
export const REDIS_CLI = '/usr/bin/redis-cli';
export const HOST = '127.0.0.1';

export type AofMode = 'always' | 'everysec' | false;

export interface RedisOptions {
  /** Append-only file with this fsync policy (default false: no AOF). */
  aof?: AofMode;
  /** Start as a replica of this server (its password, if any, becomes `masterauth`). */
  replicaOf?: RedisServer;
  requirePass?: string;
  /** RDB snapshot schedule, as redis.conf's `save` (default '': never snapshot). */
  save?: string;
  /** Extra redis-server arguments, e.g. ['--maxmemory', '10mb']; they come last and win. */
  args?: string[];
  /** Bound on each start (default 10 s). */
  readyTimeoutMs?: number;
}

export interface RedisServer extends RedisAddress {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:<port>`, with `:<password>@` when `requirePass` was set. */
  readonly url: string;
  readonly dir: string;
  readonly logFile: string;
  readonly password: string | undefined;
  /** The cluster bus port (cluster nodes only). */
  readonly busPort: number | undefined;
  /** PID of the current process (it changes on restart). */
  readonly pid: number;
  /**
   * `redis-cli -h … -p … [-a …] <args>` and its stdout without the final newline. redis-cli's own
   * options go first: `cli('-c', 'SET', k, v)` follows cluster redirects. Note that redis-cli
   * prints an error reply like any other text and exits 0: use `call` to tell errors apart.
   */
  cli(...args: string[]): Promise<string>;
  /** One command over RESP; an error reply rejects with a RedisReplyError. */
  call(...args: (string | number)[]): Promise<Reply>;
  isRunning(): boolean;
  /** The last lines of this server's log (all its incarnations). */
  logTail(lines?: number): string;
  /** Sends `signal` (default SIGKILL: a crash) and waits for the exit. The dir is kept. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP: the process stays, holds its port and answers nothing (a hung node). */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
  /** Starts it again on the same port, dir and options (stopping it gracefully first if running). */
  restart(): Promise<void>;
  /** Stops it (SIGTERM, then SIGKILL after 5 s) and removes its dir. Idempotent. */
  stop(): Promise<void>;
}

/** What `launchRedis` needs to (re)start a server: everything but the ports is fixed. */
export interface LaunchSpec {
  /** Names the server in errors and is the temp dir prefix: 'redis', 'cluster-node', 'sentinel'. */
  label: string;
  /** The full redis-server argv for these ports; `dir` is the server's temp dir. */
  argv(ports: { port: number; busPort: number | undefined }, dir: string): string[];
  /** Allocate a second free port for the cluster bus. */
  needsBusPort?: boolean;
  /**
   * A port the caller chose (because other config files name it) instead of a fresh free one.
   * Such a start cannot retry on another port if it loses the race for this one.
   */
  port?: number;
  password?: string | undefined;
  readyTimeoutMs?: number | undefined;
  /** Called with the fresh dir before the first start, e.g. to write a config file into it. */
  prepare?: (dir: string) => void;
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const master = opts.replicaOf;
  return launchRedis({
    label: 'redis',
    password: opts.requirePass,
    readyTimeoutMs: opts.readyTimeoutMs,
    argv: ({ port }, dir) => [
      ...baseArgs(port, dir, opts.save ?? ''),
      ...(opts.aof ? ['--appendonly', 'yes', '--appendfsync', opts.aof] : ['--appendonly', 'no']),
      ...(opts.requirePass !== undefined ? ['--requirepass', opts.requirePass] : []),
      ...(master ? ['--replicaof', master.host, String(master.port)] : []),
      ...(master?.password !== undefined ? ['--masterauth', master.password] : []),
      ...(opts.args ?? []),
    ],
  });
}

/**
 * The arguments every data node gets: loopback only, its dir, no daemon, and the DEBUG command
 * from local connections (DEBUG SLEEP and friends are fault-injection tools for tests).
 * `repl-diskless-sync-delay 0`: by default a master waits 5 s for more replicas before it starts a
 * full sync, which would make every replica (and every cluster with replicas) 5 s slow to start.
 */
export function baseArgs(port: number, dir: string, save: string): string[] {
  return [
    '--port', String(port), '--bind', HOST, '--dir', dir, '--daemonize', 'no', '--save', save,
    '--enable-debug-command', 'local', '--repl-diskless-sync-delay', '0',
  ];
}

export async function launchRedis(spec: LaunchSpec): Promise<RedisServer> {
  const dir = ownedTempDir(`sluice-${spec.label}-`);
  try {
    spec.prepare?.(dir);
    const server = new RedisProcess(spec, dir);
    if (spec.port !== undefined) server.port = spec.port;
    await server.start(spec.port !== undefined);
    return server;
  } catch (err) {
    removeOwnedDir(dir);
    throw err;
  }
}

class RedisProcess implements RedisServer {
  readonly host = HOST;
  readonly logFile: string;
  port = 0;
  busPort: number | undefined;
  private proc: ChildProcess | undefined;
  private paused = false;

  constructor(
    private readonly spec: LaunchSpec,
    readonly dir: string,
  ) {
    this.logFile = join(dir, `${spec.label}.log`);
  }

  get password(): string | undefined {
    return this.spec.password;
  }

  get url(): string {
    const auth = this.password === undefined ? '' : `:${encodeURIComponent(this.password)}@`;
    return `redis://${auth}${HOST}:${this.port}`;
  }

  get pid(): number {
    return this.proc?.pid ?? 0;
  }

  /** `samePorts`: a restart, which must get the ports it had. */
  async start(samePorts: boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (!samePorts) {
        this.port = await freePort();
        this.busPort = this.spec.needsBusPort ? await freePort() : undefined;
      }
      const logFrom = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
      const proc = spawnOwned(REDIS_SERVER, this.spec.argv({ port: this.port, busPort: this.busPort }, this.dir), this.logFile);
      this.proc = proc;
      this.paused = false;
      try {
        await pollUntil(`${this.spec.label} on ${HOST}:${this.port} answering PING`, async () => {
          const pong = await this.call('PING');
          if (pong !== 'PONG') throw new Error(`PING answered ${JSON.stringify(pong)}`);
        }, {
          timeoutMs: this.spec.readyTimeoutMs ?? 10_000,
          intervalMs: 10,
          abort: () => (isRunning(proc) ? undefined : `redis-server exited (${proc.exitCode ?? proc.signalCode})`),
          context: () => this.logTail(),
        });
        return;
      } catch (err) {
        await stopProcess(proc, 'SIGKILL');
        const clash = readFileSync(this.logFile, 'utf8').slice(logFrom).includes('Address already in use');
        if (samePorts || !clash || attempt === 3) throw err;
      }
    }
  }

  cli(...args: string[]): Promise<string> {
    const auth = this.password === undefined ? [] : ['-a', this.password, '--no-auth-warning'];
    return new Promise((resolve, reject) => {
      execFile(REDIS_CLI, ['-h', HOST, '-p', String(this.port), ...auth, ...args], { timeout: 10_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`redis-cli -p ${this.port} ${args.join(' ')}: ${err.message} ${stderr}`.trim()));
        else resolve(stdout.replace(/\n$/, ''));
      });
    });
  }

  call(...args: (string | number)[]): Promise<Reply> {
    return redisCall(this, args, { password: this.password, timeoutMs: 2_000 });
  }

  isRunning(): boolean {
    return this.proc !== undefined && isRunning(this.proc);
  }

  logTail(lines = 30): string {
    return tail(this.logFile, lines);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') throw new Error('kill() waits for an exit; use pause()/resume()');
    if (!this.proc) return;
    if (this.paused && signal !== 'SIGKILL') this.resume(); // a stopped process cannot act on SIGTERM
    await stopProcess(this.proc, signal);
  }

  pause(): void {
    if (!this.proc || !this.isRunning()) throw new Error(`${this.spec.label} :${this.port} is not running`);
    this.proc.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (this.proc && this.isRunning()) this.proc.kill('SIGCONT');
    this.paused = false;
  }

  async restart(): Promise<void> {
    if (this.isRunning()) await this.kill('SIGTERM');
    await this.start(true);
  }

  async stop(): Promise<void> {
    await this.kill('SIGTERM');
    removeOwnedDir(this.dir);
  }
}

/**
 * Waits until `master` has these replicas online and each has applied everything the master has:
 * its link is up and its own slave_repl_offset equals the master's master_repl_offset. After a
 * write, this is "the write is on every replica"; before a failover, "a failover loses nothing".
 * (The replica's own offset, not the one in the master's INFO: that one is the last REPLCONF ACK,
 * sent once a second, so it would add up to 1 s to every wait.)
 */
export async function waitForReplicas(master: RedisServer, replicas: RedisServer[], timeoutMs = 10_000): Promise<void> {
  await pollUntil(`${replicas.length} replica(s) of :${master.port} online and caught up`, async () => {
    const info = parseInfo(String(await master.call('INFO', 'replication')));
    const offset = info.get('master_repl_offset');
    for (const r of replicas) {
      // The master's entry for it: "ip=…,port=…,state=online,offset=…,lag=…".
      const entry = [...info.entries()].find(([k, v]) => /^slave\d+$/.test(k) && v.includes(`port=${r.port},`))?.[1];
      if (!entry?.includes('state=online')) notYet(`master :${master.port} has replica :${r.port} as ${entry ?? 'absent'}`);
      const mine = parseInfo(String(await r.call('INFO', 'replication')));
      if (mine.get('master_port') !== String(master.port) || mine.get('master_link_status') !== 'up') {
        notYet(`replica :${r.port} follows :${mine.get('master_port')}, link ${mine.get('master_link_status')}`);
      }
      if (mine.get('slave_repl_offset') !== offset) notYet(`replica :${r.port} at offset ${mine.get('slave_repl_offset')}, master at ${offset}`);
    }
  }, { timeoutMs, intervalMs: 20, context: () => master.logTail(10) });
}
