/**
 * Request and response types of the HTTP API. They derive from the route schemas the server
 * validates with and publishes in `/openapi.json` (src/http/schemas/), so they cannot drift from it.
 */

// Type-only imports: the client loads no server code at run time.
import type { Static } from '@sinclair/typebox';
import type { EarlyStoppingOptions, TrainingSummary } from '../engine/model.ts';
import type { JobSettings } from '../jobs/job-request.ts';
import type * as audit from '../http/schemas/audit.ts';
import type * as backups from '../http/schemas/backups.ts';
import type * as billing from '../http/schemas/billing.ts';
import type * as datasets from '../http/schemas/datasets.ts';
import type * as identity from '../http/schemas/identity.ts';
import type * as jobs from '../http/schemas/jobs.ts';
import type * as models from '../http/schemas/models.ts';
import type * as service from '../http/schemas/service.ts';
import type * as usage from '../http/schemas/usage.ts';
import type * as v2 from '../http/schemas/v2.ts';
import type * as quality from '../http/schemas/quality.ts';
import type * as sweeps from '../http/schemas/sweeps.ts';

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

export type HealthStatus = Static<typeof service.HealthStatus> | Static<typeof service.ReadinessStatus>;

/** `GET /v2`: KServe V2 server metadata. */
export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

/** One entry of `POST /v2/repository/index`: `state` is `READY` when the version is loaded. */
export interface RepositoryIndexEntry {
  name: string;
  version: string;
  state: string;
  reason: string;
}

// Identity, tenants, keys

export type Tenant = Static<typeof identity.Tenant>;
export type Permission = Static<typeof identity.PermissionSchema>;
export type Me = Static<typeof identity.Me>;
export type CreatedTenant = Static<typeof identity.CreatedTenant>;
export type ApiKey = Static<typeof identity.ApiKey>;
export type KeyIdentity = Pick<ApiKey, 'id' | 'name' | 'prefix' | 'role' | 'allowedModels'>;
export type CreateKeyRequest = Static<typeof identity.CreateKeyRequest>;
/** The new key's record plus `key`, its secret, shown only in this answer. */
export type CreatedKey = Static<typeof identity.CreatedKey>;

// Datasets

export type DatasetSchema = Static<typeof datasets.DatasetSchemaInfo>;
export type Dataset = Static<typeof datasets.Dataset>;

// Models, versions, aliases

/** Per-model batching overrides; each setting optional. */
export type BatchingSettings = Static<typeof models.BatchingSettings>;
export type CreateModelRequest = Static<typeof models.CreateModelRequest>;
export type UpdateModelRequest = Static<typeof models.UpdateModelRequest>;
export type TensorSignature = Static<typeof models.TensorSignature>;
export type ModelSignature = Static<typeof models.ModelSignature>;
/** `metrics`: for a trained version, the training summary (test metrics included). */
export type ModelVersion = Static<typeof models.ModelVersion>;
/** `GET …/versions/:v/provenance`: the signed record. */
export type VersionProvenance = Static<(typeof models.modelSchemas.provenance.response)[200]>;
/** `GET /api/v1/signing-key`: the public key provenance records are signed with. */
export type SigningKeyInfo = Static<(typeof models.modelSchemas.signingKey.response)[200]>;
export type Alias = Static<typeof models.Alias>;
export type Model = Static<typeof models.Model>;
/** `report` is an EvaluationReport (src/quality/metrics.ts, docs/quality.md) once the job succeeded. */
export type Evaluation = Static<typeof models.Evaluation>;
export type EvaluateRequest = Static<typeof models.EvaluateRequest>;
export type SetAliasRequest = Static<typeof models.SetAliasRequest>;
export type PromotionGate = Static<typeof models.PromotionGate>;
export type GateDecision = Static<typeof models.GateDecision>;
export type ShadowStatus = Static<typeof models.ShadowStatus>;
export type ModelFileName = Static<typeof models.ModelFileNameSchema>;

// Jobs

/** `spec` is a model spec in the engine's format (docs/model-spec.md). */
export type SubmitJobRequest = Static<typeof jobs.SubmitJobRequest>;
export type JobHistoryEntry = Static<typeof jobs.JobHistoryEntry>;
export type JobFailure = Static<typeof jobs.JobFailure>;
/** `resultVersion.metrics` is the training summary (`TrainingSummary`). */
export type Job = Static<typeof jobs.Job>;

/** What a job does: `train`, `pull`, `quantize` (`evaluate`, `sweep` reserved). */
export type JobKind = Static<typeof jobs.JobKindSchema>;

/** `POST /api/v1/models/{name}/versions` with JSON: the server downloads the file in a pull job. */
export type PullModelRequest = Static<typeof jobs.PullSettings>;
/** `POST /api/v1/jobs` with `kind: "pull"`. */
export type SubmitPullJobRequest = Static<typeof jobs.PullJobRequest>;

