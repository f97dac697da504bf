/**
 * The store's periodic work over every topic, timed in one process (issue 16): with T topics that
 * all grew since the last tick, one whole pass (what the gateway did once a second before the
 * sweep was sliced: write every dirty meta, trim by age, expire keys) against one slice of the
 * sliced sweeper (a twentieth, every 50 ms). CPU and wall time of one loop turn each; run it
 * pinned (`taskset -c 0`) to see the block the event loop took.
 *
 *   taskset -c 0 node bench/dist/src/repro/store-sweep.js [topics=10000]
 *
 * Reaches into the gateway build's store classes (dist/src/log), which the package does not export.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface Store {
  append(topic: string, m: { data: Uint8Array }[]): Promise<unknown>;
  close(): Promise<void>;
  flushMeta(): void;
  sweep(now: number): void;
  sweepSlice?: (now: number) => void;
}

const server = dirname(createRequire(import.meta.url).resolve('@sluice/server/package.json'));
const load = (path: string) => import(pathToFileURL(join(server, 'dist/src/log', path)).href) as Promise<Record<string, unknown>>;

function timed(f: () => void): string {
  const c = process.cpuUsage();
  const t = performance.now();
  f();
  const d = process.cpuUsage(c);
  return `${((d.user + d.system) / 1000).toFixed(1).padStart(6)} ms CPU ${(performance.now() - t).toFixed(1).padStart(6)} ms wall`;
}

async function main(): Promise<void> {
  const topics = Number(process.argv[2] ?? 10_000);
  const { DiskLog } = await load('disk.js') as { DiskLog: { open(o: object): Store } };
  const { MemoryLog } = await load('memory.js') as { MemoryLog: new (o: object) => Store };
  const { DEFAULT_RETENTION, DEFAULT_DEDUP_WINDOW_MS } = await load('log.js') as { DEFAULT_RETENTION: object; DEFAULT_DEDUP_WINDOW_MS: number };
  const options = { retention: { ...DEFAULT_RETENTION }, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS };
  const data = new Uint8Array(200);
  for (const kind of ['memory', 'disk'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-sweep-'));
    const log = kind === 'disk' ? DiskLog.open({ ...options, dir }) : new MemoryLog(options);
    const grow = () => Promise.all(Array.from({ length: topics }, (_, i) => log.append(`bench.t${i}`, [{ data }])));
    try {
      await grow();
      for (let round = 0; round < 3; round++) {
        await grow();
        console.log(`${kind.padEnd(6)} ${topics} topics, all grown: whole pass ${timed(() => { log.flushMeta(); log.sweep(Date.now()); })}`);
        if (!log.sweepSlice) continue;
        await grow();
        // The slice writes the metas dirty for an interval (1 s): let them come due.
        await new Promise((resolve) => setTimeout(resolve, 1100));
        console.log(`${kind.padEnd(6)} ${topics} topics, all grown: one slice  ${timed(() => log.sweepSlice!(Date.now()))}`);
      }
    } finally {
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

main().catch((err: unknown) => { console.error(err); process.exit(2); });
