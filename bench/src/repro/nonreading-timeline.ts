/**
 * When do readers suffer from subscribers that never read (issue 14.3)? The bench scenario gives
 * one p99 per phase; this prints a timeline, every 250 ms: the readers' publish → delivery latency
 * (p50, p99, max), the gateway's CPU and event-loop lag, the machine's TCP memory (tcp_mem counts
 * pages; past its middle value the kernel shrinks every socket's buffers); at the end, what the kernel holds in the
 * gateway's send queues and the clients' receive queues.
 *
 *   node bench/dist/src/repro/nonreading-timeline.js [nonReading=300] [readers=10] [seconds=10] [rate=5000] [credit=4096]
 *
 * Starts this checkout's gateway (and, when BENCH_SLUICE_OLD_CLI names one, that build too, after
 * it) with a fresh disk store, pinned like every bench server. One topic fed `rate` 1 KiB messages
 * per second from one publisher; `readers` subscribers with credit 64 consume it; after 2 s,
 * `nonReading` subscribers SUB with `credit` and stop reading their socket once SUBSCRIBED (as
 * the bench's `Stall` 'read'). Everything client-side runs in this one process: a non-reading
 * socket costs it nothing. Bounded: `seconds` of publishing, then at most 30 s for the readers to
 * receive the rest. TIMELINE_PROFILE_DIR=DIR: the gateway runs with --cpu-prof into DIR.
 */
import { readFileSync } from 'node:fs';
import { installCleanup, releaseAll, removeDir, tempDir } from '../cleanup.js';
import { SluicePublisher } from '../clients/sluice-publisher.js';
import { SluiceSubscriber } from '../clients/sluice-subscriber.js';
import { makePayload, nowUs } from '../payload.js';
import { cpuSeconds, tcpQueuedBytes } from '../proc-stats.js';
import { CLI, launchGateway, OLD_CLI_ENV, TOPIC_PREFIX } from '../targets/sluice.js';

const BUCKET_MS = 250;
const NON_READERS_AT_MS = 2000;
const MB = 1024 * 1024;

async function lagMax(httpUrl: string): Promise<number> {
  try {
    const text = await (await fetch(`${httpUrl}/metrics`)).text();
    const m = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text);
    return m ? Number(m[1]) * 1000 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : Number.NaN;
}

