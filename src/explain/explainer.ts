/**
 * Runs an explanation for one resolved model: integrated gradients on the engine's input-gradient
 * graph (models trained or uploaded with spec.json and weights), occlusion and permutation
 * importance on any ONNX model. Every forward and gradient pass goes through the model manager, so
 * it runs batched in the model's worker threads and never on the event loop.
 */
import { AiaasError } from '../errors.ts';
import { inputGradientNames } from '../engine/input-gradients.ts';
import type { ModelKey, ModelManager } from '../inference/model-manager.ts';
import type { ResolvedModel } from '../inference/types.ts';
import type { Tensor, TensorSpec } from '../runtimes/runtime.ts';
import { elementCount } from '../runtimes/tensor.ts';
import { integratedGradients, type RiemannRule } from './integrated-gradients.ts';
import { occlusion, permutationImportance, type ScoreRunner } from './occlusion.ts';
import { imageLayout, windowPositions, windowShape, type ImageLayout } from './windows.ts';

export const explanationMethods = ['integrated_gradients', 'occlusion', 'permutation'] as const;
export type ExplanationMethod = (typeof explanationMethods)[number];

/** The versionId suffix under which the model manager holds a version's input-gradient graph. */
export const inputGradientSuffix = '-input-gradients';

export const explanationLimits = {
  maxSteps: 1024,
  maxWindows: 65_536,
  maxRepeats: 100,
  /** Perturbed or interpolated rows one request may evaluate, whatever the method. */
  maxEvaluatedRows: 2_000_000,
  /** Rows per forward or gradient run. */
  rowsPerRun: 64,
} as const;

export interface ExplanationRequest {
  /** All of the model's inputs, as parsed from the V2 body; row 0..n−1 are the samples. */
  inputs: Tensor[];
  /** The input explained (FP32); others are held fixed. */
  input: string;
  /** The output whose element is explained. */
  output: string;
  /** Flat index of the explained element within one sample's output; default: each row's largest. */
  target?: number;
  method: ExplanationMethod;
  steps: number;
  rule: RiemannRule;
  /** A constant, or one sample's worth of values (flattened). */
  baseline: number | Float32Array;
  window?: number | number[];
  stride?: number | number[];
  repeats: number;
  seed: number;
}

export interface ExplanationResult {
  method: ExplanationMethod;
  input: string;
  output: string;
  /** The explained input's shape; `attributions` has it too (permutation: one row). */
  shape: number[];
  attributions: Float32Array;
  targets: number[];
  /** Per row: the explained score F(x). */
  scores: number[];
  /** Integrated gradients: F(baseline) and Σ attributions − (F(x) − F(baseline)) per row. */
  baselineScores?: number[];
  deltas?: number[];
  steps?: number;
  rule?: RiemannRule;
  window?: number[];
  /** How the sample reads as an image, when it does (for the heatmap). */
  image?: ImageLayout;
}

function unsupported(message: string, details?: Record<string, unknown>): AiaasError {
  return new AiaasError('EXPLANATION_UNSUPPORTED', message, details === undefined ? {} : { details });
}

function asNumbers(tensor: Tensor): Float64Array {
  const data = tensor.data;
  if (Array.isArray(data)) throw unsupported(`output '${tensor.name}' holds strings; only numeric outputs can be explained`);
  return Float64Array.from(data as ArrayLike<number | bigint>, (value) => Number(value));
}

function perAxis(value: number | number[] | undefined, dims: readonly number[], what: string): number[] | number | undefined {
  if (value === undefined || typeof value === 'number') return value;
  if (value.length !== dims.length) throw new AiaasError('INVALID_REQUEST', `${what} has ${value.length} entries; the input has ${dims.length} dimensions besides the batch (${dims.join('×')})`);
  return value;
}

function tooMany(rows: number, what: string, advice: string): void {
  if (rows > explanationLimits.maxEvaluatedRows) {
    throw new AiaasError('INVALID_REQUEST', `${what} is more than the ${explanationLimits.maxEvaluatedRows} evaluated rows an explanation may take; ${advice}`, { details: { limit: explanationLimits.maxEvaluatedRows } });
  }
}

function keyOf(model: ResolvedModel, suffix = ''): ModelKey {
  return {
    versionId: `${model.versionId}${suffix}`,
    ...(model.tenantId === undefined ? {} : { tenantId: model.tenantId }),
    name: model.name,
    version: model.version,
    ...(model.batching === undefined ? {} : { batching: model.batching }),
  };
}

