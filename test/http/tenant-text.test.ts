import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { TenantTextCipher } from '../../src/security/tenant-text.ts';
import { createServerContext, type ServerContext } from '../../src/startup/context.ts';
import { sealedColumns, sealedTextPrefix, sealPlaintextTenantText, type SealedTable } from '../../src/storage/index.ts';
import { call, finalJob, createTenant, startTestServer, type TestServer } from './helpers.ts';

const servers: TestServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

/** Every file under the data dir (database, WAL, artifacts), as bytes. */
async function dataDirFiles(dataDir: string): Promise<Map<string, Buffer>> {
  const entries = await readdir(dataDir, { withFileTypes: true, recursive: true });
  const files = new Map<string, Buffer>();
  for (const entry of entries) {
    if (entry.isFile()) files.set(join(entry.parentPath, entry.name), await readFile(join(entry.parentPath, entry.name)));
  }
  return files;
}

async function expectAbsent(dataDir: string, needles: readonly string[]): Promise<void> {
  const files = await dataDirFiles(dataDir);
  expect([...files.keys()].some((path) => path.endsWith('aiaas.db'))).toBe(true);
  for (const [path, bytes] of files) {
    for (const needle of needles) expect(bytes.includes(Buffer.from(needle, 'utf8')), `${path} holds ${needle}`).toBe(false);
  }
}

/**
 * A model with a secret description, a CSV dataset with secret column names, and a trained job
 * (its spec names a secret layer; its history and loss are the metrics). Returns the secrets.
 */
async function storeSecrets(server: TestServer, key: string) {
  const tag = randomBytes(6).toString('hex');
  const secrets = { description: `SECRET-DESC-${tag}`, column: `SECRET-COL-${tag}`, label: `SECRET-LABEL-${tag}`, layer: `SECRET-LAYER-${tag}` };
  const model = await call(server.app, key, 'POST', '/api/v1/models', { name: 'secretive', description: secrets.description });
  expect(model.statusCode, model.body).toBe(201);
  const rows = Array.from({ length: 24 }, (_, index) => `${(index % 7) * 0.5},${(index % 5) * 1.5},${index % 2}`);
  const csv = `${secrets.column}-a,${secrets.column}-b,${secrets.label}\n${rows.join('\n')}\n`;
  const dataset = await call(server.app, key, 'POST', `/api/v1/datasets?name=secret-data&label=${secrets.label}`, csv, { 'content-type': 'text/csv' });
  expect(dataset.statusCode, dataset.body).toBe(201);
  const submitted = await call(server.app, key, 'POST', '/api/v1/jobs', {
    model: 'secretive',
    spec: {
      input: { shape: [2] },
      layers: [{ type: 'dense', name: secrets.layer, units: 2, activation: 'softmax' }],
      compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
    },
    datasetId: dataset.json().dataset.id,
    epochs: 2,
    seed: 1,
  });
  expect(submitted.statusCode, submitted.body).toBe(202);
  const job = await finalJob(server, key, submitted.json().job.id as string);
  expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
  // Metrics as they would appear in clear JSON: the exact text of the final loss and of the history.
  const history = job.history as Record<string, unknown>[];
  const metricTexts = [JSON.stringify(job.loss), JSON.stringify(history.at(-1))];
  return { secrets, datasetId: dataset.json().dataset.id as string, jobId: job.id as string, job, metricTexts };
}

