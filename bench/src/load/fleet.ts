/**
 * The parent's view of its load workers: forks them (they inherit the client CPU pinning),
 * spreads subscribers over them, relays their progress to the publisher, and merges their
 * reports (counts, order checks, latency histograms, per-process CPU).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stop, track } from '../cleanup.js';
import { Histogram } from '../histogram.js';
import type { Stall, SubscriberSpec } from '../clients/subscriber.js';
import type { FromWorker, ResumeReport, ToWorker, WorkerReport } from './messages.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

/** The workers' reports summed (min: the lowest), with their latencies merged and CPU listed. */
export interface FleetReport extends Omit<WorkerReport, 'max' | 'latency' | 'cpuPercent'> {
  latency: Histogram;
  /** CPU share of each worker process over the phase (100 = one core). */
  workerCpu: number[];
}

class Worker {
  readonly child: ChildProcess;
  min = -1;
  slowMin = -1;
  total = 0;
  private waiting = new Map<string, (m: FromWorker) => void>();
  private failure: string | undefined;

  constructor(onProgress: () => void) {
    this.child = track(fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' }));
    this.child.on('message', (m: FromWorker) => {
      if (m.op === 'progress') {
        this.min = m.min;
        this.slowMin = m.slowMin;
        this.total = m.total;
        onProgress();
        return;
      }
      if (m.op === 'fatal') {
        this.failure = m.error;
        for (const w of this.waiting.values()) w(m);
        this.waiting.clear();
        return;
      }
      const w = this.waiting.get(m.op);
      this.waiting.delete(m.op);
      w?.(m);
    });
    this.child.once('exit', (code) => {
      this.failure ??= `worker exited (${code})`;
      for (const w of this.waiting.values()) w({ op: 'fatal', error: this.failure });
      this.waiting.clear();
    });
  }

  request<T extends FromWorker['op']>(m: ToWorker, answer: T): Promise<Extract<FromWorker, { op: T }>> {
    if (this.failure) return Promise.reject(new Error(this.failure));
    return new Promise((resolve, reject) => {
      this.waiting.set(answer, (r) => (r.op === 'fatal' ? reject(new Error(`load worker: ${r.error}`)) : resolve(r as Extract<FromWorker, { op: T }>)));
      this.child.send(m);
    });
  }
}

export class Fleet {
  private readonly workers: Worker[];
  private listeners = new Set<() => void>();

  constructor(size: number) {
    this.workers = Array.from({ length: size }, () => new Worker(() => { for (const l of this.listeners) l(); }));
  }

  get size(): number {
    return this.workers.length;
  }

