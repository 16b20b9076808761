import type { Kysely, Selectable } from 'kysely';
import type { EvaluationsTable, Schema } from '../schema.ts';
import { fromJsonText, toJsonText } from '../support.ts';
import { repositorySettings, SealedRows } from './sealed-rows.ts';
import type { RepositoryOptions } from './tenants.ts';

/** A stored evaluation report; `settings` and `report` shapes are owned by src/quality/. */
export interface EvaluationRecord {
  /** The evaluate job's id. */
  readonly id: string;
  readonly tenantId: string;
  readonly modelId: string;
  readonly modelName: string;
  readonly versionId: string;
  readonly version: number;
  readonly datasetId: string;
  readonly settings: unknown;
  readonly report: unknown;
  readonly createdAt: string;
}

export type NewEvaluation = Omit<EvaluationRecord, 'tenantId' | 'createdAt'>;

function toEvaluation(row: Selectable<EvaluationsTable>): EvaluationRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    modelId: row.model_id,
    modelName: row.model_name,
    versionId: row.version_id,
    version: Number(row.version),
    datasetId: row.dataset_id,
    settings: fromJsonText<unknown>(row.settings_json),
    report: fromJsonText<unknown>(row.report_json),
    createdAt: row.created_at,
  };
}

/** Finished evaluation reports, per model version and dataset. */
export class EvaluationRepository {
  readonly #db: Kysely<Schema>;
  readonly #now: () => Date;
  readonly #rows: SealedRows<Selectable<EvaluationsTable>, EvaluationRecord>;

  constructor(db: Kysely<Schema>, options: RepositoryOptions = {}) {
    const { now, text } = repositorySettings(options);
    this.#db = db;
    this.#now = now;
    this.#rows = new SealedRows(text, 'evaluations', toEvaluation);
  }

  async create(tenantId: string, input: NewEvaluation): Promise<EvaluationRecord> {
    const row: Selectable<EvaluationsTable> = {
      id: input.id,
      tenant_id: tenantId,
      model_id: input.modelId,
      model_name: input.modelName,
      version_id: input.versionId,
      version: input.version,
      dataset_id: input.datasetId,
      settings_json: toJsonText(input.settings ?? null),
      report_json: toJsonText(input.report ?? null),
      created_at: this.#now().toISOString(),
    };
    await this.#db.insertInto('evaluations').values(await this.#rows.seal(row)).execute();
    return toEvaluation(row);
  }

  async get(tenantId: string, id: string): Promise<EvaluationRecord | undefined> {
    const row = await this.#db.selectFrom('evaluations').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
    return this.#rows.openFound(row);
  }

  /** A version's reports, newest first; with `datasetId`, only those on that dataset. */
  async listForVersion(tenantId: string, versionId: string, filter: { datasetId?: string; limit?: number } = {}): Promise<EvaluationRecord[]> {
    let query = this.#db.selectFrom('evaluations').selectAll().where('tenant_id', '=', tenantId).where('version_id', '=', versionId);
    if (filter.datasetId !== undefined) query = query.where('dataset_id', '=', filter.datasetId);
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(Math.max(1, Math.min(1000, filter.limit ?? 100))).execute();
    return this.#rows.openAll(rows);
  }

  /** Removes the reports of deleted versions. */
  async deleteForVersions(tenantId: string, versionIds: readonly string[]): Promise<void> {
    if (versionIds.length === 0) return;
    await this.#db.deleteFrom('evaluations').where('tenant_id', '=', tenantId).where('version_id', 'in', [...versionIds]).execute();
  }
}
