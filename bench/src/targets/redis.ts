/**
 * The bench's own Redis (the Debian `redis-server`) for the cluster targets: a fresh instance per
 * measurement on a free loopback port, in a temp directory, pinned to the server core like every
 * server, stopped by its pid. Never the machine's shared Redis on 6379.
 *
 * Persistence is off (`--save "" --appendonly no`) unless a run measures AOF: then
 * `--appendonly yes --appendfsync <always|everysec>`, the AOF in the temp directory.
 *
 * `stats()` reads what the cost figures need from INFO: calls per command (commandstats, which
 * counts the commands a Lua script runs under their own names, and the script call itself as
 * evalsha), requests read from clients (total_reads_processed: a pipelined burst is one read), and
 * the server's CPU seconds (used_cpu_user + used_cpu_sys).
 */
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { removeDir, tempDir } from '../cleanup.js';
import { ExitedEarly, launch, type ServerProcess } from './server-process.js';
import type { StartOptions } from './target.js';

export const REDIS_SERVER = process.env.BENCH_REDIS_SERVER ?? 'redis-server';

export type Aof = NonNullable<StartOptions['aof']>;

export interface RedisStats {
  /** Calls per command name (lower case), since the server started. */
  calls: Record<string, number>;
  /**
   * Microseconds spent per command name. A script's time (evalsha) includes the commands it ran,
   * which also count their own time under their names.
   */
  usec: Record<string, number>;
  reads: number;
  cpuSeconds: number;
}

export interface RedisServer {
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  readonly exited: Promise<number | null>;
  output(): string;
  stats(): Promise<RedisStats>;
  stop(): Promise<void>;
}

/** The installed redis-server's version, or undefined when there is none. */
export function redisVersion(): string | undefined {
  try {
    const out = execFileSync(REDIS_SERVER, ['--version'], { encoding: 'utf8' });
    return /v=(\S+)/.exec(out)?.[1] ?? out.trim();
  } catch {
    return undefined;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export function parseStats(commandstats: string, stats: string, cpu: string): RedisStats {
  const calls: Record<string, number> = {};
  const usec: Record<string, number> = {};
  for (const m of commandstats.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    calls[m[1]!] = Number(m[2]);
    usec[m[1]!] = Number(m[3]);
  }
  const num = (text: string, name: string) => Number(new RegExp(`^${name}:(\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  return {
    calls,
    usec,
    reads: num(stats, 'total_reads_processed'),
    cpuSeconds: num(cpu, 'used_cpu_user') + num(cpu, 'used_cpu_sys'),
  };
}

/** What `b` adds to `a`: per-command call deltas (zeros left out), reads, CPU. */
export function statsDelta(a: RedisStats, b: RedisStats): RedisStats {
  const calls: Record<string, number> = {};
  const usec: Record<string, number> = {};
  for (const [name, n] of Object.entries(b.calls)) {
    const d = n - (a.calls[name] ?? 0);
    if (d <= 0) continue;
    calls[name] = d;
    usec[name] = (b.usec[name] ?? 0) - (a.usec[name] ?? 0);
  }
  return { calls, usec, reads: b.reads - a.reads, cpuSeconds: b.cpuSeconds - a.cpuSeconds };
}

export async function startRedis(o: { aof?: Aof } = {}): Promise<RedisServer> {
  const dir = tempDir('sluice-bench-redis-');
  let p: ServerProcess | undefined;
  let port = 0;
  // A port found free can be taken before redis binds it: try another then.
  for (let attempt = 0; !p; attempt++) {
    port = await freePort();
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      ...(o.aof ? ['--appendonly', 'yes', '--appendfsync', o.aof] : ['--appendonly', 'no']),
      '--daemonize', 'no', '--logfile', '', '--loglevel', 'notice',
    ];
    try {
      p = await launch(REDIS_SERVER, args, { readyPattern: /(Ready to accept connections)/ });
    } catch (err) {
      if (!(err instanceof ExitedEarly && /in use/i.test(err.output)) || attempt >= 3) {
        removeDir(dir);
        throw err;
      }
    }
  }
  const server = p;
  const url = `redis://127.0.0.1:${port}`;
  let client: Redis | undefined;
  return {
    pid: server.pid,
    port,
    url,
    exited: server.exited,
    output: () => server.output(),
    async stats() {
      client ??= new Redis({ host: '127.0.0.1', port, lazyConnect: false, maxRetriesPerRequest: 1 });
      const [commandstats, stats, cpu] = await Promise.all([client.info('commandstats'), client.info('stats'), client.info('cpu')]);
      return parseStats(commandstats, stats, cpu);
    },
    async stop() {
      client?.disconnect();
      await server.stop();
      removeDir(dir);
    },
  };
}
