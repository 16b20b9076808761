/**
 * Model cost cards: what one version costs to keep and to run on this server. Static figures come
 * from the graph (parameters, FLOPs per item, src/onnx/cost.ts), read from the version's skeleton
 * (the model without its weight data, streamed and decrypted a segment at a time, so a large model
 * is never whole in memory here); measured figures come from a short calibration run through the
 * model manager, whose workers run the model (never this thread), and are stored with the version.
 */
import { AiaasError } from '../errors.ts';
import type { ModelKey } from '../inference/model-manager.ts';
import type { InferRequest, InferResponse } from '../inference/types.ts';
import { graphCost, type GraphCost } from '../onnx/cost.ts';
import { InvalidOnnxError } from '../onnx/external-data.ts';
import type { ModelSignature, Tensor, TensorSpec } from '../runtimes/runtime.ts';
import type { ModelVersionRecord } from '../storage/repositories/models.ts';
import type { ModelRecord } from '../storage/index.ts';
import { onnxSkeleton } from '../onnx/skeleton.ts';
import type { StoredGgufSignature } from './model-registry.ts';
import type { Plan } from '../billing/plans.ts';

/** Batch sizes of a calibration run: latency at 1, throughput at the larger one. */
export const calibrationBatches = { latency: 1, throughput: 32 } as const;

export interface CostCalibration {
  /** p50 of `runs` single-item requests, milliseconds, queueing in the model's batcher included. */
  p50Milliseconds: number;
  /** Items per second at batch `throughputBatch` (p50 of `runs` requests). */
  itemsPerSecond: number;
  throughputBatch: number;
  runs: number;
  measuredAt: string;
}

/** A GGUF version's calibration: one greedy generation on the server's llama.cpp. */
export interface GenerationCalibration {
  /** Completion tokens per second of generation (prompt processing included in the time). */
  tokensPerSecond: number;
  completionTokens: number;
  milliseconds: number;
  measuredAt: string;
}

export interface CostCard {
  model: string;
  version: number;
  format: 'onnx' | 'gguf';
  parameters: number;
  /** Bytes of the model file (plaintext, external data excluded). */
  fileBytes: number;
  /** Operations per item (2 per multiply-accumulate; see docs/models.md); null for GGUF. */
  flopsPerItem: number | null;
  /** False when some nodes' shapes could not be worked out (they are in `uncountedNodes`). */
  flopsComplete: boolean;
  uncountedNodes: { node: string; opType: string }[];
  /** The last calibration run's figures (ONNX); null until one has run (`POST …/cost/calibrate`) and for GGUF. */
  calibration: CostCalibration | null;
  /** GGUF: measured by the last calibration run (one greedy generation); null until one has run and for ONNX. */
  tokensPerSecond: number | null;
  /** GGUF: KV-cache bytes per token of context, from the file's metadata (f16 cache); null for ONNX. */
  kvCacheBytesPerToken: number | null;
  /** Bytes of the loaded version as the model manager accounts them (all instances); null when not loaded. */
  memoryBytes: number | null;
  /** Bytes one instance took when measured at validation; null when not measured (older versions, GGUF). */
  measuredMemoryBytes: number | null;
  /**
   * The caller's plan's price per 1,000 predictions (items), in micro-units of its currency: the
   * marginal price beyond the plan's included predictions. Null without a plan, and for GGUF models
   * (billed per token; `priceNote` says which).
   */
  pricePer1000Predictions: { plan: string; currency: string; micros: number; includedPredictions: number } | null;
  priceNote: string;
}

export interface ModelCostDependencies {
  getVersion(tenantId: string, modelName: string, selector: string): Promise<{ model: ModelRecord; version: ModelVersionRecord }>;
  /** The version's model file as a decrypting stream. */
  openModelFile(tenantId: string, modelName: string, version: ModelVersionRecord): Promise<AsyncIterable<Uint8Array>>;
  infer(key: ModelKey, request: InferRequest): Promise<InferResponse>;
  /** One greedy generation of at most `maxTokens` on the language model (loaded on demand). */
  generate(key: ModelKey, prompt: string, maxTokens: number): Promise<{ completionTokens: number }>;
  /** Bytes the manager accounts for a loaded version; undefined when it is not loaded. */
  loadedMemoryBytes(versionId: string): number | undefined;
  saveCalibration(tenantId: string, versionId: string, calibration: CostCalibration | GenerationCalibration): Promise<void>;
  /** The tenant's plan now (src/billing/plans.ts), undefined when it has none. */
  planOf(tenantId: string): Plan | undefined;
  now?: () => Date;
  /** Timed requests per batch size (default 20). */
  calibrationRuns?: number;
}

