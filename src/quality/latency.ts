/** Summaries of measured durations for load tests (pure): percentiles from sorted samples, and the Server-Timing header. */

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  mean: number;
  max: number;
}

/**
 * Percentiles by the nearest-rank method (the smallest sample with at least q of all samples at
 * or below it), so every figure is a measured value and p50 ≤ p90 ≤ p99 ≤ p99.9 ≤ max always
 * holds. Null for no samples.
 */
export function percentiles(samples: readonly number[]): Percentiles | null {
  if (samples.length === 0) return null;
  const sorted = Float64Array.from(samples).sort();
  const rank = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  let sum = 0;
  for (const value of sorted) sum += value;
  return { p50: rank(0.5), p90: rank(0.9), p99: rank(0.99), p999: rank(0.999), mean: sum / sorted.length, max: sorted[sorted.length - 1]! };
}

/**
 * The `dur` of each metric in a `Server-Timing` header (`queue;dur=1.2, compute;dur=3.4`), in
 * milliseconds as the header states them. Malformed entries are skipped.
 */
export function parseServerTiming(header: string | null | undefined): Record<string, number> {
  const timings: Record<string, number> = {};
  if (header === null || header === undefined) return timings;
  for (const entry of header.split(',')) {
    const [name, ...parameters] = entry.split(';').map((part) => part.trim());
    if (name === undefined || name === '') continue;
    for (const parameter of parameters) {
      const match = /^dur=("?)([0-9.eE+-]+)\1$/.exec(parameter);
      if (match === null) continue;
      const value = Number(match[2]);
      if (Number.isFinite(value)) timings[name] = value;
    }
  }
  return timings;
}
