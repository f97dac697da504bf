/**
 * Counting a server's syscalls while it delivers, to see what a delivery costs (DESIGN.md: "what
 * a delivery costs is mostly syscalls"). `perf stat` on the syscall tracepoints when it works (a
 * small overhead; counts every thread of the process), else `strace -c -f` (slows the server
 * down, but the count per delivery stays meaningful), else n/a with the reason.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stop, tempDir, removeDir, track } from './cleanup.js';
import { machine } from './machine.js';

export interface SyscallCount {
  tool: 'perf' | 'strace' | 'none';
  total: number;
  /** Counts of the calls that move bytes or wait: sendto, sendmsg, write, writev, recvfrom, read, epoll_*. */
  byName: Record<string, number>;
  seconds: number;
  note: string;
}

const NAMES = ['sendto', 'sendmsg', 'write', 'writev', 'recvfrom', 'read', 'readv', 'epoll_wait', 'epoll_pwait', 'epoll_ctl', 'fdatasync', 'fsync', 'futex', 'msync', 'pwrite64'];

/** Counts syscalls of process `pid` for `seconds`. */
export async function countSyscalls(pid: number, seconds: number): Promise<SyscallCount> {
  const m = machine();
  if (m.perf) return viaPerf(pid, seconds);
  if (m.strace) return viaStrace(pid, seconds);
  return { tool: 'none', total: Number.NaN, byName: {}, seconds, note: 'neither perf nor strace works here' };
}

function viaPerf(pid: number, seconds: number): Promise<SyscallCount> {
  const events = ['raw_syscalls:sys_enter', ...NAMES.map((n) => `syscalls:sys_enter_${n}`)];
  const child = track(spawn('perf', ['stat', '-x', ',', '-e', events.join(','), '-p', String(pid), '--', 'sleep', String(seconds)], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return new Promise((resolve) => {
    child.once('exit', () => {
      const byName: Record<string, number> = {};
      let total = Number.NaN;
      for (const line of err.split('\n')) {
        const f = line.split(',');
        const count = Number(f[0]);
        const event = f[2] ?? '';
        if (!Number.isFinite(count)) continue;
        if (event === 'raw_syscalls:sys_enter') total = count;
        else if (event.startsWith('syscalls:sys_enter_')) {
          const name = event.slice('syscalls:sys_enter_'.length);
          if (count > 0) byName[name] = count;
        }
      }
      resolve({ tool: 'perf', total, byName, seconds, note: Number.isNaN(total) ? `perf gave no count: ${err.slice(0, 200)}` : '' });
    });
  });
}

async function viaStrace(pid: number, seconds: number): Promise<SyscallCount> {
  const dir = tempDir('sluice-bench-strace-');
  const out = join(dir, 'summary');
  const child = track(spawn('strace', ['-c', '-f', '-p', String(pid), '-o', out], { stdio: 'ignore' }));
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  child.kill('SIGINT');
  await stop(child, 5000);
  let text = '';
  try {
    text = readFileSync(out, 'utf8');
  } catch {
    removeDir(dir);
    return { tool: 'strace', total: Number.NaN, byName: {}, seconds, note: 'strace could not attach' };
  }
  removeDir(dir);
  const byName: Record<string, number> = {};
  let total = Number.NaN;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // % time, seconds, usecs/call, calls, [errors], syscall
    if (f.length < 5 || !/^\d/.test(f[0]!)) continue;
    const name = f[f.length - 1]!;
    const calls = Number(f[3]);
    if (name === 'total') total = calls;
    else if (NAMES.includes(name)) byName[name] = calls;
  }
  return { tool: 'strace', total, byName, seconds, note: '' };
}
