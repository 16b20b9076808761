/**
 * The restore drill of issue 7, in one run: build up tenants, datasets, models, jobs and keys; back
 * up while a training job runs and inference traffic flows; change things; restore into a new data
 * directory; start a server on it and check rows, artifact bytes, predictions, the audit chain and
 * keys. Step 6: after a tenant is deleted, restoring the earlier backup (with the live key store)
 * serves everyone else and answers the deleted tenant with KEY_DESTROYED.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { loadConfig, type ConfigValue } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { createServerContext, type ServerContext } from '../../src/startup/context.ts';
import { artifactRelativePath, listArtifactReferences } from '../../src/storage/artifact-references.ts';
import { captureIo } from '../cli/helpers.ts';
import { call, classifierModel, classifierSpec, createKey, createTenant, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';


let live: TestServer;
let scratch: string;
const opened: { app: FastifyInstance; context: ServerContext }[] = [];

interface Tenant {
  id: string;
  adminKey: string;
}
let acme: Tenant;
let globex: Tenant;
let acmeDeveloper: { id: string; key: string };
let acmeInference: { id: string; key: string };
let backupPath: string;
/** Rows of the tables that do not change while the backup runs, read right before it. */
let rowsAtBackup: Record<string, unknown[]>;
/** Every artifact file's bytes right after the backup. */
let artifactsAtBackup: Map<string, Buffer>;
/** V2 outputs of every model version, per tenant, right after the backup. */
let predictionsAtBackup: Map<string, unknown>;
let runningJobId: string;

const samples = [
  [5.1, 3.5, 1.4, 0.2],
  [6.2, 2.9, 4.3, 1.3],
  [7.7, 3.0, 6.1, 2.3],
];

/** A CSV big enough that one epoch takes a while, so the job is surely still training during the backup. */
function largeCsv(rows: number): string {
  const lines = ['a,b,c,d,label'];
  for (let index = 0; index < rows; index++) lines.push(`${(index % 7) / 7},${(index % 5) / 5},${(index % 3) / 3},${(index % 11) / 11},${index % 3}`);
  return `${lines.join('\n')}\n`;
}

function readRows(databasePath: string, sql: string): unknown[] {
  const connection = new BetterSqlite3(databasePath, { readonly: true });
  try {
    return connection.prepare(sql).all();
  } finally {
    connection.close();
  }
}

const stableTables: Record<string, string> = {
  tenants: 'SELECT * FROM tenants ORDER BY id',
  api_keys: 'SELECT id, tenant_id, name, prefix, key_hash, role, allowed_models, created_at, expires_at, revoked_at FROM api_keys ORDER BY id',
  datasets: 'SELECT * FROM datasets ORDER BY id',
  models: 'SELECT * FROM models ORDER BY id',
  model_versions: 'SELECT * FROM model_versions ORDER BY id',
  aliases: 'SELECT * FROM aliases ORDER BY model_id, name',
  finished_jobs: "SELECT * FROM jobs WHERE status = 'succeeded' ORDER BY id",
};

/** Servers started on a restore read tenant data keys from the live key store (docs/operations.md). */
function liveKeyStoreFlags(): Record<string, ConfigValue> {
  return { keyStorePath: live.config.keyStorePath };
}

async function startOn(dataDir: string): Promise<{ app: FastifyInstance; context: ServerContext }> {
  const config = loadConfig({
    flags: { dataDir, masterKey: live.config.masterKey, logLevel: 'silent', warmup: false, ...liveKeyStoreFlags() },
    env: {},
  });
  const context = await createServerContext(config, { logger: pino({ level: 'silent' }), usageFlushIntervalMs: 0 });
  const app = await buildApp(context);
  const server = { app, context };
  opened.push(server);
  return server;
}

async function restore(into: string): Promise<void> {
  const io = captureIo({ env: { AIAAS_MASTER_KEY: live.config.masterKey }, cwd: scratch });
  const code = await main(['backup', 'restore', backupPath, '--data-dir', into], io);
  expect(code, io.err()).toBe(0);
}

