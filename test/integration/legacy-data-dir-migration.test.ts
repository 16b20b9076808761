import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { pino } from 'pino';
import { listArtifactReferences } from '../../src/storage/artifact-references.ts';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { EncryptedArtifactStore } from '../../src/security/encrypted-artifact-store.ts';
import { MasterKeyRing } from '../../src/security/key-ring.ts';
import { unwrapDataKey } from '../../src/security/envelope.ts';
import { artifactFormatFileName } from '../../src/startup/artifact-format-migration.ts';
import { createServerContext } from '../../src/startup/context.ts';
import { createRepositories, FileSystemArtifactStore, openDatabase } from '../../src/storage/index.ts';

/*
 * test/fixtures/legacy-data-dir was written by main at commit 4301bed (see make-legacy-data-dir.ts):
 * every artifact in the old single-blob format, and the predictions that server gave.
 */
const fixture = new URL('../fixtures/legacy-data-dir/', import.meta.url);
const expected = JSON.parse(await readFile(new URL('expected.json', fixture), 'utf8')) as {
  adminKey: string;
  input: number[][];
  predictions: Record<string, unknown>;
  dataset: { id: string; csv: string };
  savedModelFiles: Record<string, string>;
  rawOnnx: string;
};
const masterKey = (await readFile(new URL('master-key.txt', fixture), 'utf8')).trim();

const directories: string[] = [];
afterEach(async () => {
  for (const directory of directories.splice(0)) await rm(directory, { recursive: true, force: true });
});

async function copyOfFixture(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'aiaas-legacy-'));
  directories.push(directory);
  await cp(new URL('data', fixture), directory, { recursive: true });
  return directory;
}

async function artifactFiles(dataDir: string): Promise<Map<string, Buffer>> {
  const entries = await readdir(join(dataDir, 'artifacts'), { withFileTypes: true, recursive: true });
  const files = new Map<string, Buffer>();
  for (const entry of entries) if (entry.isFile()) files.set(entry.name, await readFile(join(entry.parentPath, entry.name)));
  return files;
}

async function start(dataDir: string) {
  const config = loadConfig({ flags: { dataDir, masterKey, logLevel: 'silent', warmup: false, batchMaxQueueDelayMicroseconds: 0 }, env: {} });
  const context = await createServerContext(config, { logger: pino({ level: 'silent' }), usageFlushIntervalMs: 0 });
  const app = await buildApp(context);
  const request = (method: 'GET' | 'POST', url: string, payload?: object) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${expected.adminKey}` }, ...(payload === undefined ? {} : { payload }) });
  return { context, app, request, close: async () => (await app.close(), await context.close()) };
}

/** Everything the old server answered, asked again of a new one. */
async function expectSameAnswers(dataDir: string): Promise<void> {
  const server = await start(dataDir);
  try {
    for (const model of ['raw', 'saved']) {
      const response = await server.request('POST', `/v2/models/${model}/infer`, { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: expected.input }] });
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json().outputs).toEqual(expected.predictions[model]);
    }
    for (const [file, base64] of Object.entries(expected.savedModelFiles)) {
      const response = await server.request('GET', `/api/v1/models/saved/versions/1/files/${file}`);
      expect(response.statusCode).toBe(200);
      expect(response.rawPayload.toString('base64'), file).toBe(base64);
    }
    const onnx = await server.request('GET', '/api/v1/models/raw/versions/1/files/model.onnx');
    expect(onnx.rawPayload.toString('base64')).toBe(expected.rawOnnx);
    const tenantId = server.context.bootstrap.tenantId;
    const record = await server.context.datasets.get(tenantId, expected.dataset.id);
    expect(Buffer.from(await server.context.artifacts.get(tenantId, record.artifactRef)).toString('utf8')).toBe(expected.dataset.csv);
    expect((await server.context.datasets.load(tenantId, expected.dataset.id)).count).toBe(12);
  } finally {
    await server.close();
  }
}

describe('a data dir written before streamed artifacts', () => {
  it('is migrated at startup to the stream format, and answers exactly as before', async () => {
    const dataDir = await copyOfFixture();
    const before = await artifactFiles(dataDir);
    expect(before.size).toBe(6);
    for (const bytes of before.values()) expect(bytes.subarray(0, 4).toString('latin1')).toBe('AIAE');

    await expectSameAnswers(dataDir);

    const after = await artifactFiles(dataDir);
    expect(after.size).toBe(6);
    for (const [name, bytes] of after) {
      expect(bytes.subarray(0, 4).toString('latin1'), name).toBe('AIAS');
      expect(before.has(name)).toBe(false);
    }
    expect((await readFile(join(dataDir, artifactFormatFileName), 'utf8')).trim()).toBe('stream-v1');

    // The migration's list of ref columns and the backups' list agree (both name all 6 files).
    const connection = new BetterSqlite3(join(dataDir, 'aiaas.db'), { readonly: true });
    try {
      const forBackups = new Set(listArtifactReferences(connection).map((reference) => reference.ref));
      const database = await openDatabase({ path: join(dataDir, 'aiaas.db') });
      const forMigration = new Set((await createRepositories(database.db).artifactReferences.list()).map((reference) => reference.ref));
      await database.close();
      expect([...forMigration].sort()).toEqual([...forBackups].sort());
      expect(forMigration.size).toBe(6);
    } finally {
      connection.close();
    }

    // A second start finds the marker and changes nothing.
    await expectSameAnswers(dataDir);
    expect([...(await artifactFiles(dataDir)).keys()].sort()).toEqual([...after.keys()].sort());
  });

  it('finishes a migration that crashed half way, leaving no old file behind', async () => {
    const dataDir = await copyOfFixture();
    // Replay the first steps of a migration by hand, then "crash": for one artifact after its new
    // file was written but before its rows moved, for another after the rows moved but before the
    // old file was deleted.
    const database = await openDatabase({ path: join(dataDir, 'aiaas.db') });
    const repositories = createRepositories(database.db);
    const store = await FileSystemArtifactStore.open(join(dataDir, 'artifacts'));
    // The fixture predates the key store: its wrapped data keys are still in aiaas.db.
    const ring = MasterKeyRing.parse(masterKey);
    const keys = {
      dataKeyFor: async (tenantId: string) => {
        const wrapped = await repositories.tenantKeys.get(tenantId);
        if (wrapped === undefined) throw new Error(`no key for ${tenantId}`);
        return unwrapDataKey(ring, tenantId, { wrappedKey: wrapped.wrappedKey, masterKeyVersion: wrapped.masterKeyVersion });
      },
    };
    const artifacts = new EncryptedArtifactStore({ store, keys });
    const [first, second] = await repositories.artifactReferences.list();
    await artifacts.reencryptSingleBlob(first!.tenantId, first!.ref);
    const secondNew = await artifacts.reencryptSingleBlob(second!.tenantId, second!.ref);
    expect(await repositories.artifactReferences.replace(second!.tenantId, second!.ref, secondNew)).toBe(1);
    await database.close();
    expect((await artifactFiles(dataDir)).size).toBe(8);

    await expectSameAnswers(dataDir);
    const after = await artifactFiles(dataDir);
    expect(after.size).toBe(6);
    for (const bytes of after.values()) expect(bytes.subarray(0, 4).toString('latin1')).toBe('AIAS');
  });
});
