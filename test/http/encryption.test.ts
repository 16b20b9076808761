import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { MasterKeyRing } from '../../src/security/key-ring.ts';
import { retirableMasterKeyVersions, rotateMasterKey } from '../../src/startup/admin.ts';
import { createServerContext } from '../../src/startup/context.ts';
import { call, classifierModel, createTenant, startTestServer, uploadOnnxModel, type TestServer } from './helpers.ts';

const marker = 'zebra_marker_feature';
const knownCsv = `${marker},other_feature,label\n${Array.from({ length: 20 }, (_, index) => `${index}.25,${index * 3}.5,${index % 2}`).join('\n')}\n`;

const servers: TestServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function fresh(): Promise<TestServer> {
  const server = await startTestServer();
  servers.push(server);
  return server;
}

async function artifactFiles(dataDir: string): Promise<string[]> {
  const entries = await readdir(join(dataDir, 'artifacts'), { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

/** Reopens the data directory with another master key ring, as a restarted server would. */
async function reopen(server: TestServer, ring: MasterKeyRing) {
  const config = loadConfig({ flags: { dataDir: server.dataDir, masterKey: ring.serialize(), logLevel: 'silent', warmup: false }, env: {} });
  const context = await createServerContext(config, { logger: pino({ level: 'silent' }), usageFlushIntervalMs: 0 });
  const app = await buildApp(context);
  return { app, context, close: async () => (await app.close(), await context.close()) };
}

describe('encryption at rest', () => {
  it('stores no plaintext of a known dataset or model in artifact files', async () => {
    const server = await fresh();
    const upload = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=known', knownCsv, { 'content-type': 'text/csv' });
    expect(upload.statusCode, upload.body).toBe(201);
    const onnx = classifierModel().exportOnnx();
    expect((await uploadOnnxModel(server, server.adminKey, 'm', onnx)).statusCode).toBe(201);
    const files = await artifactFiles(server.dataDir);
    expect(files).toHaveLength(2);
    const needles = [Buffer.from(marker), Buffer.from('19.25,57.5'), Buffer.from(knownCsv.split('\n')[3]!), Buffer.from(onnx.subarray(0, 64)), Buffer.from('dense')];
    for (const file of files) {
      const bytes = await readFile(file);
      expect(bytes.subarray(0, 4).toString('latin1')).toBe('AIAS');
      for (const needle of needles) expect(bytes.includes(needle), `${file} holds plaintext`).toBe(false);
    }
  });

  it('detects one flipped byte in a stored artifact and never serves it', async () => {
    const server = await fresh();
    const onnx = classifierModel().exportOnnx();
    const uploaded = await uploadOnnxModel(server, server.adminKey, 'm', onnx);
    const inputName = uploaded.json().version.signature.inputs[0].name;
    const [file] = await artifactFiles(server.dataDir);
    const original = await readFile(file!);

    // In place: the content address no longer matches.
    const flipped = Buffer.from(original);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    await writeFile(file!, flipped);
    const download = await call(server.app, server.adminKey, 'GET', '/api/v1/models/m/versions/1/files/model.onnx');
    expect(download.statusCode).toBe(500);
    expect(download.json().error.code).toBe('ARTIFACT_CORRUPT');
    expect(download.body).not.toContain(server.dataDir);
    const infer = await call(server.app, server.adminKey, 'POST', '/v2/models/m/infer', { inputs: [{ name: inputName, datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
    expect(infer.statusCode).toBe(500);
    expect(infer.headers['x-aiaas-error-code']).toBe('ARTIFACT_CORRUPT');

    // Re-addressed so the store's hash matches: the AES-GCM tag still catches the change.
    const ref = await server.context.artifactStore.put(flipped);
    await sql`update model_versions set onnx_ref = ${ref}`.execute(server.context.database.db);
    const again = await call(server.app, server.adminKey, 'GET', '/api/v1/models/m/versions/1/files/model.onnx');
    expect(again.statusCode).toBe(500);
    expect(again.json().error.code).toBe('ARTIFACT_CORRUPT');
    expect(again.body).not.toContain('ENOENT');
  });

  it('still decrypts everything after master-key rotation, live and offline, and after retiring old versions', async () => {
    const server = await fresh();
    const tenant = await createTenant(server, 'rotating');
    await call(server.app, tenant.adminKey, 'POST', '/api/v1/datasets?name=known', knownCsv, { 'content-type': 'text/csv' });
    const onnx = classifierModel().exportOnnx();
    await uploadOnnxModel(server, tenant.adminKey, 'm', onnx);
    const firstRing = MasterKeyRing.parse(server.config.masterKey!);

    // Live rotation through the running server's key service.
    const secondRing = firstRing.withNewKey();
    const report = await server.context.keys.rotateMasterKey(secondRing);
    // Only the new tenant has a data key yet: the operator tenant has stored nothing.
    expect(report).toMatchObject({ currentVersion: 2, rewrapped: 1 });
    const download = await call(server.app, tenant.adminKey, 'GET', '/api/v1/models/m/versions/1/files/model.onnx');
    expect(Buffer.compare(download.rawPayload, Buffer.from(onnx))).toBe(0);
    await server.app.close();
    await server.context.close();

    // Offline rotation (what `aiaas admin rotate-master-key` runs), then a restart with only the newest key.
    const thirdRing = secondRing.withNewKey();
    const offline = await rotateMasterKey(server.config, thirdRing);
    expect(offline).toMatchObject({ currentVersion: 3, rewrapped: 1, retirableVersions: [1, 2] });
    expect(await retirableMasterKeyVersions(server.config, thirdRing)).toEqual([1, 2]);
    const onlyNewest = thirdRing.without(1).without(2);
    const restarted = await reopen(server, onlyNewest);
    try {
      const datasets = (await call(restarted.app, tenant.adminKey, 'GET', '/api/v1/datasets')).json().datasets;
      const dataset = await restarted.context.datasets.load(tenant.id, datasets[0].id);
      expect(dataset.count).toBe(20);
      const file = await call(restarted.app, tenant.adminKey, 'GET', '/api/v1/models/m/versions/1/files/model.onnx');
      expect(Buffer.compare(file.rawPayload, Buffer.from(onnx))).toBe(0);
      const verify = await call(restarted.app, tenant.adminKey, 'GET', '/api/v1/me');
      expect(verify.statusCode).toBe(200);
    } finally {
      await restarted.close();
    }

    // A ring missing the version in use refuses to start rather than reporting corruption on every read.
    await expect(reopen(server, firstRing)).rejects.toMatchObject({ code: 'MASTER_KEY_MISMATCH' });
  });

  it('makes nothing of a deleted tenant decrypt (crypto-shredding)', async () => {
    const server = await fresh();
    const tenant = await createTenant(server, 'doomed');
    const dataset = (await call(server.app, tenant.adminKey, 'POST', '/api/v1/datasets?name=known', knownCsv, { 'content-type': 'text/csv' })).json().dataset;
    const uploaded = await uploadOnnxModel(server, tenant.adminKey, 'm', classifierModel().exportOnnx());
    const inputName = uploaded.json().version.signature.inputs[0].name;
    const infer = () =>
      call(server.app, tenant.adminKey, 'POST', '/v2/models/m/infer', { inputs: [{ name: inputName, datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
    expect((await infer()).statusCode).toBe(200);
    const record = await server.context.repositories.datasets.get(tenant.id, dataset.id);
    const version = await server.context.repositories.models.resolve(tenant.id, 'm');

    expect((await call(server.app, server.adminKey, 'DELETE', `/api/v1/tenants/${tenant.id}`)).statusCode).toBe(204);
    expect((await infer()).statusCode).toBe(401);
    expect(server.context.manager.loaded()).toEqual([]);
    await expect(server.context.artifacts.get(tenant.id, record!.artifactRef)).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
    await expect(server.context.artifacts.get(tenant.id, version!.version.onnxRef)).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
    // Its rows went with its artifacts.
    await expect(server.context.datasets.load(tenant.id, dataset.id)).rejects.toMatchObject({ code: 'DATASET_NOT_FOUND' });
    expect(server.context.keyStore.get(tenant.id)).toMatchObject({ wrappedKey: '', masterKeyVersion: 0 });
    const secureDelete = await sql<{ secure_delete: number }>`PRAGMA secure_delete`.execute(server.context.database.db);
    expect(secureDelete.rows[0]?.secure_delete).toBe(1);
    // Still gone after a restart: the tombstone stays, no fresh key is minted.
    await server.app.close();
    await server.context.close();
    const restarted = await reopen(server, MasterKeyRing.parse(server.config.masterKey!));
    try {
      await expect(restarted.context.keys.dataKeyFor(tenant.id)).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
    } finally {
      await restarted.close();
    }
  });
});
