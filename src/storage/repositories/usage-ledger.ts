import { sql, type Kysely, type SqlBool } from 'kysely';
import type { Schema, UsageLedgerTable } from '../schema.ts';
import { inTransaction } from '../support.ts';

/** The units one ledger row sums, as stored (integers: microseconds, milliseconds, bytes). */
export type LedgerUnitColumn = Exclude<keyof UsageLedgerTable, 'tenant_id' | 'key_id' | 'model_name' | 'version' | 'protocol' | 'minute'>;

export const ledgerUnitColumns: readonly LedgerUnitColumn[] = [
  'requests',
  'failed_requests',
  'items',
  'prompt_tokens',
  'completion_tokens',
  'compute_us',
  'queue_us',
  'bytes_in',
  'bytes_out',
  'training_sample_epochs',
  'training_worker_ms',
  'stored_byte_hours',
];

export type LedgerUnits = Record<LedgerUnitColumn, number>;

/** One minute bucket's increment: added to its row, which is created at zero if absent. */
export interface LedgerBucket extends LedgerUnits {
  readonly tenantId: string;
  readonly keyId: string;
  readonly modelName: string;
  readonly version: number;
  readonly protocol: string;
  /** UTC minute, `YYYY-MM-DDTHH:MM`. */
  readonly minute: string;
}

export type LedgerDimension = 'model' | 'key' | 'version' | 'protocol' | 'day' | 'hour' | 'minute';

export interface LedgerQuery {
  groupBy: readonly LedgerDimension[];
  /** Inclusive lower bound, `YYYY-MM-DDTHH:MM`. */
  fromMinute?: string;
  /** Exclusive upper bound, `YYYY-MM-DDTHH:MM`. */
  toMinute?: string;
  modelName?: string;
  keyId?: string;
  version?: number;
  protocol?: string;
  /** Only rows of these models (a key restricted to some models); undefined: every row. */
  models?: readonly string[];
}

/** A grouped row: the dimensions asked for (others absent) and every unit summed. */
export interface LedgerRow extends LedgerUnits {
  modelName?: string;
  keyId?: string;
  version?: number;
  protocol?: string;
  /** The group's time bucket: `YYYY-MM-DD`, `YYYY-MM-DDTHH` or `YYYY-MM-DDTHH:MM`. */
  period?: string;
}

/** What one tenant stores now: model versions (their artifact refs) and dataset bytes. */
export interface StoredModelVersion {
  readonly tenantId: string;
  readonly modelName: string;
  readonly version: number;
  readonly refs: readonly string[];
}

/** 18 parameters a row: 500 rows stay well under SQLite's limit of 32,766 per statement. */
const rowsPerStatement = 500;

const dimensionColumns = { model: 'model_name', key: 'key_id', version: 'version', protocol: 'protocol' } as const;
const periodLength = { day: 10, hour: 13, minute: 16 } as const;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function emptyUnits(): LedgerUnits {
  return Object.fromEntries(ledgerUnitColumns.map((column) => [column, 0])) as LedgerUnits;
}

/**
 * The usage ledger's table: minute buckets that only ever grow by increments, so writers in any
 * number of processes add to the same rows without reading them first.
 */
export class UsageLedgerRepository {
  readonly #db: Kysely<Schema>;

  constructor(db: Kysely<Schema>) {
    this.#db = db;
  }

  /** Adds every bucket in one transaction: all of them are written, or none. */
  async add(buckets: readonly LedgerBucket[]): Promise<void> {
    if (buckets.length === 0) return;
    await inTransaction(this.#db, (transaction) => this.#addAll(transaction, buckets));
  }

  /** Multi-row upserts, each conflicting row adding the incoming (`excluded`) units to its own. */
  async #addAll(db: Kysely<Schema>, buckets: readonly LedgerBucket[]): Promise<void> {
    for (let start = 0; start < buckets.length; start += rowsPerStatement) {
      const rows = buckets.slice(start, start + rowsPerStatement).map((bucket) => ({
        tenant_id: bucket.tenantId,
        key_id: bucket.keyId,
        model_name: bucket.modelName,
        version: bucket.version,
        protocol: bucket.protocol,
        minute: bucket.minute,
        ...(Object.fromEntries(ledgerUnitColumns.map((column) => [column, bucket[column]])) as LedgerUnits),
      }));
      await db
        .insertInto('usage_ledger')
        .values(rows)
        .onConflict((conflict) =>
          conflict
            .columns(['tenant_id', 'minute', 'model_name', 'version', 'key_id', 'protocol'])
            .doUpdateSet((update) => Object.fromEntries(ledgerUnitColumns.map((column) => [column, sql`${sql.ref(`usage_ledger.${column}`)} + ${update.ref(`excluded.${column}`)}`])) as Partial<LedgerUnits>),
        )
        .execute();
    }
  }

