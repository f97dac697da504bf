/**
 * Where an idle connection's memory goes (issue 16: 5,000 connections, each on its own topic).
 *
 *   node bench/dist/src/repro/idle-memory.js [connections=5000] [snapshots-dir]
 *
 * Starts this checkout's gateway (and, when BENCH_SLUICE_OLD_CLI names one, that build too), each
 * with a fresh disk store, then the bench's raw uWS server (the reference), all pinned like every
 * bench server and preloaded with memory-probe.js. Per
 * build, two fresh gateways: one gets `connections` connected clients, the other as many each
 * subscribed to its own topic. Before (after one warm-up client) and after, the probe reports RSS
 * and V8's figures as they are and after a forced full GC; the difference ÷ connections is printed:
 * RSS as the bench reads it, RSS after a GC, the JS heap in use after a GC, the young generation's
 * committed size (V8 grows it with the survival rate: it is not per-connection state), and what is
 * outside the JS heap (RSS after GC − heap committed − array buffers: uWS's sockets and topics).
 * The subscribed gateway then gets N/2 more (after the forced GC of the reading): their cost after
 * another GC is the marginal one, without V8's one-off growth.
 * With a snapshots directory, heap snapshots are written there after each reading; heap-diff.js
 * attributes their difference by constructor.
 * Bounded: each gateway serves one fleet of clients and is stopped.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installCleanup, releaseAll, removeDir, tempDir } from '../cleanup.js';
import type { SubscriberSpec } from '../clients/subscriber.js';
import { Fleet } from '../load/fleet.js';
import { settledRss } from '../scenarios/memory.js';
import { program } from '../targets/node-peer.js';
import { launch, type ServerProcess } from '../targets/server-process.js';
import { CLI, launchGateway, OLD_CLI_ENV, TOPIC_PREFIX } from '../targets/sluice.js';
import type { Reading } from './memory-probe.js';

const PROBE = fileURLToPath(new URL('./memory-probe.js', import.meta.url));

interface Probe { before: Reading; after: Reading; snapshot?: string }

/** Asks the gateway for a reading (SIGUSR2) and waits for its line. */
async function probe(pid: number, output: () => string): Promise<Probe> {
  const seen = output().split('memory-probe ').length;
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 600; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const parts = output().split('memory-probe ');
    if (parts.length > seen) return JSON.parse(parts[parts.length - 1]!.split('\n')[0]!) as Probe;
  }
  throw new Error('the gateway did not answer the memory probe within 60 s');
}

/** A gateway build (its CLI), or `uws`: the bench's raw uWebSockets.js server, the reference. */
async function start(cli: string, env: Record<string, string>, dir: string): Promise<{ p: ServerProcess; spec: SubscriberSpec }> {
  const node = ['--expose-gc', '--import', PROBE];
  if (cli === 'uws') {
    const p = await launch(process.execPath, [...node, program('uws-server'), '0'], { readyPattern: /listening (\d+)/, env });
    return { p, spec: { kind: 'plain', url: `ws://127.0.0.1:${p.ready}`, prefix: 't' } };
  }
  const { p, port } = await launchGateway({ cli, storeArgs: ['--store', 'disk', '--data', dir], nodeArgs: node, env });
  return { p, spec: { kind: 'sluice', url: `ws://127.0.0.1:${port}`, prefix: TOPIC_PREFIX, credit: 64 } };
}

async function measure(label: string, cli: string, n: number, subscribed: boolean, snapshots: string | undefined): Promise<void> {
  const dir = tempDir('sluice-repro-');
  const name = `${label}-${subscribed ? 'subscribed' : 'connected'}`.replace(/\W+/g, '-');
  const { p, spec } = await start(cli, snapshots ? { SLUICE_MEMORY_SNAPSHOT: join(snapshots, name) } : {}, dir);
  const fleet = new Fleet(3);
  try {
    const warm = await fleet.open(spec, [subscribed ? n : null]);
    if (warm.failed) throw new Error(`warm-up client failed: ${warm.firstError}`);
    await settledRss(p.pid);
    const base = await probe(p.pid, () => p.output());
    const opened = await fleet.open(spec, Array.from({ length: n }, (_, i) => (subscribed ? i : null)));
    if (opened.failed) throw new Error(`${opened.failed} of ${n} clients failed: ${opened.firstError}`);
    await settledRss(p.pid);
    const after = await probe(p.pid, () => p.output());
    const per = (f: (r: Reading) => number, a: Reading, b: Reading) => `${((f(b) - f(a)) / n / 1024).toFixed(2)}`.padStart(6);
    const outside = (r: Reading) => r.rssAnon - r.heapTotal - r.arrayBuffers;
    console.log(`${name.padEnd(28)} KiB/conn: RSS ${per((r) => r.rss, base.before, after.before)}` +
      `  after GC: RSS ${per((r) => r.rss, base.after, after.after)}  heap used ${per((r) => r.heapUsed, base.after, after.after)}` +
      `  young gen ${per((r) => r.spaces.new_space?.size ?? 0, base.before, after.before)}` +
      `  file pages ${per((r) => r.rssFile, base.after, after.after)}  outside the heap ${per(outside, base.after, after.after)}  array buffers ${per((r) => r.arrayBuffers, base.after, after.after)}` +
      `  malloc (brk) ${per((r) => r.brk, base.after, after.after)}` +
      `  (young gen ${(base.before.spaces.new_space!.size / 2 ** 20).toFixed(1)} → ${(after.before.spaces.new_space!.size / 2 ** 20).toFixed(1)} MiB, heap used after GC ${(base.after.heapUsed / 2 ** 20).toFixed(1)} → ${(after.after.heapUsed / 2 ** 20).toFixed(1)} MiB)` +
      (after.snapshot ? `\n  snapshots: ${base.snapshot} → ${after.snapshot}` : ''));
    if (!subscribed) return;
    // N/2 more, on a heap that was just collected: the marginal cost, without V8's one-off growth.
    const again = await fleet.open(spec, Array.from({ length: n / 2 }, (_, i) => n + 1 + i));
    if (again.failed) throw new Error(`${again.failed} of ${n / 2} more clients failed: ${again.firstError}`);
    await settledRss(p.pid);
    const more = await probe(p.pid, () => p.output());
    const half = (f: (r: Reading) => number) => `${((f(more.after) - f(after.after)) / (n / 2) / 1024).toFixed(2)}`.padStart(6);
    console.log(`${`${name}+${n / 2}`.padEnd(28)} KiB/conn after GC: RSS ${half((r) => r.rss)}  heap used ${half((r) => r.heapUsed)}` +
      `  malloc (brk) ${half((r) => r.brk)}  outside the heap ${half(outside)}`);
  } finally {
    await fleet.close();
    await p.stop(30_000);
    removeDir(dir);
  }
}

async function main(): Promise<void> {
  installCleanup();
  const n = Number(process.argv[2] ?? 5000);
  const snapshots = process.argv[3];
  if (snapshots) mkdirSync(snapshots, { recursive: true });
  const builds: [string, string][] = [['new', CLI]];
  const old = process.env[OLD_CLI_ENV];
  if (old) builds.push(['old', old]);
  builds.push(['uws', 'uws']);
  for (const [label, cli] of builds) {
    for (const subscribed of [false, true]) await measure(label, cli, n, subscribed, snapshots);
  }
}

main().then(() => { releaseAll(); process.exit(0); }, (err: unknown) => {
  console.error(err);
  releaseAll();
  process.exit(1);
});
