/**
 * Preload for a gateway under diagnosis (`node --import gc-probe.js cli.js serve ...`, see
 * gc-cost.ts): sums V8's GC pauses by kind from `PerformanceObserver` entries, and on SIGUSR2
 * prints one line `gc-probe {...}` to stderr with the sums, the process's CPU time and the young
 * generation's committed size. Bench-only: nothing of the gateway imports it.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';

export interface GcReading {
  minor: number;
  minorMs: number;
  major: number;
  majorMs: number;
  cpuMs: number;
  youngGeneration: number;
}

const sums = { minor: 0, minorMs: 0, major: 0, majorMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) { sums.minor++; sums.minorMs += e.duration; }
    else { sums.major++; sums.majorMs += e.duration; }
  }
}).observe({ entryTypes: ['gc'] });

process.on('SIGUSR2', () => {
  const cpu = process.cpuUsage();
  const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
  const r: GcReading = { ...sums, cpuMs: (cpu.user + cpu.system) / 1000, youngGeneration: young };
  process.stderr.write(`gc-probe ${JSON.stringify(r)}\n`);
});
