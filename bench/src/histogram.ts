/**
 * A latency histogram in microseconds with about 1.6% precision, mergeable across processes.
 *
 * Why not keep every sample: a fan-out run records millions of latencies in several worker
 * processes; buckets cost a fixed 2,000 counters per worker and merge by addition over IPC.
 * Layout (HDR style): values below 128 µs have a bucket each; above, each power of two is split
 * into 64 buckets.
 */

const LINEAR = 128;
const SUB = 64;
const BUCKETS = LINEAR + 40 * SUB;

function indexOf(us: number): number {
  const v = us < 0 ? 0 : Math.min(Math.floor(us), 0x7fffffff);
  if (v < LINEAR) return v;
  const e = 31 - Math.clz32(v) - 6; // v >> e lies in [64, 128)
  const i = LINEAR + (e - 1) * SUB + ((v >>> e) - SUB);
  return i < BUCKETS ? i : BUCKETS - 1;
}

/** The largest value that falls into bucket i. */
function upperOf(i: number): number {
  if (i < LINEAR) return i;
  const e = Math.floor((i - LINEAR) / SUB) + 1;
  const m = ((i - LINEAR) % SUB) + SUB;
  return ((m + 1) << e) - 1;
}

export interface HistogramData {
  counts: number[];
  count: number;
  max: number;
  sum: number;
}

export class Histogram {
  private counts = new Float64Array(BUCKETS);
  count = 0;
  max = 0;
  sum = 0;

  record(us: number): void {
    this.counts[indexOf(us)]!++;
    this.count++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.max = 0;
    this.sum = 0;
  }

  /** Sparse form for IPC: [index, count] pairs. */
  toJSON(): HistogramData {
    const counts: number[] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) counts.push(i, this.counts[i]!);
    return { counts, count: this.count, max: this.max, sum: this.sum };
  }

  merge(d: HistogramData): void {
    for (let k = 0; k < d.counts.length; k += 2) this.counts[d.counts[k]!]! += d.counts[k + 1]!;
    this.count += d.count;
    this.sum += d.sum;
    if (d.max > this.max) this.max = d.max;
  }

  /** The value at quantile q (0..1), as the upper bound of its bucket; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(upperOf(i), this.max);
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? Number.NaN : this.sum / this.count;
  }
}
