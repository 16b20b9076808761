import type { DataKeyStore, StoredDataKey, TenantWrappedDataKey } from '../security/tenant-keys.ts';
import type { WrappedDataKey } from '../security/envelope.ts';
import type { KeyStoreDatabase, KeyStoreRecord } from '../storage/key-store.ts';

/*
 * The key store file (src/storage/key-store.ts) as TenantKeyService's DataKeyStore. A destroyed key
 * is a tombstone row with an empty wrapped key: the tenant is never silently handed a fresh key,
 * and the compare-and-set update makes a rotation racing a destroy lose.
 */
function toStored(record: KeyStoreRecord): StoredDataKey {
  return record.wrappedKey === ''
    ? { state: 'destroyed' }
    : { state: 'active', wrappedKey: record.wrappedKey, masterKeyVersion: record.masterKeyVersion };
}

export class KeyStoreDataKeyStore implements DataKeyStore {
  readonly #keyStore: KeyStoreDatabase;

  constructor(keyStore: KeyStoreDatabase) {
    this.#keyStore = keyStore;
  }

  async get(tenantId: string): Promise<StoredDataKey | undefined> {
    const record = this.#keyStore.get(tenantId);
    return record === undefined ? undefined : toStored(record);
  }

  async putIfAbsent(tenantId: string, key: WrappedDataKey): Promise<StoredDataKey> {
    this.#keyStore.insertIfAbsent(tenantId, key);
    return toStored(this.#keyStore.get(tenantId)!);
  }

  async replace(tenantId: string, expected: WrappedDataKey, next: WrappedDataKey): Promise<boolean> {
    return this.#keyStore.replace(tenantId, expected.wrappedKey, next);
  }

  async destroy(tenantId: string): Promise<void> {
    this.#keyStore.destroy(tenantId);
  }

  async *listAll(): AsyncIterable<TenantWrappedDataKey> {
    for (const record of this.#keyStore.listAll()) {
      if (record.wrappedKey === '') continue;
      yield { tenantId: record.tenantId, wrappedKey: record.wrappedKey, masterKeyVersion: record.masterKeyVersion };
    }
  }
}
