import type { Generated } from 'kysely';

/**
 * Column types as stored. Kept portable between SQLite and PostgreSQL:
 * timestamps are ISO-8601 text (lexicographic order == time order because
 * `Date#toISOString` is fixed-width), JSON is text, booleans are 0/1 integers.
 */
export type IsoTimestamp = string;
export type JsonText = string;
export type BooleanInteger = 0 | 1;

export type ApiKeyRole = 'admin' | 'developer' | 'viewer' | 'inference';
export type DatasetFormat = 'csv' | 'jsonl' | 'idx';
export type ModelVersionSource = 'upload' | 'job';
/** A format's name as `runtimes/formats.ts` knows it (onnx, gguf): which runtime validates and opens the version. */
export type ModelFormat = string;
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
/** What a job does: train a model, pull a model file from a URL; later quantize, evaluate, sweep. */
export type JobKind = 'train' | 'pull' | 'quantize' | 'evaluate' | 'sweep';

export interface MigrationsTable {
  name: string;
  applied_at: IsoTimestamp;
}

export interface TenantsTable {
  id: string;
  name: string;
  created_at: IsoTimestamp;
  deleted_at: IsoTimestamp | null;
}

export interface TenantKeysTable {
  tenant_id: string;
  /** base64 of the data key as wrapped by `src/security/`; opaque here. */
  wrapped_key: string;
  master_key_version: number;
  created_at: IsoTimestamp;
}

export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  role: ApiKeyRole;
  allowed_models: JsonText | null;
  created_at: IsoTimestamp;
  expires_at: IsoTimestamp | null;
  revoked_at: IsoTimestamp | null;
  last_used_at: IsoTimestamp | null;
}

export interface DatasetsTable {
  id: string;
  tenant_id: string;
  name: string;
  format: DatasetFormat;
  artifact_ref: string;
  labels_artifact_ref: string | null;
  schema_json: JsonText;
  row_count: number;
  bytes: number;
  created_at: IsoTimestamp;
}

export interface ModelsTable {
  id: string;
  tenant_id: string;
  name: string;
  description: string;
  batching_json: JsonText | null;
  created_at: IsoTimestamp;
  /** 0: no key of the tenant may download the weights (since 0003_model_protection). */
  exportable: BooleanInteger;
  /** The owner's output policy (`src/inference/output-policy.ts`), in clear; null: none. */
  output_policy_json: JsonText | null;
}

export interface ModelVersionsTable {
  id: string;
  tenant_id: string;
  model_id: string;
  version: number;
  source: ModelVersionSource;
  onnx_ref: string;
  saved_model_refs_json: JsonText | null;
  signature_json: JsonText;
  metrics_json: JsonText | null;
  job_id: string | null;
  created_at: IsoTimestamp;
  /** How the model file is read; 'onnx' for rows older than 0002_model_format. */
  format: ModelFormat;
  /** GGUF only: `tokenizer.chat_template`, sealed tenant text. */
  chat_template: string | null;
  /** 0 when the version derives from a non-exportable one (inherited export restriction). */
  exportable: BooleanInteger;
  /** The version this one was derived from (quantized, fine-tuned), any model of the tenant. */
  parent_version_id: string | null;
  /** Canonical JSON of the signed provenance record, sealed; null for versions older than 0003_provenance. */
  provenance_json: string | null;
  /** base64 Ed25519 signature over provenance_json's plaintext bytes. */
  provenance_signature: string | null;
  /** Bytes one instance takes, measured at validation (0003_model_memory); null when not measured. */
  measured_memory_bytes: number | null;
  /** Since 0003_model_cost: the report of the quantize job that made this version (sealed). */
  quantization_json: JsonText | null;
  /** Since 0003_model_cost: the last cost calibration run's figures. */
  cost_calibration_json: JsonText | null;
}

export interface AliasesTable {
  tenant_id: string;
  model_id: string;
  name: string;
  version_id: string;
  updated_at: IsoTimestamp;
  /** Since 0003_alias_routing: `[{versionId, weight}]` when the alias splits traffic, else null. */
  split_json: JsonText | null;
  /** Since 0003_alias_routing: the version that gets a copy of the alias's traffic, if any. */
  shadow_version_id: string | null;
  /** Since 0003_alias_routing: the promotion gate a move must pass, if any. */
  gate_json: JsonText | null;
}

export interface JobsTable {
  id: string;
  tenant_id: string;
  /** Since 0002_job_kind; rows written before it are `train`. */
  kind: JobKind;
  model_name: string;
  status: JobStatus;
  spec_json: JsonText;
  settings_json: JsonText;
  dataset_id: string;
  test_dataset_id: string | null;
  epoch: number;
  step: number;
  total_epochs: number;
  /** Unused since 0002_tenant_text (always null): the latest loss is tenant content, sealed in loss_text. */
  loss: number | null;
  /** JSON of the latest loss, sealed; null before the first step. */
  loss_text: string | null;
  metrics_history_json: JsonText;
  error_json: JsonText | null;
  checkpoint_ref: string | null;
  lease_owner: string | null;
  lease_expires_at: IsoTimestamp | null;
  result_version_id: string | null;
  cancel_requested: BooleanInteger;
  created_at: IsoTimestamp;
  started_at: IsoTimestamp | null;
  finished_at: IsoTimestamp | null;
  /** The API key that submitted the job (its training is billed to it); null for jobs older than 0003_usage_ledger. */
  key_id: string | null;
  /** Since 0003_sweeps: a sweep trial's saved model (file name → artifact ref), kept instead of registering a version. */
  result_refs_json: JsonText | null;
}

