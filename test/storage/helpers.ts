import type { Kysely } from 'kysely';
import { MasterKeyRing } from '../../src/security/key-ring.ts';
import { TenantKeyService } from '../../src/security/tenant-keys.ts';
import { TenantTextCipher } from '../../src/security/tenant-text.ts';
import { RepositoryDataKeyStore } from '../../src/startup/data-key-store.ts';
import { openDatabase, type Database } from '../../src/storage/database.ts';
import { createRepositories, TenantKeyRepository, type Repositories } from '../../src/storage/repositories/index.ts';
import type { Schema } from '../../src/storage/schema.ts';

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
