import type { Kysely, Selectable } from 'kysely';
import { AiaasError } from '../../errors.ts';
import type { Schema, TenantsTable } from '../schema.ts';
import { isUniqueViolation, newId } from '../support.ts';
import type { TextCipher } from '../text-cipher.ts';

export interface RepositoryOptions {
  readonly now?: () => Date;
  /** Seals tenant text (see text-cipher.ts); without one, datasets, models and jobs refuse to read or write it. */
  readonly textCipher?: TextCipher;
}

export interface TenantRecord {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
  readonly deletedAt: string | null;
}

function toRecord(row: Selectable<TenantsTable>): TenantRecord {
  return { id: row.id, name: row.name, createdAt: row.created_at, deletedAt: row.deleted_at };
}

/** Tenants are the scope of everything else, so this is the one repository not scoped by tenant. */
export class TenantRepository {
  readonly #db: Kysely<Schema>;
  readonly #now: () => Date;

  constructor(db: Kysely<Schema>, options: RepositoryOptions = {}) {
    this.#db = db;
    this.#now = options.now ?? (() => new Date());
  }

  async create(input: { name: string; id?: string }): Promise<TenantRecord> {
    const row = { id: input.id ?? newId('tnt'), name: input.name, created_at: this.#now().toISOString(), deleted_at: null };
    try {
      await this.#db.insertInto('tenants').values(row).execute();
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new AiaasError('CONFLICT', `A tenant named '${input.name}' already exists`, { cause: error });
      }
      throw error;
    }
    return toRecord(row);
  }

  /** Returns soft-deleted tenants too; callers decide whether a deleted tenant may act. */
  async get(id: string): Promise<TenantRecord | undefined> {
    const row = await this.#db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toRecord(row);
  }

  async getByName(name: string): Promise<TenantRecord | undefined> {
    const row = await this.#db.selectFrom('tenants').selectAll().where('name', '=', name).executeTakeFirst();
    return row === undefined ? undefined : toRecord(row);
  }

  async list(options: { includeDeleted?: boolean } = {}): Promise<TenantRecord[]> {
    let query = this.#db.selectFrom('tenants').selectAll();
    if (options.includeDeleted !== true) query = query.where('deleted_at', 'is', null);
    const rows = await query.orderBy('created_at').orderBy('id').execute();
    return rows.map(toRecord);
  }

  /** Rows stay so audit entries and usage keep a referent. Returns false if missing or already deleted. */
  async softDelete(id: string): Promise<boolean> {
    const result = await this.#db
      .updateTable('tenants')
      .set({ deleted_at: this.#now().toISOString() })
      .where('id', '=', id)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }
}
