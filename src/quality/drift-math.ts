/**
 * The statistics of drift detection, pure and dependency-free: quantile bin edges, histograms,
 * the population stability index (PSI) and the two-sample Kolmogorov–Smirnov statistic.
 */

/** Proportions below this are raised to it before PSI takes their logarithm (an empty bin would be infinite). */
export const psiFloor = 1e-4;

/** `values` sorted ascending into a new array (NaN dropped: it belongs to no bin). */
export function sortedCopy(values: ArrayLike<number>): Float64Array {
  const finite: number[] = [];
  for (let index = 0; index < values.length; index++) {
    const value = values[index]!;
    if (!Number.isNaN(value)) finite.push(value);
  }
  return Float64Array.from(finite).sort();
}

/**
 * The value at quantile `q` of sorted data (linear interpolation between order statistics,
 * numpy's default: position q·(n−1)).
 */
export function quantileOfSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const position = q * (sorted.length - 1);
  const lower = Math.floor(position);
  const upper = Math.min(sorted.length - 1, lower + 1);
  const fraction = position - lower;
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * fraction;
}

/**
 * Interior cut points splitting sorted data into `bins` equally populated bins, at quantiles
 * 1/bins … (bins−1)/bins. Repeated cut points (heavily tied data: an image's always-black
 * corner) are merged, so a bin never has zero width.
 */
export function quantileEdges(sorted: ArrayLike<number>, bins: number): number[] {
  const edges: number[] = [];
  for (let bin = 1; bin < bins; bin++) {
    const edge = quantileOfSorted(sorted, bin / bins);
    if (Number.isNaN(edge)) continue;
    if (edges.length === 0 || edge > edges[edges.length - 1]!) edges.push(edge);
  }
  return edges;
}

/** Index of the bin holding `value`: bin i is (edges[i−1], edges[i]], the first open below, the last open above. */
export function binIndex(edges: readonly number[], value: number): number {
  let low = 0;
  let high = edges.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (value <= edges[middle]!) high = middle;
    else low = middle + 1;
  }
  return low;
}

/** Counts per bin (edges.length + 1 bins). NaN values are skipped. */
export function histogram(values: ArrayLike<number>, edges: readonly number[]): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (let index = 0; index < values.length; index++) {
    const value = values[index]!;
    if (Number.isNaN(value)) continue;
    counts[binIndex(edges, value)]! += 1;
  }
  return counts;
}

/**
 * Population stability index of `actual` against `expected` (counts over the same bins):
 * Σ (a − e) · ln(a / e) over bin proportions, each floored at `psiFloor`. 0 means identical;
 * the usual reading is < 0.1 stable, 0.1–0.25 a moderate shift, > 0.25 a significant one.
 * Either side empty: 0 (nothing to compare).
 */
export function populationStabilityIndex(expected: readonly number[], actual: readonly number[], floor = psiFloor): number {
  if (expected.length !== actual.length) throw new RangeError(`PSI needs counts over the same bins (${expected.length} vs ${actual.length})`);
  const expectedTotal = expected.reduce((sum, count) => sum + count, 0);
  const actualTotal = actual.reduce((sum, count) => sum + count, 0);
  if (expectedTotal === 0 || actualTotal === 0) return 0;
  let psi = 0;
  for (let bin = 0; bin < expected.length; bin++) {
    const e = Math.max(expected[bin]! / expectedTotal, floor);
    const a = Math.max(actual[bin]! / actualTotal, floor);
    psi += (a - e) * Math.log(a / e);
  }
  return psi;
}

/**
 * The two-sample Kolmogorov–Smirnov statistic: the largest distance between the two empirical
 * distribution functions, sup_x |F_a(x) − F_b(x)|, in [0, 1]. Both arguments sorted ascending.
 */
export function kolmogorovSmirnov(sortedA: ArrayLike<number>, sortedB: ArrayLike<number>): number {
  const n = sortedA.length;
  const m = sortedB.length;
  if (n === 0 || m === 0) return 0;
  let i = 0;
  let j = 0;
  let distance = 0;
  while (i < n && j < m) {
    // Step past every copy of the smaller value on both sides at once: ties move both CDFs together.
    const x = Math.min(sortedA[i]!, sortedB[j]!);
    while (i < n && sortedA[i]! <= x) i++;
    while (j < m && sortedB[j]! <= x) j++;
    distance = Math.max(distance, Math.abs(i / n - j / m));
  }
  return distance;
}

/** `count` evenly spaced order statistics of sorted data (all of it when shorter): a compact stand-in sample for KS. */
export function orderStatistics(sorted: ArrayLike<number>, count: number): number[] {
  if (sorted.length <= count) return Array.from(sorted);
  const picked: number[] = [];
  for (let index = 0; index < count; index++) picked.push(quantileOfSorted(sorted, count === 1 ? 0.5 : index / (count - 1)));
  return picked;
}

/** Index of the largest value (the first on ties). */
export function argmax(values: ArrayLike<number>, start = 0, length = values.length - start): number {
  let best = 0;
  for (let index = 1; index < length; index++) if (values[start + index]! > values[start + best]!) best = index;
  return best;
}
