/**
 * The statistics the benchmarks report.
 *
 * @module
 */

/** The median of `values` (the upper one of an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The `q` quantile (0 to 1) of `values`. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length * q)];
}

/**
 * The median over rounds of `a[i] / b[i]`: figures taken back to back in a
 * round, so that each ratio leaves out the machine's drift between rounds.
 */
export function medianRatio(
  a: readonly number[],
  b: readonly number[],
): number {
  return median(a.map((value, round) => value / b[round]));
}
