/**
 * What one LMDB commit of interleaved topics costs, by key layout (issue 16.3): bytes LMDB writes
 * per commit (`wchar` of /proc/self/io: LMDB writes whole 4 KiB pages, so ÷ 4096 is pages) and the
 * commit's CPU time, for batches of B messages spread round-robin over T topics, as the disk store
 * commits a loop turn of publishes to many topics.
 *
 *   node bench/dist/src/repro/interleaved-commit.js [topics=1000] [batch=100] [commits=200]
 *
 * Layouts:
 * - `topic-offset` — the disk store's format 1 (`msgs`): key [topic, offset]. Each message lands in its
 *   topic's leaf page, so a commit of B messages over B topics dirties ~B leaves (+ branches);
 * - `append + index per batch` — key = a global sequence in commit order (one growing right edge)
 *   and, per batch, one index entry [topic, first offset] → sequence for each topic the batch touched;
 * - `append only` — the log alone, the per-topic index kept in memory and checkpointed lazily
 *   (what a commit would cost if the index left the commit path; recovery then scans the log tail).
 *   The disk store's format 2 was built on this; `disk-interleaved.ts` measures the store itself.
 * Each starts from T topics × 100 stored messages (a tree of realistic depth). No fsync (noSync):
 * this counts what is written, not the device.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';

function wchar(): number {
  const m = /wchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

type Layout = 'topic-offset' | 'append + index per batch' | 'append only';

function measure(layout: Layout, topics: number, batch: number, commits: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-interleave-'));
  const root = open({ path: join(dir, 'x.mdb'), compression: false, noSync: true, maxDbs: 4 });
  const msgs = root.openDB<Uint8Array, (string | number)[]>('msgs', { encoding: 'binary' });
  const log = root.openDB<Uint8Array, number>('log', { encoding: 'binary' });
  const index = root.openDB<number, (string | number)[]>('index', {});
  const entry = new Uint8Array(210).fill(46);
  const offsets = new Array<number>(topics).fill(0);
  let seq = 0;
  let next = 0;
  const write = (n: number) => {
    const firsts = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const t = next++ % topics;
      const offset = ++offsets[t]!;
      if (layout === 'topic-offset') msgs.put([`bench.t${t}`, offset], entry);
      else {
        log.put(++seq, entry);
        if (!firsts.has(t)) firsts.set(t, seq);
      }
    }
    if (layout === 'append + index per batch') for (const [t, s] of firsts) index.put([`bench.t${t}`, offsets[t]!], s);
  };
  try {
    for (let i = 0; i < 100; i++) root.transactionSync(() => write(topics));
    const w0 = wchar();
    const c0 = process.cpuUsage();
    for (let i = 0; i < commits; i++) root.transactionSync(() => write(batch));
    const c = process.cpuUsage(c0);
    const bytes = wchar() - w0;
    const pages = bytes / 4096 / commits;
    return `${layout.padEnd(26)} ${pages.toFixed(1).padStart(7)} pages/commit ${(pages / batch).toFixed(2).padStart(6)} pages/message ${((c.user + c.system) / commits).toFixed(0).padStart(6)} µs CPU/commit`;
  } finally {
    root.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const [topics = 1000, batch = 100, commits = 200] = process.argv.slice(2).map(Number);
console.log(`${topics} topics, commits of ${batch} messages round-robin over them (210-byte entries), ${commits} commits`);
for (const layout of ['topic-offset', 'append + index per batch', 'append only'] as const) console.log(`  ${measure(layout, topics, batch, commits)}`);
