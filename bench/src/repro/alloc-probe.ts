/**
 * Preload for a gateway under diagnosis (`node --import alloc-probe.js cli.js serve ...`, see
 * pub-garbage.ts): counts the bytes the gateway's JavaScript heap allocates between two SIGUSR2.
 * The first SIGUSR2 starts a stretch, the second ends it and prints one line `alloc-probe {...}`
 * to stderr. Bytes allocated = what the heap grew by between collections, summed: for each GC of
 * the stretch (v8.GCProfiler) its used size before minus the used size after the previous one
 * (or the start), plus the growth after the last. With ALLOC_PROBE_SITES=N the stretch also runs
 * V8's sampling heap profiler (every 1 KiB on average, keeping objects collected since) and the
 * line carries the N functions whose allocations sum largest. Bench-only: nothing of the gateway
 * imports it.
 */
import { Session } from 'node:inspector';
import { getHeapStatistics, GCProfiler } from 'node:v8';

export interface AllocReading {
  bytes: number;
  gcs: number;
  /** Sampled bytes by function (`name url:line`), largest first, when ALLOC_PROBE_SITES is set. */
  sites?: [string, number][];
  sampledBytes?: number;
}

interface GcStat { beforeGC: { heapStatistics: { usedHeapSize: number } }; afterGC: { heapStatistics: { usedHeapSize: number } } }
interface ProfileNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: ProfileNode[] }

const sites = Number(process.env.ALLOC_PROBE_SITES ?? 0);
let stretch: { used: number; profiler: GCProfiler; session?: Session } | undefined;

function post<T>(session: Session, method: string, params: object = {}): Promise<T> {
  return new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r as T))));
}

async function begin(): Promise<void> {
  let session: Session | undefined;
  if (sites > 0) {
    session = new Session();
    session.connect();
    await post(session, 'HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  const profiler = new GCProfiler();
  profiler.start();
  stretch = { used: getHeapStatistics().used_heap_size, profiler, ...(session ? { session } : {}) };
  process.stderr.write('alloc-probe started\n');
}

async function end(s: NonNullable<typeof stretch>): Promise<AllocReading> {
  const used = getHeapStatistics().used_heap_size;
  const stats = (s.profiler.stop() as unknown as { statistics: GcStat[] }).statistics;
  let bytes = 0;
  let last = s.used;
  for (const g of stats) {
    bytes += Math.max(0, g.beforeGC.heapStatistics.usedHeapSize - last);
    last = g.afterGC.heapStatistics.usedHeapSize;
  }
  bytes += Math.max(0, used - last);
  const r: AllocReading = { bytes, gcs: stats.length };
  if (s.session) {
    const { profile } = await post<{ profile: { head: ProfileNode } }>(s.session, 'HeapProfiler.stopSampling');
    s.session.disconnect();
    const by = new Map<string, number>();
    let total = 0;
    const walk = (n: ProfileNode) => {
      if (n.selfSize > 0) {
        const f = n.callFrame;
        const k = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(server|client-sdk|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
        by.set(k, (by.get(k) ?? 0) + n.selfSize);
        total += n.selfSize;
      }
      for (const c of n.children) walk(c);
    };
    walk(profile.head);
    r.sites = [...by].sort((a, b) => b[1] - a[1]).slice(0, sites);
    r.sampledBytes = total;
  }
  return r;
}

process.on('SIGUSR2', () => {
  const s = stretch;
  if (!s) {
    void begin();
    return;
  }
  stretch = undefined;
  end(s).then((r) => process.stderr.write(`alloc-probe ${JSON.stringify(r)}\n`), (err: unknown) => process.stderr.write(`alloc-probe failed ${String(err)}\n`));
});
