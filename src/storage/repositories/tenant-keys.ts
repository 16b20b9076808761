import type { Kysely, Selectable } from 'kysely';
import { AiaasError } from '../../errors.ts';
import type { Schema, TenantKeysTable } from '../schema.ts';
import { isUniqueViolation } from '../support.ts';
import type { RepositoryOptions } from './tenants.ts';

export interface TenantKeyRecord {
  readonly tenantId: string;
  /** base64; the wrapping is `src/security/`'s business. */
  readonly wrappedKey: string;
  readonly masterKeyVersion: number;
  readonly createdAt: string;
}

function toRecord(row: Selectable<TenantKeysTable>): TenantKeyRecord {
  return {
    tenantId: row.tenant_id,
    wrappedKey: row.wrapped_key,
    masterKeyVersion: row.master_key_version,
    createdAt: row.created_at,
  };
}

/**
 * The main database's `tenant_keys` table, where wrapped data keys lived before the key store
 * (src/storage/key-store.ts). Startup moves any rows left here into the key store and then
 * deletes them (src/startup/key-store-migration.ts); nothing else writes here any more.
 */
export class TenantKeyRepository {
  readonly #db: Kysely<Schema>;
  readonly #now: () => Date;

  constructor(db: Kysely<Schema>, options: RepositoryOptions = {}) {
    this.#db = db;
    this.#now = options.now ?? (() => new Date());
  }

  async get(tenantId: string): Promise<TenantKeyRecord | undefined> {
    const row = await this.#db.selectFrom('tenant_keys').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst();
    return row === undefined ? undefined : toRecord(row);
  }

  /** Stores a tenant's first key. Refuses to overwrite: silently replacing a data key would orphan every blob it encrypted. */
  async put(tenantId: string, input: { wrappedKey: string; masterKeyVersion: number }): Promise<TenantKeyRecord> {
    const row = {
      tenant_id: tenantId,
      wrapped_key: input.wrappedKey,
      master_key_version: input.masterKeyVersion,
      created_at: this.#now().toISOString(),
    };
    try {
      await this.#db.insertInto('tenant_keys').values(row).execute();
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new AiaasError('CONFLICT', 'This tenant already has a data key', { cause: error });
      }
      throw error;
    }
    return toRecord(row);
  }

  /** All tenants' keys, for master-key rotation. */
  async listAll(): Promise<TenantKeyRecord[]> {
    const rows = await this.#db.selectFrom('tenant_keys').selectAll().orderBy('tenant_id').execute();
    return rows.map(toRecord);
  }

  /**
   * Re-wraps a key (master-key rotation). With `expectedMasterKeyVersion`, the
   * update only happens if nobody rotated it meanwhile. Returns whether a row changed.
   */
  async update(
    tenantId: string,
    input: { wrappedKey: string; masterKeyVersion: number; expectedMasterKeyVersion?: number },
  ): Promise<boolean> {
    let query = this.#db
      .updateTable('tenant_keys')
      .set({ wrapped_key: input.wrappedKey, master_key_version: input.masterKeyVersion })
      .where('tenant_id', '=', tenantId);
    if (input.expectedMasterKeyVersion !== undefined) {
      query = query.where('master_key_version', '=', input.expectedMasterKeyVersion);
    }
    const result = await query.executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Deletes every row (after they were moved to the key store); returns how many. */
  async deleteAll(): Promise<number> {
    const result = await this.#db.deleteFrom('tenant_keys').executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
