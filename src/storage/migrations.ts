import { sql, type Kysely, type CreateTableBuilder } from 'kysely';
import { AiaasError } from '../errors.ts';
import type { Schema } from './schema.ts';
import { transactionWithRetry } from './support.ts';

export type SqlDialectName = 'sqlite' | 'postgres';

export interface MigrationContext {
  readonly dialect: SqlDialectName;
}

/**
 * A migration sees the database as it was when the migration was written, not
 * as `Schema` describes it today, hence the untyped handle.
 */
export interface Migration {
  readonly name: string;
  up(db: Kysely<unknown>, context: MigrationContext): Promise<void>;
}

/**
 * SQLite spells an auto-increment key `integer primary key autoincrement`,
 * PostgreSQL wants an identity column; everything else below is common DDL.
 * "By default", not "always": the audit log inserts its seq explicitly.
 */
function addAutoIncrementKey<T extends string>(
  table: CreateTableBuilder<T, never>,
  column: string,
  context: MigrationContext,
): CreateTableBuilder<T, never> {
  return context.dialect === 'postgres'
    ? table.addColumn(column, 'integer', (col) => col.primaryKey().generatedByDefaultAsIdentity())
    : table.addColumn(column, 'integer', (col) => col.primaryKey().autoIncrement());
}