interface StaticCost extends GraphCost {
  fileBytes: number;
}

/** Deterministic inputs in [0, 1) for FP32, zeros for integer and boolean inputs. */
function syntheticTensor(spec: TensorSpec, batch: number, seed: number): Tensor {
  const shape = spec.shape.map((dimension, axis) => (dimension >= 0 ? dimension : axis === 0 ? batch : 1));
  const count = shape.reduce((product, dimension) => product * dimension, 1);
  switch (spec.datatype) {
    case 'FP32': {
      const data = new Float32Array(count);
      let state = seed >>> 0;
      for (let index = 0; index < count; index++) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        data[index] = state / 2 ** 32;
      }
      return { name: spec.name, datatype: 'FP32', shape, data };
    }
    case 'INT64':
      return { name: spec.name, datatype: 'INT64', shape, data: new BigInt64Array(count) };
    case 'INT32':
      return { name: spec.name, datatype: 'INT32', shape, data: new Int32Array(count) };
    case 'BOOL':
      return { name: spec.name, datatype: 'BOOL', shape, data: new Uint8Array(count) };
    default:
      throw new AiaasError('INVALID_REQUEST', `calibration feeds FP32, INT64, INT32 and BOOL inputs; input '${spec.name}' is ${spec.datatype}`);
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const rounded = (value: number, digits = 4) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Tokens a GGUF calibration generates (greedy, so a given model and server give the same text). */
const generationCalibrationTokens = 32;

export class ModelCostService {
  readonly #deps: ModelCostDependencies;
  /** Static figures per version id (a version's file never changes); bounded. */
  readonly #static = new Map<string, StaticCost>();

  constructor(deps: ModelCostDependencies) {
    this.#deps = deps;
  }

  async card(tenantId: string, modelName: string, selector: string): Promise<CostCard> {
    const { model, version } = await this.#deps.getVersion(tenantId, modelName, selector);
    return this.#card(tenantId, model, version);
  }

  /** Runs a short calibration through the model manager, stores it with the version and returns the card. */
  async calibrate(tenantId: string, modelName: string, selector: string): Promise<CostCard> {
    const { model, version } = await this.#deps.getVersion(tenantId, modelName, selector);
    const key: ModelKey = { versionId: version.id, tenantId, name: model.name, version: String(version.version) };
    if (version.format === 'gguf') {
      // Loads on first use; a short warm-up generation first, so the figure is steady-state speed.
      await this.#deps.generate(key, 'Hello', 4);
      const start = process.hrtime.bigint();
      const { completionTokens } = await this.#deps.generate(key, 'Once upon a time', generationCalibrationTokens);
      const milliseconds = Number(process.hrtime.bigint() - start) / 1e6;
      const calibration: GenerationCalibration = {
        tokensPerSecond: rounded((completionTokens * 1000) / milliseconds, 2),
        completionTokens,
        milliseconds: rounded(milliseconds, 2),
        measuredAt: (this.#deps.now?.() ?? new Date()).toISOString(),
      };
      await this.#deps.saveCalibration(tenantId, version.id, calibration);
      return this.#card(tenantId, model, { ...version, costCalibration: calibration });
    }
    const signature = version.signature as ModelSignature;
    const runs = this.#deps.calibrationRuns ?? 20;
    const time = async (batch: number): Promise<number[]> => {
      const times: number[] = [];
      // The first request loads the model and warms it up: not timed.
      for (let run = -2; run < runs; run++) {
        const inputs = signature.inputs.map((spec, index) => syntheticTensor(spec, batch, 7919 * (index + 1) + run));
        const start = process.hrtime.bigint();
        await this.#deps.infer(key, { inputs });
        if (run >= 0) times.push(Number(process.hrtime.bigint() - start) / 1e6);
      }
      return times;
    };
    const latency = median(await time(calibrationBatches.latency));
    const batched = median(await time(calibrationBatches.throughput));
    const calibration: CostCalibration = {
      p50Milliseconds: rounded(latency),
      itemsPerSecond: rounded((calibrationBatches.throughput * 1000) / batched, 1),
      throughputBatch: calibrationBatches.throughput,
      runs,
      measuredAt: (this.#deps.now?.() ?? new Date()).toISOString(),
    };
    await this.#deps.saveCalibration(tenantId, version.id, calibration);
    return this.#card(tenantId, model, { ...version, costCalibration: calibration });
  }

  async #staticCost(tenantId: string, model: ModelRecord, version: ModelVersionRecord): Promise<StaticCost> {
    const known = this.#static.get(version.id);
    if (known !== undefined) return known;
    let fileBytes = 0;
    const stream = await this.#deps.openModelFile(tenantId, model.name, version);
    const counted = (async function* () {
      for await (const chunk of stream) {
        fileBytes += chunk.byteLength;
        yield chunk;
      }
    })();
    // Initializers of up to 4 KiB keep their data (Reshape targets, axes); weights do not.
    let skeleton: Uint8Array;
    try {
      skeleton = await onnxSkeleton(counted, { keepTensorsUpToBytes: 4096 });
    } catch (error) {
      if (error instanceof InvalidOnnxError) throw new AiaasError('INVALID_MODEL_FILE', `the stored model could not be read: ${error.message}`);
      throw error;
    }
    const signature = version.signature as ModelSignature;
    // Batch size 1: the first dynamic dimension of each input is the batch.
    const shapes = new Map(signature.inputs.map((spec) => [spec.name, spec.shape.map((dimension, axis) => (dimension < 0 && axis === 0 ? 1 : dimension))]));
    const cost: StaticCost = { ...graphCost(skeleton, shapes), fileBytes };
    if (this.#static.size >= 1024) this.#static.clear();
    this.#static.set(version.id, cost);
    return cost;
  }

  async #card(tenantId: string, model: ModelRecord, version: ModelVersionRecord): Promise<CostCard> {
    const plan = this.#deps.planOf(tenantId);
    const price =
      plan === undefined
        ? { pricePer1000Predictions: null, priceNote: 'the tenant has no plan, so there is no price to estimate' }
        : version.format === 'gguf'
          ? {
              pricePer1000Predictions: null,
              priceNote: `language models are billed per token: ${plan.prices.perMillionPromptTokens} and ${plan.prices.perMillionCompletionTokens} micro-${plan.currency} per million prompt and completion tokens on plan ${plan.name}`,
            }
          : {
              pricePer1000Predictions: { plan: plan.name, currency: plan.currency, micros: plan.prices.perThousandPredictions, includedPredictions: plan.included.predictions },
              priceNote: `plan ${plan.name}: ${plan.prices.perThousandPredictions} micro-${plan.currency} per 1,000 predictions beyond the ${plan.included.predictions} included each month`,
            };
    const common = {
      model: model.name,
      version: version.version,
      memoryBytes: this.#deps.loadedMemoryBytes(version.id) ?? null,
      measuredMemoryBytes: version.measuredMemoryBytes,
      ...price,
    };
    if (version.format === 'gguf') {
      const signature = version.signature as StoredGgufSignature;
      const generation = version.costCalibration as GenerationCalibration | null;
      return {
        ...common,
        format: 'gguf',
        parameters: signature.parameterCount,
        fileBytes: signature.fileBytes,
        flopsPerItem: null,
        flopsComplete: false,
        uncountedNodes: [],
        calibration: null,
        tokensPerSecond: generation?.tokensPerSecond ?? null,
        kvCacheBytesPerToken: signature.kvCacheBytesPerToken ?? null,
      };
    }
    const cost = await this.#staticCost(tenantId, model, version);
    return {
      ...common,
      format: 'onnx',
      parameters: cost.parameters,
      fileBytes: cost.fileBytes,
      flopsPerItem: cost.flopsPerItem,
      flopsComplete: cost.complete,
      uncountedNodes: cost.uncountedNodes,
      calibration: (version.costCalibration as CostCalibration | null) ?? null,
      tokensPerSecond: null,
      kvCacheBytesPerToken: null,
    };
  }
}
