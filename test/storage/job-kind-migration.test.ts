import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { describe, expect, it } from 'vitest';
import { migrateToLatest, migrations } from '../../src/storage/migrations.ts';
import { createRepositories } from '../../src/storage/repositories/index.ts';
import type { Schema } from '../../src/storage/schema.ts';
import { textCipherFor } from './helpers.ts';

describe('migration 0002_job_kind', () => {
  it('makes every job written before it a training job, and refuses unknown kinds', async () => {
    const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: new BetterSqlite3(':memory:') }) });
    const before = migrations.filter((migration) => migration.name !== '0002_job_kind');
    await migrateToLatest(db, { context: { dialect: 'sqlite' }, migrations: before });
    const repositories = createRepositories(db, { textCipher: textCipherFor(db) });
    const tenant = await repositories.tenants.create({ name: 'old' });
    const old = { tenant_id: tenant.id, model_name: 'm', status: 'succeeded', spec_json: '{}', settings_json: '{}', dataset_id: 'ds', epoch: 1, step: 1, total_epochs: 1, metrics_history_json: '[]', cancel_requested: 0, created_at: '2026-01-01T00:00:00.000Z' } as const;
    // Inserted through an untyped handle: the table has no kind column yet.
    await (db as unknown as Kysely<Record<string, Record<string, unknown>>>).insertInto('jobs').values({ id: 'job_old', ...old }).execute();

    expect(await migrateToLatest(db, { context: { dialect: 'sqlite' } })).toEqual(['0002_job_kind']);
    expect(await db.selectFrom('jobs').select(['id', 'kind']).execute()).toEqual([{ id: 'job_old', kind: 'train' }]);
    const pull = await repositories.jobs.create(tenant.id, { kind: 'pull', modelName: 'm', spec: null, settings: { url: 'https://x.example/m.gguf' }, datasetId: '', totalEpochs: 0 });
    expect((await repositories.jobs.list(tenant.id, { kind: 'pull' })).map((job) => job.id)).toEqual([pull.id]);
    await expect(db.updateTable('jobs').set({ kind: 'mystery' as 'train' }).where('id', '=', 'job_old').execute()).rejects.toThrow(/CHECK constraint/);
    await db.destroy();
  });
});
