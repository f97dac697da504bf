/**
 * What the bench reads about a server process from /proc: resident memory and CPU time.
 *
 * Why /proc and not the process itself: the same reading works for every target (Node servers,
 * the Sluice gateway run by its CLI, the Go nats-server) without adding code to any of them.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Resident set size in bytes, or NaN if the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * Anonymous resident memory in bytes (heap, buffers): what a process holds itself, without the
 * file pages it maps (the Sluice store's LMDB map shows up in RSS as file pages).
 */
export function anonRssBytes(pid: number): number {
  try {
    const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** User + system CPU seconds used so far by every thread of the process. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

function threadTicks(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(f[11]) + Number(f[12]));
    } catch {
      // the thread ended
    }
  }
  return out;
}

export interface ThreadCpu {
  /** CPU % of the main thread (the event loop, for Node servers). */
  main: number;
  /** CPU % of every other thread together, and of the busiest one. */
  others: number;
  busiestOther: number;
}

/**
 * Per-thread CPU over an interval: shows whether a server's event loop is the bottleneck or work
 * on other threads is (for Sluice: the LMDB write thread and the commit's fsync).
 */
export function threadCpuMeter(pid: number): { percent(): ThreadCpu } {
  const t0 = performance.now();
  const before = threadTicks(pid);
  return {
    percent() {
      const secs = (performance.now() - t0) / 1000;
      const after = threadTicks(pid);
      let main = 0;
      let others = 0;
      let busiest = 0;
      for (const [tid, ticks] of after) {
        const used = (100 * (ticks - (before.get(tid) ?? 0))) / TICKS_PER_SECOND / secs;
        if (tid === pid) main = used;
        else {
          others += used;
          busiest = Math.max(busiest, used);
        }
      }
      return { main, others, busiestOther: busiest };
    },
  };
}

/**
 * Measures a process's CPU share over an interval: `const m = cpuMeter(pid); ...; m.percent()`.
 * Given several processes (a cluster's nodes and its Redis), their sum.
 */
export function cpuMeter(pids: number | readonly number[]): { percent(): number } {
  const list = typeof pids === 'number' ? [pids] : pids;
  const total = () => list.reduce((a, pid) => a + cpuSeconds(pid), 0);
  const c0 = total();
  const t0 = performance.now();
  return {
    percent() {
      const secs = (performance.now() - t0) / 1000;
      return secs > 0 ? (100 * (total() - c0)) / secs : Number.NaN;
    },
  };
}

/**
 * How long a process's main thread was runnable but waited for its core (ms per second of wall
 * time), from /proc/PID/schedstat: on a shared machine, other processes on the server's core show
 * up here, and a latency figure taken while it is high says more about them than about the server.
 */
export function runQueueMeter(pid: number): { msPerSec(): number } {
  const wait = () => {
    try {
      return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e6;
    } catch {
      return Number.NaN;
    }
  };
  const w0 = wait();
  const t0 = performance.now();
  return {
    msPerSec() {
      const secs = (performance.now() - t0) / 1000;
      return secs > 0 ? (wait() - w0) / secs : Number.NaN;
    },
  };
}

/** This process's CPU share since the last call (process.cpuUsage deltas). */
export class SelfCpu {
  private last = process.cpuUsage();
  private at = performance.now();

  percent(): number {
    const now = process.cpuUsage();
    const t = performance.now();
    const used = now.user - this.last.user + now.system - this.last.system;
    const wall = (t - this.at) * 1000;
    this.last = now;
    this.at = t;
    return wall > 0 ? (100 * used) / wall : Number.NaN;
  }
}

/**
 * Bytes the kernel holds on the established TCP connections of a server's port, from `ss`: the
 * server's send queues (written, not yet taken by the peer) and its peers' receive queues (taken,
 * not yet read). What a client that does not read leaves in the kernel, not in the server's RSS.
 * NaN without `ss` (iproute2).
 */
export function tcpQueuedBytes(port: number): { send: number; receive: number } {
  let out: string;
  try {
    out = execFileSync('ss', ['-tnH', 'state', 'established', `( sport = :${port} or dport = :${port} )`], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  } catch {
    return { send: Number.NaN, receive: Number.NaN };
  }
  let send = 0;
  let receive = 0;
  for (const line of out.split('\n')) {
    // Recv-Q Send-Q Local:Port Peer:Port
    const [recvQ, sendQ, local] = line.trim().split(/\s+/);
    if (!local) continue;
    if (local.endsWith(`:${port}`)) send += Number(sendQ);
    else receive += Number(recvQ);
  }
  return { send, receive };
}
