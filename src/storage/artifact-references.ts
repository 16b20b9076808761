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

/** A column holding artifact refs: one ref per row, or (`refMap`) a JSON object whose string values are refs. */
export interface ArtifactReferenceColumn {
  readonly table: 'datasets' | 'model_versions' | 'jobs';
  readonly column: string;
  readonly kind: 'ref' | 'refMap';
}

/*
 * Every column that holds an artifact ref, in one place: backups copy what these name, `aiaas admin
 * check` reports files they do not name (orphans) and names with no file (missing), and a change of
 * artifact format walks and rewrites them (repositories/artifact-references.ts). A new column that
 * stores a ref must be added here, or backups would leave its artifacts behind. Every table listed
 * has `id` and `tenant_id` columns.
 */
export const artifactReferenceColumns: readonly ArtifactReferenceColumn[] = [
  { table: 'datasets', column: 'artifact_ref', kind: 'ref' },
  { table: 'datasets', column: 'labels_artifact_ref', kind: 'ref' },
  { table: 'model_versions', column: 'onnx_ref', kind: 'ref' },
  // The saved-model and external-data files: `{ "spec.json": ref, "external/<location>": ref, … }`.
  { table: 'model_versions', column: 'saved_model_refs_json', kind: 'refMap' },
  { table: 'jobs', column: 'checkpoint_ref', kind: 'ref' },
  // A sweep trial's kept result (model files and drift baseline): `{ name: ref, … }`.
  { table: 'jobs', column: 'result_refs_json', kind: 'refMap' },
];

/** The refs a column value holds; a `refMap` value that is not JSON (for instance sealed text) is returned as it is, so checks flag it. */
export function refsIn(value: string, json: boolean): string[] {
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
  for (const { table, column, kind } of artifactReferenceColumns) {
    // Names from the constant catalogue above, never from input.
    const query = `SELECT x.id, x.tenant_id, t.deleted_at, x.${column} AS value FROM ${table} x JOIN tenants t ON t.id = x.tenant_id`;
    for (const row of connection.prepare(query).all() as ReferenceRow[]) {
      if (row.value === null) continue;
      for (const ref of refsIn(row.value, kind === 'refMap')) {
        references.push({ ref: ref as ArtifactRef, tenantId: row.tenant_id, where: `${table}.${column} of ${row.id}`, tenantDeleted: row.deleted_at !== null });
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
