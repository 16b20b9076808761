import type { Tensor, TensorSpec } from '../runtimes/runtime.ts';
import type { OutputPolicy } from './output-policy.ts';

export type ParameterValue = string | number | boolean;

/** The one internal inference request every protocol adapter produces. */
export interface InferRequest {
  inputs: Tensor[];
  /** Output names to return, in this order; all of the signature's outputs when omitted. */
  outputs?: string[];
  id?: string;
  parameters?: Record<string, ParameterValue>;
}

export interface InferResponse {
  outputs: Tensor[];
  /** How the request spent its time in serving; set by the batcher. */
  timing?: InferenceTiming;
}

/** One request's serving times (fractional milliseconds), for Server-Timing and the usage ledger. */
export interface InferenceTiming {
  /** From being queued to the start of the batch that carried it. */
  queueMs: number;
  /** How long the run that carried it took in the worker (a merged batch's whole run). */
  computeMs: number;
  /** Its share of that run, by batch rows: what is billed, so a batch's shares add up to its run. */
  billedComputeMs: number;
}

export interface BatchingOptions {
  /** Most rows (sum of the batch dimension) one merged run may carry. 1 disables merging. */
  maxBatchSize: number;
  /** How long the oldest queued request may wait for others to join its batch. */
  maxQueueDelayMicroseconds: number;
  /** Requests waiting (not yet running) beyond which new ones are refused with QUEUE_FULL. */
  maxQueueSize: number;
}

/** What serving reports; implemented by the HTTP layer's Prometheus registry. */
export interface ServingMetricsSink {
  batchExecuted(model: ModelLabels, rows: number, requests: number): void;
  queueDepth(model: ModelLabels, depth: number): void;
  modelsLoaded(count: number, bytes: number): void;
}

export interface ModelLabels {
  /** The owning tenant's id; labels every per-model metric series so tenants see only theirs. */
  tenant?: string;
  model: string;
  version: string;
}

/** A model version as the registry resolved it for one caller: what serving needs to load and label it. */
export interface ResolvedModel {
  /** The owning tenant; labels the model's metric series. */
  tenantId?: string;
  name: string;
  /** Version number as a string. */
  version: string;
  versionId: string;
  platform: 'onnx';
  /** Known without loading (stored at upload); otherwise the loaded runtime's signature is used. */
  signature?: { inputs: TensorSpec[]; outputs: TensorSpec[] };
  /** Per-model batching overrides. */
  batching?: Partial<BatchingOptions>;
  /** What callers may see of the outputs (set by the model's owner); applied after every inference. */
  outputPolicy?: OutputPolicy;
  /** The version has spec.json and weights, so the engine can build its input-gradient graph (integrated gradients). */
  inputGradients?: boolean;
  /** The alias the caller named, when it resolved through one. */
  alias?: string;
  /** The alias's shadow version: gets a copy of the request, its answer is only compared. */
  shadow?: ResolvedModel;
}
