/**
 * What grew between two heap snapshots, by constructor: count and self size of the objects in the
 * second beyond the first, per unit (e.g. per connection), largest first.
 *
 *   node bench/dist/src/repro/heap-diff.js before.heapsnapshot after.heapsnapshot [units=1] [rows=25]
 *
 * Self sizes only (a Map's table is its own "system / OrderedHashMap" row, a string its own
 * "(string)" row). Snapshots are taken after a full GC (memory-probe.js), so this is what is live.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Count and self size per "type:name" (name for objects, type for strings and code). */
function tally(file: string): Map<string, { count: number; size: number }> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const out = new Map<string, { count: number; size: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!]!;
    const name = s.strings[s.nodes[i + iName]!]!;
    const key = type === 'object' || type === 'closure' || type === 'native' || type === 'hidden' || type === 'array'
      ? `${type}:${name.slice(0, 60)}`
      : `(${type})`;
    const t = out.get(key) ?? { count: 0, size: 0 };
    t.count++;
    t.size += s.nodes[i + iSize]!;
    out.set(key, t);
  }
  return out;
}

const [a, b, unitsArg, rowsArg] = process.argv.slice(2);
if (!a || !b) {
  console.error('usage: heap-diff.js before.heapsnapshot after.heapsnapshot [units] [rows]');
  process.exit(2);
}
const units = Number(unitsArg ?? 1);
const before = tally(a);
const after = tally(b);
const rows: { key: string; count: number; size: number }[] = [];
for (const [key, t] of after) {
  const was = before.get(key) ?? { count: 0, size: 0 };
  rows.push({ key, count: (t.count - was.count) / units, size: (t.size - was.size) / units });
}
rows.sort((x, y) => y.size - x.size);
let total = 0;
for (const r of rows) total += r.size;
console.log(`total: ${total.toFixed(0)} bytes per unit`);
for (const r of rows.slice(0, Number(rowsArg ?? 25))) {
  console.log(`${r.size.toFixed(0).padStart(8)} B  ${r.count.toFixed(2).padStart(7)} ×  ${r.key}`);
}
