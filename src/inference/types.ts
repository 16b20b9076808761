import type { Tensor } from '../runtimes/runtime.ts';

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
