import { sql, type Kysely } from 'kysely';
import { artifactReferenceColumns, refsIn } from '../artifact-references.ts';
import type { Schema } from '../schema.ts';
import { inTransaction } from '../support.ts';

/** One row's use of an artifact: who owns it (the key it is encrypted under) and its ref. */
export interface ArtifactReference {
  readonly tenantId: string;
  readonly ref: string;
}

/**
 * Every column that names an artifact (`artifactReferenceColumns`, the one list that backups and
 * `admin check` read too): what a change of artifact format must walk, and rewrite.
 */
export class ArtifactReferenceRepository {
  readonly #db: Kysely<Schema>;

  constructor(db: Kysely<Schema>) {
    this.#db = db;
  }

  /** Each (tenant, ref) once. */
  async list(): Promise<ArtifactReference[]> {
    const found = new Map<string, ArtifactReference>();
    for (const { table, column, kind } of artifactReferenceColumns) {
      const rows = await sql<{ tenant_id: string; value: string | null }>`SELECT tenant_id, ${sql.ref(column)} AS value FROM ${sql.table(table)}`.execute(this.#db);
      for (const row of rows.rows) {
        if (row.value === null || row.value === '') continue;
        for (const ref of refsIn(row.value, kind === 'refMap')) if (ref !== '') found.set(`${row.tenant_id}\u0000${ref}`, { tenantId: row.tenant_id, ref });
      }
    }
    return [...found.values()];
  }

  /** Points every one of the tenant's columns that name `oldRef` at `newRef`, in one transaction. Returns how many changed. */
  async replace(tenantId: string, oldRef: string, newRef: string): Promise<number> {
    return inTransaction(this.#db, async (db) => {
      let changed = 0;
      for (const { table, column, kind } of artifactReferenceColumns) {
        if (kind === 'ref') {
          const result = await sql`UPDATE ${sql.table(table)} SET ${sql.ref(column)} = ${newRef} WHERE tenant_id = ${tenantId} AND ${sql.ref(column)} = ${oldRef}`.execute(db);
          changed += Number(result.numAffectedRows ?? 0n);
          continue;
        }
        const rows = await sql<{ id: string; value: string }>`SELECT id, ${sql.ref(column)} AS value FROM ${sql.table(table)} WHERE tenant_id = ${tenantId} AND ${sql.ref(column)} LIKE ${`%${oldRef}%`}`.execute(db);
        for (const row of rows.rows) {
          const refs = refMap(row.value);
          let touched = false;
          for (const [file, ref] of Object.entries(refs)) {
            if (ref !== oldRef) continue;
            refs[file] = newRef;
            touched = true;
          }
          if (!touched) continue;
          await sql`UPDATE ${sql.table(table)} SET ${sql.ref(column)} = ${JSON.stringify(refs)} WHERE id = ${row.id}`.execute(db);
          changed += 1;
        }
      }
      return changed;
    });
  }
}

function refMap(json: string): Record<string, string> {
  const parsed = JSON.parse(json) as unknown;
  if (typeof parsed !== 'object' || parsed === null) return {};
  const refs: Record<string, string> = {};
  for (const [file, ref] of Object.entries(parsed)) if (typeof ref === 'string') refs[file] = ref;
  return refs;
}