export const migrations: readonly Migration[] = [
  {
    name: '0001_initial',
    async up(db, context) {
      await db.schema
        .createTable('tenants')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('name', 'text', (col) => col.notNull().unique())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addColumn('deleted_at', 'text')
        .execute();

      await db.schema
        .createTable('tenant_keys')
        .addColumn('tenant_id', 'text', (col) => col.primaryKey().references('tenants.id'))
        .addColumn('wrapped_key', 'text', (col) => col.notNull())
        .addColumn('master_key_version', 'integer', (col) => col.notNull())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .execute();

      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('name', 'text', (col) => col.notNull())
        .addColumn('prefix', 'text', (col) => col.notNull())
        .addColumn('key_hash', 'text', (col) => col.notNull().unique())
        .addColumn('role', 'text', (col) =>
          col.notNull().check(sql`role in ('admin', 'developer', 'viewer', 'inference')`),
        )
        .addColumn('allowed_models', 'text')
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('last_used_at', 'text')
        .execute();
      await db.schema.createIndex('api_keys_tenant').on('api_keys').columns(['tenant_id', 'created_at']).execute();

      await db.schema
        .createTable('datasets')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('name', 'text', (col) => col.notNull())
        .addColumn('format', 'text', (col) => col.notNull().check(sql`format in ('csv', 'jsonl', 'idx')`))
        .addColumn('artifact_ref', 'text', (col) => col.notNull())
        .addColumn('labels_artifact_ref', 'text')
        .addColumn('schema_json', 'text', (col) => col.notNull())
        .addColumn('row_count', 'bigint', (col) => col.notNull())
        .addColumn('bytes', 'bigint', (col) => col.notNull())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addUniqueConstraint('datasets_tenant_name', ['tenant_id', 'name'])
        .execute();

      await db.schema
        .createTable('models')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('name', 'text', (col) => col.notNull())
        .addColumn('description', 'text', (col) => col.notNull())
        .addColumn('batching_json', 'text')
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addUniqueConstraint('models_tenant_name', ['tenant_id', 'name'])
        .execute();

      await db.schema
        .createTable('model_versions')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('model_id', 'text', (col) => col.notNull().references('models.id').onDelete('cascade'))
        .addColumn('version', 'integer', (col) => col.notNull())
        .addColumn('source', 'text', (col) => col.notNull().check(sql`source in ('upload', 'job')`))
        .addColumn('onnx_ref', 'text', (col) => col.notNull())
        .addColumn('saved_model_refs_json', 'text')
        .addColumn('signature_json', 'text', (col) => col.notNull())
        .addColumn('metrics_json', 'text')
        .addColumn('job_id', 'text')
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addUniqueConstraint('model_versions_model_version', ['model_id', 'version'])
        .execute();

      await db.schema
        .createTable('aliases')
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('model_id', 'text', (col) => col.notNull().references('models.id').onDelete('cascade'))
        .addColumn('name', 'text', (col) => col.notNull())
        // No cascade: a version an alias points to must not silently vanish (ALIAS_IN_USE).
        .addColumn('version_id', 'text', (col) => col.notNull().references('model_versions.id'))
        .addColumn('updated_at', 'text', (col) => col.notNull())
        .addPrimaryKeyConstraint('aliases_pk', ['model_id', 'name'])
        .execute();
      await db.schema.createIndex('aliases_version').on('aliases').column('version_id').execute();

      await db.schema
        .createTable('jobs')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('model_name', 'text', (col) => col.notNull())
        .addColumn('status', 'text', (col) =>
          col.notNull().check(sql`status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')`),
        )
        .addColumn('spec_json', 'text', (col) => col.notNull())
        .addColumn('settings_json', 'text', (col) => col.notNull())
        // Plain ids, not foreign keys: job history must outlive a deleted dataset or version.
        .addColumn('dataset_id', 'text', (col) => col.notNull())
        .addColumn('test_dataset_id', 'text')
        .addColumn('epoch', 'integer', (col) => col.notNull())
        .addColumn('step', 'integer', (col) => col.notNull())
        .addColumn('total_epochs', 'integer', (col) => col.notNull())
        .addColumn('loss', 'double precision')
        .addColumn('metrics_history_json', 'text', (col) => col.notNull())
        .addColumn('error_json', 'text')
        .addColumn('checkpoint_ref', 'text')
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', 'text')
        .addColumn('result_version_id', 'text')
        .addColumn('cancel_requested', 'integer', (col) => col.notNull())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .execute();
      await db.schema.createIndex('jobs_status_created').on('jobs').columns(['status', 'created_at']).execute();
      await db.schema.createIndex('jobs_tenant_created').on('jobs').columns(['tenant_id', 'created_at']).execute();

      await addAutoIncrementKey(db.schema.createTable('job_events'), 'id', context)
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('job_id', 'text', (col) => col.notNull().references('jobs.id').onDelete('cascade'))
        .addColumn('type', 'text', (col) => col.notNull())
        .addColumn('payload_json', 'text', (col) => col.notNull())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .execute();
      await db.schema.createIndex('job_events_job').on('job_events').columns(['job_id', 'id']).execute();

      await addAutoIncrementKey(db.schema.createTable('audit_log'), 'seq', context)
        .addColumn('tenant_id', 'text')
        .addColumn('key_id', 'text')
        .addColumn('action', 'text', (col) => col.notNull())
        .addColumn('resource', 'text', (col) => col.notNull())
        .addColumn('outcome', 'text', (col) => col.notNull())
        .addColumn('ip', 'text', (col) => col.notNull())
        .addColumn('at', 'text', (col) => col.notNull())
        .addColumn('detail_json', 'text', (col) => col.notNull())
        // Unique so two writers racing on the same predecessor cannot fork the chain.
        .addColumn('prev_hash', 'text', (col) => col.notNull().unique())
        .addColumn('hash', 'text', (col) => col.notNull().unique())
        .execute();
      await db.schema.createIndex('audit_log_tenant').on('audit_log').columns(['tenant_id', 'seq']).execute();

      await db.schema
        .createTable('usage_counters')
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('model_name', 'text', (col) => col.notNull())
        .addColumn('day', 'text', (col) => col.notNull())
        .addColumn('requests', 'bigint', (col) => col.notNull())
        .addPrimaryKeyConstraint('usage_counters_pk', ['tenant_id', 'model_name', 'day'])
        .execute();
    },
  },
  {
    // Audit entries name the model they concern, so a key restricted to some models reads only theirs.
    name: '0002_audit_model',
    async up(db) {
      await db.schema.alterTable('audit_log').addColumn('model_name', 'text').execute();
      await db.schema.createIndex('audit_log_tenant_model').on('audit_log').columns(['tenant_id', 'model_name', 'seq']).execute();
    },
  },
  {
    // Tenant text becomes sealed under the tenant's key. The sealing itself needs keys, which a
    // migration has not: the server does it at start (src/storage/seal-tenant-text.ts). Here only
    // the column for the latest loss, which moves out of the clear `loss` column.
    name: '0002_tenant_text',
    async up(db) {
      await db.schema.alterTable('jobs').addColumn('loss_text', 'text').execute();
    },
  },
  {
    // Model versions of more than one format (ONNX, GGUF): the registry picks the runtime by it.
    // Existing rows are ONNX. A GGUF version keeps its chat template (tenant text, sealed) apart
    // from its signature, which stays small enough to list.
    name: '0002_model_format',
    async up(db) {
      await db.schema.alterTable('model_versions').addColumn('format', 'text', (col) => col.notNull().defaultTo('onnx')).execute();
      await db.schema.alterTable('model_versions').addColumn('chat_template', 'text').execute();
    },
  },
  {
    // Language-model tokens per tenant, key, model, version and UTC day (the request counters above
    // know only tenant, model and day).
    name: '0002_token_usage',
    async up(db) {
      await db.schema
        .createTable('token_usage')
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('key_id', 'text', (col) => col.notNull())
        .addColumn('model_name', 'text', (col) => col.notNull())
        .addColumn('version', 'integer', (col) => col.notNull())
        .addColumn('day', 'text', (col) => col.notNull())
        .addColumn('requests', 'bigint', (col) => col.notNull())
        .addColumn('prompt_tokens', 'bigint', (col) => col.notNull())
        .addColumn('completion_tokens', 'bigint', (col) => col.notNull())
        .addPrimaryKeyConstraint('token_usage_pk', ['tenant_id', 'key_id', 'model_name', 'version', 'day'])
        .execute();
    },
  },
  {
    // Jobs of more kinds than training: pull now; quantize, evaluate and sweep later. Every row
    // written before this migration is a training job, which the default records.
    name: '0002_job_kind',
    async up(db) {
      await db.schema
        .alterTable('jobs')
        .addColumn('kind', 'text', (col) => col.notNull().defaultTo('train').check(sql`kind in ('train', 'pull', 'quantize', 'evaluate', 'sweep')`))
        .execute();
    },
  },
  {
    // The usage ledger (src/billing/ledger.ts) replaces the per-day request counters and token rows:
    // every billable unit per tenant, key, model, version, protocol and UTC minute. Their history
    // moves in at midnight of its day under the protocol 'legacy' (token rows keep their key and
    // version; requests the counters hold beyond the token rows' become rows with neither). Jobs
    // gain the key that submitted them.
    name: '0003_usage_ledger',
    async up(db) {
      const units = ['requests', 'failed_requests', 'items', 'prompt_tokens', 'completion_tokens', 'compute_us', 'queue_us', 'bytes_in', 'bytes_out', 'training_sample_epochs', 'training_worker_ms', 'stored_byte_hours'];
      let table = db.schema
        .createTable('usage_ledger')
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('key_id', 'text', (col) => col.notNull())
        .addColumn('model_name', 'text', (col) => col.notNull())
        .addColumn('version', 'integer', (col) => col.notNull())
        .addColumn('protocol', 'text', (col) => col.notNull())
        .addColumn('minute', 'text', (col) => col.notNull());
      for (const unit of units) table = table.addColumn(unit, 'bigint', (col) => col.notNull().defaultTo(0));
      await table.addPrimaryKeyConstraint('usage_ledger_pk', ['tenant_id', 'minute', 'model_name', 'version', 'key_id', 'protocol']).execute();
      await sql`insert into usage_ledger (tenant_id, key_id, model_name, version, protocol, minute, requests, prompt_tokens, completion_tokens)
        select tenant_id, key_id, model_name, version, 'legacy', day || 'T00:00', requests, prompt_tokens, completion_tokens from token_usage`.execute(db);
      await sql`insert into usage_ledger (tenant_id, key_id, model_name, version, protocol, minute, requests)
        select c.tenant_id, '', c.model_name, 0, 'legacy', c.day || 'T00:00',
          c.requests - coalesce((select sum(t.requests) from token_usage t where t.tenant_id = c.tenant_id and t.model_name = c.model_name and t.day = c.day), 0)
        from usage_counters c
        where c.requests > coalesce((select sum(t.requests) from token_usage t where t.tenant_id = c.tenant_id and t.model_name = c.model_name and t.day = c.day), 0)`.execute(db);
      await db.schema.dropTable('token_usage').execute();
      await db.schema.dropTable('usage_counters').execute();
      // Jobs remember the key that submitted them, so their training is billed to it (null: older jobs).
      await db.schema.alterTable('jobs').addColumn('key_id', 'text').execute();
    },
  },
  {
    // Export control and output policies. `exportable` is 1 (downloadable) for every older model and
    // version; a version's own mark is inherited from its parent (a quantized or fine-tuned copy).
    name: '0003_model_protection',
    async up(db) {
      await db.schema.alterTable('models').addColumn('exportable', 'integer', (col) => col.notNull().defaultTo(1)).execute();
      await db.schema.alterTable('models').addColumn('output_policy_json', 'text').execute();
      await db.schema.alterTable('model_versions').addColumn('exportable', 'integer', (col) => col.notNull().defaultTo(1)).execute();
      await db.schema.alterTable('model_versions').addColumn('parent_version_id', 'text').execute();
    },
  },
  {
    // A signed provenance record per version (sealed tenant text) and its Ed25519 signature (base64).
    // Versions stored before this migration have none.
    name: '0003_provenance',
    async up(db) {
      await db.schema.alterTable('model_versions').addColumn('provenance_json', 'text').execute();
      await db.schema.alterTable('model_versions').addColumn('provenance_signature', 'text').execute();
    },
  },
  {
    // Plans (src/billing/plans.ts), each tenant's plan history (effective from/to, with the plan as it
    // was, so an invoice of a closed month recomputes from what was in force), and the per-period
    // quota counters admission reserves against with one conditional UPDATE.
    name: '0003_plans_quotas',
    async up(db, context) {
      await db.schema
        .createTable('plans')
        .addColumn('name', 'text', (col) => col.primaryKey())
        .addColumn('document_json', 'text', (col) => col.notNull())
        .addColumn('source', 'text', (col) => col.notNull().check(sql`source in ('file', 'api')`))
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addColumn('updated_at', 'text', (col) => col.notNull())
        .execute();
      await addAutoIncrementKey(db.schema.createTable('tenant_plans'), 'id', context)
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('plan_name', 'text', (col) => col.notNull())
        .addColumn('plan_json', 'text', (col) => col.notNull())
        .addColumn('effective_from', 'text', (col) => col.notNull())
        .addColumn('effective_to', 'text')
        .execute();
      await db.schema.createIndex('tenant_plans_tenant').on('tenant_plans').columns(['tenant_id', 'effective_from']).execute();
      await db.schema
        .createTable('quota_usage')
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('period', 'text', (col) => col.notNull())
        .addColumn('predictions', 'bigint', (col) => col.notNull().defaultTo(0))
        .addColumn('prompt_tokens', 'bigint', (col) => col.notNull().defaultTo(0))
        .addColumn('completion_tokens', 'bigint', (col) => col.notNull().defaultTo(0))
        .addColumn('training_worker_seconds', 'bigint', (col) => col.notNull().defaultTo(0))
        .addColumn('soft_cap_crossed_at', 'text')
        .addPrimaryKeyConstraint('quota_usage_pk', ['tenant_id', 'period'])
        .execute();
    },
  },
  {
    // One webhook per tenant (its signing secret sealed under the tenant's key) and the deliveries,
    // kept until delivered or out of attempts so a restart resumes them.
    name: '0003_webhooks',
    async up(db) {
      await db.schema
        .createTable('webhooks')
        .addColumn('tenant_id', 'text', (col) => col.primaryKey().references('tenants.id'))
        .addColumn('url', 'text', (col) => col.notNull())
        .addColumn('events_json', 'text', (col) => col.notNull())
        .addColumn('secret_text', 'text', (col) => col.notNull())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .execute();
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('event', 'text', (col) => col.notNull())
        .addColumn('body', 'text', (col) => col.notNull())
        .addColumn('status', 'text', (col) => col.notNull().check(sql`status in ('pending', 'delivered', 'failed')`))
        .addColumn('attempts', 'integer', (col) => col.notNull())
        .addColumn('next_attempt_at', 'text', (col) => col.notNull())
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addColumn('delivered_at', 'text')
        .execute();
      await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['status', 'next_attempt_at']).execute();
    },
  },
  {
    // Documents kept with a model version: drift baselines (training or evaluation inputs) and
    // load-test reports. The body is sealed tenant text; deleting the version deletes them.
    name: '0003_version_reports',
    async up(db) {
      await db.schema
        .createTable('version_reports')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('version_id', 'text', (col) => col.notNull().references('model_versions.id').onDelete('cascade'))
        .addColumn('kind', 'text', (col) => col.notNull().check(sql`kind in ('drift-baseline', 'bench')`))
        .addColumn('body_json', 'text', (col) => col.notNull())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .execute();
      await db.schema.createIndex('version_reports_by_version').on('version_reports').columns(['tenant_id', 'version_id', 'kind', 'created_at']).execute();
    },
  },
  {
    // Hyperparameter sweeps and their trials (each trial is a training job that keeps its result
    // in jobs.result_refs_json instead of registering a version).
    name: '0003_sweeps',
    async up(db) {
      await db.schema
        .createTable('sweeps')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('model_name', 'text', (col) => col.notNull())
        .addColumn('status', 'text', (col) => col.notNull().check(sql`status in ('running', 'succeeded', 'failed', 'cancelled')`))
        .addColumn('definition_json', 'text', (col) => col.notNull())
        .addColumn('result_version_id', 'text')
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addColumn('finished_at', 'text')
        .execute();
      await db.schema
        .createTable('sweep_trials')
        // The trial's job id: one job per trial and rung.
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('sweep_id', 'text', (col) => col.notNull().references('sweeps.id').onDelete('cascade'))
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('trial', 'integer', (col) => col.notNull())
        .addColumn('rung', 'integer', (col) => col.notNull())
        .addColumn('params_json', 'text', (col) => col.notNull())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .addUniqueConstraint('sweep_trials_unique', ['sweep_id', 'trial', 'rung'])
        .execute();
      await db.schema.alterTable('jobs').addColumn('result_refs_json', 'text').execute();
    },
  },
  {
    // The memory one instance of a version takes, measured in the validation child (RSS after
    // opening the model and one run on zeros, minus RSS before). Null for versions stored before
    // this migration (measured at their first load) and where the format does not measure.
    name: '0003_model_memory',
    async up(db) {
      await db.schema.alterTable('model_versions').addColumn('measured_memory_bytes', 'bigint').execute();
    },
  },
  {
    // Evaluation reports: one row per finished `evaluate` job (the row id is the job's id). The
    // report and the request's settings are tenant content, sealed like a version's metrics.
    name: '0003_evaluations',
    async up(db) {
      await db.schema
        .createTable('evaluations')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.id'))
        .addColumn('model_id', 'text', (col) => col.notNull())
        .addColumn('model_name', 'text', (col) => col.notNull())
        .addColumn('version_id', 'text', (col) => col.notNull())
        .addColumn('version', 'integer', (col) => col.notNull())
        .addColumn('dataset_id', 'text', (col) => col.notNull())
        .addColumn('settings_json', 'text', (col) => col.notNull())
        .addColumn('report_json', 'text', (col) => col.notNull())
        .addColumn('created_at', 'text', (col) => col.notNull())
        .execute();
      await db.schema.createIndex('evaluations_by_version').on('evaluations').columns(['tenant_id', 'version_id', 'dataset_id', 'created_at']).execute();
    },
  },
  {
    // Aliases that do more than point at one version: a weighted split (canary), a shadow version
    // that gets a copy of the traffic, and a promotion gate. `version_id` stays the version a plain
    // reader sees (a split's heaviest version), so older code reads such an alias sensibly.
    name: '0003_alias_routing',
    async up(db) {
      await db.schema.alterTable('aliases').addColumn('split_json', 'text').execute();
      await db.schema.alterTable('aliases').addColumn('shadow_version_id', 'text').execute();
      await db.schema.alterTable('aliases').addColumn('gate_json', 'text').execute();
    },
  },
  {
    // Cost cards and int8 quantization: a quantized version keeps its report (node names: tenant
    // text, sealed); every version may keep the figures of its last calibration run (numbers only).
    name: '0003_model_cost',
    async up(db) {
      await db.schema.alterTable('model_versions').addColumn('quantization_json', 'text').execute();
      await db.schema.alterTable('model_versions').addColumn('cost_calibration_json', 'text').execute();
    },
  },
];

