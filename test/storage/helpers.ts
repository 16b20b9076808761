import { openDatabase, type Database } from '../../src/storage/database.ts';
import { createRepositories, type Repositories } from '../../src/storage/repositories/index.ts';

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
}

/** An in-memory database with two tenants, so every test can check isolation. */
export async function openTestStorage(): Promise<TestStorage> {
  const clock = testClock();
  const database = await openDatabase({ path: ':memory:', now: clock.now });
  const repositories = createRepositories(database.db, { now: clock.now });
  const tenantA = (await repositories.tenants.create({ name: 'acme' })).id;
  clock.advance(1);
  const tenantB = (await repositories.tenants.create({ name: 'globex' })).id;
  return { database, repositories, clock, tenantA, tenantB };
}
