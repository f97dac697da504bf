/**
 * What encoding a small frame costs the gateway: ACK frames (one per publish) through the protocol
 * module's `encode`, CPU and garbage-collection time per frame.
 *
 *   node bench/dist/src/repro/encode-cost.js [frames=2000000]
 *
 * Each build runs in a process of its own (this checkout's, and the build whose CLI
 * BENCH_SLUICE_OLD_CLI names: its client-sdk next to its server), twice, alternating, so the two
 * share the machine's state. Prints ns of CPU per frame and the GC pauses the run caused.
 */
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OLD_CLI_ENV } from '../targets/sluice.js';

const here = fileURLToPath(import.meta.url);
const thisEncoder = resolve(dirname(here), '../../../../client-sdk/dist/src/protocol/encode.js');

/** The child: encodes `frames` ACKs after a warm-up and prints its figures as JSON. */
const CHILD = `
import { PerformanceObserver } from 'node:perf_hooks';
const { encode } = await import(process.argv[1]);
const frames = Number(process.argv[2]);
const ack = { type: 9, reqId: 12345, offset: 987654, duplicate: false };
let pauses = 0, pauseMs = 0;
for (let i = 0; i < 200000; i++) encode(ack);
new PerformanceObserver((l) => { for (const e of l.getEntries()) { pauses++; pauseMs += e.duration; } }).observe({ entryTypes: ['gc'] });
const c0 = process.cpuUsage();
let bytes = 0;
for (let i = 0; i < frames; i++) bytes += encode(ack).length;
const cpu = process.cpuUsage(c0);
await new Promise((r) => setTimeout(r, 50));
console.log(JSON.stringify({ cpuNs: (cpu.user + cpu.system) * 1000 / frames, pauses, pauseMs, bytes }));
`;

function run(encoder: string, frames: number): { cpuNs: number; pauses: number; pauseMs: number } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, encoder, String(frames)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`encoder run failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { cpuNs: number; pauses: number; pauseMs: number };
}

const frames = Number(process.argv[2] ?? 2_000_000);
const builds: [string, string][] = [['this build', thisEncoder]];
const oldCli = process.env[OLD_CLI_ENV];
if (oldCli) builds.push(['old build', resolve(dirname(oldCli), '../../../client-sdk/dist/src/protocol/encode.js')]);
console.log(`${frames} ACK frames per run, each build twice, alternating`);
for (let round = 0; round < 2; round++) {
  for (const [label, encoder] of builds) {
    const r = run(encoder, frames);
    console.log(`  ${label.padEnd(10)} ${r.cpuNs.toFixed(0).padStart(5)} ns CPU per frame, GC ${r.pauses} pauses, ${r.pauseMs.toFixed(0)} ms in all`);
  }
}

