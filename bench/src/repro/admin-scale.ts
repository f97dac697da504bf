/**
 * The admin API at 100,000 topics (issue 14 §4): what two open consoles (admin streams) do to
 * publish ACK latency, what one console receives per second, and what `GET /v1/admin/topics` sends
 * and takes. Before the fix the stream sent every topic every second (15 MB/s per console) and
 * pushed the ACK p99 up several times.
 *
 *   node bench/dist/src/repro/admin-scale.js [topics=100000] [seconds=10] [rate=1000] [disk|memory]
 *
 * Starts this checkout's gateway (and, when BENCH_SLUICE_OLD_CLI names one, that build too: e.g.
 * /work/main/server/dist/src/cli.js for "before"), each with a fresh store (disk by default),
 * pinned like every bench server. Seeds `topics` topics (one message each, by 1000-message batches), then publishes
 * `rate` messages/s over one WebSocket (the SDK, keys on) to 100 of them, open loop, for `seconds`
 * with no console and `seconds` with two admin streams open, in ten alternating phases each, after
 * five settling seconds.
 * Prints ACK p50/p99/max per condition, one stream's bytes/s, the gateway's CPU, and the topic
 * list's size and time.
 * Bounded: every phase ends after `seconds`, the publisher holds at most 5000 unacknowledged.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { createClient, type Client } from '@sluice/client';
import { installCleanup, releaseAll, removeDir, tempDir } from '../cleanup.js';
import { Histogram } from '../histogram.js';
import { cpuMeter } from '../proc-stats.js';
import { CLI, launchGateway, OLD_CLI_ENV } from '../targets/sluice.js';

const HOT = 100;
/** Each condition's `seconds` is split into this many phases, alternating with the other's. */
const ROUNDS = 10;
/** After seeding: the store writes the new topics' metadata and makes its first passes over them. */
const SETTLE_SECONDS = 5;
const MAX_INFLIGHT = 5000;

/** One condition's figures, summed over its phases. */
interface Phase {
  h: Histogram;
  acked: number;
  failed: number;
  cpuSeconds: number;
  streamBytes: number;
  seconds: number;
}

const emptyPhase = (): Phase => ({ h: new Histogram(), acked: 0, failed: 0, cpuSeconds: 0, streamBytes: 0, seconds: 0 });

/**
 * Publishes `rate`/s for `seconds` (in 10 ms ticks) with `consoles` admin streams open, recording
 * each publish's time to its ACK into `into`.
 */
