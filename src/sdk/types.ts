/**
 * Request and response types of the HTTP API (docs/api.md). Field names follow the JSON the
 * server sends; fields the contract marks optional, or that older servers may omit, are optional.
 */

// Wire shapes the server defines in one place: type-only imports, so the client loads no server code.
import type { EarlyStoppingOptions, TrainingSummary } from '../engine/model.ts';
import type { JobSettings } from '../jobs/job-request.ts';

export type { JobSettings, TrainingSummary };
/** Early-stopping options of a job submission (the engine's `EarlyStoppingOptions`). */
export type EarlyStoppingSettings = EarlyStoppingOptions;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export type Role = 'admin' | 'developer' | 'viewer' | 'inference';
export type DatasetFormat = 'csv' | 'jsonl' | 'idx';
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const terminalJobStatuses: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

// Service

export interface HealthStatus {
  status: string;
}

// Identity, tenants, keys

export interface Tenant {
  id: string;
  name: string;
  createdAt?: string;
}

export type Permission =
  | 'tenants:manage'
  | 'keys:manage'
  | 'audit:read'
  | 'usage:read'
  | 'datasets:read'
  | 'datasets:write'
  | 'models:read'
  | 'models:write'
  | 'models:download'
  | 'aliases:write'
  | 'jobs:read'
  | 'jobs:write'
  | 'inference';

export interface KeyIdentity {
  id: string;
  name: string;
  prefix: string;
  role: Role;
  allowedModels: string[] | null;
}

export interface Me {
  /** `operator` marks the tenant whose admins manage other tenants. */
  tenant: { id: string; name: string; operator?: boolean };
  key: { id: string; name: string; prefix: string | null; role: Role; allowedModels: string[] | null; expiresAt?: string | null };
  permissions?: Permission[];
}

export interface CreatedTenant {
  tenant: Tenant;
  /** The tenant's first admin key; `key` is shown only in this answer. */
  adminKey: { id: string; key: string; prefix: string; role?: Role };
}

