import { sql, type Kysely, type RawBuilder } from 'kysely';
import { AiaasError } from '../errors.ts';
import type { Schema } from './schema.ts';
import { sealedColumns, sealedTextPrefix, type SealedTable, type TextCipher } from './text-cipher.ts';

/*
 * The startup half of migration 0002_tenant_text. A migration has no keys, so the server runs this
 * once the master key is unlocked and before anything reads tenant text: every value of a sealed
 * column that does not carry the sealed prefix (written by an older server) is sealed in place.
 * Idempotent and restartable: a sealed value is never touched again, and each page of rows is
 * written in one transaction. A tenant whose key was destroyed cannot be sealed for; its rows
 * in these tables are removed, as shredding already made the rest of its data unreadable.
 */

export interface TenantTextSealingReport {
  /** Rows whose plaintext columns were sealed. */
  sealedRows: number;
  /** Tenants whose data key is destroyed, whose rows were removed. */
  removedTenants: string[];
}

type StoredRow = Record<string, unknown> & { id: string | number; tenant_id: string };

const pageSize = 500;

function plaintextCondition(table: SealedTable): RawBuilder<boolean> {
  const conditions = sealedColumns[table].columns.map(
    (column) => sql`(${sql.ref(column)} is not null and substr(${sql.ref(column)}, 1, ${sealedTextPrefix.length}) <> ${sealedTextPrefix})`,
  );
  // Before 0002 the latest loss sat in clear in jobs.loss.
  if (table === 'jobs') conditions.push(sql`loss is not null`);
  return sql<boolean>`(${sql.join(conditions, sql` or `)})`;
}

/** The new column values of one row, or undefined when its tenant's key is destroyed. */
async function sealedValues(cipher: TextCipher, table: SealedTable, row: StoredRow): Promise<Record<string, string | null> | undefined> {
  const { rowId: rowIdColumn, columns } = sealedColumns[table];
  const rowId = String(row[rowIdColumn]);
  const set: Record<string, string | null> = {};
  try {
    for (const column of columns) {
      const value = row[column];
      if (typeof value === 'string' && !value.startsWith(sealedTextPrefix)) {
        set[column] = await cipher.seal(row.tenant_id, { table, column, rowId }, value);
      }
    }
    if (table === 'jobs' && row.loss !== null && row.loss !== undefined) {
      set.loss_text = await cipher.seal(row.tenant_id, { table, column: 'loss_text', rowId }, JSON.stringify(Number(row.loss)));
      set.loss = null;
    }
  } catch (error) {
    if (AiaasError.isInstance(error) && error.code === 'KEY_DESTROYED') return undefined;
    throw error;
  }
  return set;
}

/** Aliases first: they point at versions without a cascade. */
async function removeTenantRows(db: Kysely<Schema>, tenantId: string): Promise<void> {
  await db.transaction().execute(async (transaction) => {
    for (const table of ['aliases', 'evaluations', 'model_versions', 'models', 'job_events', 'jobs', 'datasets'] as const) {
      await transaction.deleteFrom(table).where('tenant_id', '=', tenantId).execute();
    }
  });
}

export async function sealPlaintextTenantText(db: Kysely<Schema>, cipher: TextCipher): Promise<TenantTextSealingReport> {
  const report: TenantTextSealingReport = { sealedRows: 0, removedTenants: [] };
  for (const table of Object.keys(sealedColumns) as SealedTable[]) {
    for (;;) {
      // Sealed rows stop matching, and a destroyed tenant's rows are removed, so each page is new work.
      const { rows } = await sql<StoredRow>`select * from ${sql.table(table)} where ${plaintextCondition(table)} order by id limit ${pageSize}`.execute(db);
      if (rows.length === 0) break;
      const updates: { id: string | number; set: Record<string, string | null> }[] = [];
      const destroyed = new Set<string>();
      for (const row of rows) {
        if (destroyed.has(row.tenant_id)) continue;
        const set = await sealedValues(cipher, table, row);
        if (set === undefined) destroyed.add(row.tenant_id);
        else updates.push({ id: row.id, set });
      }
      // Keys are fetched above, outside the transaction: the key store may share this connection.
      await db.transaction().execute(async (transaction) => {
        for (const { id, set } of updates) {
          const assignments = Object.entries(set).map(([column, value]) => sql`${sql.ref(column)} = ${value}`);
          await sql`update ${sql.table(table)} set ${sql.join(assignments)} where id = ${id}`.execute(transaction);
        }
      });
      report.sealedRows += updates.length;
      for (const tenantId of destroyed) {
        await removeTenantRows(db, tenantId);
        report.removedTenants.push(tenantId);
      }
    }
  }
  return report;
}