describe('tenant text at rest', () => {
  it('keeps descriptions, column names, job specs and metrics out of every file of the data dir, and still serves them', async () => {
    const server = await startTestServer();
    servers.push(server);
    server.context.jobs.start();
    const { secrets, datasetId, jobId, job, metricTexts } = await storeSecrets(server, server.adminKey);

    // The API returns the plaintext.
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/secretive')).json().description).toBe(secrets.description);
    const dataset = (await call(server.app, server.adminKey, 'GET', `/api/v1/datasets/${datasetId}`)).json();
    expect(dataset.schema.featureNames).toEqual([`${secrets.column}-a`, `${secrets.column}-b`]);
    expect(dataset.schema.labelName).toBe(secrets.label);
    expect(typeof job.loss).toBe('number');
    expect(job.history).toHaveLength(2);
    const stored = await server.context.repositories.jobs.get(server.context.bootstrap.tenantId, jobId);
    expect(JSON.stringify(stored?.spec)).toContain(secrets.layer);
    const version = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/secretive/versions/1')).json();
    expect(version.metrics).toEqual((job.resultVersion as { metrics: unknown }).metrics);
    expect(version.signature.inputs).toHaveLength(1);

    const needles = [...Object.values(secrets), ...metricTexts];
    // As written (the WAL holds the recent pages), then after the WAL is folded into the database.
    await expectAbsent(server.dataDir, needles);
    await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(server.context.database.db);
    await expectAbsent(server.dataDir, needles);

    // And every value of a sealed column is sealed, not merely free of these needles.
    for (const [table, { columns }] of Object.entries(sealedColumns)) {
      for (const column of columns) {
        const { rows } = await sql<{ value: string }>`select ${sql.ref(column)} as value from ${sql.table(table)} where ${sql.ref(column)} is not null`.execute(server.context.database.db);
        for (const row of rows) expect(row.value.startsWith(sealedTextPrefix), `${table}.${column}: ${row.value.slice(0, 40)}`).toBe(true);
      }
    }
    const { rows: clearLoss } = await sql<{ count: number }>`select count(*) as count from jobs where loss is not null`.execute(server.context.database.db);
    expect(clearLoss[0]?.count).toBe(0);
  });

  it('refuses a sealed value moved to another row', async () => {
    const server = await startTestServer();
    servers.push(server);
    for (const name of ['first', 'second']) {
      expect((await call(server.app, server.adminKey, 'POST', '/api/v1/models', { name, description: `about ${name}` })).statusCode).toBe(201);
    }
    const db = server.context.database.db;
    await sql`update models set description = (select description from models where name = 'first') where name = 'second'`.execute(db);
    const moved = await call(server.app, server.adminKey, 'GET', '/api/v1/models/second');
    expect(moved.statusCode).toBe(500);
    expect(moved.json().error.code).toBe('STORED_TEXT_CORRUPT');
    expect(moved.body).not.toContain('about first');
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/first')).json().description).toBe('about first');
  });

  it('makes a deleted tenant’s texts unreadable along with its key', async () => {
    const server = await startTestServer();
    servers.push(server);
    const tenant = await createTenant(server, 'leaving');
    expect((await call(server.app, tenant.adminKey, 'POST', '/api/v1/models', { name: 'kept', description: 'SECRET-DESC-leaving' })).statusCode).toBe(201);
    const repositories = server.context.repositories;
    const model = await repositories.models.getByName(tenant.id, 'kept');
    expect(model?.description).toBe('SECRET-DESC-leaving');

    const sealed = (await sql<{ id: string; description: string }>`select id, description from models where tenant_id = ${tenant.id}`.execute(server.context.database.db)).rows[0]!;
    expect(sealed.description.startsWith(sealedTextPrefix)).toBe(true);

    expect((await call(server.app, server.adminKey, 'DELETE', `/api/v1/tenants/${tenant.id}`)).statusCode).toBe(204);
    // Deletion purges the row; a copy of it (a backup, say) no longer opens, because the key is gone.
    await expect(repositories.models.getByName(tenant.id, 'kept')).resolves.toBeUndefined();
    const cipher = new TenantTextCipher({ keys: server.context.keys });
    await expect(cipher.open(tenant.id, { table: 'models', column: 'description', rowId: sealed.id }, sealed.description)).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
  });
});

/**
 * Turns a data dir into what a server before 0002_tenant_text left: every sealed value back in
 * clear (the bytes the old code wrote: the same JSON and text), the latest loss in `jobs.loss`,
 * no `loss_text` column and no record of the migration.
 */
async function rewriteAsOlderServer(context: ServerContext): Promise<void> {
  const db = context.database.db;
  const cipher = new TenantTextCipher({ keys: context.keys });
  for (const table of Object.keys(sealedColumns) as SealedTable[]) {
    const { rowId, columns } = sealedColumns[table];
    const { rows } = await sql<Record<string, string | number | null>>`select * from ${sql.table(table)}`.execute(db);
    for (const row of rows) {
      for (const column of columns) {
        const value = row[column];
        if (typeof value !== 'string') continue;
        const plain = await cipher.open(String(row.tenant_id), { table, column, rowId: String(row[rowId]) }, value);
        if (column === 'loss_text') await sql`update jobs set loss = ${JSON.parse(plain) as number}, loss_text = null where id = ${row.id}`.execute(db);
        else await sql`update ${sql.table(table)} set ${sql.ref(column)} = ${plain} where id = ${row.id}`.execute(db);
      }
    }
  }
  await sql`alter table jobs drop column loss_text`.execute(db);
  await sql`delete from migrations where name = '0002_tenant_text'`.execute(db);
}

