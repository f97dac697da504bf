/**
 * How long the format 1 → 2 migration of the disk store holds the event loop: writes a format 1
 * data directory (`msgs` [topic, offset] → entry, as builds before format 2 did) of N 200-byte
 * messages over T topics, opens it with `DiskLog` and times the open, then, while a catch-up read
 * of one topic runs every 20 ms (each checked complete), how long until the store is writable and
 * the event loop's longest stall meanwhile (`monitorEventLoopDelay`, 1 ms resolution).
 *
 *   node bench/dist/src/repro/migrate-format1.js [messages=100000] [topics=1000] [server dir]
 *
 * `server dir` is the `server` directory of the build to measure (default: this checkout's).
 * A build that migrates everything at open shows it as the open's time and no stall after;
 * BENCH_MIGRATE_OPEN_MS=Infinity makes this one do that (its internal `migrateOpenMs`). A build
 * of format 1 only opens the directory as it is (a baseline).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { open } from 'lmdb';

interface Store {
  health(): { writable: boolean };
  read(topic: string, from: number, o: { limit: number }): Promise<{ entries: Uint8Array[] }>;
  close(): Promise<void>;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const [messages = 100_000, topics = 1000] = process.argv.slice(2, 4).map(Number);
  const server = process.argv[4] ?? dirname(createRequire(import.meta.url).resolve('@sluice/server/package.json'));
  const load = (path: string) => import(pathToFileURL(join(server, 'dist/src/log', path)).href) as Promise<Record<string, unknown>>;
  const { DiskLog } = await load('disk.js') as { DiskLog: { open(o: object): Store } };
  const { DEFAULT_RETENTION, DEFAULT_DEDUP_WINDOW_MS } = await load('log.js') as { DEFAULT_RETENTION: object; DEFAULT_DEDUP_WINDOW_MS: number };
  const per = Math.ceil(messages / topics);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-migrate-'));
  try {
    // The format 1 directory: an entry is a MessagePack array [bin 8 of 190 bytes, ts] (the store
    // reads the timestamp after the data).
    const root = open({ path: join(dir, 'sluice.mdb'), compression: false, maxDbs: 12 });
    const msgs = root.openDB<Uint8Array, [string, number]>('msgs', { encoding: 'binary' });
    const entry = new Uint8Array(202);
    entry.set([0x92, 0xc4, 190]);
    entry.fill(46, 3, 193);
    entry[193] = 0xcb;
    new DataView(entry.buffer).setFloat64(194, Date.now());
    for (let t0 = 0; t0 < topics; t0 += 100) {
      await root.transaction(() => {
        void root.openDB<string, string>('sys', {}).put('epoch', 'format-1');
        for (let t = t0; t < Math.min(topics, t0 + 100); t++) for (let o = 1; o <= per; o++) void msgs.put([`bench.t${t}`, o], entry);
      });
    }
    await root.close();

    const t0 = performance.now();
    const openMsEnv = process.env.BENCH_MIGRATE_OPEN_MS;
    const log = DiskLog.open({
      retention: { ...DEFAULT_RETENTION }, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS, dir, ...(openMsEnv ? { migrateOpenMs: Number(openMsEnv) } : {}),
    });
    const openMs = performance.now() - t0;
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    let reads = 0;
    let short = 0;
    const want = Math.min(100, per);
    const reader = setInterval(() => {
      void log.read(`bench.t${reads % topics}`, 1, { limit: 100 }).then((r) => { reads++; if (r.entries.length !== want) short++; }, () => { short++; });
    }, 20);
    for (let i = 0; i < 30_000 && !log.health().writable; i++) await pause(20);
    clearInterval(reader);
    delay.disable();
    const writableMs = performance.now() - t0;
    const writable = log.health().writable;
    await log.close();
    console.log(`${server}: ${per * topics} messages over ${topics} topics`);
    console.log(`  open returned after ${openMs.toFixed(0)} ms; writable after ${writableMs.toFixed(0)} ms${writable ? '' : ' (NOT writable after 10 min)'}`);
    console.log(`  event loop after the open: longest stall ${(delay.max / 1e6).toFixed(1)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms`);
    console.log(`  catch-up reads meanwhile: ${reads}, ${short} incomplete`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
