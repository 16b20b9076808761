/**
 * Forward-pass-only attributions, for any model: occlusion (sliding-window sensitivity) and
 * permutation importance. Both only need the explained score of many perturbed inputs, which the
 * caller computes in batches (through the model manager's workers).
 */

import { mulberry32 } from '../engine/random.ts';

/** The explained score of `rows` inputs laid back to back; `firstRow` numbers the first of them among all rows scored in this pass. */
export type ScoreRunner = (input: Float32Array, rows: number, firstRow: number) => Promise<Float64Array>;

/** Scores many rows, `rowsPerRun` at a time; `fill(row, target)` writes row number `row` into `target`. */
async function scoreRows(count: number, features: number, rowsPerRun: number, fill: (row: number, target: Float32Array) => void, run: ScoreRunner): Promise<Float64Array> {
  const scores = new Float64Array(count);
  for (let start = 0; start < count; start += rowsPerRun) {
    const rows = Math.min(rowsPerRun, count - start);
    const batch = new Float32Array(rows * features);
    for (let row = 0; row < rows; row++) fill(start + row, batch.subarray(row * features, (row + 1) * features));
    scores.set(await run(batch, rows, start), start);
  }
  return scores;
}

export interface OcclusionOptions {
  /** One sample, flattened. */
  input: Float32Array;
  /** What an occluded element is replaced by (same length as the input). */
  baseline: Float32Array;
  /** Window positions: the flat indices each covers (see windowPositions). */
  windows: readonly (readonly number[])[];
  rowsPerRun: number;
  run: ScoreRunner;
}

export interface OcclusionResult {
  /** Per element: the mean, over the windows covering it, of F(x) − F(x with the window replaced). */
  attributions: Float32Array;
  inputScore: number;
}

export async function occlusion(options: OcclusionOptions): Promise<OcclusionResult> {
  const { input, baseline, windows } = options;
  const features = input.length;
  // Row 0 is the untouched input; row k ≥ 1 has window k − 1 replaced by the baseline.
  const scores = await scoreRows(windows.length + 1, features, options.rowsPerRun, (row, target) => {
    target.set(input);
    if (row === 0) return;
    for (const index of windows[row - 1]!) target[index] = baseline[index]!;
  }, options.run);
  const inputScore = scores[0]!;
  const sums = new Float64Array(features);
  const counts = new Uint32Array(features);
  windows.forEach((indices, window) => {
    const change = inputScore - scores[window + 1]!;
    for (const index of indices) {
      sums[index]! += change;
      counts[index]! += 1;
    }
  });
  return { attributions: Float32Array.from(sums, (sum, index) => (counts[index] === 0 ? 0 : sum / counts[index]!)), inputScore };
}

export interface PermutationOptions {
  /** `samples` rows, flattened back to back. */
  inputs: Float32Array;
  samples: number;
  /** Feature groups permuted together (window positions). */
  windows: readonly (readonly number[])[];
  repeats: number;
  /** Seeds the permutations, so a request repeated gives the same answer. */
  seed: number;
  rowsPerRun: number;
  run: ScoreRunner;
}

/** A permutation of 0..n−1 that moves every element when n ≥ 2 (Sattolo's algorithm): a shuffle that changes nothing measures nothing. */
function derangement(count: number, random: () => number): Uint32Array {
  const order = Uint32Array.from({ length: count }, (_, index) => index);
  for (let index = count - 1; index > 0; index--) {
    const other = Math.floor(random() * index);
    [order[index], order[other]] = [order[other]!, order[index]!];
  }
  return order;
}

/**
 * Permutation importance without labels: for each feature group, the mean over samples and repeats
 * of |F(row) − F(row with the group's values taken from another sample)|. Every element of a group
 * gets the group's importance.
 */
export async function permutationImportance(options: PermutationOptions): Promise<{ importances: Float32Array; baseScores: Float64Array }> {
  const { inputs, samples, windows, repeats } = options;
  const features = inputs.length / samples;
  const baseScores = await scoreRows(samples, features, options.rowsPerRun, (row, target) => target.set(inputs.subarray(row * features, (row + 1) * features)), options.run);
  const random = mulberry32(options.seed);
  const importances = new Float32Array(features);
  const plans = windows.flatMap((indices) => Array.from({ length: repeats }, () => ({ indices, order: derangement(samples, random) })));
  const scores = await scoreRows(plans.length * samples, features, options.rowsPerRun, (row, target) => {
    const plan = plans[Math.floor(row / samples)]!;
    const sample = row % samples;
    target.set(inputs.subarray(sample * features, (sample + 1) * features));
    const donor = plan.order[sample]!;
    for (const index of plan.indices) target[index] = inputs[donor * features + index]!;
  }, options.run);
  windows.forEach((indices, window) => {
    let total = 0;
    for (let repeat = 0; repeat < repeats; repeat++) {
      for (let sample = 0; sample < samples; sample++) total += Math.abs(baseScores[sample]! - scores[((window * repeats + repeat) * samples) + sample]!);
    }
    const importance = total / (repeats * samples);
    for (const index of indices) importances[index] = importance;
  });
  return { importances, baseScores };
}