async function measure(label: string, cli: string, nonReading: number, readers: number, seconds: number, rate: number, credit: number): Promise<void> {
  const dir = tempDir('sluice-repro-');
  const profileDir = process.env.TIMELINE_PROFILE_DIR;
  const { p, port } = await launchGateway({ cli, storeArgs: ['--store', 'disk', '--data', dir], ...(profileDir ? { profileDir } : {}) });
  const url = `ws://127.0.0.1:${port}`;
  const httpUrl = `http://127.0.0.1:${port}`;
  const spec = { kind: 'sluice' as const, url, prefix: TOPIC_PREFIX };
  const t0 = performance.now();
  const buckets: number[][] = [];
  const sink = {
    latency: true,
    record(us: number) {
      const b = Math.floor((performance.now() - t0) / BUCKET_MS);
      (buckets[b] ??= []).push(us / 1000);
    },
  };
  const subs: SluiceSubscriber[] = [];
  try {
    for (let i = 0; i < readers; i++) {
      const s = new SluiceSubscriber({ ...spec, credit: 64 }, 0, sink);
      await s.open();
      subs.push(s);
    }
    const pub = await SluicePublisher.open({ url, prefix: TOPIC_PREFIX, window: 2000, keys: false });
    const rows: string[] = [];
    let cpu0 = cpuSeconds(p.pid);
    let sent = 0;
    let nonReadersOpened = false;
    const start = performance.now();
    const sampler = setInterval(() => {
      const c = cpuSeconds(p.pid);
      const cpu = ((c - cpu0) / (BUCKET_MS / 1000)) * 100;
      cpu0 = c;
      const at = ((performance.now() - t0) / 1000).toFixed(2);
      const tcpPages = Number(/TCP: .* mem (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1] ?? Number.NaN);
      void lagMax(httpUrl).then((lag) => rows.push(`${at} s  gateway cpu ${cpu.toFixed(0).padStart(3)}%  loop lag max ${lag.toFixed(0).padStart(4)} ms  TCP memory ${((tcpPages * 4096) / MB).toFixed(0)} MB`));
    }, BUCKET_MS);
    const tick = setInterval(() => {
      const due = Math.floor(((performance.now() - start) / 1000) * rate);
      pub.cork();
      while (sent < due && pub.canSend()) pub.send(0, makePayload(sent++, 0, nowUs(), 1024));
      pub.uncork();
      if (!nonReadersOpened && performance.now() - start >= NON_READERS_AT_MS) {
        nonReadersOpened = true;
        void (async () => {
          const t = performance.now();
          for (let i = 0; i < nonReading; i += 64) {
            await Promise.all(Array.from({ length: Math.min(64, nonReading - i) }, async () => {
              const s = new SluiceSubscriber({ ...spec, credit }, 0, { latency: false, record: () => undefined });
              s.stall('read');
              await s.open();
              subs.push(s);
            }));
          }
          rows.push(`-- ${nonReading} non-reading subscribers opened in ${((performance.now() - t) / 1000).toFixed(2)} s (from ${((t - t0) / 1000).toFixed(2)} s)`);
        })();
      }
    }, 5);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    clearInterval(tick);
    await Promise.race([pub.settle(), new Promise((r) => setTimeout(r, 30_000))]);
    const deadline = performance.now() + 30_000;
    while (performance.now() < deadline && subs.slice(0, readers).some((s) => s.tally.last < sent - 1)) await new Promise((r) => setTimeout(r, 50));
    clearInterval(sampler);
    const q = tcpQueuedBytes(Number(port));
    rows.push(`kernel queues at the end: gateway send ${(q.send / MB).toFixed(0)} MB, clients' receive ${(q.receive / MB).toFixed(0)} MB`);
    await new Promise((r) => setTimeout(r, BUCKET_MS));
    console.log(`\n${label}: ${nonReading} non-reading (credit ${credit}), ${readers} readers, ${rate}/s × 1 KiB for ${seconds} s; ${sent} published; readers got ${subs.slice(0, readers).map((s) => s.tally.last + 1).join(',')}`);
    const all: number[] = [];
    const during: number[] = [];
    for (let b = 0; b < buckets.length; b++) {
      const l = (buckets[b] ?? []).sort((x, y) => x - y);
      all.push(...l);
      if (b * BUCKET_MS >= NON_READERS_AT_MS) during.push(...l);
      const at = ((b * BUCKET_MS) / 1000).toFixed(2);
      if (l.length) console.log(`${at.padStart(6)} s  n ${String(l.length).padStart(5)}  p50 ${quantile(l, 0.5).toFixed(1).padStart(7)}  p99 ${quantile(l, 0.99).toFixed(1).padStart(7)}  max ${l[l.length - 1]!.toFixed(1).padStart(7)} ms`);
    }
    for (const r of rows) console.log(`   ${r}`);
    const before = all.slice(0, all.length - during.length).sort((x, y) => x - y);
    during.sort((x, y) => x - y);
    console.log(`${label} SUMMARY readers alone p50 ${quantile(before, 0.5).toFixed(1)} p99 ${quantile(before, 0.99).toFixed(1)} ms; with non-readers p50 ${quantile(during, 0.5).toFixed(1)} p99 ${quantile(during, 0.99).toFixed(1)} max ${during[during.length - 1]?.toFixed(1)} ms`);
    pub.close();
  } finally {
    for (const s of subs) s.close();
    await p.stop(30_000);
    removeDir(dir);
  }
}

async function main(): Promise<void> {
  installCleanup();
  const [nonReading = 300, readers = 10, seconds = 10, rate = 5000, credit = 4096] = process.argv.slice(2).map(Number);
  await measure('this build', CLI, nonReading, readers, seconds, rate, credit);
  const old = process.env[OLD_CLI_ENV];
  if (old) await measure(`old build (${old})`, old, nonReading, readers, seconds, rate, credit);
}

main().then(() => {
  releaseAll();
  process.exit(0);
}, (err: unknown) => {
  console.error(err);
  releaseAll();
  process.exit(1);
});
