import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/storage/database.ts';
import { migrateToLatest, migrations, type Migration } from '../../src/storage/migrations.ts';
import { createRepositories } from '../../src/storage/repositories/index.ts';
import { textCipherFor } from './helpers.ts';

const scratch = mkdtempSync(join(tmpdir(), 'aiaas-db-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('openDatabase', () => {
  it('migrates a new file database once and keeps data across reopen', async () => {
    const path = join(scratch, 'reopen.sqlite');
    const first = await openDatabase({ path });
    expect(first.appliedMigrations).toEqual(migrations.map((migration) => migration.name));
    await createRepositories(first.db).tenants.create({ name: 'persisted' });
    await first.close();

    const second = await openDatabase({ path });
    expect(second.appliedMigrations).toEqual([]);
    const recorded = await second.db.selectFrom('migrations').select('name').execute();
    // The table's order is its key's (names), not the order applied; the set is what matters here.
    expect(recorded.map((row) => row.name).sort()).toEqual(migrations.map((migration) => migration.name).sort());
    expect((await createRepositories(second.db).tenants.getByName('persisted'))?.name).toBe('persisted');
    await second.close();
  });

  it('turns on WAL, foreign keys and a busy timeout', async () => {
    const database = await openDatabase({ path: join(scratch, 'pragmas.sqlite'), busyTimeoutMs: 1234 });
    const pragma = async (name: string): Promise<unknown> =>
      Object.values((await sql.raw<Record<string, unknown>>(`pragma ${name}`).execute(database.db)).rows[0] ?? {})[0];
    expect(await pragma('journal_mode')).toBe('wal');
    expect(await pragma('foreign_keys')).toBe(1);
    expect(await pragma('busy_timeout')).toBe(1234);
    await database.close();
  });

  it('rejects rows that point at a missing tenant', async () => {
    const database = await openDatabase({ path: ':memory:' });
    await expect(
      createRepositories(database.db, { textCipher: textCipherFor(database.db) }).models.create('tnt_missing', { name: 'orphan' }),
    ).rejects.toThrow(/FOREIGN KEY/);
    await database.close();
  });

  it('skips a migration another process applied while this one was about to', async () => {
    const path = join(scratch, 'racing.sqlite');
    const mine = await openDatabase({ path });
    const theirs = await openDatabase({ path });
    const tableMigration = (interleave: () => Promise<unknown>): Migration => ({
      name: '9000_racing',
      async up(db) {
        // After this side's existence check: the other side applies the migration first.
        await interleave();
        await db.schema.createTable('racing').addColumn('id', 'text').execute();
      },
    });
    try {
      const other = tableMigration(async () => undefined);
      const applied = await migrateToLatest(mine.db, {
        context: { dialect: 'sqlite' },
        migrations: [...migrations, tableMigration(() => migrateToLatest(theirs.db, { context: { dialect: 'sqlite' }, migrations: [...migrations, other] }))],
      });
      expect(applied).toEqual([]);
      const recorded = await mine.db.selectFrom('migrations').select('name').where('name', '=', '9000_racing').execute();
      expect(recorded).toHaveLength(1);
    } finally {
      await theirs.close();
      await mine.close();
    }
  });

  it('refuses a database migrated by a newer build', async () => {
    const path = join(scratch, 'newer.sqlite');
    const first = await openDatabase({ path });
    await first.db.insertInto('migrations').values({ name: '9999_from_the_future', applied_at: '2030-01-01T00:00:00.000Z' }).execute();
    await first.close();
    await expect(openDatabase({ path })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