  /**
   * Adds a storage sample for `minute` (an hour's first minute) unless one was already taken for
   * that hour: a restart within the hour, or a second server, must not bill the hour twice.
   * Returns false when the hour was already sampled.
   */
  async addStorageSample(minute: string, buckets: readonly LedgerBucket[]): Promise<boolean> {
    return inTransaction(this.#db, async (transaction) => {
      const hour = minute.slice(0, 13);
      const taken = await transaction
        .selectFrom('usage_ledger')
        .select('tenant_id')
        .where('protocol', '=', 'storage')
        .where('minute', '>=', `${hour}:00`)
        .where('minute', '<=', `${hour}:59`)
        .limit(1)
        .executeTakeFirst();
      if (taken !== undefined) return false;
      await this.#addAll(transaction, buckets);
      return true;
    });
  }

  /** Sums of one tenant's rows, grouped as asked, ordered by the groups. */
  async query(tenantId: string, query: LedgerQuery): Promise<LedgerRow[]> {
    let filtered = this.#db.selectFrom('usage_ledger').where('tenant_id', '=', tenantId);
    if (query.fromMinute !== undefined) filtered = filtered.where('minute', '>=', query.fromMinute);
    if (query.toMinute !== undefined) filtered = filtered.where('minute', '<', query.toMinute);
    if (query.modelName !== undefined) filtered = filtered.where('model_name', '=', query.modelName);
    if (query.keyId !== undefined) filtered = filtered.where('key_id', '=', query.keyId);
    if (query.version !== undefined) filtered = filtered.where('version', '=', query.version);
    if (query.protocol !== undefined) filtered = filtered.where('protocol', '=', query.protocol);
    if (query.models !== undefined) filtered = query.models.length === 0 ? filtered.where(sql<SqlBool>`0`) : filtered.where('model_name', 'in', [...query.models]);
    const period = query.groupBy.find((dimension): dimension is 'day' | 'hour' | 'minute' => dimension in periodLength);
    const groups: string[] = [];
    for (const dimension of query.groupBy) {
      if (dimension in dimensionColumns) groups.push(dimensionColumns[dimension as keyof typeof dimensionColumns]);
    }
    const periodExpression = period === undefined ? undefined : sql<string>`substr(minute, 1, ${sql.lit(periodLength[period])})`;
    let select = filtered.select(ledgerUnitColumns.map((column) => sql<string | number>`sum(${sql.ref(column)})`.as(column)));
    for (const column of groups) select = select.select(sql.ref(column).as(column)).groupBy(column);
    if (periodExpression !== undefined) select = select.select(periodExpression.as('period')).groupBy(periodExpression);
    if (periodExpression !== undefined) select = select.orderBy(periodExpression);
    for (const column of groups) select = select.orderBy(sql.ref(column));
    const rows = (await select.execute()) as Record<string, string | number | null>[];
    return rows
      .filter((row) => groups.length > 0 || periodExpression !== undefined || row.requests !== null)
      .map((row) => {
        const units = emptyUnits();
        for (const column of ledgerUnitColumns) units[column] = Number(row[column] ?? 0);
        return {
          ...units,
          ...(row.model_name === undefined ? {} : { modelName: String(row.model_name) }),
          ...(row.key_id === undefined ? {} : { keyId: String(row.key_id) }),
          ...(row.version === undefined ? {} : { version: Number(row.version) }),
          ...(row.protocol === undefined ? {} : { protocol: String(row.protocol) }),
          ...(row.period === undefined ? {} : { period: String(row.period) }),
        };
      });
  }

  /** Every live tenant's model versions with the artifacts they keep (storage sampling). */
  async storedModelVersions(): Promise<StoredModelVersion[]> {
    const rows = await this.#db
      .selectFrom('model_versions as v')
      .innerJoin('models as m', 'm.id', 'v.model_id')
      .innerJoin('tenants as t', 't.id', 'v.tenant_id')
      .where('t.deleted_at', 'is', null)
      .select(['v.tenant_id', 'm.name', 'v.version', 'v.onnx_ref', 'v.saved_model_refs_json'])
      .execute();
    return rows.map((row) => {
      const refs = new Set<string>([row.onnx_ref]);
      if (row.saved_model_refs_json !== null) {
        const parsed = parseJson(row.saved_model_refs_json);
        if (typeof parsed === 'object' && parsed !== null) for (const value of Object.values(parsed)) if (typeof value === 'string') refs.add(value);
      }
      return { tenantId: row.tenant_id, modelName: row.name, version: Number(row.version), refs: [...refs] };
    });
  }

  /** Dataset bytes per live tenant (storage sampling). */
  async storedDatasetBytes(): Promise<{ tenantId: string; bytes: number }[]> {
    const rows = await this.#db
      .selectFrom('datasets as d')
      .innerJoin('tenants as t', 't.id', 'd.tenant_id')
      .where('t.deleted_at', 'is', null)
      .select(['d.tenant_id', sql<number>`sum(d.bytes)`.as('bytes')])
      .groupBy('d.tenant_id')
      .execute();
    return rows.map((row) => ({ tenantId: row.tenant_id, bytes: Number(row.bytes) }));
  }
}