export interface ApiKey extends KeyIdentity {
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface CreateKeyRequest {
  name: string;
  role: Role;
  allowedModels?: string[];
  /** ISO 8601. */
  expiresAt?: string;
}

export interface CreatedKey {
  id: string;
  /** The secret; shown only in this answer. */
  key: string;
  prefix: string;
  role: Role;
  name?: string;
  allowedModels?: string[] | null;
  expiresAt?: string | null;
  createdAt?: string;
}

// Datasets

export interface DatasetSchema {
  featureShape: number[];
  labelShape: number[];
  featureNames?: string[];
  labelName?: string;
  classes?: number;
}

export interface Dataset {
  id: string;
  name: string;
  format: DatasetFormat;
  rowCount: number;
  bytes: number;
  schema: DatasetSchema;
  createdAt: string;
}

// Models, versions, aliases

export interface BatchingSettings {
  maxBatchSize: number;
  maxQueueDelayMicroseconds: number;
  maxQueueSize: number;
}

export interface CreateModelRequest {
  name: string;
  description?: string;
  batching?: Partial<BatchingSettings>;
}

export interface UpdateModelRequest {
  description?: string;
  batching?: Partial<BatchingSettings> | null;
}

export interface TensorSignature {
  name: string;
  datatype: string;
  /** -1 marks a dynamic dimension. */
  shape: number[];
}

export interface ModelSignature {
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

export interface ModelVersion {
  id: string;
  model: string;
  version: number;
  source: 'upload' | 'job';
  signature: ModelSignature;
  /** For a trained version, the training summary (test metrics included). */
  metrics: JsonObject | null;
  jobId: string | null;
  /** What `versions.downloadFile` can fetch. */
  files: ModelFileName[];
  /** Aliases pointing at this version. */
  aliases: string[];
  createdAt: string;
}

export interface Alias {
  name: string;
  version: number;
  updatedAt?: string;
}

export interface Model {
  name: string;
  description: string;
  batching: Partial<BatchingSettings> | null;
  /** Version numbers, oldest first. */
  versions: number[];
  aliases: Alias[];
  createdAt: string;
}

export type ModelFileName = 'model.onnx' | 'model.safetensors' | 'spec.json' | 'metrics.json';

// Jobs

export interface SubmitJobRequest {
  model: string;
  /** A model spec in the engine's format (docs/model-spec.md). */
  spec: JsonObject;
  datasetId: string;
  testDatasetId?: string;
  epochs?: number;
  batchSize?: number;
  seed?: number;
  shuffle?: boolean;
  validationSplit?: number;
  maxSteps?: number;
  targetLoss?: number;
  earlyStopping?: EarlyStoppingSettings;
}

export interface JobHistoryEntry {
  epoch: number;
  loss: number;
  metrics: Record<string, number>;
  validationLoss?: number;
  validationMetrics?: Record<string, number>;
  samplesPerSecond?: number;
  seconds?: number;
}

export interface JobFailure {
  code: string;
  message: string;
  details?: JsonObject;
}

export interface Job {
  id: string;
  model: string;
  status: JobStatus;
  epoch: number;
  totalEpochs: number;
  step: number;
  loss: number | null;
  history: JobHistoryEntry[];
  error: JobFailure | null;
  /** The version the job registered; its metrics are the training summary. */
  resultVersion: { id: string; version: number; metrics: Partial<TrainingSummary> | null } | null;
  settings?: JobSettings;
  datasetId: string;
  testDatasetId: string | null;
  cancelRequested?: boolean;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** One event of a job's event stream; `data` is the parsed JSON payload. */
export interface JobEvent {
  /** `job-queued`, `job-started`, `job-resumed`, `job-progress`, `epoch-end`, `checkpoint-saved`, `job-finished` */
  type: string;
  id: string | undefined;
  data: JsonValue;
}

/** Payload of `job-progress` (after each batch); fields optional so a newer server cannot break a client. */
export interface JobProgressData {
  epoch?: number;
  batch?: number;
  batchesPerEpoch?: number;
  samplesSeen?: number;
  samplesPerEpoch?: number;
  step?: number;
  loss?: number;
  samplesPerSecond?: number;
}

/** Payload of `epoch-end`. */
export interface EpochEndData {
  epoch?: number;
  epochs?: number;
  step?: number;
  loss?: number;
  metrics?: Record<string, number>;
  validationLoss?: number;
  validationMetrics?: Record<string, number>;
  samplesPerSecond?: number;
  seconds?: number;
  learningRate?: number;
}

/** Payload of `job-finished`. */
export interface JobFinishedData {
  status?: JobStatus;
  /** The registered version number, on success. */
  version?: number;
  versionId?: string;
  summary?: Partial<TrainingSummary>;
  error?: JobFailure;
  epoch?: number;
  step?: number;
}

// Audit and usage

export interface AuditEntry {
  seq: number;
  tenantId: string | null;
  keyId: string | null;
  action: string;
  resource: string;
  outcome: string;
  ip: string;
  at: string;
  detail: JsonValue;
  prevHash: string;
  hash: string;
  /** The model the entry concerns, or null. */
  model: string | null;
}

export type AuditVerification =
  | { ok: true; count: number }
  | { ok: false; position: number; seq: number; reason: string; message?: string };

export interface UsageRow {
  model: string;
  day: string;
  requests: number;
}

// Inference: KServe V2

export type V2Datatype = 'BOOL' | 'UINT8' | 'UINT16' | 'UINT32' | 'UINT64' | 'INT8' | 'INT16' | 'INT32' | 'INT64' | 'FP16' | 'FP32' | 'FP64' | 'BYTES';
export type V2Parameters = Record<string, string | number | boolean>;
export type V2Data = (number | boolean | string | null)[] | V2NestedData[];
type V2NestedData = number | boolean | string | null | V2NestedData[];

export interface V2InputTensor {
  name: string;
  datatype: V2Datatype;
  shape: number[];
  data: V2Data;
  parameters?: V2Parameters;
}

export interface V2InferRequest {
  id?: string;
  parameters?: V2Parameters;
  inputs: V2InputTensor[];
  outputs?: { name: string; parameters?: V2Parameters }[];
}

export interface V2OutputTensor {
  name: string;
  datatype: V2Datatype;
  shape: number[];
  /** Flat, row-major. */
  data: (number | boolean | string | null)[];
  parameters?: V2Parameters;
}

export interface V2InferResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: V2Parameters;
  outputs: V2OutputTensor[];
}

export interface V2ModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

// Inference: TensorFlow Serving REST

export type TfServingValue = number | string | boolean | null | { b64: string } | TfServingValue[] | { [input: string]: TfServingValue };

export type TfServingPredictRequest =
  | { signature_name?: string; instances: TfServingValue[] }
  | { signature_name?: string; inputs: TfServingValue };

export type TfServingPredictResponse = { predictions: TfServingValue[] } | { outputs: TfServingValue };
