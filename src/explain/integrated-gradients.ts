/**
 * Integrated gradients (Sundararajan et al., 2017): attribution_i = (x_i − b_i) · ∫₀¹ ∂F(b + α(x − b))/∂x_i dα,
 * the integral taken by a Riemann sum over `steps` points on the straight path from the baseline b
 * to the input x. By the completeness axiom the attributions sum to F(x) − F(b); the remaining gap
 * (`delta`) measures the integration error and is returned with the result.
 */

export type RiemannRule = 'trapezoid' | 'midpoint';
export const riemannRules: readonly RiemannRule[] = ['trapezoid', 'midpoint'];

/** Runs the input-gradient graph: `rows` inputs back to back, each with its target weights; per row the weighted score's gradient and the outputs. */
export type GradientRunner = (input: Float32Array, rows: number, targetWeights: Float32Array) => Promise<{ output: Float32Array; gradient: Float32Array }>;

export interface IntegratedGradientsOptions {
  /** One sample, flattened. */
  input: Float32Array;
  baseline: Float32Array;
  /** Weight of each output element in the explained score (one-hot for a class). */
  targetWeights: Float32Array;
  steps: number;
  rule: RiemannRule;
  /** Rows per run of the gradient graph (bounds memory). */
  rowsPerRun: number;
  run: GradientRunner;
}

export interface IntegratedGradientsResult {
  attributions: Float32Array;
  /** F(x) and F(baseline): the explained score at both ends of the path. */
  inputScore: number;
  baselineScore: number;
  /** Σ attributions − (F(x) − F(baseline)): the integration error. */
  delta: number;
}

/** Path points and their quadrature weights; the endpoints are always evaluated (weight 0 under midpoint) for the scores. */
function pathPoints(steps: number, rule: RiemannRule): { alphas: number[]; weights: number[] } {
  if (rule === 'trapezoid') {
    const alphas = Array.from({ length: steps + 1 }, (_, index) => index / steps);
    return { alphas, weights: alphas.map((_, index) => (index === 0 || index === steps ? 0.5 : 1) / steps) };
  }
  const alphas = [0, 1, ...Array.from({ length: steps }, (_, index) => (index + 0.5) / steps)];
  return { alphas, weights: alphas.map((_, index) => (index < 2 ? 0 : 1 / steps)) };
}

export async function integratedGradients(options: IntegratedGradientsOptions): Promise<IntegratedGradientsResult> {
  const { input, baseline, targetWeights, steps, rule, run } = options;
  const features = input.length;
  const outputs = targetWeights.length;
  const { alphas, weights } = pathPoints(steps, rule);
  const averageGradient = new Float64Array(features);
  const scoreAt = new Map<number, number>();
  for (let start = 0; start < alphas.length; start += options.rowsPerRun) {
    const chunk = alphas.slice(start, start + options.rowsPerRun);
    const rows = new Float32Array(chunk.length * features);
    const chunkWeights = new Float32Array(chunk.length * outputs);
    chunk.forEach((alpha, row) => {
      for (let index = 0; index < features; index++) rows[row * features + index] = baseline[index]! + alpha * (input[index]! - baseline[index]!);
      chunkWeights.set(targetWeights, row * outputs);
    });
    const { output, gradient } = await run(rows, chunk.length, chunkWeights);
    chunk.forEach((alpha, row) => {
      const weight = weights[start + row]!;
      if (weight !== 0) {
        for (let index = 0; index < features; index++) averageGradient[index]! += weight * gradient[row * features + index]!;
      }
      if (alpha === 0 || alpha === 1) {
        let score = 0;
        for (let index = 0; index < outputs; index++) score += output[row * outputs + index]! * targetWeights[index]!;
        scoreAt.set(alpha, score);
      }
    });
  }
  const attributions = new Float32Array(features);
  let total = 0;
  for (let index = 0; index < features; index++) {
    const value = (input[index]! - baseline[index]!) * averageGradient[index]!;
    attributions[index] = value;
    total += value;
  }
  const inputScore = scoreAt.get(1)!;
  const baselineScore = scoreAt.get(0)!;
  return { attributions, inputScore, baselineScore, delta: total - (inputScore - baselineScore) };
}
