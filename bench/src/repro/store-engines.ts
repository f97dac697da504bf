/**
 * The disk store's engine question of issue 16, measured: what a durable commit of many interleaved
 * topics costs in LMDB (what the store uses, key [topic, offset]) against two LSM engines with a
 * write-ahead log (LevelDB through classic-level, RocksDB through rocksdb; both bindings ship
 * prebuilt binaries), the same keys and entries in each.
 *
 *   node bench/dist/src/repro/store-engines.js [topics=1000] [batch=100] [commits=300] [durability=flush|commit]
 *
 * Per engine, a child process pinned to CPU 0 (as the bench pins every server) opens a fresh
 * directory, stores topics × 100 messages (210-byte entries), then makes `commits` commits of
 * `batch` messages round-robin over the topics, one after the other, each awaited as the store's
 * group commit awaits its predecessor: `flush` syncs each commit to the device (LMDB's flushed
 * promise; the LSMs' `sync: true`, an fsync of the write-ahead log), `commit` leaves it in the OS.
 * Then it idles 3 s, so the LSMs' background flushes and compactions show up as deferred work.
 * Printed per engine: commits per second and messages per second, commit latency p50 / p99, bytes
 * written per message (`wchar` of /proc/self/io: every thread, logs, tables and compactions
 * included), and CPU per message (the whole process: LMDB's writer thread, the LSMs' background
 * threads), during the commits and in the idle tail after them. Then one catch-up read: 100
 * consecutive offsets of each of 100 topics, by range.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { open } from 'lmdb';

const ENGINES = ['lmdb', 'leveldb', 'rocksdb'] as const;
type Engine = typeof ENGINES[number];

/** What the measurement needs of an engine: an awaited batch of puts, and a range read. */
interface Store {
  write(puts: [topic: string, offset: number, entry: Uint8Array][], sync: boolean): Promise<void>;
  range(topic: string, from: number, count: number): Promise<number>;
  close(): Promise<void>;
}

/** The LSMs' key: topic bytes, a 0 byte, the offset as 8 bytes big-endian (orders by topic, then offset). */
function lsmKey(topic: string, offset: number): Buffer {
  const t = Buffer.from(topic);
  const k = Buffer.allocUnsafe(t.length + 9);
  t.copy(k);
  k[t.length] = 0;
  k.writeBigUInt64BE(BigInt(offset), t.length + 1);
  return k;
}

async function openLmdb(dir: string): Promise<Store> {
  // As the disk store opens it (server/src/log/disk.ts): no compression, flushes awaited apart.
  const root = open({ path: join(dir, 'x.mdb'), compression: false, separateFlushed: true, maxDbs: 4 });
  const msgs = root.openDB<Uint8Array, (string | number)[]>('msgs', { encoding: 'binary' });
  return {
    async write(puts, sync) {
      let last: Promise<boolean> & { flushed?: Promise<boolean> } = Promise.resolve(true);
      for (const [topic, offset, entry] of puts) last = msgs.put([topic, offset], entry) as typeof last;
      await last;
      if (sync && last.flushed) await last.flushed;
    },
    async range(topic, from, count) {
      let n = 0;
      for (const { value } of msgs.getRange({ start: [topic, from], end: [topic, from + count] })) n += value.length;
      return n;
    },
    close: () => root.close(),
  };
}

