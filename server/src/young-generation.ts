/**
 * A cap on V8's young generation, applied by `sluice serve` from inside the process.
 *
 * V8 starts the young generation's semi-spaces at 1 MiB and doubles them, up to 16 MiB each on a
 * 64-bit machine, whenever the bytes that survived scavenges since the last growth exceed their
 * size. A gateway setting up thousands of subscriptions crosses that line once (their state is
 * copied, then promoted) and keeps 32 MiB of young generation committed and resident for good,
 * which at 5,000 idle connections reads as ~3.3 KiB per connection (bench/README.md, "Idle memory").
 *
 * `--max-semi-space-size` is read once, when the heap is made, and Node 20 cannot re-exec itself
 * in place; but V8 reads `--semi-space-growth-factor` each time it grows the young generation. So
 * after every GC the size is checked: below the cap, or when messages moved since the last GC, the
 * factor is V8's default (2); at or above the cap without traffic, 1, and the young generation
 * does not grow. When V8 shrinks it (its memory reducer, on a quiet gateway), it may grow again.
 * A growth that two scavenges within one synchronous stretch make before the check runs can
 * overshoot the cap once, by one doubling.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** V8's own growth factor (`--semi-space-growth-factor` default). */
const V8_GROWTH = 2;
/** `--young-generation`: V8's young generation capped at 8 MiB (`--max-semi-space-size=4`). */
export const DEFAULT_YOUNG_GENERATION = 8 * 1024 * 1024;

/** Committed bytes of the young generation (both semi-spaces), as V8 reports `new_space`. */
export function youngGenerationBytes(): number {
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'new_space') return s.space_size;
  return 0;
}

/**
 * Messages (in + out) since the previous GC from which a young-generation cycle counts as message
 * traffic, for which V8 may grow the young generation as it would (see capYoungGeneration).
 */
export const TRAFFIC_PER_GC = 256;

let release: (() => void) | undefined;

/**
 * Keeps the young generation (both semi-spaces, as V8 reports `new_space`) from growing past `cap`
 * bytes from now on, in place of any cap set before: `--young-generation 8MiB` is
 * `--max-semi-space-size=4`. 0: V8's default, no cap. A young generation already past the cap
 * stays as it is (V8 shrinks it only on its own); hence cli.ts sets the default cap before it
 * loads the rest of the gateway (young-generation-early.ts), whose loading would grow it to 16 MiB.
 *
 * With `traffic` (messages moved so far, a counter), the cap holds only while the young generation
 * fills without message traffic — module loading, connections opening and subscribing, whose
 * survivors are long-lived state that a bigger young generation would not let die. A GC cycle in
 * which at least TRAFFIC_PER_GC messages moved lets V8 grow it as it would: there the survivors are
 * messages in flight (a fan-out, a batch waiting for its commit), and a young generation capped at
 * 8 MiB scavenged 4–5× as often, copying them again each time (bench/README.md: gateway CPU per
 * message +15% on disk, +30% for a 1 × 1,000 fan-out). A gateway that carried traffic keeps the
 * bigger young generation, as V8 would.
 */
export function capYoungGeneration(cap: number, traffic?: () => number): void {
  release?.();
  release = undefined;
  if (cap <= 0) return;
  let factor = V8_GROWTH;
  let seen = traffic?.() ?? 0;
  const check = () => {
    const moved = traffic ? traffic() - seen : 0;
    seen += moved;
    const want = moved >= TRAFFIC_PER_GC || youngGenerationBytes() < cap ? V8_GROWTH : 1;
    if (want === factor) return;
    setFlagsFromString(`--semi-space-growth-factor=${want}`);
    factor = want;
  };
  check();
  const observer = new PerformanceObserver(check);
  observer.observe({ entryTypes: ['gc'] });
  release = () => {
    observer.disconnect();
    if (factor !== V8_GROWTH) setFlagsFromString(`--semi-space-growth-factor=${V8_GROWTH}`);
  };
}
