import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { unwrapDataKey } from '../../src/security/envelope.ts';
import { MasterKeyRing } from '../../src/security/key-ring.ts';
import { createServerContext } from '../../src/startup/context.ts';
import { openDatabase } from '../../src/storage/index.ts';
import { call, classifierModel, createTenant, startTestServer, uploadOnnxModel, type TestServer } from './helpers.ts';

const csv = `shred_marker_feature,other,label\n${Array.from({ length: 20 }, (_, index) => `${index}.5,${index * 2}.25,${index % 2}`).join('\n')}\n`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function allFiles(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

/** Every file under `directory` that holds any of the needles, as `file: needle index`. */
async function filesHolding(directory: string, needles: readonly Buffer[]): Promise<string[]> {
  const found: string[] = [];
  for (const file of await allFiles(directory)) {
    const bytes = await readFile(file);
    needles.forEach((needle, index) => {
      if (bytes.includes(needle)) found.push(`${file.slice(directory.length)}: needle ${index}`);
    });
  }
  return found;
}

/**
 * Tries every wrapped-key-shaped blob (raw, or base64 text) in every file as the tenant's key and
 * returns those that unwrap: found by content, wherever the server happens to keep them.
 */
async function unwrappableKeys(directory: string, ring: MasterKeyRing, tenantId: string): Promise<Set<string>> {
  const unwrapped = new Set<string>();
  for (const file of await allFiles(directory)) {
    const bytes = await readFile(file);
    const candidates: string[] = [];
    // 69 bytes wrapped ('AIWK', format 1, ...) are 92 base64 characters, 'QUlXSwE' and 85 more.
    for (const match of bytes.toString('latin1').matchAll(/QUlXSwE[A-Za-z0-9+/]{85}/g)) candidates.push(match[0]);
    for (let at = bytes.indexOf('AIWK'); at !== -1; at = bytes.indexOf('AIWK', at + 1)) candidates.push(bytes.subarray(at, at + 69).toString('base64'));
    for (const wrappedKey of candidates) {
      for (const masterKeyVersion of ring.versions) {
        try {
          unwrapDataKey(ring, tenantId, { wrappedKey, masterKeyVersion });
          unwrapped.add(wrappedKey);
        } catch {
          // Not this tenant's key, or not a key: exactly what shredding should leave.
        }
      }
    }
  }
  return unwrapped;
}

async function scratch(prefix: string): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

async function openOn(dataDir: string, ring: MasterKeyRing, keyStorePath?: string) {
  const config = loadConfig({
    flags: { dataDir, masterKey: ring.serialize(), logLevel: 'silent', warmup: false, ...(keyStorePath === undefined ? {} : { keyStorePath }) },
    env: {},
  });
  const context = await createServerContext(config, { logger: pino({ level: 'silent' }), usageFlushIntervalMs: 0 });
  cleanups.push(() => context.close());
  return context;
}

interface Doomed {
  server: TestServer;
  ring: MasterKeyRing;
  tenantId: string;
  datasetId: string;
  wrappedKey: string;
  dataKey: Buffer;
  artifactPaths: string[];
}

/** A server with a tenant that has a dataset, a loaded model and a plaintext directory. */
async function doomedTenant(): Promise<Doomed> {
  const server = await startTestServer();
  cleanups.push(() => server.close());
  const ring = MasterKeyRing.parse(server.config.masterKey!);
  const tenant = await createTenant(server, 'doomed');
  const upload = await call(server.app, tenant.adminKey, 'POST', '/api/v1/datasets?name=known', csv, { 'content-type': 'text/csv' });
  expect(upload.statusCode, upload.body).toBe(201);
  const uploaded = await uploadOnnxModel(server, tenant.adminKey, 'm', classifierModel().exportOnnx());
  expect(uploaded.statusCode, uploaded.body).toBe(201);
  const inputName = uploaded.json().version.signature.inputs[0].name;
  const infer = await call(server.app, tenant.adminKey, 'POST', '/v2/models/m/infer', {
    inputs: [{ name: inputName, datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }],
  });
  expect(infer.statusCode).toBe(200);
  const plain = join(server.dataDir, 'plain', tenant.id, 'version');
  await mkdir(plain, { recursive: true });
  await writeFile(join(plain, 'model.onnx'), 'decrypted model bytes');

  const wrappedKeys = [...(await unwrappableKeys(server.dataDir, ring, tenant.id))];
  expect(wrappedKeys).toHaveLength(1);
  const dataKey = Buffer.from(await server.context.keys.dataKeyFor(tenant.id));
  const record = (await server.context.repositories.datasets.get(tenant.id, upload.json().dataset.id))!;
  const version = (await server.context.repositories.models.resolve(tenant.id, 'm'))!;
  const artifactPaths = [record.artifactRef, version.version.onnxRef].map((ref) => {
    const hex = ref.slice('sha256:'.length);
    return join(server.dataDir, 'artifacts', hex.slice(0, 2), hex.slice(2, 4), hex);
  });
  for (const path of artifactPaths) expect((await stat(path)).isFile()).toBe(true);
  return { server, ring, tenantId: tenant.id, datasetId: record.id, wrappedKey: wrappedKeys[0]!, dataKey, artifactPaths };
}

function needlesOf(doomed: Doomed): Buffer[] {
  return [Buffer.from(doomed.wrappedKey, 'latin1'), Buffer.from(doomed.wrappedKey, 'base64'), doomed.dataKey, Buffer.from(doomed.dataKey.toString('base64'))];
}

describe('tenant deletion shreds on the bytes of every file', () => {
  it('keeps wrapped data keys out of the database and its WAL, in the key store only', async () => {
    const doomed = await doomedTenant();
    const holders = await filesHolding(doomed.server.dataDir, needlesOf(doomed));
    // The scanner finds the key where it must be, and nowhere else.
    expect(holders).toEqual(['/keystore.db: needle 0']);
  });

  it('leaves no copy of the key, the data key or the artifacts in any file, live or in a copy taken while running', async () => {
    const doomed = await doomedTenant();
    const { server } = doomed;
    const deleted = await call(server.app, server.adminKey, 'DELETE', `/api/v1/tenants/${doomed.tenantId}`);
    expect(deleted.statusCode).toBe(204);

    const copy = join(await scratch('aiaas-shred-copy-'), 'data');
    await cp(server.dataDir, copy, { recursive: true });
    for (const directory of [server.dataDir, copy]) {
      expect(await filesHolding(directory, needlesOf(doomed)), directory).toEqual([]);
      expect(await unwrappableKeys(directory, doomed.ring, doomed.tenantId)).toEqual(new Set());
      // The scan covered the database, its WAL and the key store, not just what happened to exist.
      const names = (await allFiles(directory)).map((file) => file.slice(directory.length));
      expect(names).toEqual(expect.arrayContaining(['/aiaas.db', '/keystore.db']));
    }
    for (const path of doomed.artifactPaths) await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(join(server.dataDir, 'plain', doomed.tenantId))).rejects.toMatchObject({ code: 'ENOENT' });
    const remaining = await allFiles(join(server.dataDir, 'artifacts'));
    expect(remaining.some((file) => doomed.artifactPaths.includes(file))).toBe(false);

    // With the master key and the copy taken after the delete, nothing of the tenant decrypts.
    const reopened = await openOn(copy, doomed.ring);
    await expect(reopened.keys.dataKeyFor(doomed.tenantId)).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
    await expect(reopened.datasets.load(doomed.tenantId, doomed.datasetId)).rejects.toMatchObject({ code: 'DATASET_NOT_FOUND' });
  });

  it('shreds earlier backups too: a data copy from before the delete does not decrypt against the live key store', async () => {
    const doomed = await doomedTenant();
    const { server } = doomed;
    // What a backup holds: the database and the artifacts, never the key store.
    const backup = join(await scratch('aiaas-shred-backup-'), 'data');
    await mkdir(backup);
    await cp(server.dataDir, backup, { recursive: true, filter: (source) => !/keystore\.db|aiaas\.lock/.test(source) });
    expect(await filesHolding(backup, needlesOf(doomed))).toEqual([]);

    expect((await call(server.app, server.adminKey, 'DELETE', `/api/v1/tenants/${doomed.tenantId}`)).statusCode).toBe(204);
    // Without the live key store a restore refuses, rather than minting fresh keys beside the old data.
    await expect(openOn(backup, doomed.ring)).rejects.toThrow(/no data key for 1 tenant\(s\).*--key-store \(AIAAS_KEY_STORE\)/);
    const restored = await openOn(backup, doomed.ring, server.config.keyStorePath);
    // The restored rows and artifact files are all there, and none of it opens.
    // The row's sealed text is under the destroyed key too, so its artifact reference is read raw.
    await expect(restored.repositories.datasets.get(doomed.tenantId, doomed.datasetId)).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
    const record = (await restored.database.db.selectFrom('datasets').select('artifact_ref').where('id', '=', doomed.datasetId).executeTakeFirstOrThrow());
    expect(await restored.artifacts.has(record.artifact_ref)).toBe(true);
    await expect(restored.artifacts.get(doomed.tenantId, record.artifact_ref)).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
    await expect(restored.datasets.load(doomed.tenantId, doomed.datasetId)).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
  });

  it('moves data keys a data dir from before the key store kept in aiaas.db, and scrubs them out of it and its WAL', async () => {
    const doomed = await doomedTenant();
    const { server } = doomed;
    await server.app.close();
    await server.context.close();
    // Rebuild the old layout: every wrapped key in the database's tenant_keys table, no key store.
    const keys = (await allFiles(server.dataDir)).filter((file) => file.includes('keystore.db'));
    const { KeyStoreDatabase } = await import('../../src/storage/index.ts');
    const keyStore = KeyStoreDatabase.open({ path: server.config.keyStorePath });
    const rows = keyStore.listAll();
    keyStore.close();
    for (const file of keys) await rm(file);
    const database = await openDatabase({ path: server.config.databasePath });
    for (const row of rows) {
      await database.db
        .insertInto('tenant_keys')
        .values({ tenant_id: row.tenantId, wrapped_key: row.wrappedKey, master_key_version: row.masterKeyVersion, created_at: row.createdAt })
        .execute();
    }
    await database.close();
    expect((await filesHolding(server.dataDir, needlesOf(doomed))).some((holder) => holder.startsWith('/aiaas.db'))).toBe(true);

    const restarted = await openOn(server.dataDir, doomed.ring);
    expect(restarted.keyStore.get(doomed.tenantId)?.wrappedKey).toBe(doomed.wrappedKey);
    expect((await restarted.datasets.load(doomed.tenantId, doomed.datasetId)).count).toBe(20);
    expect(await filesHolding(server.dataDir, needlesOf(doomed))).toEqual(['/keystore.db: needle 0']);
    expect(await restarted.repositories.tenantKeys.listAll()).toEqual([]);
  });
});