/** `POST /api/v1/models/{name}/versions/{version}/quantize`: the version comes from the path. */
export type QuantizeRequest = Static<typeof models.QuantizeRequest>;
/** The report stored with a version made by a quantize job. */
export type QuantizationReport = Static<typeof models.QuantizationReport>;
/** `GET /api/v1/models/{name}/versions/{version}/cost`. */
export type CostCard = Static<typeof models.CostCard>;

/** Payload of a pull job's `job-progress` events. */
export interface PullProgressData {
  phase?: 'connecting' | 'downloading' | 'verifying' | 'registering';
  bytesDone?: number;
  bytesTotal?: number | null;
  sha256?: string;
}


/** One event of a job's event stream; `data` is the parsed JSON payload. */
export interface JobEvent {
  /** `job-queued`, `job-started`, `job-resumed`, `job-progress`, `epoch-end`, `checkpoint-saved`, `download-resumed`, `job-finished` */
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

export type AuditEntry = Static<typeof audit.AuditEntry>;
export type AuditVerification = Static<typeof audit.AuditVerification>;
/** One group of `GET /api/v1/usage`: the dimensions grouped by, and every unit summed. */
export type UsageRow = Static<typeof usage.UsageGroupRow>;
export type UsageDimension = (typeof usage.usageDimensions)[number];

// Backups (operator admins)

export type ServerBackup = Static<typeof backups.ServerBackup>;
export type BackupListing = Static<typeof backups.BackupListing>;

// Inference: KServe V2

export type V2Datatype = Static<typeof v2.V2Datatype>;
export type V2Parameters = Static<typeof v2.V2Parameters>;
/** Tensor elements, flat (row-major) or nested to the shape. */
export type V2Data = (number | boolean | string | null)[] | V2NestedData[];
type V2NestedData = number | boolean | string | null | V2NestedData[];
/** `data` is typed here for senders; the schema leaves it to the server's tensor parser. */
export type V2InputTensor = Omit<Static<typeof v2.V2InputTensor>, 'data'> & { data: V2Data };
export type V2InferRequest = Omit<Static<typeof v2.V2InferRequest>, 'inputs'> & { inputs: V2InputTensor[] };
export type V2OutputTensor = Static<typeof v2.V2OutputTensor>;
export type V2InferResponse = Static<typeof v2.V2InferResponse>;
export type V2ModelMetadata = Static<typeof v2.V2ModelMetadata>;

// Inference: TensorFlow Serving REST

export type TfServingValue = number | string | boolean | null | { b64: string } | TfServingValue[] | { [input: string]: TfServingValue };

/** Exactly one of `instances` (row format) or `inputs` (columnar), as the schema's descriptions say. */
export type TfServingPredictRequest =
  | { signature_name?: string; instances: TfServingValue[] }
  | { signature_name?: string; inputs: TfServingValue };

export type TfServingPredictResponse = { predictions: TfServingValue[] } | { outputs: TfServingValue };

/** A `:classify` example: feature name → a number or a list (or one feature named like the input holding its values). */
export type TfServingExample = Record<string, TfServingValue>;

export interface TfServingClassifyRequest {
  signature_name?: string;
  /** Features shared by every example; never repeated in one. */
  context?: TfServingExample;
  examples: TfServingExample[];
}

/** Per example, `[class label, score]` for every class in index order. */
export interface TfServingClassifyResponse {
  results: [string, number][][];
}

/** One message of an OpenAI-style chat (`/v1/chat/completions`). */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
}

export interface ChatCompletionRequest {
  /** `NAME`, `NAME@VERSION` or `NAME@ALIAS`. */
  model: string;
  messages: ChatMessage[];
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string | string[];
}

/** One `data:` chunk of a streamed chat completion; fields optional so a newer server cannot break a client. */
export interface ChatCompletionChunk {
  id?: string;
  model?: string;
  choices: { index: number; delta: { role?: string; content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

// Billing: plans (operator admins), the caller's quota, webhooks
export type Plan = Static<typeof billing.PlanSchema>;
export type StoredPlan = Static<typeof billing.StoredPlanView>;
export type TenantPlan = Static<typeof billing.TenantPlanView>;
export type QuotaStatus = Static<typeof billing.QuotaStatus>;
export type Invoice = Static<typeof billing.InvoiceSchema>;
export type InvoiceSummary = Static<typeof billing.InvoiceSummary>;
export type DriftReport = Static<typeof quality.DriftReport>;
export type BenchLevel = Static<typeof quality.BenchLevel>;
export type BenchReportBody = Static<typeof quality.BenchReportBody>;
export type BenchReport = Static<typeof quality.BenchReport>;
export type DatasetRows = Static<typeof quality.DatasetRows>;
export type SubmitSweepRequest = Static<typeof sweeps.SubmitSweepRequest>;
export type Sweep = Static<typeof sweeps.Sweep>;
export type SweepTrial = Static<typeof sweeps.SweepTrial>;
