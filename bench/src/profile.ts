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
  }
  return out.join('\n');
}

// `node bench/dist/src/profile.js DIR` prints the summary of the profiles in DIR.
if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  console.log(summariseProfiles(process.argv[2] ?? '.', Number(process.argv[3] ?? 25)));
}