export interface JobEventsTable {
  id: Generated<number>;
  tenant_id: string;
  job_id: string;
  type: string;
  payload_json: JsonText;
  created_at: IsoTimestamp;
}

export interface AuditLogTable {
  seq: Generated<number>;
  tenant_id: string | null;
  key_id: string | null;
  action: string;
  resource: string;
  outcome: string;
  ip: string;
  at: IsoTimestamp;
  detail_json: JsonText;
  prev_hash: string;
  hash: string;
  /** The model the entry concerns, if any (hashed with the entry when set). */
  model_name: string | null;
}

/**
 * The usage ledger: billable units summed per tenant, key, model, version, protocol and UTC minute.
 * `key_id` is '' where no key acted (storage samples), `model_name` '' where no model is concerned
 * (dataset storage), `version` 0 where none is known (training before its version exists).
 */
export interface UsageLedgerTable {
  tenant_id: string;
  key_id: string;
  model_name: string;
  version: number;
  protocol: string;
  /** UTC minute, `YYYY-MM-DDTHH:MM`. */
  minute: string;
  requests: number;
  failed_requests: number;
  items: number;
  prompt_tokens: number;
  completion_tokens: number;
  compute_us: number;
  queue_us: number;
  bytes_in: number;
  bytes_out: number;
  training_sample_epochs: number;
  training_worker_ms: number;
  stored_byte_hours: number;
}

/** Since 0003_evaluations: one finished evaluation report (its id is the evaluate job's id). */
export interface EvaluationsTable {
  id: string;
  tenant_id: string;
  model_id: string;
  model_name: string;
  version_id: string;
  version: number;
  dataset_id: string;
  /** Sealed: the request (output, label, class names, top-k). */
  settings_json: JsonText;
  /** Sealed: the report. */
  report_json: JsonText;
  created_at: IsoTimestamp;
}

export interface Schema {
  migrations: MigrationsTable;
  tenants: TenantsTable;
  tenant_keys: TenantKeysTable;
  api_keys: ApiKeysTable;
  datasets: DatasetsTable;
  models: ModelsTable;
  model_versions: ModelVersionsTable;
  aliases: AliasesTable;
  jobs: JobsTable;
  job_events: JobEventsTable;
  audit_log: AuditLogTable;
  usage_ledger: UsageLedgerTable;
  evaluations: EvaluationsTable;
  plans: PlansTable;
  tenant_plans: TenantPlansTable;
  quota_usage: QuotaUsageTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  version_reports: VersionReportsTable;
  sweeps: SweepsTable;
  sweep_trials: SweepTrialsTable;
}

export interface PlansTable {
  name: string;
  /** The validated plan (src/billing/plans.ts). */
  document_json: JsonText;
  source: 'file' | 'api';
  created_at: IsoTimestamp;
  updated_at: IsoTimestamp;
}

export interface TenantPlansTable {
  id: Generated<number>;
  tenant_id: string;
  plan_name: string;
  /** The plan as it was while this row was in force. */
  plan_json: JsonText;
  effective_from: IsoTimestamp;
  /** Null while in force. */
  effective_to: IsoTimestamp | null;
}

export interface QuotaUsageTable {
  tenant_id: string;
  /** UTC calendar month, `YYYY-MM`. */
  period: string;
  predictions: number;
  prompt_tokens: number;
  completion_tokens: number;
  training_worker_seconds: number;
  soft_cap_crossed_at: IsoTimestamp | null;
}

export interface WebhooksTable {
  tenant_id: string;
  url: string;
  events_json: JsonText;
  /** The signing secret, sealed under the tenant's data key. */
  secret_text: string;
  created_at: IsoTimestamp;
}

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface WebhookDeliveriesTable {
  id: string;
  tenant_id: string;
  event: string;
  body: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  next_attempt_at: IsoTimestamp;
  last_error: string | null;
  created_at: IsoTimestamp;
  delivered_at: IsoTimestamp | null;
}

export type VersionReportKind = 'drift-baseline' | 'bench';

export interface VersionReportsTable {
  id: string;
  tenant_id: string;
  version_id: string;
  kind: VersionReportKind;
  /** Sealed tenant text. */
  body_json: JsonText;
  created_at: IsoTimestamp;
}

export type SweepStatus = 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface SweepsTable {
  id: string;
  tenant_id: string;
  model_name: string;
  status: SweepStatus;
  /** The parsed request (base job, space, strategy, budget, metric), sealed. */
  definition_json: JsonText;
  result_version_id: string | null;
  created_at: IsoTimestamp;
  finished_at: IsoTimestamp | null;
}

export interface SweepTrialsTable {
  /** The trial's job id. */
  id: string;
  sweep_id: string;
  tenant_id: string;
  trial: number;
  /** Successive halving's round (0 for grid and random). */
  rung: number;
  /** The trial's chosen values, sealed. */
  params_json: JsonText;
  created_at: IsoTimestamp;
}
