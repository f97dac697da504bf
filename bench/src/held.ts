#!/usr/bin/env node
/**
 * Delayed and half messages (issue 13) on the real gateway (disk store, default durability), one
 * fresh gateway, printed figures:
 *
 * 1. N (default 100,000) messages scheduled with `at` spread evenly over a 10 s window that opens
 *    once they are all held: how fast they are held (PUB → HELD), how many are appended per
 *    second while due, and their lateness (append ts − due; and receive time − due at a live SDK
 *    subscriber) p50 / p99 / max.
 * 2. Prepare + commit (two round trips, the held record written twice, then the append) against
 *    plain publish (one append), with the same window of requests in flight: messages/s each.
 *
 *   node bench/dist/src/held.js [scheduled=100000] [window=2000] [txMessages=20000]
 *
 * The SDK client (over the `ws` package) is the publisher and subscriber, as an application would
 * use it; it is pinned to CPU 1 and the gateway to CPU 0 like the other scenarios.
 */
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import { createClient, type Client } from '@sluice/client';
import { installCleanup, releaseAll } from './cleanup.js';
import { cpuMeter } from './proc-stats.js';
import { sluiceTarget } from './targets/sluice.js';

const q = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;

/** Runs `n` requests with at most `window` in flight; resolves with the elapsed seconds. */
async function pipelined(n: number, window: number, one: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: window }, async () => {
    while (next < n) await one(next++);
  }));
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  installCleanup();
  const [N = 100_000, window = 2000, TX = 20_000] = process.argv.slice(2).map(Number);
  try {
    execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  } catch {
    // not pinned
  }
  const t = await sluiceTarget.start({});
  const clients: Client[] = [];
  const client = () => {
    const c = createClient({ url: t.httpUrl!, WebSocket: WebSocket as never, maxQueuedPublishes: 1_000_000 });
    clients.push(c);
    return c;
  };
  try {
    // ---- 1. scheduled -----------------------------------------------------------------------
    const pub = client();
    await pub.publish('bench.warm', 0);
    // Hold rate first (a short run), to open the due window once all N are surely held.
    const warm = 5000;
    const warmS = await pipelined(warm, window, (i) => pub.publish('bench.warmheld', i, { delay: 600_000 }));
    const estimate = (N / (warm / warmS)) * 1.5 + 2;
    const open = Date.now() + Math.round(estimate * 1000);
    const sub = client();
    const got: { due: number; recv: number }[] = [];
    sub.subscribe('bench.held', (m) => { got.push({ due: (m.data as { due: number }).due, recv: Date.now() }); }, { credit: 4096 });
    await new Promise((r) => setTimeout(r, 200));
    const server = cpuMeter(t.pid);
    const holdS = await pipelined(N, window, (i) => {
      const due = open + Math.floor((i / N) * 10_000);
      return pub.publish('bench.held', { due }, { at: due });
    });
    const holdCpu = server.percent();
    const heldAt = Date.now();
    if (heldAt > open) console.log(`note: holding took longer than estimated; the window opened ${heldAt - open} ms before the last was held`);
    const deadline = open + 10_000 + 60_000;
    while (got.length < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const pull = async (from: number) => (await fetch(`${t.httpUrl}/v1/topics/bench.held/messages?from=${from}&limit=1000`)).json() as Promise<{ messages: { ts: number; data: { due: number } }[]; next: number }>;
    const stored: { ts: number; due: number }[] = [];
    for (let from = 1; ;) {
      const r = await pull(from);
      if (r.messages.length === 0) break;
      for (const m of r.messages) stored.push({ ts: m.ts, due: m.data.due });
      from = r.next;
    }
    const late = stored.map((s) => s.ts - s.due).sort((a, b) => a - b);
    const recvLate = got.map((g) => g.recv - g.due).sort((a, b) => a - b);
    const first = Math.min(...stored.map((s) => s.ts));
    const last = Math.max(...stored.map((s) => s.ts));
    const early = late.filter((l) => l < 0).length;
    console.log(`scheduled: ${N} held in ${holdS.toFixed(1)} s = ${Math.round(N / holdS)} held/s (PUB → HELD, ${window} in flight; gateway CPU ${holdCpu.toFixed(0)}%)`);
    console.log(`  appended ${stored.length} (${early} early) over ${((last - first) / 1000).toFixed(1)} s = ${Math.round(stored.length / ((last - first) / 1000))} appended/s while due (due window 10 s)`);
    console.log(`  lateness, append ts − due: p50 ${q(late, 0.5)} ms, p99 ${q(late, 0.99)} ms, max ${late[late.length - 1]} ms`);
    console.log(`  lateness, received by a live SDK subscriber − due: p50 ${q(recvLate, 0.5)} ms, p99 ${q(recvLate, 0.99)} ms, max ${recvLate[recvLate.length - 1]} ms (${got.length} received)`);

    // ---- 2. prepare + commit vs plain publish --------------------------------------------------
    const txWindow = Math.min(window, 500);
    const plainS = await pipelined(TX, txWindow, (i) => pub.publish('bench.plain', i));
    const txS = await pipelined(TX, txWindow, async (i) => {
      const tx = await pub.prepare('bench.tx', i);
      await tx.commit();
    });
    const plainRate = TX / plainS;
    const txRate = TX / txS;
    console.log(`transactions: plain publish ${Math.round(plainRate)} msgs/s; prepare + commit ${Math.round(txRate)} msgs/s (${(txRate / plainRate).toFixed(2)}× plain; ${txWindow} in flight, ${TX} messages each)`);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
}

main().then(
  () => { releaseAll(); process.exit(0); },
  (err: unknown) => { console.error(err); releaseAll(); process.exit(1); },
);