export interface ExplainerDeps {
  manager: ModelManager;
  /** Per-run element cap (the server's maxTensorElements): bounds rows per run. */
  maxTensorElements: number;
}

export class Explainer {
  readonly #manager: ModelManager;
  readonly #maxTensorElements: number;

  constructor(deps: ExplainerDeps) {
    this.#manager = deps.manager;
    this.#maxTensorElements = deps.maxTensorElements;
  }

  async explain(model: ResolvedModel, signature: { inputs: TensorSpec[]; outputs: TensorSpec[] }, request: ExplanationRequest, options: { fairnessKey?: string } = {}): Promise<ExplanationResult> {
    const explained = request.inputs.find((tensor) => tensor.name === request.input);
    if (explained === undefined) throw new AiaasError('INVALID_REQUEST', `the request has no input named '${request.input}'`);
    if (explained.datatype !== 'FP32') throw unsupported(`input '${explained.name}' is ${explained.datatype}; explanations perturb FP32 inputs only`);
    if (explained.shape.length < 1) throw unsupported('the explained input needs a batch dimension');
    const outputSpec = signature.outputs.find((spec) => spec.name === request.output);
    if (outputSpec === undefined) throw new AiaasError('INVALID_REQUEST', `the model has no output named '${request.output}'`, { details: { outputs: signature.outputs.map((spec) => spec.name) } });
    const rows = explained.shape[0]!;
    if (rows > 1 && request.inputs.length > 1) throw unsupported('a model with several inputs is explained one sample at a time: send one row');
    if (rows < 1) throw new AiaasError('INVALID_REQUEST', 'send at least one row');
    const dims = explained.shape.slice(1);
    const features = elementCount(dims);
    const input = explained.data as Float32Array;
    const inputSpec = signature.inputs.find((spec) => spec.name === explained.name);
    // A model declared with a fixed batch of 1 can only take one row per run.
    const fixedBatch = inputSpec !== undefined && inputSpec.shape[0] !== undefined && inputSpec.shape[0] >= 0;
    const rowsPerRun = fixedBatch ? 1 : Math.max(1, Math.min(explanationLimits.rowsPerRun, Math.floor(this.#maxTensorElements / Math.max(1, features))));
    const baselineOf = (): Float32Array => {
      if (typeof request.baseline === 'number') return new Float32Array(features).fill(request.baseline);
      if (request.baseline.length !== features) throw new AiaasError('INVALID_REQUEST', `the baseline has ${request.baseline.length} values; one sample of '${explained.name}' has ${features}`);
      return request.baseline;
    };
    const baseline = baselineOf();
    const submit = { ...(options.fairnessKey === undefined ? {} : { fairnessKey: options.fairnessKey }) };

    // The model's own outputs for the samples: the default targets, and the output's per-row size.
    const forward = async (batch: Float32Array, count: number): Promise<Tensor> => {
      const others = request.inputs.filter((tensor) => tensor !== explained).map((tensor) => repeatFirstRow(tensor, count));
      const response = await this.#manager.infer(keyOf(model), { inputs: [{ name: explained.name, datatype: 'FP32', shape: [count, ...dims], data: batch }, ...others], outputs: [request.output] }, submit);
      return response.outputs[0]!;
    };
    const original = await forward(input.slice(), rows);
    const outputsPerRow = elementCount(original.shape.slice(1));
    const originalValues = asNumbers(original);
    const targets = Array.from({ length: rows }, (_, row) => {
      if (request.target !== undefined) {
        if (request.target >= outputsPerRow) throw new AiaasError('INVALID_REQUEST', `target ${request.target} is out of range: output '${request.output}' has ${outputsPerRow} values per sample`);
        return request.target;
      }
      let best = 0;
      for (let index = 1; index < outputsPerRow; index++) if (originalValues[row * outputsPerRow + index]! > originalValues[row * outputsPerRow + best]!) best = index;
      return best;
    });
    const scores = targets.map((target, row) => originalValues[row * outputsPerRow + target]!);
    const image = imageLayout(dims);
    const base = { method: request.method, input: explained.name, output: request.output, targets, scores, ...(image === undefined ? {} : { image }) };

    if (request.method === 'integrated_gradients') {
      if (model.inputGradients !== true) {
        throw unsupported('integrated gradients need the engine to rebuild the model: this version has no spec.json and weights (an imported ONNX model); use "occlusion" or "permutation"', { methods: ['occlusion', 'permutation'] });
      }
      if (request.inputs.length > 1 || request.output !== signature.outputs[0]?.name) throw unsupported('integrated gradients explain the single input and output of an engine model');
      tooMany(rows * (request.steps + 2), `${rows} rows × ${request.steps + 1} path points`, 'use fewer steps or rows');
      const attributions = new Float32Array(rows * features);
      const baselineScores: number[] = [];
      const deltas: number[] = [];
      for (let row = 0; row < rows; row++) {
        const targetWeights = new Float32Array(outputsPerRow);
        targetWeights[targets[row]!] = 1;
        const result = await integratedGradients({
          input: input.subarray(row * features, (row + 1) * features),
          baseline,
          targetWeights,
          steps: request.steps,
          rule: request.rule,
          rowsPerRun,
          run: async (batch, count, weights) => {
            const response = await this.#manager.infer(
              keyOf(model, inputGradientSuffix),
              {
                inputs: [
                  { name: inputGradientNames.input, datatype: 'FP32', shape: [count, ...dims], data: batch },
                  { name: inputGradientNames.targetWeights, datatype: 'FP32', shape: [count, ...original.shape.slice(1)], data: weights },
                ],
                outputs: [inputGradientNames.output, inputGradientNames.gradient],
              },
              submit,
            );
            return { output: response.outputs[0]!.data as Float32Array, gradient: response.outputs[1]!.data as Float32Array };
          },
        });
        attributions.set(result.attributions, row * features);
        baselineScores.push(result.baselineScore);
        deltas.push(result.delta);
      }
      return { ...base, shape: explained.shape, attributions, baselineScores, deltas, steps: request.steps, rule: request.rule };
    }

    const window = windowShape(dims, perAxis(request.window, dims, 'window'));
    const strideValue = perAxis(request.stride, dims, 'stride');
    const stride = strideValue === undefined ? window : typeof strideValue === 'number' ? window.map((extent) => Math.min(extent, Math.max(1, strideValue))) : strideValue.map((step) => Math.max(1, step));
    const windows = windowPositions(dims, window, stride);
    if (windows.length > explanationLimits.maxWindows) {
      throw new AiaasError('INVALID_REQUEST', `${windows.length} window positions; at most ${explanationLimits.maxWindows}: use a larger window or stride`);
    }
    const scoreRunner = (targetOf: (row: number) => number): ScoreRunner => async (batch, count, firstRow) => {
      const values = asNumbers(await forward(batch, count));
      return Float64Array.from({ length: count }, (_, index) => values[index * outputsPerRow + targetOf(firstRow + index)]!);
    };

    if (request.method === 'occlusion') {
      tooMany(rows * (windows.length + 1), `${rows} rows × ${windows.length} windows`, 'use a larger window or stride, or fewer rows');
      const attributions = new Float32Array(rows * features);
      for (let row = 0; row < rows; row++) {
        const result = await occlusion({ input: input.subarray(row * features, (row + 1) * features), baseline, windows, rowsPerRun, run: scoreRunner(() => targets[row]!) });
        attributions.set(result.attributions, row * features);
      }
      return { ...base, shape: explained.shape, attributions, window };
    }

    if (rows < 2) throw new AiaasError('INVALID_REQUEST', 'permutation importance shuffles features across samples: send at least 2 rows');
    tooMany(windows.length * request.repeats * rows, `${windows.length} feature groups × ${request.repeats} repeats × ${rows} rows`, 'use a larger window or fewer rows');
    // Importance is measured on each row's own target, which stays fixed while its features move.
    const result = await permutationImportance({
      inputs: input,
      samples: rows,
      windows,
      repeats: request.repeats,
      seed: request.seed,
      rowsPerRun,
      // Row k of either pass is sample k mod rows.
      run: scoreRunner((index) => targets[index % rows]!),
    });
    return { ...base, shape: [1, ...dims], attributions: result.importances, window };
  }
}

/** Row 0 of a held-fixed input, repeated `count` times (explanations vary one input of one sample). */
function repeatFirstRow(tensor: Tensor, count: number): Tensor {
  const perRow = elementCount(tensor.shape.slice(1));
  const data = tensor.data;
  if (Array.isArray(data)) {
    const row = data.slice(0, perRow);
    return { ...tensor, shape: [count, ...tensor.shape.slice(1)], data: Array.from({ length: count * perRow }, (_, index) => row[index % perRow]!) };
  }
  const typed = data as Float32Array;
  const Constructor = typed.constructor as new (length: number) => typeof typed;
  const result = new Constructor(count * perRow);
  for (let row = 0; row < count; row++) result.set(typed.subarray(0, perRow), row * perRow);
  return { ...tensor, shape: [count, ...tensor.shape.slice(1)], data: result };
}
