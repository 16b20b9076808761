import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicKeyFrom, verifyRecord } from '../../src/security/provenance-signature.ts';
import { loadSigningKey } from '../../src/security/signing-key.ts';
import { MasterKeyRing, generateMasterKey } from '../../src/security/key-ring.ts';
import { linearModel } from '../inference/fixtures/tiny-onnx.ts';
import { call, finalJob, createTenant, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let server: TestServer;
let tenant: { id: string; adminKey: string };
beforeAll(async () => {
  server = await startTestServer();
  server.context.jobs.start();
  tenant = await createTenant(server, 'acme');
});
afterAll(async () => server.close());

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const waitForJob = (key: string, jobId: string): Promise<Record<string, unknown>> => finalJob(server, key, jobId);

describe('provenance', () => {
  it('signs every new version; the record verifies against the published key and names the file hashes', async () => {
    const onnx = linearModel();
    expect((await uploadOnnxModel(server, tenant.adminKey, 'linear', onnx)).statusCode).toBe(201);
    const key = await call(server.app, undefined, 'GET', '/api/v1/signing-key');
    expect(key.statusCode).toBe(200);
    const published = key.json();
    expect(published.algorithm).toBe('Ed25519');
    expect(Buffer.from(published.publicKey, 'base64')).toHaveLength(32);

    const response = await call(server.app, tenant.adminKey, 'GET', '/api/v1/models/linear/versions/1/provenance');
    expect(response.statusCode, response.body).toBe(200);
    const { record, signature, keyId } = response.json();
    expect(keyId).toBe(published.keyId);
    expect(record).toMatchObject({ format: 'aiaas-provenance-1', model: 'linear', version: 1, source: 'upload', jobId: null, parentVersion: null, aiaasVersion: '0.1.0' });
    expect(record.files).toEqual([{ name: 'model.onnx', sha256: sha256(onnx), bytes: onnx.byteLength }]);
    // The PEM and the raw key are the same key; both verify.
    expect(verifyRecord(record, signature, publicKeyFrom(published.publicKeyPem))).toBe(true);
    expect(verifyRecord(record, signature, publicKeyFrom(published.publicKey))).toBe(true);
    expect(verifyRecord({ ...record, version: 2 }, signature, publicKeyFrom(published.publicKey))).toBe(false);
    const listed = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/models/linear/versions/1')).json();
    expect(listed).toMatchObject({ provenance: true, exportable: true, parentVersionId: null });
  });

  it('records the training datasets with their content hashes, the spec and the hyperparameters', async () => {
    const csv = irisLikeCsv();
    const dataset = await call(server.app, tenant.adminKey, 'POST', '/api/v1/datasets?name=iris&label=label', csv, { 'content-type': 'text/csv' });
    expect(dataset.statusCode, dataset.body).toBe(201);
    const spec = { input: { shape: [4] }, layers: [{ type: 'dense', units: 3, activation: 'softmax' }], compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' } };
    const submitted = await call(server.app, tenant.adminKey, 'POST', '/api/v1/jobs', { model: 'trained', spec, datasetId: dataset.json().dataset.id, epochs: 1, seed: 3, batchSize: 4 });
    expect(submitted.statusCode, submitted.body).toBe(202);
    const job = await waitForJob(tenant.adminKey, submitted.json().job.id as string);
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    const { record, signature } = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/models/trained/versions/latest/provenance')).json();
    expect(record.jobId).toBe(job.id);
    expect(record.source).toBe('job');
    expect(record.datasets).toEqual([{ role: 'train', id: dataset.json().dataset.id, name: 'iris', sha256: sha256(Buffer.from(csv)), rows: 12 }]);
    expect(record.spec).toMatchObject({ layers: [{ type: 'dense', units: 3 }] });
    expect(record.hyperparameters).toMatchObject({ epochs: 1, seed: 3, batchSize: 4 });
    expect(record.files.map((file: { name: string }) => file.name)).toEqual(['metrics.json', 'model.onnx', 'model.safetensors', 'spec.json']);
    const onnx = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/models/trained/versions/latest/files/model.onnx')).rawPayload;
    expect(record.files.find((file: { name: string }) => file.name === 'model.onnx').sha256).toBe(sha256(onnx));
    expect(verifyRecord(record, signature, publicKeyFrom(server.context.signingKey.published.publicKey))).toBe(true);
  });

  it('keeps the signing key wrapped on disk and reloads the same key', async () => {
    const text = await readFile(join(server.dataDir, 'signing-key'), 'utf8');
    expect(JSON.parse(text)).toMatchObject({ format: 'aiaas-wrapped-secret', purpose: 'provenance signing key' });
    expect(text).not.toMatch(/PRIVATE KEY/);
    const directory = await mkdtemp(join(tmpdir(), 'aiaas-signing-'));
    try {
      const ring = MasterKeyRing.parse(generateMasterKey());
      const first = await loadSigningKey(ring, directory);
      const second = await loadSigningKey(ring, directory);
      expect(second.published).toEqual(first.published);
      await expect(loadSigningKey(MasterKeyRing.parse(generateMasterKey()), directory)).rejects.toMatchObject({ code: 'DATA_KEY_UNWRAP_FAILED' });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

describe('export control', () => {
  it('keeps a non-exportable model\'s weights from every key of its tenant, admins included', async () => {
    expect((await uploadOnnxModel(server, tenant.adminKey, 'secret', linearModel())).statusCode).toBe(201);
    const marked = await call(server.app, tenant.adminKey, 'PATCH', '/api/v1/models/secret', { exportable: false });
    expect(marked.statusCode, marked.body).toBe(200);
    expect(marked.json().model.exportable).toBe(false);
    const download = await call(server.app, tenant.adminKey, 'GET', '/api/v1/models/secret/versions/1/files/model.onnx');
    expect(download.statusCode).toBe(403);
    expect(download.json().error.code).toBe('EXPORT_FORBIDDEN');
    // The tenant's admin cannot lift the mark either.
    const lifted = await call(server.app, tenant.adminKey, 'PATCH', '/api/v1/models/secret', { exportable: true });
    expect(lifted.statusCode).toBe(403);
    expect(lifted.json().error.code).toBe('EXPORT_FORBIDDEN');
    // Inference is unaffected.
    const inferred = await call(server.app, tenant.adminKey, 'POST', '/v2/models/secret/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 0, 0] }] });
    expect(inferred.statusCode, inferred.body).toBe(200);
  });

  it('lets the operator download it, and audits that download', async () => {
    const response = await call(server.app, server.adminKey, 'GET', `/api/v1/tenants/${tenant.id}/models/secret/versions/1/files/model.onnx`);
    expect(response.statusCode, response.body).toBe(200);
    expect(Buffer.compare(response.rawPayload, Buffer.from(linearModel()))).toBe(0);
    const entries = (await call(server.app, server.adminKey, 'GET', '/api/v1/audit?limit=1000')).json().entries as { action: string; outcome: string; detail: Record<string, unknown>; resource: string }[];
    const entry = entries.find((item) => item.action === 'version.download.operator');
    expect(entry).toMatchObject({ outcome: 'success', resource: `tenant:${tenant.id}/model:secret/versions/1/files/model.onnx` });
    expect(entry!.detail).toMatchObject({ tenantId: tenant.id, exportControl: 'operator' });
    // A tenant admin cannot use the operator route.
    const denied = await call(server.app, tenant.adminKey, 'GET', `/api/v1/tenants/${tenant.id}/models/secret/versions/1/files/model.onnx`);
    expect(denied.statusCode).toBe(403);
  });

  it('lets only the operator lift the mark, audited', async () => {
    const denied = await call(server.app, tenant.adminKey, 'PATCH', `/api/v1/tenants/${tenant.id}/models/secret`, { exportable: true });
    expect(denied.statusCode).toBe(403);
    const lifted = await call(server.app, server.adminKey, 'PATCH', `/api/v1/tenants/${tenant.id}/models/secret`, { exportable: true });
    expect(lifted.statusCode, lifted.body).toBe(200);
    expect(lifted.json().model.exportable).toBe(true);
    expect((await call(server.app, tenant.adminKey, 'GET', '/api/v1/models/secret/versions/1/files/model.onnx')).statusCode).toBe(200);
    const entries = (await call(server.app, server.adminKey, 'GET', '/api/v1/audit?limit=1000')).json().entries as { action: string; outcome: string; detail: Record<string, unknown> }[];
    const changes = entries.filter((entry) => entry.action === 'model.export-control');
    expect(changes.map((entry) => entry.outcome)).toEqual(['denied', 'success']);
    expect(changes[1]!.detail).toMatchObject({ tenantId: tenant.id, exportable: true });
    // Marked again for the inheritance test below.
    expect((await call(server.app, tenant.adminKey, 'PATCH', '/api/v1/models/secret', { exportable: false })).statusCode).toBe(200);
    // The operator can lift the mark.
  });

  it('is inherited by derived versions, in the same model or another one', async () => {
    const registry = server.context.registry;
    const parent = await registry.getVersion(tenant.id, 'secret', '1');
    const sameModel = await registry.addVersionFromSavedModel(tenant.id, 'secret', { onnx: linearModel() }, { source: 'upload', parentVersionId: parent.version.id });
    await registry.createModel(tenant.id, { name: 'secret-copy' });
    const otherModel = await registry.addVersionFromSavedModel(tenant.id, 'secret-copy', { onnx: linearModel() }, { source: 'upload', parentVersionId: parent.version.id });
    expect(sameModel.exportable).toBe(false);
    expect(otherModel.exportable).toBe(false);
    expect((await registry.derivedVersionProtection(tenant.id, parent.version.id)).exportable).toBe(false);
    const download = await call(server.app, tenant.adminKey, 'GET', '/api/v1/models/secret-copy/versions/1/files/model.onnx');
    expect(download.statusCode).toBe(403);
    const view = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/models/secret-copy/versions/1')).json();
    expect(view).toMatchObject({ exportable: false, parentVersionId: parent.version.id });
    const { record } = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/models/secret-copy/versions/1/provenance')).json();
    expect(record.parentVersion).toEqual({ versionId: parent.version.id, model: 'secret', version: 1 });
  });

  it('can be set at creation', async () => {
    const created = await call(server.app, tenant.adminKey, 'POST', '/api/v1/models', { name: 'born-locked', exportable: false });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().model).toMatchObject({ exportable: false, outputPolicy: null });
  });
});
