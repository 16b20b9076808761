import type { Kysely } from 'kysely';
import type { Schema } from '../schema.ts';
import { inTransaction } from '../support.ts';

/** One row's use of an artifact: who owns it (the key it is encrypted under) and its ref. */
export interface ArtifactReference {
  readonly tenantId: string;
  readonly ref: string;
}

/**
 * Every column that names an artifact, across tables: what a change of artifact format must walk,
 * and rewrite. Dataset files, model files (the .onnx, the saved-model and external-data files kept
 * as JSON), job checkpoints. The same columns are listed for backups and `admin check` in
 * `src/storage/artifact-references.ts` (synchronous, over a raw connection, no rewriting); a new
 * column must go into both (test/integration/legacy-data-dir-migration.test.ts compares them).
 */
export class ArtifactReferenceRepository {
  readonly #db: Kysely<Schema>;

  constructor(db: Kysely<Schema>) {
    this.#db = db;
  }

  /** Each (tenant, ref) once. */
  async list(): Promise<ArtifactReference[]> {
    const found = new Map<string, ArtifactReference>();
    const add = (tenantId: string, ref: string | null | undefined) => {
      if (typeof ref === 'string' && ref !== '') found.set(`${tenantId}\u0000${ref}`, { tenantId, ref });
    };
    for (const row of await this.#db.selectFrom('datasets').select(['tenant_id', 'artifact_ref', 'labels_artifact_ref']).execute()) {
      add(row.tenant_id, row.artifact_ref);
      add(row.tenant_id, row.labels_artifact_ref);
    }
    for (const row of await this.#db.selectFrom('model_versions').select(['tenant_id', 'onnx_ref', 'saved_model_refs_json']).execute()) {
      add(row.tenant_id, row.onnx_ref);
      for (const ref of Object.values(savedModelRefs(row.saved_model_refs_json))) add(row.tenant_id, ref);
    }
    for (const row of await this.#db.selectFrom('jobs').select(['tenant_id', 'checkpoint_ref']).where('checkpoint_ref', 'is not', null).execute()) {
      add(row.tenant_id, row.checkpoint_ref);
    }
    return [...found.values()];
  }

  /** Points every one of the tenant's columns that name `oldRef` at `newRef`, in one transaction. Returns how many changed. */
  async replace(tenantId: string, oldRef: string, newRef: string): Promise<number> {
    return inTransaction(this.#db, async (db) => {
      let changed = 0;
      const count = (results: readonly { numUpdatedRows: bigint }[]) => {
        for (const result of results) changed += Number(result.numUpdatedRows);
      };
      count(await db.updateTable('datasets').set({ artifact_ref: newRef }).where('tenant_id', '=', tenantId).where('artifact_ref', '=', oldRef).execute());
      count(await db.updateTable('datasets').set({ labels_artifact_ref: newRef }).where('tenant_id', '=', tenantId).where('labels_artifact_ref', '=', oldRef).execute());
      count(await db.updateTable('model_versions').set({ onnx_ref: newRef }).where('tenant_id', '=', tenantId).where('onnx_ref', '=', oldRef).execute());
      count(await db.updateTable('jobs').set({ checkpoint_ref: newRef }).where('tenant_id', '=', tenantId).where('checkpoint_ref', '=', oldRef).execute());
      const versions = await db
        .selectFrom('model_versions')
        .select(['id', 'saved_model_refs_json'])
        .where('tenant_id', '=', tenantId)
        .where('saved_model_refs_json', 'like', `%${oldRef}%`)
        .execute();
      for (const version of versions) {
        const refs = savedModelRefs(version.saved_model_refs_json);
        let touched = false;
        for (const [file, ref] of Object.entries(refs)) {
          if (ref !== oldRef) continue;
          refs[file] = newRef;
          touched = true;
        }
        if (!touched) continue;
        await db.updateTable('model_versions').set({ saved_model_refs_json: JSON.stringify(refs) }).where('id', '=', version.id).execute();
        changed += 1;
      }
      return changed;
    });
  }
}

function savedModelRefs(json: string | null): Record<string, string> {
  if (json === null) return {};
  const parsed = JSON.parse(json) as unknown;
  if (typeof parsed !== 'object' || parsed === null) return {};
  const refs: Record<string, string> = {};
  for (const [file, ref] of Object.entries(parsed)) if (typeof ref === 'string') refs[file] = ref;
  return refs;
}
