import type { Kysely, Selectable } from 'kysely';
import { AiaasError } from '../../errors.ts';
import type { ApiKeyRole, ApiKeysTable, Schema } from '../schema.ts';
import { fromJsonText, isUniqueViolation, newId, toNullableJsonText } from '../support.ts';
import type { RepositoryOptions } from './tenants.ts';

export interface ApiKeyRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly name: string;
  readonly prefix: string;
  readonly keyHash: string;
  readonly role: ApiKeyRole;
  /** `undefined` means every model. */
  readonly allowedModels: readonly string[] | undefined;
  readonly createdAt: string;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
  readonly lastUsedAt: string | null;
}

export interface NewApiKey {
  readonly id?: string;
  readonly name: string;
  readonly prefix: string;
  readonly keyHash: string;
  readonly role: ApiKeyRole;
  readonly allowedModels?: readonly string[] | undefined;
  readonly expiresAt?: string | null;
}

function toRecord(row: Selectable<ApiKeysTable>): ApiKeyRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    prefix: row.prefix,
    keyHash: row.key_hash,
    role: row.role,
    allowedModels: fromJsonText<string[]>(row.allowed_models),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

export class ApiKeyRepository {
  readonly #db: Kysely<Schema>;
  readonly #now: () => Date;

  constructor(db: Kysely<Schema>, options: RepositoryOptions = {}) {
    this.#db = db;
    this.#now = options.now ?? (() => new Date());
  }

  async insert(tenantId: string, input: NewApiKey): Promise<ApiKeyRecord> {
    const row: Selectable<ApiKeysTable> = {
      id: input.id ?? newId('key'),
      tenant_id: tenantId,
      name: input.name,
      prefix: input.prefix,
      key_hash: input.keyHash,
      role: input.role,
      allowed_models: toNullableJsonText(input.allowedModels),
      created_at: this.#now().toISOString(),
      expires_at: input.expiresAt ?? null,
      revoked_at: null,
      last_used_at: null,
    };
    try {
      await this.#db.insertInto('api_keys').values(row).execute();
    } catch (error) {
      if (isUniqueViolation(error)) throw new AiaasError('CONFLICT', 'API key already exists', { cause: error });
      throw error;
    }
    return toRecord(row);
  }

  /**
   * Not tenant-scoped on purpose: the hash is how authentication discovers the
   * tenant. Returns revoked and expired keys too; the caller judges validity.
   */
  async findByHash(keyHash: string): Promise<ApiKeyRecord | undefined> {
    const row = await this.#db.selectFrom('api_keys').selectAll().where('key_hash', '=', keyHash).executeTakeFirst();
    return row === undefined ? undefined : toRecord(row);
  }

  async get(tenantId: string, id: string): Promise<ApiKeyRecord | undefined> {
    const row = await this.#db
      .selectFrom('api_keys')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? undefined : toRecord(row);
  }

  async list(tenantId: string): Promise<ApiKeyRecord[]> {
    const rows = await this.#db
      .selectFrom('api_keys')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toRecord);
  }

  /** Returns false when the key is missing, another tenant's, or already revoked. */
  async revoke(tenantId: string, id: string): Promise<boolean> {
    const result = await this.#db
      .updateTable('api_keys')
      .set({ revoked_at: this.#now().toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async touchLastUsed(tenantId: string, id: string, at: Date = this.#now()): Promise<void> {
    await this.#db
      .updateTable('api_keys')
      .set({ last_used_at: at.toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .execute();
  }
}
