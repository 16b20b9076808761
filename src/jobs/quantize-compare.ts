/**
 * Measures a quantized model against its float original, both on ONNX Runtime in the calling
 * process (the quantize child, never the server's main thread): the largest output difference on a
 * sample, top-1 accuracy of each on an evaluation dataset, and p50 latency of each, measured in
 * alternating rounds so drift in this machine's speed hits both alike.
 */
import * as ort from 'onnxruntime-node';
import type { Dataset } from '../data/dataset.ts';
import { AiaasError } from '../errors.ts';
import type { ModelSignature, TensorSpec } from '../runtimes/runtime.ts';

export interface LatencyFigures {
  batch: number;
  rounds: number;
  floatMilliseconds: number;
  quantizedMilliseconds: number;
  /** quantized / float p50: below 1 is faster. */
  ratio: number;
}

export interface AccuracyFigures {
  items: number;
  float: number;
  quantized: number;
  /** (quantized − float) × 100: percentage points, negative when the quantized model is worse. */
  deltaPercentagePoints: number;
}

export interface ComparisonFigures {
  sampleItems: number;
  /** Largest |quantized − float| over every FP32 output element of the sample. */
  maxAbsoluteOutputDifference: number;
  /** Largest |float output| of the sample, for scale. */
  maxAbsoluteFloatOutput: number;
  latency: LatencyFigures[];
  accuracy: AccuracyFigures | null;
  /** Why accuracy is null when an evaluation dataset was given. */
  accuracyNote?: string;
}

export interface CompareOptions {
  signature: ModelSignature;
  /** Accuracy is measured on it (with labels). */
  evaluation?: Dataset;
  /** The sample for the output difference and the latency inputs; the evaluation set, else generated values, when absent. */
  sample?: Dataset;
  sampleItems: number;
  latencyBatches: readonly number[];
  latencyRounds: number;
  signal?: AbortSignal;
}

type Feeds = Record<string, ort.Tensor>;

/** Deterministic values in [0, 1) (a fixed LCG): the sample is the same on every run. */
function syntheticValues(count: number, seed: number): Float32Array {
  const values = new Float32Array(count);
  let state = seed >>> 0;
  for (let index = 0; index < count; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[index] = state / 2 ** 32;
  }
  return values;
}

function itemShape(spec: TensorSpec): number[] {
  return spec.shape.slice(1).map((dimension) => (dimension < 0 ? 1 : dimension));
}

function product(shape: readonly number[]): number {
  return shape.reduce((total, dimension) => total * dimension, 1);
}

/** Inputs for `items` items starting at `first`: the dataset's features when given, else synthetic. */
function feedsFor(signature: ModelSignature, items: number, first: number, dataset: Dataset | undefined): Feeds {
  const feeds: Feeds = {};
  signature.inputs.forEach((spec, index) => {
    if (spec.shape.length === 0 || (spec.shape[0] !== -1 && spec.shape[0] !== items)) {
      throw new AiaasError('QUANTIZATION_UNSUPPORTED', `input '${spec.name}' has no batch dimension (shape [${spec.shape.join(', ')}]); the comparison runs batches`);
    }
    const shape = [items, ...itemShape(spec)];
    const size = product(shape.slice(1));
    if (spec.datatype === 'FP32') {
      if (dataset !== undefined && index === 0) {
        const featureSize = product(dataset.featureShape);
        if (featureSize !== size) {
          throw new AiaasError('INVALID_REQUEST', `the dataset's items have ${featureSize} features ([${dataset.featureShape.join(', ')}]); input '${spec.name}' takes ${size}`);
        }
        feeds[spec.name] = new ort.Tensor('float32', dataset.features.slice(first * size, (first + items) * size), shape);
      } else {
        feeds[spec.name] = new ort.Tensor('float32', syntheticValues(items * size, 7919 * (index + 1) + first), shape);
      }
    } else if (spec.datatype === 'INT64') feeds[spec.name] = new ort.Tensor('int64', new BigInt64Array(items * size), shape);
    else if (spec.datatype === 'INT32') feeds[spec.name] = new ort.Tensor('int32', new Int32Array(items * size), shape);
    else if (spec.datatype === 'BOOL') feeds[spec.name] = new ort.Tensor('bool', new Uint8Array(items * size), shape);
    else throw new AiaasError('QUANTIZATION_UNSUPPORTED', `input '${spec.name}' is ${spec.datatype}; the comparison feeds FP32, INT64, INT32 and BOOL inputs`);
  });
  return feeds;
}

