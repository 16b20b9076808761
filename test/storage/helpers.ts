import type { Kysely } from 'kysely';
import { MasterKeyRing } from '../../src/security/key-ring.ts';
import { TenantKeyService } from '../../src/security/tenant-keys.ts';
import { TenantTextCipher } from '../../src/security/tenant-text.ts';
import { AiaasError } from '../../src/errors.ts';
import type { WrappedDataKey } from '../../src/security/envelope.ts';
import type { DataKeyStore, StoredDataKey, TenantWrappedDataKey } from '../../src/security/tenant-keys.ts';
import { openDatabase, type Database } from '../../src/storage/database.ts';
import { createRepositories, TenantKeyRepository, type Repositories } from '../../src/storage/repositories/index.ts';
import type { Schema } from '../../src/storage/schema.ts';

/*
 * Data keys in the database's legacy `tenant_keys` table: the server keeps them in the separate key store
 * (src/storage/key-store.ts), but storage tests that share one database file across processes want the
 * keys to travel with it. A destroyed key is a tombstone row with an empty wrapped key.
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

class RepositoryDataKeyStore implements DataKeyStore {
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

/** A fixed master key, so processes sharing a test database share the tenants' data keys too. */
export const testMasterKey = Buffer.alloc(32, 7).toString('base64');

/** The cipher the server uses: data keys stored wrapped in `db`, under `masterKey`. */
export function textCipherFor(db: Kysely<Schema>, masterKey = testMasterKey): TenantTextCipher & { keys: TenantKeyService } {
  const keys = new TenantKeyService({ store: new RepositoryDataKeyStore(new TenantKeyRepository(db)), ring: MasterKeyRing.parse(masterKey) });
  return Object.assign(new TenantTextCipher({ keys }), { keys });
}

export interface TestClock {
  now: () => Date;
  advance(milliseconds: number): void;
}

export function testClock(start = '2025-01-01T00:00:00.000Z'): TestClock {
  let current = new Date(start).getTime();
  return {
    now: () => new Date(current),
    advance(milliseconds) {
      current += milliseconds;
    },
  };
}

export interface TestStorage {
  database: Database;
  repositories: Repositories;
  clock: TestClock;
  tenantA: string;
  tenantB: string;
  /** The data keys behind the repositories' text cipher. */
  keys: TenantKeyService;
}

/** An in-memory database with two tenants, so every test can check isolation. */
export async function openTestStorage(): Promise<TestStorage> {
  const clock = testClock();
  const database = await openDatabase({ path: ':memory:', now: clock.now });
  const textCipher = textCipherFor(database.db);
  const repositories = createRepositories(database.db, { now: clock.now, textCipher });
  const tenantA = (await repositories.tenants.create({ name: 'acme' })).id;
  clock.advance(1);
  const tenantB = (await repositories.tenants.create({ name: 'globex' })).id;
  return { database, repositories, clock, tenantA, tenantB, keys: textCipher.keys };
}
