/**
 * What the disk store (DiskLog itself, not a model of it) writes per commit when publishes are
 * interleaved over many topics (issue 16.3): T topics, commits of B messages round-robin over them
 * (one `append` per message, all in one loop turn: one commit), after T × 100 stored messages.
 * Counts the bytes the process hands to write calls (`wchar` of /proc/self/io; LMDB writes whole
 * 4 KiB pages, so ÷ 4096 is pages) and the fdatasync calls are not counted here (one per commit at
 * `flush`; see `strace -f -c -e trace=pwrite64,fdatasync`).
 *
 *   node bench/dist/src/repro/disk-interleaved.js [topics=1000] [batch=100] [commits=300] [flush|commit] [server dir]
 *
 * `server dir` is the `server` directory of a build to measure (default: this checkout's), so an
 * old build is measured in the same run: pass e.g. /work/wt/old-main/server. The figures include
 * the writes that follow the commits, in two steps: the 2.5 s after the last commit (meta each
 * second; format 2's index checkpoint only once 50,000 records wait or 10 s passed), and the close
 * (the remaining metas, and format 2's checkpoint of everything).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface Store {
  append(topic: string, m: { data: Uint8Array }[]): Promise<unknown>;
  read(topic: string, from: number, o: { limit: number }): Promise<{ entries: Uint8Array[] }>;
  close(): Promise<void>;
}

function wchar(): number {
  const m = /wchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const [topics = 1000, batch = 100, commits = 300] = process.argv.slice(2, 5).map(Number);
  const durability = process.argv[5] ?? 'flush';
  const server = process.argv[6] ?? dirname(createRequire(import.meta.url).resolve('@sluice/server/package.json'));
  const load = (path: string) => import(pathToFileURL(join(server, 'dist/src/log', path)).href) as Promise<Record<string, unknown>>;
  const { DiskLog } = await load('disk.js') as { DiskLog: { open(o: object): Store } };
  const { DEFAULT_RETENTION, DEFAULT_DEDUP_WINDOW_MS } = await load('log.js') as { DEFAULT_RETENTION: object; DEFAULT_DEDUP_WINDOW_MS: number };
  const dir = mkdtempSync(join(tmpdir(), 'sluice-interleaved-'));
  const log = DiskLog.open({ retention: { ...DEFAULT_RETENTION }, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS, dir, durability });
  // 200 bytes of MessagePack: a bin 8 of 198 bytes (the store reads the entry's timestamp after it).
  const data = new Uint8Array(200).fill(46);
  data.set([0xc4, 198]);
  let next = 0;
  let closed = false;
  const round = (n: number) => {
    let last: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < n; i++) last = log.append(`bench.t${next++ % topics}`, [{ data }]);
    return last;
  };
  try {
    for (let i = 0; i < 100; i++) await round(topics);
    await pause(2500);
    const w0 = wchar();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < commits; i++) await round(batch);
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    const inCommits = wchar() - w0;
    await pause(2500);
    const after = wchar() - w0;
    // The reads still see every message, in order (a check), and what a catch-up read costs: every
    // topic read from offset 1, in reads of at most 512 (a figure).
    const r = await log.read('bench.t0', 1, { limit: 1_000_000 });
    if (r.entries.length < 100 + Math.floor(commits * batch / topics)) throw new Error(`short read: ${r.entries.length} messages of bench.t0`);
    const r0 = performance.now();
    let read = 0;
    for (let t = 0; t < topics; t++) {
      for (let from = 1; ;) {
        const { entries } = await log.read(`bench.t${t}`, from, { limit: 512 });
        if (entries.length === 0) break;
        read += entries.length;
        from += entries.length;
      }
    }
    const readUs = (performance.now() - r0) * 1000 / read;
    await log.close();
    closed = true;
    const total = wchar() - w0;
    const messages = commits * batch;
    const pages = (bytes: number) => (bytes / 4096).toFixed(1);
    const per = (bytes: number) => `${pages(bytes / commits)} pages/commit, ${(bytes / 4096 / messages).toFixed(3)} pages/message`;
    console.log(`${server} (${durability}): ${topics} topics, ${commits} commits of ${batch} messages`);
    console.log(`  commits:                      ${per(inCommits)}`);
    console.log(`  + 2.5 s after (meta, index):  ${per(after)}`);
    console.log(`  + close (meta, index):        ${per(total)}, ${(total / messages).toFixed(0)} bytes/message`);
    console.log(`  reads: ${readUs.toFixed(2)} µs per message read (${read} messages, every topic from offset 1)`);
    console.log(`  ${(wall / commits).toFixed(2)} ms wall/commit, ${((cpu.user + cpu.system) / commits / 1000).toFixed(2)} ms CPU/commit (all threads), ${(messages / wall * 1000).toFixed(0)} msgs/s`);
  } finally {
    if (!closed) await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