async function publishPhase(client: Client, rate: number, seconds: number, pid: number, consoles: Consoles | undefined, into: Phase): Promise<void> {
  await consoles?.open();
  const h = into.h;
  let inflight = 0;
  let sent = 0;
  const cpu = cpuMeter(pid);
  const started = performance.now();
  const end = started + seconds * 1000;
  const pending: Promise<void>[] = [];
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    for (; sent < due && inflight < MAX_INFLIGHT; sent++) {
      const t0 = performance.now();
      inflight++;
      pending.push(client.publish(`adm.hot.${sent % HOT}`, { n: sent }).then(
        () => { h.record((performance.now() - t0) * 1000); into.acked++; },
        () => { into.failed++; },
      ).finally(() => { inflight--; }));
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await Promise.race([Promise.all(pending), new Promise((resolve) => setTimeout(resolve, 10_000))]);
  const elapsed = (performance.now() - started) / 1000;
  into.cpuSeconds += (cpu.percent() / 100) * elapsed;
  into.seconds += elapsed;
  if (consoles) into.streamBytes += await consoles.close();
}

/**
 * The consoles' side, run in a child process so that reading the streams never delays the
 * publisher's ACKs in this one (and started once, so that starting it costs no phase): on `open`
 * (a line on stdin) it opens `n` admin streams and answers `open`; on `close` it closes them and
 * answers the bytes read per stream since `open`.
 */
const CONSOLES_SCRIPT = `
import { createInterface } from 'node:readline';
const [url, n] = [process.argv[1], Number(process.argv[2])];
let aborts = [];
let bytes = 0;
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'open') {
    bytes = 0;
    aborts = [];
    await Promise.all(Array.from({ length: n }, async () => {
      const abort = new AbortController();
      aborts.push(abort);
      const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: abort.signal });
      if (res.status !== 200 || !res.body) { console.error('admin stream: HTTP ' + res.status); process.exit(2); }
      const reader = res.body.getReader();
      void (async () => { try { for (;;) { const r = await reader.read(); if (r.done) return; bytes += r.value.byteLength; } } catch {} })();
    }));
    process.stdout.write('open\\n');
  } else if (line === 'close') {
    for (const a of aborts) a.abort();
    process.stdout.write(String(bytes / n) + '\\n');
  }
}
`;

/** The consoles' process (see CONSOLES_SCRIPT). */
class Consoles {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;

  constructor(url: string, n: number) {
    this.child = spawn(process.execPath, ['--input-type=module', '-e', CONSOLES_SCRIPT, url, String(n)]);
    this.child.stderr.pipe(process.stderr);
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async open(): Promise<void> {
    this.child.stdin.write('open\n');
    if ((await this.lines.next()).value !== 'open') throw new Error('the consoles did not open');
  }

  /** Closes the streams; resolves with the bytes each read. */
  async close(): Promise<number> {
    this.child.stdin.write('close\n');
    return Number((await this.lines.next()).value);
  }

  stop(): void {
    this.child.kill();
  }
}

/** `GET path` three times: the body's size and the median time. */
async function timeGet(url: string): Promise<{ bytes: number; ms: number; rows: number }> {
  const times: number[] = [];
  let bytes = 0;
  let rows = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const res = await fetch(url);
    const text = await res.text();
    times.push(performance.now() - t0);
    bytes = Buffer.byteLength(text);
    rows = res.ok ? (JSON.parse(text) as unknown[]).length : -res.status;
  }
  return { bytes, ms: times.sort((a, b) => a - b)[1]!, rows };
}

async function seed(base: string, topics: number): Promise<void> {
  for (let i = 0; i < topics; i += 1000) {
    const messages = Array.from({ length: Math.min(1000, topics - i) }, (_, k) => ({ topic: `adm.t.${i + k}`, data: i + k }));
    const res = await fetch(`${base}/v1/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages }) });
    if (res.status !== 200) throw new Error(`seeding: HTTP ${res.status} ${await res.text()}`);
  }
}

const mb = (n: number) => `${(n / 1e6).toFixed(n < 1e5 ? 3 : 1)} MB`;
const ms = (n: number) => `${n.toFixed(1)} ms`;

async function measure(label: string, cli: string, topics: number, seconds: number, rate: number, store: string): Promise<void> {
  const dir = tempDir('sluice-repro-');
  const { p, port } = await launchGateway({ cli, storeArgs: store === 'memory' ? ['--store', 'memory'] : ['--store', 'disk', '--data', dir] });
  const base = `http://127.0.0.1:${port}`;
  const client = createClient({ url: base, WebSocket: WebSocket as never });
  const two = new Consoles(`${base}/v1/admin/stream`, 2);
  try {
    const t0 = performance.now();
    await seed(base, topics);
    console.log(`${label}: seeded ${topics} topics in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await publishPhase(client, rate, SETTLE_SECONDS, p.pid, undefined, emptyPhase()); // warm-up, not counted
    // Alternated, so drift on a shared machine lands on both conditions alike.
    const quiet = emptyPhase();
    const consoles = emptyPhase();
    for (let round = 0; round < ROUNDS; round++) {
      await publishPhase(client, rate, seconds / ROUNDS, p.pid, undefined, quiet);
      await publishPhase(client, rate, seconds / ROUNDS, p.pid, two, consoles);
    }
    const p99 = (r: Phase) => r.h.quantile(0.99) / 1000;
    for (const [name, r] of [['no console', quiet], ['2 consoles', consoles]] as const) {
      console.log(`${label}: ${name.padEnd(10)} ACK p50 ${ms(r.h.quantile(0.5) / 1000)}, p99 ${ms(p99(r))}, max ${ms(r.h.max / 1000)}; ${r.acked} acked, ${r.failed} failed;` +
        ` gateway CPU ${((100 * r.cpuSeconds) / r.seconds).toFixed(0)}%` + (r.streamBytes > 0 ? `; one admin stream ${mb(r.streamBytes / r.seconds)}/s` : ''));
    }
    console.log(`${label}: ACK p99 with 2 consoles / without = ${(p99(consoles) / p99(quiet)).toFixed(2)}`);
    for (const path of ['/v1/admin/topics', '/v1/admin/topics?limit=1000&sort=-msgsPerSec', '/v1/admin/topics?q=adm.t.9999&limit=100']) {
      const r = await timeGet(base + path);
      console.log(`${label}: GET ${path.padEnd(45)} ${r.rows >= 0 ? `${r.rows} rows` : `HTTP ${-r.rows}`}, ${mb(r.bytes)}, ${ms(r.ms)} (median of 3)`);
    }
  } finally {
    two.stop();
    client.close();
    await p.stop(30_000);
    removeDir(dir);
  }
}

async function main(): Promise<void> {
  installCleanup();
  const [topics = 100_000, seconds = 10, rate = 1000] = process.argv.slice(2, 5).map(Number);
  const store = process.argv[5] ?? 'disk';
  console.log(`admin API at ${topics} topics (${store} store): ${rate} publishes/s over one WebSocket to ${HOT} topics, ${seconds} s without and ${seconds} s with two admin streams open, alternated in ${ROUNDS} rounds`);
  const old = process.env[OLD_CLI_ENV];
  if (old) await measure('before', old, topics, seconds, rate, store);
  await measure('after ', CLI, topics, seconds, rate, store);
}

main().then(
  () => { releaseAll(); process.exit(0); },
  (err: unknown) => { console.error(err); releaseAll(); process.exit(2); },
);
