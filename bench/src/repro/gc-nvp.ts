/**
 * Sums V8's `--trace-gc-nvp` lines of gateway outputs: how much each scavenge had to copy, which
 * the pause times of a shared machine hide (a pause also counts the time its core was taken away).
 *
 *   BENCH_NODE_ARGS=--trace-gc-nvp node bench/dist/src/repro/loop-stall.js 1000 5000 10 memory OUTDIR
 *   node bench/dist/src/repro/gc-nvp.js OUTDIR/this-build.out OUTDIR/old-build.out
 *
 * Per file: scavenges, their pauses (sum, median, longest), and per scavenge the bytes that
 * survived in the young generation (`new_space_survived`) and were promoted to the old one
 * (`promoted`), the total promoted, the bytes allocated between scavenges, and the mark-compacts.
 * The whole output is read (start-up, warm-up, the measured stretch and the drain): both builds of
 * an A/B go through the same phases, so their sums compare. An output the harness cut (it keeps a
 * tail) says so by its first line's time.
 */
import { readFileSync } from 'node:fs';

interface Gc { at: number; kind: string; fields: Map<string, number> }

function parse(text: string): Gc[] {
  const out: Gc[] = [];
  for (const line of text.split('\n')) {
    const m = /\s(\d+) ms: pause=/.exec(line);
    if (!m) continue;
    const fields = new Map<string, number>();
    let kind = '';
    for (const f of line.slice(m.index + m[0].length - 'pause='.length).matchAll(/([\w.]+)=([\w.%]+)/g)) {
      if (f[1] === 'gc') kind = f[2]!;
      else fields.set(f[1]!, Number.parseFloat(f[2]!));
    }
    out.push({ at: Number(m[1]), kind, fields });
  }
  return out;
}

for (const file of process.argv.slice(2)) {
  const gcs = parse(readFileSync(file, 'utf8'));
  const scavenges = gcs.filter((g) => g.kind === 's');
  if (scavenges.length === 0) {
    console.log(`${file}: no --trace-gc-nvp scavenges`);
    continue;
  }
  const sum = (key: string) => scavenges.reduce((a, g) => a + (g.fields.get(key) ?? 0), 0);
  const pauses = scavenges.map((g) => g.fields.get('pause') ?? 0).sort((a, b) => a - b);
  const n = scavenges.length;
  console.log(`${file} (from ${gcs[0]!.at} ms): ${n} scavenges, pauses ${sum('pause').toFixed(0)} ms in all, median ${pauses[n >> 1]!.toFixed(1)}, longest ${pauses[n - 1]!.toFixed(1)} ms;` +
    ` per scavenge ${(sum('new_space_survived') / n / 1024).toFixed(0)} KiB survived, ${(sum('promoted') / n / 1024).toFixed(0)} KiB promoted` +
    ` (${(sum('promoted') / 2 ** 20).toFixed(1)} MiB in all), ${(sum('allocated') / n / 2 ** 20).toFixed(1)} MiB allocated;` +
    ` mark-compacts ${gcs.filter((g) => g.kind === 'mc').length}`);
}