/** Every version of every model a tenant key sees: `name@version` → V2 outputs for `samples`. */
async function predictions(app: FastifyInstance, tenants: readonly Tenant[]): Promise<Map<string, unknown>> {
  const result = new Map<string, unknown>();
  for (const tenant of tenants) {
    const models = (await call(app, tenant.adminKey, 'GET', '/api/v1/models')).json().models as { name: string }[];
    for (const { name } of models) {
      const versions = (await call(app, tenant.adminKey, 'GET', `/api/v1/models/${name}/versions`)).json().versions as { version: number; signature: { inputs: { name: string }[] } }[];
      for (const version of versions) {
        const response = await call(app, tenant.adminKey, 'POST', `/v2/models/${name}/versions/${version.version}/infer`, {
          inputs: [{ name: version.signature.inputs[0]!.name, datatype: 'FP32', shape: [samples.length, 4], data: samples }],
        });
        expect(response.statusCode, response.body).toBe(200);
        result.set(`${tenant.id}/${name}@${version.version}`, response.json().outputs);
      }
    }
  }
  return result;
}

async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'aiaas-drill-'));
  live = await startTestServer({ backupDir: join(scratch, 'backups'), jobConcurrency: 2 });
  live.context.jobs.start();
});

afterAll(async () => {
  for (const server of opened) {
    await server.app.close();
    await server.context.close();
  }
  await live.close();
  await rm(scratch, { recursive: true, force: true });
});

