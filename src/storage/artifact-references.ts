import type BetterSqlite3 from 'better-sqlite3';
import type { ArtifactRef } from './artifact-store.ts';

/** Where the database points at an artifact: enough to name the row in a report. */
export interface ArtifactReference {
  readonly ref: ArtifactRef;
  readonly tenantId: string;
  /** e.g. `datasets.artifact_ref of ds_…`. */
  readonly where: string;
  /** The owning tenant was deleted (its data key destroyed): the artifact is unreadable by design. */
  readonly tenantDeleted: boolean;
}

const refPattern = /^sha256:[0-9a-f]{64}$/;

interface ReferenceRow {
  id: string;
  tenant_id: string;
  deleted_at: string | null;
  value: string | null;
}

/*
 * Every column that holds an artifact ref, in one place: backups copy what these name, `aiaas admin
 * check` reports files they do not name (orphans) and names with no file (missing). A new column
 * that stores a ref must be added here, or backups would leave its artifacts behind.
 */
const referenceQueries: readonly { where: string; sql: string; json?: boolean }[] = [
  { where: 'datasets.artifact_ref', sql: 'SELECT d.id, d.tenant_id, t.deleted_at, d.artifact_ref AS value FROM datasets d JOIN tenants t ON t.id = d.tenant_id' },
  { where: 'datasets.labels_artifact_ref', sql: 'SELECT d.id, d.tenant_id, t.deleted_at, d.labels_artifact_ref AS value FROM datasets d JOIN tenants t ON t.id = d.tenant_id' },
  { where: 'model_versions.onnx_ref', sql: 'SELECT v.id, v.tenant_id, t.deleted_at, v.onnx_ref AS value FROM model_versions v JOIN tenants t ON t.id = v.tenant_id' },
  {
    where: 'model_versions.saved_model_refs_json',
    sql: 'SELECT v.id, v.tenant_id, t.deleted_at, v.saved_model_refs_json AS value FROM model_versions v JOIN tenants t ON t.id = v.tenant_id',
    json: true,
  },
  { where: 'jobs.checkpoint_ref', sql: 'SELECT j.id, j.tenant_id, t.deleted_at, j.checkpoint_ref AS value FROM jobs j JOIN tenants t ON t.id = j.tenant_id' },
  { where: 'jobs.result_refs_json', sql: 'SELECT j.id, j.tenant_id, t.deleted_at, j.result_refs_json AS value FROM jobs j JOIN tenants t ON t.id = j.tenant_id', json: true },
];

function refsIn(value: string, json: boolean): string[] {
  if (!json) return [value];
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    // Not JSON (for instance sealed tenant text): report it as it is, so the checks flag it.
    return [value];
  }
  return typeof parsed === 'object' && parsed !== null ? Object.values(parsed).filter((item): item is string => typeof item === 'string') : [];
}

/**
 * Every artifact ref the database holds, with the row that holds it. Synchronous, over a plain
 * better-sqlite3 connection: backups and checks read snapshot copies and live files this way,
 * without migrations or a Kysely instance. A value that is not a well-formed ref is returned as
 * a reference too (`ref` then fails `isArtifactRef`), so callers can report it.
 */
export function listArtifactReferences(connection: BetterSqlite3.Database): ArtifactReference[] {
  const references: ArtifactReference[] = [];
  for (const query of referenceQueries) {
    for (const row of connection.prepare(query.sql).all() as ReferenceRow[]) {
      if (row.value === null) continue;
      for (const ref of refsIn(row.value, query.json === true)) {
        references.push({ ref: ref as ArtifactRef, tenantId: row.tenant_id, where: `${query.where} of ${row.id}`, tenantDeleted: row.deleted_at !== null });
      }
    }
  }
  return references;
}

export function isArtifactRef(value: string): value is ArtifactRef {
  return refPattern.test(value);
}

/** The path of a ref's file below an artifact root, in FileSystemArtifactStore's `ab/cd/<hex>` layout. */
export function artifactRelativePath(ref: ArtifactRef): string {
  const hex = ref.slice('sha256:'.length);
  return `${hex.slice(0, 2)}/${hex.slice(2, 4)}/${hex}`;
}
