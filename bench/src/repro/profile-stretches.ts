/**
 * Reads a V8 `.cpuprofile` in time order and finds its stretches of busy samples (no `(idle)`
 * sample for at least `minMs`): the times the event loop was blocked. Sums where those stretches
 * spent their time — self time by function, and time by the loop entry that ran it (the callback
 * the event loop called: a timer, an immediate, a uWS handler) — as printable lines.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  /** µs of the system monotonic clock (as payload.ts `nowUs`). */
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function nameOf(n: ProfileNode): string {
  const f = n.callFrame;
  const file = f.url ? f.url.replace(/^.*\/(server|node_modules|client-sdk)\//, '$1/').replace(/^file:\/\//, '') : '';
  return `${f.functionName || '(anonymous)'}${file ? ` ${file}:${f.lineNumber + 1}` : ''}`;
}

/** `from`/`to`: µs of the system monotonic clock (payload.ts `nowUs`): only samples in between count. */
export function longStretches(path: string, minMs: number, top: number, from = 0, to = Number.POSITIVE_INFINITY): string[] {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const root = p.nodes[0]!.id;
  /** The frame right under the root: the entry the event loop called. */
  const entryOf = (id: number): string => {
    let cur = id;
    const chain: number[] = [];
    while (parent.has(cur) && cur !== root) { chain.push(cur); cur = parent.get(cur)!; }
    // The outermost JS frames: skip Node internals (processTimers, processImmediate) to the callback.
    const frames = chain.reverse().map((c) => byId.get(c)!);
    const user = frames.find((f) => f.callFrame.url.includes('/server/') || f.callFrame.url.includes('/client-sdk/'));
    return user ? nameOf(user) : nameOf(frames[0] ?? byId.get(id)!);
  };
  const self = new Map<string, number>();
  const entries = new Map<string, number>();
  let stretches = 0;
  let stretchMs = 0;
  let longest = 0;
  let total = 0;
  let run: { id: number; dt: number }[] = [];
  const close = () => {
    const ms = run.reduce((a, s) => a + s.dt, 0) / 1000;
    if (ms >= minMs) {
      stretches++;
      stretchMs += ms;
      longest = Math.max(longest, ms);
      for (const s of run) {
        const n = byId.get(s.id)!;
        self.set(nameOf(n), (self.get(nameOf(n)) ?? 0) + s.dt / 1000);
        const e = entryOf(s.id);
        entries.set(e, (entries.get(e) ?? 0) + s.dt / 1000);
      }
    }
    run = [];
  };
  let at = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    at += p.timeDeltas[i] ?? 0;
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (at < from || at > to) continue;
    total += dt / 1000;
    if (byId.get(id)!.callFrame.functionName === '(idle)') close();
    else run.push({ id, dt });
  }
  close();
  const list = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, ms]) => `${ms.toFixed(1).padStart(8)} ms ${((100 * ms) / stretchMs).toFixed(0).padStart(3)}%  ${k}`);
  return [
    `${stretches} stretches ≥ ${minMs} ms, ${stretchMs.toFixed(0)} ms of ${total.toFixed(0)} ms profiled, longest ${longest.toFixed(1)} ms`,
    'self time:',
    ...list(self),
    'by loop entry:',
    ...list(entries),
  ];
}
