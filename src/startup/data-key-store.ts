import { AiaasError } from '../errors.ts';
import type { DataKeyStore, StoredDataKey, TenantWrappedDataKey } from '../security/tenant-keys.ts';
import type { WrappedDataKey } from '../security/envelope.ts';
import type { TenantKeyRepository } from '../storage/index.ts';

/*
 * The `tenant_keys` table as TenantKeyService's DataKeyStore. A destroyed key is a tombstone row
 * with an empty wrapped key and master version 0: the tenant is never silently handed a fresh key,
 * and the version-conditioned update makes a rotation racing a destroy lose.
 */
const destroyedVersion = 0;

function toStored(record: { wrappedKey: string; masterKeyVersion: number }): StoredDataKey {
  return record.wrappedKey === ''
    ? { state: 'destroyed' }
    : { state: 'active', wrappedKey: record.wrappedKey, masterKeyVersion: record.masterKeyVersion };
}

function isConflict(error: unknown): boolean {
  return AiaasError.isInstance(error) && error.code === 'CONFLICT';
}

export class RepositoryDataKeyStore implements DataKeyStore {
  readonly #repository: TenantKeyRepository;

  constructor(repository: TenantKeyRepository) {
    this.#repository = repository;
  }

  async get(tenantId: string): Promise<StoredDataKey | undefined> {
    const record = await this.#repository.get(tenantId);
    return record === undefined ? undefined : toStored(record);
  }

  async putIfAbsent(tenantId: string, key: WrappedDataKey): Promise<StoredDataKey> {
    try {
      await this.#repository.put(tenantId, key);
    } catch (error) {
      if (!isConflict(error)) throw error;
    }
    const stored = await this.#repository.get(tenantId);
    if (stored === undefined) throw new AiaasError('INTERNAL', 'A tenant data key vanished right after it was stored');
    return toStored(stored);
  }

  async replace(tenantId: string, expected: WrappedDataKey, next: WrappedDataKey): Promise<boolean> {
    const current = await this.#repository.get(tenantId);
    if (current === undefined || current.wrappedKey !== expected.wrappedKey) return false;
    return this.#repository.update(tenantId, { ...next, expectedMasterKeyVersion: expected.masterKeyVersion });
  }

  async destroy(tenantId: string): Promise<void> {
    const tombstone = { wrappedKey: '', masterKeyVersion: destroyedVersion };
    try {
      await this.#repository.put(tenantId, tombstone);
    } catch (error) {
      if (!isConflict(error)) throw error;
      await this.#repository.update(tenantId, tombstone);
    }
  }

  async *listAll(): AsyncIterable<TenantWrappedDataKey> {
    for (const record of await this.#repository.listAll()) {
      if (record.wrappedKey === '') continue;
      yield { tenantId: record.tenantId, wrappedKey: record.wrappedKey, masterKeyVersion: record.masterKeyVersion };
    }
  }
}
