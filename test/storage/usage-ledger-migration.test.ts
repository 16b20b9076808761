import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { describe, expect, it } from 'vitest';
import { migrateToLatest, migrations } from '../../src/storage/migrations.ts';
import { createRepositories } from '../../src/storage/repositories/index.ts';
import type { Schema } from '../../src/storage/schema.ts';
import { textCipherFor } from './helpers.ts';

describe('migration 0003_usage_ledger', () => {
  it('moves the request counters and token rows into the ledger without counting a language-model request twice', async () => {
    const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: new BetterSqlite3(':memory:') }) });
    const index = migrations.findIndex((migration) => migration.name === '0003_usage_ledger');
    const before = migrations.filter((_migration, position) => position !== index);
    await migrateToLatest(db, { context: { dialect: 'sqlite' }, migrations: before });
    const repositories = createRepositories(db, { textCipher: textCipherFor(db) });
    const tenant = await repositories.tenants.create({ name: 'old' });
    // Through an untyped handle: these tables are gone from the schema.
    const old = db as unknown as Kysely<Record<string, Record<string, unknown>>>;
    await old
      .insertInto('usage_counters')
      .values([
        { tenant_id: tenant.id, model_name: 'iris', day: '2026-01-05', requests: 7 },
        // The language model's 3 requests were counted here and in token_usage.
        { tenant_id: tenant.id, model_name: 'llm', day: '2026-01-05', requests: 3 },
      ])
      .execute();
    await old
      .insertInto('token_usage')
      .values([
        { tenant_id: tenant.id, key_id: 'key_a', model_name: 'llm', version: 2, day: '2026-01-05', requests: 2, prompt_tokens: 10, completion_tokens: 20 },
        { tenant_id: tenant.id, key_id: 'key_b', model_name: 'llm', version: 2, day: '2026-01-05', requests: 1, prompt_tokens: 5, completion_tokens: 1 },
      ])
      .execute();

    expect(await migrateToLatest(db, { context: { dialect: 'sqlite' } })).toEqual(['0003_usage_ledger']);
    const rows = await repositories.usageLedger.query(tenant.id, { groupBy: ['model', 'key', 'protocol', 'day'] });
    expect(rows.map((row) => [row.modelName, row.keyId, row.protocol, row.period, row.requests, row.prompt_tokens, row.completion_tokens])).toEqual([
      ['iris', '', 'legacy', '2026-01-05', 7, 0, 0],
      ['llm', 'key_a', 'legacy', '2026-01-05', 2, 10, 20],
      ['llm', 'key_b', 'legacy', '2026-01-05', 1, 5, 1],
    ]);
    const tables = await db.introspection.getTables();
    expect(tables.map((table) => table.name)).not.toContain('usage_counters');
    expect(tables.map((table) => table.name)).not.toContain('token_usage');
    await db.destroy();
  });
});
