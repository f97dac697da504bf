/**
 * Preload for a gateway under diagnosis (`node --import loop-monitor.js cli.js serve ...`, see
 * loop-stall.ts): samples the event loop and writes what it saw to SLUICE_LOOP_MONITOR (JSON) at
 * exit. Two views: `perf_hooks.monitorEventLoopDelay` per second (p50/p99/max of the delay of a
 * 1 ms timer), and every block of ≥ 5 ms between two turns of a 1 ms interval, with the wall-clock
 * time it ended, so blocks can be matched with periodic work (a 1 s timer shows up as ~1000 ms gaps);
 * and every GC pause of ≥ 1 ms (PerformanceObserver 'gc').
 *
 * Bench-only: nothing of the gateway imports it.
 */
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const file = process.env.SLUICE_LOOP_MONITOR;
if (file) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const seconds: { at: number; p50: number; p99: number; max: number }[] = [];
  const blocks: { at: number; ms: number }[] = [];
  /** Every GC pause of ≥ 1 ms: when it ended (wall clock), how long, and its kind (a PerformanceGC flag). */
  const gcs: { at: number; ms: number; kind: number }[] = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.duration >= 1) gcs.push({ at: performance.timeOrigin + e.startTime + e.duration, ms: e.duration, kind: ((e as unknown as { detail?: { kind: number } }).detail?.kind ?? 0) });
    }
  }).observe({ entryTypes: ['gc'] });
  const perSecond = setInterval(() => {
    seconds.push({ at: Date.now(), p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6 });
    h.reset();
  }, 1000);
  perSecond.unref();
  let last = performance.now();
  const beat = setInterval(() => {
    const now = performance.now();
    if (now - last >= 6) blocks.push({ at: Date.now(), ms: now - last - 1 });
    last = now;
  }, 1);
  beat.unref();
  const write = () => {
    try {
      writeFileSync(file, JSON.stringify({ seconds, blocks, gcs }));
    } catch {
      // diagnostics only
    }
  };
  // The gateway ends with process.exit on SIGTERM (cli.ts), which runs this.
  process.on('exit', write);
}
