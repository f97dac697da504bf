/**
 * Preload for a gateway under diagnosis (`node --expose-gc --import memory-probe.js cli.js serve
 * ...`, see idle-memory.ts): on SIGUSR2 it prints one line `memory-probe {...}` to stderr with the
 * process's memory as it is and after a forced full GC (RSS, V8's heap spaces, external and array
 * buffers), and when SLUICE_MEMORY_SNAPSHOT names a file prefix, writes a heap snapshot (taken after
 * the GC) to `<prefix>.<n>.heapsnapshot`.
 *
 * Bench-only: nothing of the gateway imports it.
 */
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';

export interface Reading {
  rss: number;
  /** Resident file pages (the disk store's LMDB map) and anonymous ones, from /proc. */
  rssFile: number;
  rssAnon: number;
  /** Resident bytes of the brk heap (malloc's main arena: uWS's sockets and topics, Node's own). */
  brk: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Committed bytes of each V8 space (new_space is the young generation's semi-spaces). */
  spaces: Record<string, { size: number; used: number }>;
}

function read(): Reading {
  const m = process.memoryUsage();
  const spaces: Reading['spaces'] = {};
  for (const s of getHeapSpaceStatistics()) spaces[s.space_name] = { size: s.space_size, used: s.space_used_size };
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: m.rss, rssFile: kb('RssFile'), rssAnon: kb('RssAnon'), brk: brkBytes(), heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, spaces };
}

function brkBytes(): number {
  const maps = readFileSync('/proc/self/smaps', 'utf8');
  const at = maps.indexOf('[heap]');
  if (at < 0) return 0;
  return Number(/Rss:\s+(\d+) kB/.exec(maps.slice(at))?.[1] ?? 0) * 1024;
}

const gc = (globalThis as { gc?: () => void }).gc;
let snapshots = 0;
process.on('SIGUSR2', () => {
  const before = read();
  gc?.();
  const after = read();
  const prefix = process.env.SLUICE_MEMORY_SNAPSHOT;
  const snapshot = prefix ? writeHeapSnapshot(`${prefix}.${++snapshots}.heapsnapshot`) : undefined;
  process.stderr.write(`memory-probe ${JSON.stringify({ before, after, snapshot })}\n`);
});
