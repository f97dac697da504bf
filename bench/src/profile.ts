/**
 * Reads the V8 CPU profiles the gateway wrote (`--profile` runs it with `--cpu-prof`) and lists
 * where its time went: the top functions by self time, as a share of all samples. This is the
 * evidence for "what limits Sluice" in bench/README.md.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  /** µs from the sample before (the first: from `startTime`). */
  timeDeltas?: number[];
  startTime?: number;
}

function shortUrl(url: string): string {
  const m = /(?:node_modules\/|\/src\/|node:)(.*)$/.exec(url);
  return m ? m[1]! : basename(url);
}

/** Top functions by self samples of one profile. */
export function topFunctions(profile: CpuProfile, limit = 20): { name: string; share: number }[] {
  const selfHits = new Map<number, number>();
  for (const id of profile.samples) selfHits.set(id, (selfHits.get(id) ?? 0) + 1);
  const total = profile.samples.length || 1;
  const byName = new Map<string, number>();
  for (const n of profile.nodes) {
    const hits = selfHits.get(n.id) ?? 0;
    if (hits === 0) continue;
    const f = n.callFrame;
    const name = f.url ? `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}` : f.functionName || '(anonymous)';
    byName.set(name, (byName.get(name) ?? 0) + hits);
  }
  return [...byName.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, hits]) => ({ name, share: hits / total }));
}

/**
 * Where the gateway's busy time went, by part of the code: the self time of every sample that is
 * not "(idle)", between `from` and `to` (µs, the profile's clock: `process.hrtime`) when given, so
 * that the set-up is left out. Native calls count to the JS function that made them: uWS's
 * `publish` and `send` to the socket glue, lmdb's synchronous calls (and the time the main thread
 * was off its core for lmdb's writer thread inside them) to LMDB.
 */
export function areaShares(profile: CpuProfile, from = 0, to = Number.POSITIVE_INFINITY): { area: string; share: number; ms: number }[] {
  const areaOf = new Map<number, string>();
  for (const n of profile.nodes) areaOf.set(n.id, areaOfFrame(n.callFrame));
  const deltas = profile.timeDeltas ?? [];
  const byArea = new Map<string, number>();
  let busy = 0;
  let at = profile.startTime ?? 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += deltas[i] ?? 0;
    const dt = deltas[i + 1] ?? 0;
    if (at < from || at > to) continue;
    const area = areaOf.get(profile.samples[i]!)!;
    if (area === '') continue;
    busy += dt;
    byArea.set(area, (byArea.get(area) ?? 0) + dt);
  }
  return [...byArea.entries()].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, share: us / (busy || 1), ms: us / 1000 }));
}

const AREAS: [RegExp, string][] = [
  [/node_modules\/(lmdb|ordered-binary|msgpackr)\//, 'LMDB (lmdb-js, its native calls)'],
  [/\/protocol\//, 'protocol: decode PUB, encode ACK / MSG'],
  [/\/hub\//, 'hub: delivery, credit, cache'],
  [/\/log\//, 'store (log/*)'],
  [/\/(core|session|groups)\//, 'publish path: session, publish service'],
  [/\/(gateway\/|server\.js)/, 'socket glue and uWS calls (send, publish)'],
  [/\/http\//, 'HTTP and admin (rates, stats)'],
  [/^node:/, 'Node internals (timers, promises, buffers)'],
];

function areaOfFrame(f: ProfileNode['callFrame']): string {
  if (f.functionName === '(idle)') return '';
  if (f.functionName === '(garbage collector)') return 'garbage collector';
  if (!f.url) return 'V8 and native (program, builtins)';
  for (const [re, area] of AREAS) if (re.test(f.url)) return area;
  return 'other JS';
}

export function summariseProfiles(dir: string, limit = 20): string {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  } catch {
    return `no profiles in ${dir}`;
  }
  const out: string[] = [];
  for (const f of files) {
    const profile = JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile;
    out.push(`gateway CPU profile ${f} (${profile.samples.length} samples), top functions by self time:`);
    for (const t of topFunctions(profile, limit)) out.push(`  ${(t.share * 100).toFixed(1).padStart(5)}%  ${t.name}`);
    out.push('  busy time (all but idle) by part of the code:');
    for (const a of areaShares(profile)) out.push(`  ${(a.share * 100).toFixed(1).padStart(5)}%  ${a.area}`);
  }
  return out.join('\n');
}

// `node bench/dist/src/profile.js DIR` prints the summary of the profiles in DIR.
if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  console.log(summariseProfiles(process.argv[2] ?? '.', Number(process.argv[3] ?? 25)));
}
