import type { Kysely } from 'kysely';
import type { Schema } from '../schema.ts';
import { inTransaction } from '../support.ts';

/**
 * A tenant's stored content across tables, for tenant deletion: which artifacts its rows point
 * to, and removing the rows that point to them. Audit entries, usage counters and job history
 * stay (the audit chain must verify); they point at no artifact once this has run.
 */
export class TenantContentRepository {
  readonly #db: Kysely<Schema>;

  constructor(db: Kysely<Schema>) {
    this.#db = db;
  }

  /** Every artifact ref a row of `tenantId` points to (datasets, model versions, job checkpoints). */
  async artifactRefs(tenantId: string): Promise<string[]> {
    return [...(await this.#refs(tenantId, 'only'))];
  }

  /** The refs that rows of any tenant other than `tenantId` point to. */
  async artifactRefsOfOtherTenants(tenantId: string): Promise<Set<string>> {
    return this.#refs(tenantId, 'others');
  }

  async #refs(tenantId: string, whose: 'only' | 'others'): Promise<Set<string>> {
    const operator = whose === 'only' ? '=' : '<>';
    const refs = new Set<string>();
    const datasets = await this.#db.selectFrom('datasets').select(['artifact_ref', 'labels_artifact_ref']).where('tenant_id', operator, tenantId).execute();
    for (const row of datasets) {
      refs.add(row.artifact_ref);
      if (row.labels_artifact_ref !== null) refs.add(row.labels_artifact_ref);
    }
    const versions = await this.#db.selectFrom('model_versions').select(['onnx_ref', 'saved_model_refs_json']).where('tenant_id', operator, tenantId).execute();
    for (const row of versions) {
      refs.add(row.onnx_ref);
      if (row.saved_model_refs_json === null) continue;
      const saved = JSON.parse(row.saved_model_refs_json) as Record<string, unknown>;
      for (const ref of Object.values(saved)) if (typeof ref === 'string') refs.add(ref);
    }
    const jobs = await this.#db.selectFrom('jobs').select(['checkpoint_ref', 'result_refs_json']).where('tenant_id', operator, tenantId).execute();
    for (const row of jobs) {
      if (row.checkpoint_ref !== null) refs.add(row.checkpoint_ref);
      if (row.result_refs_json === null) continue;
      const kept = JSON.parse(row.result_refs_json) as Record<string, unknown>;
      for (const ref of Object.values(kept)) if (typeof ref === 'string') refs.add(ref);
    }
    return refs;
  }

  /** Tenants with at least one row naming an artifact: each must have a data key (or a tombstone). */
  async tenantsWithArtifacts(): Promise<string[]> {
    const rows = await this.#db
      .selectFrom('datasets')
      .select('tenant_id')
      .union(this.#db.selectFrom('model_versions').select('tenant_id'))
      .union(this.#db.selectFrom('jobs').select('tenant_id').where('checkpoint_ref', 'is not', null))
      .union(this.#db.selectFrom('jobs').select('tenant_id').where('result_refs_json', 'is not', null))
      .execute();
    return rows.map((row) => row.tenant_id).sort();
  }

  /** Removes the tenant's datasets, models, versions and aliases, and forgets its jobs' checkpoints. */
  async deleteContent(tenantId: string): Promise<void> {
    await inTransaction(this.#db, async (transaction) => {
      await transaction.deleteFrom('aliases').where('tenant_id', '=', tenantId).execute();
      await transaction.deleteFrom('evaluations').where('tenant_id', '=', tenantId).execute();
      await transaction.deleteFrom('model_versions').where('tenant_id', '=', tenantId).execute();
      await transaction.deleteFrom('models').where('tenant_id', '=', tenantId).execute();
      await transaction.deleteFrom('datasets').where('tenant_id', '=', tenantId).execute();
      await transaction.updateTable('jobs').set({ checkpoint_ref: null, result_refs_json: null }).where('tenant_id', '=', tenantId).execute();
    });
  }
}