describe('restore drill', () => {
  it('1. creates tenants, datasets, models, jobs and keys', async () => {
    acme = await createTenant(live, 'acme');
    globex = await createTenant(live, 'globex');
    acmeDeveloper = await createKey(live, acme.adminKey, 'developer');
    acmeInference = await createKey(live, acme.adminKey, 'inference', { allowedModels: ['classifier'] });

    for (const seed of [7, 8]) expect((await uploadOnnxModel(live, acme.adminKey, 'classifier', classifierModel(seed).exportOnnx())).statusCode).toBe(201);
    expect((await call(live.app, acme.adminKey, 'PUT', '/api/v1/models/classifier/aliases/production', { version: 1 })).statusCode).toBe(200);
    const acmeData = await call(live.app, acme.adminKey, 'POST', '/api/v1/datasets?name=big', largeCsv(3000), { 'content-type': 'text/csv' });
    expect(acmeData.statusCode, acmeData.body).toBe(201);

    const globexData = await call(live.app, globex.adminKey, 'POST', '/api/v1/datasets?name=iris', irisLikeCsv(), { 'content-type': 'text/csv' });
    expect(globexData.statusCode).toBe(201);
    const { name: _name, ...spec } = classifierSpec;
    const quick = await call(live.app, globex.adminKey, 'POST', '/api/v1/jobs', { model: 'flowers', spec, datasetId: globexData.json().dataset.id, epochs: 3, seed: 1 });
    expect(quick.statusCode, quick.body).toBe(202);
    const finished = await until(async () => {
      const job = (await call(live.app, globex.adminKey, 'GET', `/api/v1/jobs/${quick.json().job.id}`)).json().job;
      return ['succeeded', 'failed', 'cancelled'].includes(job.status) ? job : undefined;
    });
    expect(finished.status).toBe('succeeded');

    const long = await call(live.app, acme.adminKey, 'POST', '/api/v1/jobs', { model: 'trained', spec, datasetId: acmeData.json().dataset.id, epochs: 10000, batchSize: 4, seed: 2 });
    expect(long.statusCode, long.body).toBe(202);
    runningJobId = long.json().job.id;
  });

  it('2. backs up while a training job runs and inference traffic flows', async () => {
    // Training, with at least one checkpoint stored.
    await until(async () => {
      const job = await live.context.repositories.jobs.get(acme.id, runningJobId);
      if (job === undefined || !['queued', 'running'].includes(job.status)) throw new Error(`the job stopped: ${JSON.stringify(job)}`);
      return job.status === 'running' && job.checkpointRef !== null ? job : undefined;
    });
    rowsAtBackup = Object.fromEntries(Object.entries(stableTables).map(([table, sql]) => [table, readRows(live.config.databasePath, sql)]));

    const traffic = Array.from({ length: 24 }, (_, index) =>
      call(live.app, acmeInference.key, 'POST', `/v2/models/classifier/versions/${1 + (index % 2)}/infer`, {
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [samples[index % 3]] }],
      }),
    );
    const backup = await call(live.app, live.adminKey, 'POST', '/api/v1/admin/backups');
    const answered = await Promise.all(traffic);
    expect(backup.statusCode, backup.body).toBe(201);
    expect(answered.map((response) => response.statusCode)).toEqual(answered.map(() => 200));
    // Still training after the backup finished: it ran all along.
    expect((await live.context.repositories.jobs.get(acme.id, runningJobId))?.status).toBe('running');
    backupPath = join(live.config.backupDir!, backup.json().name);

    artifactsAtBackup = new Map();
    const copy = new BetterSqlite3(join(backupPath, 'aiaas.db'), { readonly: true });
    const references = listArtifactReferences(copy);
    copy.close();
    for (const { ref } of references) artifactsAtBackup.set(ref, await readFile(join(backupPath, 'artifacts', artifactRelativePath(ref))));
    predictionsAtBackup = await predictions(live.app, [acme, globex]);
    expect([...predictionsAtBackup.keys()].sort()).toEqual([`${acme.id}/classifier@1`, `${acme.id}/classifier@2`, `${globex.id}/flowers@1`].sort());
  });

  it('3. changes things on the live server', async () => {
    expect((await call(live.app, live.adminKey, 'POST', '/api/v1/tenants', { name: 'initech' })).statusCode).toBe(201);
    expect((await uploadOnnxModel(live, acme.adminKey, 'classifier', classifierModel(9).exportOnnx())).statusCode).toBe(201);
    expect((await call(live.app, acme.adminKey, 'PUT', '/api/v1/models/classifier/aliases/production', { version: 2 })).statusCode).toBe(200);
    expect((await call(live.app, acme.adminKey, 'DELETE', `/api/v1/keys/${acmeDeveloper.id}`)).statusCode).toBe(204);
    const globexDatasets = (await call(live.app, globex.adminKey, 'GET', '/api/v1/datasets')).json().datasets as { id: string }[];
    expect((await call(live.app, globex.adminKey, 'DELETE', `/api/v1/datasets/${globexDatasets[0]!.id}`)).statusCode).toBe(204);
    expect((await call(live.app, acme.adminKey, 'POST', `/api/v1/jobs/${runningJobId}/cancel`)).statusCode).toBe(202);
    // Until the runner has handled the worker's last message, a checkpoint may still be being written.
    // Events come in pages of 500; a job that ran long has more, and job-finished is the last.
    let seen = 0;
    await until(async () => {
      for (;;) {
        const events = await live.context.jobs.service.events(acme.id, runningJobId, seen);
        if (events.some((event) => event.type === 'job-finished')) return true;
        if (events.length === 0) return undefined;
        seen = events.at(-1)!.id;
      }
    });
  });

  it('4-5. restores into a new directory and serves the same rows, bytes, predictions, audit chain and keys', async () => {
    const restoredDir = join(scratch, 'restored');
    await restore(restoredDir);
    const check = captureIo({ cwd: scratch });
    expect(await main(['admin', 'check', '--data-dir', restoredDir], check), check.err()).toBe(0);

    const restored = await startOn(restoredDir);
    const databasePath = restored.context.config.databasePath;
    for (const [table, sql] of Object.entries(stableTables)) expect(readRows(databasePath, sql), table).toEqual(rowsAtBackup[table]);
    // The audit log is the live one as of the snapshot: a prefix of today's.
    const restoredAudit = readRows(databasePath, 'SELECT * FROM audit_log ORDER BY seq') as { seq: number }[];
    expect(restoredAudit.length).toBeGreaterThan(10);
    expect(readRows(live.config.databasePath, `SELECT * FROM audit_log WHERE seq <= ${restoredAudit.at(-1)!.seq} ORDER BY seq`)).toEqual(restoredAudit);

    for (const [ref, bytes] of artifactsAtBackup) {
      expect(Buffer.compare(await readFile(join(restoredDir, 'artifacts', artifactRelativePath(ref as `sha256:${string}`))), bytes), ref).toBe(0);
    }
    // Decrypted downloads match too: the same data keys open the same files.
    const onnx = await call(restored.app, acme.adminKey, 'GET', '/api/v1/models/classifier/versions/1/files/model.onnx');
    expect(Buffer.compare(onnx.rawPayload, Buffer.from(classifierModel(7).exportOnnx()))).toBe(0);

    expect(await predictions(restored.app, [acme, globex])).toEqual(predictionsAtBackup);

    const audit = await call(restored.app, live.adminKey, 'GET', '/api/v1/audit/verify');
    expect(audit.json()).toMatchObject({ ok: true });

    // Keys as they were at the backup: the one revoked since works, the tenant created since does not exist.
    for (const key of [live.adminKey, acme.adminKey, globex.adminKey, acmeDeveloper.key]) expect((await call(restored.app, key, 'GET', '/api/v1/me')).statusCode).toBe(200);
    expect((await call(live.app, acmeDeveloper.key, 'GET', '/api/v1/me')).statusCode).toBe(401);
    const inference = await call(restored.app, acmeInference.key, 'POST', '/v2/models/classifier/versions/production/infer', {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [samples[0]] }],
    });
    expect(inference.statusCode).toBe(200);
    expect(inference.json().model_version).toBe('1');
    expect(((await call(restored.app, live.adminKey, 'GET', '/api/v1/tenants')).json().tenants as { name: string }[]).map((tenant) => tenant.name).sort()).toEqual(['acme', 'default', 'globex']);
    expect((await call(restored.app, acme.adminKey, 'GET', '/api/v1/models/classifier/versions/3')).statusCode).toBe(404);
    expect((await call(restored.app, globex.adminKey, 'GET', '/api/v1/datasets')).json().datasets).toHaveLength(1);

    // The job is as it was: running, with a checkpoint the restored server can decrypt (and resume from).
    const job = await restored.context.repositories.jobs.get(acme.id, runningJobId);
    expect(job?.status).toBe('running');
    expect((await restored.context.artifacts.get(acme.id, job!.checkpointRef!)).byteLength).toBeGreaterThan(0);
  });

  /*
   * Tenant data keys live in the key store (`keyStorePath`), which backups never copy; restored
   * servers use the live one. Before the key store, the backup carried globex's key and the restored
   * globex still decrypted (this step then failed with 200).
   */
  it('6. after a tenant is deleted, restoring the earlier backup serves everyone else and shreds that tenant', async () => {
    expect((await call(live.app, live.adminKey, 'DELETE', `/api/v1/tenants/${globex.id}`)).statusCode).toBe(204);
    const again = join(scratch, 'restored-after-deletion');
    await restore(again);
    const restored = await startOn(again);

    const everyoneElse = await predictions(restored.app, [acme]);
    for (const [key, outputs] of everyoneElse) expect(outputs).toEqual(predictionsAtBackup.get(key));
    expect(everyoneElse.size).toBe(2);

    const destroyedCode = 'KEY_DESTROYED';
    const model = await call(restored.app, globex.adminKey, 'POST', '/v2/models/flowers/versions/1/infer', {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [samples[0]] }],
    });
    expect(model.statusCode, model.body).toBe(410);
    // V2 answers in its protocol's shape, with the code in a header.
    expect(model.headers['x-aiaas-error-code']).toBe(destroyedCode);
    const download = await call(restored.app, globex.adminKey, 'GET', '/api/v1/models/flowers/versions/1/files/model.onnx');
    expect(download.statusCode).toBe(410);
    expect(download.json().error.code).toBe(destroyedCode);
  });
});
