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
}

export interface AliasesTable {
  tenant_id: string;
  model_id: string;
  name: string;
  version_id: string;
  updated_at: IsoTimestamp;
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
}
