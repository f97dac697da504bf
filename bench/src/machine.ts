/**
 * Facts about the machine and the tools the bench can use, found once at startup: cores, CPU
 * model, Node and peer versions, and whether `taskset` (CPU pinning), `perf` and `strace`
 * (syscall counts) work here. Printed at the top of every run and stored in the results.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import { redisVersion } from './targets/redis.js';

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  versions: Record<string, string>;
  /** CPU pinning: the server gets `serverCpu`, the bench and its workers `clientCpu`. */
  taskset: boolean;
  serverCpu: number;
  clientCpu: number;
  /** `perf stat -e raw_syscalls:sys_enter` works (syscall counts with little overhead). */
  perf: boolean;
  strace: boolean;
  /** Open-file limit (soft) each process gets: every connection is a file on both sides. */
  openFiles: number;
  notes: string[];
}

let cached: Machine | undefined;

function works(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'pipe', timeout: 10_000 });
  return r.status === 0;
}

function packageVersion(name: string): string {
  try {
    const require = createRequire(import.meta.url);
    // Resolve the package.json next to the installed package (exports maps may hide it).
    const dir = require.resolve.paths(name)!.map((p) => `${p}/${name}/package.json`);
    for (const file of dir) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name: string; version: string };
        return pkg.name === name ? pkg.version : `${pkg.name}@${pkg.version}`;
      } catch {
        // try the next location
      }
    }
  } catch {
    // fall through
  }
  return 'unknown';
}

export function machine(): Machine {
  if (cached) return cached;
  const notes: string[] = [];
  const cores = cpus().length;
  const taskset = cores >= 2 && works('taskset', ['-c', '0', 'true']);
  if (!taskset) notes.push(cores < 2 ? 'one core: server and clients share it' : 'taskset not available: no CPU pinning');
  const perf = works('perf', ['stat', '-e', 'raw_syscalls:sys_enter', 'true']);
  const strace = works('strace', ['-c', '-o', '/dev/null', 'true']);
  let natsVersion = 'not installed';
  try {
    natsVersion = execFileSync('nats-server', ['--version'], { encoding: 'utf8' }).trim().replace(/^nats-server:\s*/, '');
  } catch {
    notes.push('nats-server not found: NATS columns are n/a');
  }
  let kernel = '';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    kernel = process.platform;
  }
  let openFiles = Number.NaN;
  try {
    const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    openFiles = m ? (m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1])) : Number.NaN;
  } catch {
    // not Linux
  }
  if (openFiles < 12_000) notes.push(`open-file limit ${openFiles}: raise it (ulimit -n 65536) before --full, which opens 10,000 connections per server`);
  cached = {
    cores,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel,
    node: process.version,
    versions: {
      'uWebSockets.js': `${packageVersion('uWebSockets.js')} (uWS v20 binaries)`,
      'socket.io': packageVersion('socket.io'),
      'engine.io': packageVersion('engine.io'),
      ws: packageVersion('ws'),
      'nats-server': natsVersion,
      lmdb: packageVersion('lmdb'),
      'redis-server': redisVersion() ?? 'not installed',
      '@socket.io/redis-adapter': packageVersion('@socket.io/redis-adapter'),
      '@socket.io/redis-streams-adapter': packageVersion('@socket.io/redis-streams-adapter'),
      ioredis: packageVersion('ioredis'),
    },
    taskset,
    serverCpu: 0,
    clientCpu: cores >= 2 ? 1 : 0,
    perf,
    strace,
    openFiles,
    notes,
  };
  return cached;
}