  /** Called on every progress message from any worker. */
  onProgress(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Lowest last-sequence over every open fast subscriber (-1 if none reported yet). */
  min(): number {
    let m = Number.POSITIVE_INFINITY;
    for (const w of this.workers) if (w.min >= 0 && w.min < m) m = w.min;
    return m === Number.POSITIVE_INFINITY ? -1 : m;
  }

  /** Resolves true once every open slow subscriber reached `seq`, or false after `timeoutMs`. */
  waitSlow(seq: number, timeoutMs: number): Promise<boolean> {
    const done = () => this.workers.every((w) => w.slowMin < 0 || w.slowMin >= seq);
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { off(); resolve(false); }, timeoutMs);
      const off = this.onProgress(() => {
        if (!done()) return;
        clearTimeout(timer);
        off();
        resolve(true);
      });
    });
  }

  total(): number {
    let t = 0;
    for (const w of this.workers) t += w.total;
    return t;
  }

  /** Resolves once `min()` reached `seq`, or false after `timeoutMs`. */
  waitMin(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.min() >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { off(); resolve(false); }, timeoutMs);
      const off = this.onProgress(() => {
        if (this.min() < seq) return;
        clearTimeout(timer);
        off();
        resolve(true);
      });
    });
  }

  /**
   * Opens subscribers: `topics[i]` for subscriber i, dealt round-robin over the workers; the first
   * `slow` of them (also dealt round-robin) never consume, stopping as `stall` says. `late`:
   * messages are already flowing.
   */
  async open(spec: SubscriberSpec, topics: (number | null)[], slow = 0, late = false, concurrency = 64, stall: Stall = 'consume'): Promise<{ ok: number; failed: number; firstError: string }> {
    const shares: (number | null)[][] = this.workers.map(() => []);
    const slowShares = this.workers.map(() => 0);
    topics.forEach((t, i) => {
      const k = i % this.workers.length;
      shares[k]!.push(t);
      if (i < slow) slowShares[k]!++;
    });
    const results = await Promise.all(this.workers.map((w, k) =>
      shares[k]!.length === 0
        ? Promise.resolve({ ok: 0, failed: 0, firstError: '' })
        : w.request({ op: 'open', spec, topics: shares[k]!, slow: slowShares[k]!, stall, late, concurrency }, 'opened')));
    return {
      ok: results.reduce((a, r) => a + r.ok, 0),
      failed: results.reduce((a, r) => a + r.failed, 0),
      firstError: results.find((r) => r.firstError)?.firstError ?? '',
    };
  }

  /** Starts a measured phase: counters, histograms and CPU meters restart. */
  async phase(latency: boolean): Promise<void> {
    await Promise.all(this.workers.map((w) => w.request({ op: 'phase', latency }, 'phased')));
  }

  async report(): Promise<FleetReport> {
    const reports: WorkerReport[] = (await Promise.all(this.workers.map((w) => w.request({ op: 'report' }, 'report')))).map((r) => r.report);
    const latency = new Histogram();
    for (const r of reports) latency.merge(r.latency);
    const sum = (f: (r: WorkerReport) => number) => reports.reduce((a, r) => a + f(r), 0);
    const mins = reports.filter((r) => r.subscribers > 0 && r.min >= 0).map((r) => r.min);
    const slowCloses = reports.map((r) => r.slowFirstClosedAt).filter((s) => s >= 0);
    const slowCloseCodes: Record<number, number> = {};
    for (const r of reports) for (const [code, n] of Object.entries(r.slowCloseCodes)) slowCloseCodes[Number(code)] = (slowCloseCodes[Number(code)] ?? 0) + n;
    return {
      subscribers: sum((r) => r.subscribers),
      received: sum((r) => r.received),
      slowReceived: sum((r) => r.slowReceived),
      gaps: sum((r) => r.gaps),
      trimmed: sum((r) => r.trimmed),
      dups: sum((r) => r.dups),
      redelivered: sum((r) => r.redelivered),
      closed: sum((r) => r.closed),
      slowClosed: sum((r) => r.slowClosed),
      slowFirstClosedAt: slowCloses.length ? Math.min(...slowCloses) : -1,
      slowCloseCodes,
      errors: sum((r) => r.errors),
      firstError: reports.find((r) => r.firstError)?.firstError ?? '',
      min: mins.length ? Math.min(...mins) : -1,
      slowLast: reports.flatMap((r) => r.slowLast),
      latency,
      workerCpu: reports.filter((r) => r.subscribers > 0).map((r) => r.cpuPercent),
    };
  }

  async unstall(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.request({ op: 'unstall' }, 'unstalled')));
  }

  /**
   * Closes the slow subscribers (they leave the fleet), all but `keep` of those still open, which
   * stay slow (spread over the workers as evenly as their open ones allow).
   */
  async closeSlow(keep = 0): Promise<void> {
    const shares = this.workers.map((_, k) => Math.floor(keep / this.workers.length) + (k < keep % this.workers.length ? 1 : 0));
    await Promise.all(this.workers.map((w, k) => w.request({ op: 'close-slow', keep: shares[k]! }, 'slow-closed')));
  }

  /** Resume scenario: the (single) subscriber of worker 0. */
  async disconnect(): Promise<void> {
    await this.workers[0]!.request({ op: 'disconnect' }, 'disconnected');
  }

  async reconnect(liveAfter: number): Promise<ResumeReport> {
    return (await this.workers[0]!.request({ op: 'reconnect', liveAfter }, 'reconnected')).resume;
  }

  /** Closes every subscriber and ends the workers. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map(async (w) => {
      try {
        await Promise.race([
          w.request({ op: 'close' }, 'closed'),
          new Promise((resolve) => setTimeout(resolve, 5000).unref()),
        ]);
      } catch {
        // already gone
      }
      await stop(w.child, 2000);
    }));
  }
}
