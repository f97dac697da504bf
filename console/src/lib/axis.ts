/**
 * Chart axes: which tick steps a value axis may use, and how its ticks read. Pure functions.
 *
 * A tick label MUST show its value to the precision of the step, so neighbouring ticks never read
 * the same (a bytes axis of 0–1.4 B/s once read "1 B, 1 B, 0 B"): the unit is chosen from the
 * step, not from each value, and the decimals are those the step needs. Bytes and counts never
 * step by less than 1.
 */

export interface Axis {
  /** Allowed tick steps, ascending (uPlot picks the smallest that leaves room between labels). */
  incrs: number[];
  /** The labels of ticks `values`, `incr` apart. */
  labels(values: readonly number[], incr: number): string[];
}

/** 1, 2, 5 × 10^k for k in [from, to]. */
function steps(from: number, to: number, scale = 1): number[] {
  const out: number[] = [];
  for (let k = from; k <= to; k++) for (const m of [1, 2, 5]) out.push(Number((m * 10 ** k * scale).toPrecision(12)));
  return out;
}

/** Decimals that `incr` needs when shown in `unit`s (0 for whole steps). */
function decimals(incr: number, unit: number): number {
  const step = incr / unit;
  if (step >= 1 || step <= 0) return 0;
  return Math.min(6, Math.ceil(-Math.log10(step) - 1e-9));
}

function scaled(v: number, incr: number, units: readonly (readonly [number, string])[]): string {
  if (v === 0) return `0${units[0]![1]}`;
  let [unit, suffix] = units[0]!;
  for (const u of units) if (incr >= u[0]) [unit, suffix] = u;
  return `${(v / unit).toFixed(decimals(incr, unit))}${suffix}`;
}

const BYTE_UNITS = [[1, ' B'], [1024, ' KB'], [1024 ** 2, ' MB'], [1024 ** 3, ' GB'], [1024 ** 4, ' TB']] as const;
const RATE_UNITS = [[1, ''], [1000, 'k'], [1e6, 'M']] as const;

/** Bytes (per second): steps of whole bytes, then 1, 2, 5 × powers of 1024. */
export const bytesAxis: Axis = {
  incrs: [...steps(0, 2), ...BYTE_UNITS.slice(1).flatMap(([u]) => steps(0, 2, u))],
  labels: (values, incr) => values.map((v) => scaled(v, incr, BYTE_UNITS)),
};

/** Messages per second: fractions are meaningful (one message every 5 s is 0.2/s). */
export const rateAxis: Axis = {
  incrs: steps(-2, 9),
  labels: (values, incr) => values.map((v) => scaled(v, incr, RATE_UNITS)),
};

/** Whole things (connections, subscriptions). */
export const countAxis: Axis = {
  incrs: steps(0, 9),
  labels: (values, incr) => values.map((v) => scaled(v, incr, RATE_UNITS)),
};