function median(values: number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function timed(session: ort.InferenceSession, feeds: Feeds): Promise<number> {
  const start = process.hrtime.bigint();
  await session.run(feeds);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** One session per model, one thread each: the figures compare the models, not the thread pools. */
export function openSession(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
}

function argmax(values: ArrayLike<number>, offset: number, length: number): number {
  let best = 0;
  for (let index = 1; index < length; index++) if (values[offset + index]! > values[offset + best]!) best = index;
  return best;
}

export async function compareModels(floatBytes: Uint8Array, quantizedBytes: Uint8Array, options: CompareOptions): Promise<ComparisonFigures> {
  const [floatSession, quantizedSession] = await Promise.all([openSession(floatBytes), openSession(quantizedBytes)]);
  try {
    const { signature, evaluation } = options;
    const sample = options.sample ?? evaluation;
    const sampleItems = Math.max(1, Math.min(options.sampleItems, sample?.count ?? options.sampleItems));
    const fp32Outputs = signature.outputs.filter((spec) => spec.datatype === 'FP32').map((spec) => spec.name);
    let maxDifference = 0;
    let maxFloat = 0;
    const chunk = 256;
    for (let first = 0; first < sampleItems; first += chunk) {
      const items = Math.min(chunk, sampleItems - first);
      // Fresh tensors per session: a runtime may take over input buffers.
      const floatResult = await floatSession.run(feedsFor(signature, items, first, sample));
      const quantizedResult = await quantizedSession.run(feedsFor(signature, items, first, sample));
      for (const name of fp32Outputs) {
        const expected = floatResult[name]!.data as Float32Array;
        const actual = quantizedResult[name]!.data as Float32Array;
        for (let index = 0; index < expected.length; index++) {
          maxDifference = Math.max(maxDifference, Math.abs(expected[index]! - actual[index]!));
          maxFloat = Math.max(maxFloat, Math.abs(expected[index]!));
        }
      }
      options.signal?.throwIfAborted();
    }

    let accuracy: AccuracyFigures | null = null;
    let accuracyNote: string | undefined;
    if (evaluation !== undefined) {
      const output = signature.outputs.find((spec) => spec.datatype === 'FP32');
      const classes = output?.shape.at(-1) ?? -1;
      const labelSize = product(evaluation.labelShape);
      if (output === undefined || classes < 2) accuracyNote = 'accuracy needs an FP32 output whose last dimension holds the class scores';
      else if (labelSize !== 1 && labelSize !== classes) accuracyNote = `the dataset's labels have shape [${evaluation.labelShape.join(', ')}], neither a class index nor a one-hot row of ${classes}`;
      else {
        let floatCorrect = 0;
        let quantizedCorrect = 0;
        for (let first = 0; first < evaluation.count; first += chunk) {
          const items = Math.min(chunk, evaluation.count - first);
          const floatScores = (await floatSession.run(feedsFor(signature, items, first, evaluation)))[output.name]!.data as Float32Array;
          const quantizedScores = (await quantizedSession.run(feedsFor(signature, items, first, evaluation)))[output.name]!.data as Float32Array;
          const perItem = floatScores.length / items;
          for (let item = 0; item < items; item++) {
            const label = labelSize === 1 ? Math.round(evaluation.labels[first + item]!) : argmax(evaluation.labels, (first + item) * labelSize, labelSize);
            // The class scores are the last `classes` values of each item's output.
            const offset = item * perItem + perItem - classes;
            if (argmax(floatScores, offset, classes) === label) floatCorrect += 1;
            if (argmax(quantizedScores, offset, classes) === label) quantizedCorrect += 1;
          }
          options.signal?.throwIfAborted();
        }
        const floatAccuracy = floatCorrect / evaluation.count;
        const quantizedAccuracy = quantizedCorrect / evaluation.count;
        accuracy = {
          items: evaluation.count,
          float: floatAccuracy,
          quantized: quantizedAccuracy,
          deltaPercentagePoints: Math.round((quantizedAccuracy - floatAccuracy) * 100 * 1e4) / 1e4,
        };
      }
    }

    const latency: LatencyFigures[] = [];
    for (const batch of options.latencyBatches) {
      const feeds = feedsFor(signature, batch, 0, sample !== undefined && sample.count >= batch ? sample : undefined);
      for (let warmup = 0; warmup < 3; warmup++) {
        await floatSession.run(feeds);
        await quantizedSession.run(feeds);
      }
      const floatTimes: number[] = [];
      const quantizedTimes: number[] = [];
      for (let round = 0; round < options.latencyRounds; round++) {
        // Alternating which goes first, so neither always runs on a warmer cache.
        if (round % 2 === 0) {
          floatTimes.push(await timed(floatSession, feeds));
          quantizedTimes.push(await timed(quantizedSession, feeds));
        } else {
          quantizedTimes.push(await timed(quantizedSession, feeds));
          floatTimes.push(await timed(floatSession, feeds));
        }
        options.signal?.throwIfAborted();
      }
      const floatMilliseconds = median(floatTimes);
      const quantizedMilliseconds = median(quantizedTimes);
      latency.push({
        batch,
        rounds: options.latencyRounds,
        floatMilliseconds: Math.round(floatMilliseconds * 1e4) / 1e4,
        quantizedMilliseconds: Math.round(quantizedMilliseconds * 1e4) / 1e4,
        ratio: Math.round((quantizedMilliseconds / floatMilliseconds) * 1e4) / 1e4,
      });
    }
    return {
      sampleItems,
      maxAbsoluteOutputDifference: maxDifference,
      maxAbsoluteFloatOutput: maxFloat,
      latency,
      accuracy,
      ...(accuracyNote === undefined ? {} : { accuracyNote }),
    };
  } finally {
    await Promise.all([floatSession.release(), quantizedSession.release()]);
  }
}
