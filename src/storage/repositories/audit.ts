import type { Insertable, Kysely, Selectable } from 'kysely';
import type { AuditLogTable, Schema } from '../schema.ts';
import { pageLimit, transactionWithRetry } from '../support.ts';

/**
 * One audit entry as the hash chain sees it. `detailJson` stays a string so the
 * bytes the caller hashed are exactly the bytes stored and read back.
 */
export interface AuditEntry {
  readonly tenantId: string | null;
  readonly keyId: string | null;
  readonly action: string;
  readonly resource: string;
  readonly outcome: string;
  readonly ip: string;
  readonly at: string;
  readonly detailJson: string;
  readonly prevHash: string;
  readonly hash: string;
  /** The model the entry concerns; absent or null when it concerns none. */
  readonly model?: string | null;
}

export interface AuditRecord extends AuditEntry {
  readonly seq: number;
  readonly model: string | null;
}

function toRecord(row: Selectable<AuditLogTable>): AuditRecord {
  return {
    seq: Number(row.seq),
    tenantId: row.tenant_id,
    keyId: row.key_id,
    action: row.action,
    resource: row.resource,
    outcome: row.outcome,
    ip: row.ip,
    at: row.at,
    detailJson: row.detail_json,
    prevHash: row.prev_hash,
    hash: row.hash,
    model: row.model_name,
  };
}

function toRow(entry: AuditEntry): Omit<Selectable<AuditLogTable>, 'seq'> {
  return {
    tenant_id: entry.tenantId,
    key_id: entry.keyId,
    action: entry.action,
    resource: entry.resource,
    outcome: entry.outcome,
    ip: entry.ip,
    at: entry.at,
    detail_json: entry.detailJson,
    prev_hash: entry.prevHash,
    hash: entry.hash,
    model_name: entry.model ?? null,
  };
}

/**
 * Stores the audit chain; hashing is `src/security/`'s job. `prev_hash` is
 * unique, so two writers that both extended the same predecessor cannot both
 * commit: the loser retries `appendWith` against the new tail.
 */
export class AuditRepository {
  readonly #db: Kysely<Schema>;

  constructor(db: Kysely<Schema>) {
    this.#db = db;
  }

  /** Stores `entry` at the next seq the database hands out. */
  async append(entry: AuditEntry): Promise<AuditRecord> {
    return this.#insert(toRow(entry));
  }

  async #insert(row: Insertable<AuditLogTable>): Promise<AuditRecord> {
    return toRecord(await this.#db.insertInto('audit_log').values(row).returningAll().executeTakeFirstOrThrow());
  }

  /**
   * Reads the tail and appends `build(tail)` in one transaction, at seq `tail.seq + 1`
   * (1 for the first entry): the seq the chain hashes. Set explicitly because a database
   * sequence need not be gapless (a PostgreSQL identity keeps values a rolled-back retry
   * consumed), and a stored seq that differs from the hashed one breaks the chain.
   * `build` must be pure: it may run more than once.
   */
  async appendWith(build: (previous: AuditRecord | undefined) => AuditEntry | Promise<AuditEntry>): Promise<AuditRecord> {
    return transactionWithRetry(this.#db, async (transaction) => {
      const inside = new AuditRepository(transaction);
      const previous = await inside.last();
      return inside.#insert({ ...toRow(await build(previous)), seq: (previous?.seq ?? 0) + 1 });
    });
  }

  async last(): Promise<AuditRecord | undefined> {
    const row = await this.#db.selectFrom('audit_log').selectAll().orderBy('seq', 'desc').limit(1).executeTakeFirst();
    return row === undefined ? undefined : toRecord(row);
  }

  /** The whole chain (or the part after `afterSeq`) in seq order, for verification and export. */
  async listAll(options: { afterSeq?: number; limit?: number } = {}): Promise<AuditRecord[]> {
    let query = this.#db.selectFrom('audit_log').selectAll();
    if (options.afterSeq !== undefined) query = query.where('seq', '>', options.afterSeq);
    if (options.limit !== undefined) query = query.limit(Math.max(1, Math.trunc(options.limit)));
    const rows = await query.orderBy('seq').execute();
    return rows.map(toRecord);
  }

  /**
   * One tenant's entries in seq order (what a tenant admin may read); with `models`, only the
   * entries concerning one of those models (an empty list matches none).
   */
  async list(tenantId: string, options: { afterSeq?: number; limit?: number; models?: readonly string[] } = {}): Promise<AuditRecord[]> {
    let query = this.#db.selectFrom('audit_log').selectAll().where('tenant_id', '=', tenantId);
    if (options.models !== undefined) {
      if (options.models.length === 0) return [];
      query = query.where('model_name', 'in', [...options.models]);
    }
    if (options.afterSeq !== undefined) query = query.where('seq', '>', options.afterSeq);
    const rows = await query.orderBy('seq').limit(pageLimit(options)).execute();
    return rows.map(toRecord);
  }
}