async function openLevel(dir: string): Promise<Store> {
  const db = new ClassicLevel<Buffer, Buffer>(join(dir, 'level'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  return {
    write: (puts, sync) => db.batch(puts.map(([t, o, e]) => ({ type: 'put' as const, key: lsmKey(t, o), value: Buffer.from(e.buffer, e.byteOffset, e.length) })), { sync }),
    async range(topic, from, count) {
      let n = 0;
      for await (const v of db.values({ gte: lsmKey(topic, from), lt: lsmKey(topic, from + count) })) n += v.length;
      return n;
    },
    close: () => db.close(),
  };
}

/** rocksdb (Level's binding) has no type declarations: the callback API used here. */
interface RocksDb {
  open(opts: object, cb: (err?: Error) => void): void;
  batch(ops: { type: 'put'; key: Buffer; value: Buffer }[], opts: { sync: boolean }, cb: (err?: Error) => void): void;
  iterator(opts: object): { next(cb: (err: Error | undefined, key?: Buffer, value?: Buffer) => void): void; end(cb: (err?: Error) => void): void };
  close(cb: (err?: Error) => void): void;
}

async function openRocks(dir: string): Promise<Store> {
  const rocksdb = createRequire(import.meta.url)('rocksdb') as (location: string) => RocksDb;
  const db = rocksdb(join(dir, 'rocks'));
  const call = (f: (cb: (err?: Error) => void) => void) => new Promise<void>((resolve, reject) => f((err) => (err ? reject(err) : resolve())));
  await call((cb) => db.open({ createIfMissing: true }, cb));
  return {
    write: (puts, sync) => call((cb) => db.batch(puts.map(([t, o, e]) => ({ type: 'put' as const, key: lsmKey(t, o), value: Buffer.from(e.buffer, e.byteOffset, e.length) })), { sync }, cb)),
    async range(topic, from, count) {
      const it = db.iterator({ gte: lsmKey(topic, from), lt: lsmKey(topic, from + count), keys: false });
      let n = 0;
      for (;;) {
        const value = await new Promise<Buffer | undefined>((resolve, reject) => it.next((err, _k, v) => (err ? reject(err) : resolve(v))));
        if (value === undefined) break;
        n += value.length;
      }
      await call((cb) => it.end(cb));
      return n;
    },
    close: () => call((cb) => db.close(cb)),
  };
}

function wchar(): number {
  return Number(/wchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? Number.NaN);
}

function cpuUs(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** One engine, in this (pinned) process: prints one JSON line of figures. */
async function child(engine: Engine, topics: number, batch: number, commits: number, sync: boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `sluice-engines-${engine}-`));
  try {
    const store = await (engine === 'lmdb' ? openLmdb(dir) : engine === 'leveldb' ? openLevel(dir) : openRocks(dir));
    const entry = new Uint8Array(210).fill(46);
    const offsets = new Array<number>(topics).fill(0);
    let next = 0;
    const puts = (n: number) => Array.from({ length: n }, () => {
      const t = next++ % topics;
      return [`bench.t${t}`, ++offsets[t]!, entry] as [string, number, Uint8Array];
    });
    // The topics' earlier messages (a tree or a set of tables of realistic size), unsynced.
    for (let i = 0; i < 100; i++) await store.write(puts(topics), false);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const w0 = wchar();
    const c0 = cpuUs();
    const t0 = performance.now();
    const latencies: number[] = [];
    for (let i = 0; i < commits; i++) {
      const s = performance.now();
      await store.write(puts(batch), sync);
      latencies.push(performance.now() - s);
    }
    const wall = (performance.now() - t0) / 1000;
    const w1 = wchar();
    const c1 = cpuUs();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const w2 = wchar();
    const c2 = cpuUs();
    const r0 = performance.now();
    let read = 0;
    for (let t = 0; t < 100; t++) read += await store.range(`bench.t${(t * 7) % topics}`, 50, 100);
    const readMs = performance.now() - r0;
    await store.close();
    latencies.sort((a, b) => a - b);
    const messages = commits * batch;
    console.log(JSON.stringify({
      engine, commitsPerSec: commits / wall, msgsPerSec: messages / wall,
      p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99),
      bytesPerMsg: (w1 - w0) / messages, cpuUsPerMsg: (c1 - c0) / messages,
      tailBytesPerMsg: (w2 - w1) / messages, tailCpuUsPerMsg: (c2 - c1) / messages,
      readMs, readBytes: read,
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Figures = { engine: Engine; commitsPerSec: number; msgsPerSec: number; p50: number; p99: number; bytesPerMsg: number; cpuUsPerMsg: number; tailBytesPerMsg: number; tailCpuUsPerMsg: number; readMs: number; readBytes: number };

function runChild(engine: Engine, args: string[]): Promise<Figures> {
  const self = fileURLToPath(import.meta.url);
  const p = spawn('taskset', ['-c', '0', process.execPath, self, '--child', engine, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => p.once('exit', (code) => {
    const line = out.trim().split('\n').pop() ?? '';
    if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as Figures);
    else reject(new Error(`${engine}: exit ${code}: ${out.slice(-500)}`));
  }));
}

if (process.argv[2] === '--child') {
  const [, , , engine, topics, batch, commits, durability] = process.argv;
  await child(engine as Engine, Number(topics), Number(batch), Number(commits), durability !== 'commit');
} else {
  const [topics = '1000', batch = '100', commits = '300', durability = 'flush'] = process.argv.slice(2);
  console.log(`${topics} topics, commits of ${batch} messages round-robin over them (210-byte entries), ${commits} commits one after another, ${durability === 'commit' ? 'not synced (commit)' : 'each synced (flush)'}; pinned to CPU 0; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log('| engine | commits/s | msgs/s | commit p50 / p99 | written per message | CPU per message | after: written / CPU per message | 10,000 catch-up reads |');
  console.log('|---|---:|---:|---|---:|---:|---|---:|');
  for (const engine of ENGINES) {
    const f = await runChild(engine, [topics, batch, commits, durability]);
    console.log(`| ${engine} | ${f.commitsPerSec.toFixed(0)} | ${f.msgsPerSec.toFixed(0)} | ${f.p50.toFixed(2)} / ${f.p99.toFixed(2)} ms | ${f.bytesPerMsg.toFixed(0)} B | ${f.cpuUsPerMsg.toFixed(1)} µs | ${f.tailBytesPerMsg.toFixed(0)} B / ${f.tailCpuUsPerMsg.toFixed(1)} µs | ${f.readMs.toFixed(0)} ms |`);
  }
}