/**
 * Applies every migration not yet recorded in the `migrations` table, each in
 * its own transaction together with its bookkeeping row, so a crash leaves the
 * database at a migration boundary. Returns the names applied by this call.
 */
export async function migrateToLatest(
  db: Kysely<Schema>,
  options: { context: MigrationContext; now?: () => Date; migrations?: readonly Migration[] },
): Promise<string[]> {
  const list = options.migrations ?? migrations;
  const now = options.now ?? (() => new Date());

  await db.schema
    .createTable('migrations')
    .ifNotExists()
    .addColumn('name', 'text', (col) => col.primaryKey())
    .addColumn('applied_at', 'text', (col) => col.notNull())
    .execute();

  const known = new Set(list.map((migration) => migration.name));
  const recorded = await db.selectFrom('migrations').select('name').execute();
  const unknown = recorded.map((row) => row.name).filter((name) => !known.has(name));
  if (unknown.length > 0) {
    // Running old code on a newer schema would corrupt data in ways no error reports later.
    throw new AiaasError('CONFIG_INVALID', 'The database was migrated by a newer version of aiaas', {
      details: { unknownMigrations: unknown },
    });
  }

  const applied: string[] = [];
  for (const migration of list) {
    // A lost race (another process applied it after our check) surfaces as a write conflict;
    // the retry's check then finds the migration recorded and skips it.
    const didApply = await transactionWithRetry(db, async (transaction) => {
      // Re-checked inside the transaction: another process may have applied it meanwhile.
      const existing = await transaction
        .selectFrom('migrations')
        .select('name')
        .where('name', '=', migration.name)
        .executeTakeFirst();
      if (existing !== undefined) return false;
      await migration.up(transaction as unknown as Kysely<unknown>, options.context);
      await transaction.insertInto('migrations').values({ name: migration.name, applied_at: now().toISOString() }).execute();
      return true;
    });
    if (didApply) applied.push(migration.name);
  }
  return applied;
}