describe('0002_tenant_text on a data dir written in clear', () => {
  it('seals every older row in one start, reads back the same values, and removes a shredded tenant’s rows', async () => {
    const server = await startTestServer();
    servers.push(server);
    server.context.jobs.start();
    const { secrets, datasetId, jobId, metricTexts } = await storeSecrets(server, server.adminKey);
    const leaving = await createTenant(server, 'leaving');
    expect((await call(server.app, leaving.adminKey, 'POST', '/api/v1/models', { name: 'gone', description: 'SECRET-DESC-gone' })).statusCode).toBe(201);
    const views = async (app: TestServer['app']) => ({
      model: (await call(app, server.adminKey, 'GET', '/api/v1/models/secretive')).json(),
      dataset: (await call(app, server.adminKey, 'GET', `/api/v1/datasets/${datasetId}`)).json(),
      job: (await call(app, server.adminKey, 'GET', `/api/v1/jobs/${jobId}`)).json(),
      events: (await call(app, server.adminKey, 'GET', `/api/v1/jobs/${jobId}/events`, undefined, { accept: 'application/json' })).body,
    });
    const before = await views(server.app);
    expect(before.events).toContain('epoch-end');
    expect(before.model.description).toBe(secrets.description);

    await rewriteAsOlderServer(server.context);
    // Its key is destroyed while its rows are still in clear. Today's deletion also purges the rows; an
    // older server kept them, so the row goes back in as that server left it.
    const db = server.context.database.db;
    const goneRows = (await sql<Record<string, unknown>>`select * from models where tenant_id = ${leaving.id}`.execute(db)).rows;
    expect(goneRows).toHaveLength(1);
    expect((await call(server.app, server.adminKey, 'DELETE', `/api/v1/tenants/${leaving.id}`)).statusCode).toBe(204);
    for (const row of goneRows) {
      const columns = Object.keys(row);
      await sql`insert into models (${sql.join(columns.map((column) => sql.ref(column)))}) values (${sql.join(columns.map((column) => row[column]))})`.execute(db);
    }
    await server.app.close();
    await server.context.close();
    const needles = [...Object.values(secrets), ...metricTexts, 'SECRET-DESC-gone'];
    const database = await readFile(join(server.dataDir, 'aiaas.db'));
    for (const needle of needles) expect(database.includes(Buffer.from(needle)), `the older data dir holds ${needle}`).toBe(true);

    const config = loadConfig({ flags: { dataDir: server.dataDir, masterKey: server.config.masterKey!, logLevel: 'silent', warmup: false }, env: {} });
    const context = await createServerContext(config, { logger: pino({ level: 'silent' }), usageFlushIntervalMs: 0 });
    const app = await buildApp(context);
    try {
      expect(context.database.appliedMigrations).toEqual(['0002_tenant_text']);
      await expectAbsent(server.dataDir, needles);
      const after = await views(app);
      expect(after).toEqual(before);
      const { rows } = await sql<{ table: string; count: number }>`
        select 'models' as "table", count(*) as count from models where tenant_id = ${leaving.id}
        union all select 'datasets', count(*) from datasets where tenant_id = ${leaving.id}`.execute(context.database.db);
      expect(rows.map((row) => row.count)).toEqual([0, 0]);
      // Done in that one start: a second pass finds nothing left in clear.
      const again = await sealPlaintextTenantText(context.database.db, new TenantTextCipher({ keys: context.keys }));
      expect(again).toEqual({ sealedRows: 0, removedTenants: [] });
      for (const [table, { columns }] of Object.entries(sealedColumns)) {
        for (const column of columns) {
          const { rows: values } = await sql<{ value: string }>`select ${sql.ref(column)} as value from ${sql.table(table)} where ${sql.ref(column)} is not null`.execute(context.database.db);
          for (const row of values) expect(row.value.startsWith(sealedTextPrefix), `${table}.${column}`).toBe(true);
        }
      }
    } finally {
      await app.close();
      await context.close();
    }
  });
});
