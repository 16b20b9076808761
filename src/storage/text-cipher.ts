import { AiaasError } from '../errors.ts';

/*
 * Tenant-supplied text is stored sealed under the tenant's data key (see src/security/tenant-text.ts).
 * Storage never holds key material: the repositories of tenant content are given a TextCipher and
 * call it on the columns listed in `sealedColumns`, so services, routes and the job runner keep
 * seeing plaintext records.
 */

/** Where a sealed value lives; the cipher binds it into the AAD so a value cannot move between rows. */
export interface SealedTextPlace {
  readonly table: string;
  readonly column: string;
  readonly rowId: string;
}

/** What storage needs from encryption; `TenantTextCipher` in src/security implements it. */
export interface TextCipher {
  seal(tenantId: string, place: SealedTextPlace, plaintext: string): Promise<string>;
  open(tenantId: string, place: SealedTextPlace, stored: string): Promise<string>;
}

/** Every sealed value starts with this; anything else in a sealed column is legacy plaintext. */
export const sealedTextPrefix = 'enc:v1:';

/**
 * The sealed columns, table by table, and the column whose value is bound as the row id.
 * Everything else in these tables (ids, names, statuses, timestamps, foreign keys, artifact refs,
 * sizes, progress counters) stays in clear because lookups, the queue and quotas need it;
 * docs/security.md lists it.
 */
export const sealedColumns = {
  datasets: { rowId: 'id', columns: ['schema_json'] },
  models: { rowId: 'id', columns: ['description', 'batching_json'] },
  model_versions: { rowId: 'id', columns: ['signature_json', 'metrics_json', 'chat_template', 'provenance_json', 'quantization_json'] },
  jobs: { rowId: 'id', columns: ['spec_json', 'settings_json', 'metrics_history_json', 'error_json', 'loss_text'] },
  // The event id is assigned by the database on insert, so an event binds the job it belongs to.
  job_events: { rowId: 'job_id', columns: ['payload_json'] },
  version_reports: { rowId: 'id', columns: ['body_json'] },
  sweeps: { rowId: 'id', columns: ['definition_json'] },
  sweep_trials: { rowId: 'id', columns: ['params_json'] },
  evaluations: { rowId: 'id', columns: ['settings_json', 'report_json'] },
} as const;

export type SealedTable = keyof typeof sealedColumns;

/** For repositories built without a cipher (offline admin tools): tenant text is never touched in clear. */
export const noTextCipher: TextCipher = {
  seal: () => Promise.reject(new AiaasError('INTERNAL', 'These repositories were built without a text cipher.')),
  open: () => Promise.reject(new AiaasError('INTERNAL', 'These repositories were built without a text cipher.')),
};

type RowOf = { readonly tenant_id: string } & Readonly<Record<string, unknown>>;

async function mapSealedColumns<T extends RowOf>(
  table: SealedTable,
  row: T,
  transform: (place: SealedTextPlace, value: string) => Promise<string>,
): Promise<T> {
  const { rowId: rowIdColumn, columns } = sealedColumns[table];
  const rowId = row[rowIdColumn];
  if (typeof rowId !== 'string') throw new AiaasError('INTERNAL', `A ${table} row has no ${rowIdColumn} to bind its text to.`);
  const copy: Record<string, unknown> = { ...row };
  await Promise.all(
    columns
      .filter((column) => typeof row[column] === 'string')
      .map(async (column) => {
        copy[column] = await transform({ table, column, rowId }, row[column] as string);
      }),
  );
  return copy as T;
}

/** Seals the sealed columns of a row about to be written (null stays null: absence is not content). */
export function sealRow<T extends RowOf>(cipher: TextCipher, table: SealedTable, row: T): Promise<T> {
  return mapSealedColumns(table, row, (place, value) => cipher.seal(row.tenant_id, place, value));
}

/** Opens the sealed columns of a row just read. */
export function openRow<T extends RowOf>(cipher: TextCipher, table: SealedTable, row: T): Promise<T> {
  return mapSealedColumns(table, row, (place, value) => cipher.open(row.tenant_id, place, value));
}

/** Seals one value for an UPDATE. */
export function sealValue(
  cipher: TextCipher,
  tenantId: string,
  table: SealedTable,
  column: (typeof sealedColumns)[SealedTable]['columns'][number],
  rowId: string,
  plaintext: string,
): Promise<string> {
  return cipher.seal(tenantId, { table, column, rowId }, plaintext);
}
