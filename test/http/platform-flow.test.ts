import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeIdx } from '../../src/data/idx.ts';
import { savedModelBytes } from '../../src/engine/index.ts';
import { writeTar } from '../../src/platform/tar.ts';
import { call, classifierModel, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from './helpers.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.close());

function multipart(parts: { name: string; fileName?: string; contentType?: string; body: Buffer | string }[]): { body: Buffer; contentType: string } {
  const boundary = 'aiaas-test-boundary-7d1f';
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.fileName === undefined ? '' : `; filename="${part.fileName}"`}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${part.contentType === undefined ? '' : `Content-Type: ${part.contentType}\r\n`}\r\n`));
    chunks.push(Buffer.isBuffer(part.body) ? part.body : Buffer.from(part.body));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

function closeTo(actual: readonly number[], expected: ArrayLike<number>): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 5));
}

describe('datasets', () => {
  it('uploads a CSV as a raw body, then gets, lists and deletes it', async () => {
    const upload = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=iris-raw&label=label', irisLikeCsv(), {
      'content-type': 'application/octet-stream',
    });
    expect(upload.statusCode, upload.body).toBe(201);
    const dataset = upload.json().dataset;
    expect(dataset).toMatchObject({ name: 'iris-raw', format: 'csv', rowCount: 12, schema: { featureShape: [4], labelShape: [], classes: 3, labelName: 'label' } });
    expect(dataset.schema.featureNames).toEqual(['sepal_length', 'sepal_width', 'petal_length', 'petal_width']);

    const got = await call(server.app, server.adminKey, 'GET', `/api/v1/datasets/${dataset.id}`);
    expect(got.json()).toEqual(dataset);
    const list = await call(server.app, server.adminKey, 'GET', '/api/v1/datasets');
    expect(list.json().datasets.map((item: { id: string }) => item.id)).toContain(dataset.id);

    const loaded = await server.context.datasets.load(server.context.bootstrap.tenantId, dataset.id);
    expect(loaded.count).toBe(12);
    expect(Array.from(loaded.features.subarray(0, 4))).toEqual([5, 3, 1.4, 0.2].map((value) => Math.fround(value)));

    expect((await call(server.app, server.adminKey, 'DELETE', `/api/v1/datasets/${dataset.id}`)).statusCode).toBe(204);
    const gone = await call(server.app, server.adminKey, 'GET', `/api/v1/datasets/${dataset.id}`);
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe('DATASET_NOT_FOUND');
  });

  it('uploads a gzipped CSV through multipart, taking the name from the form', async () => {
    const form = multipart([
      { name: 'name', body: 'iris-multipart' },
      { name: 'file', fileName: 'iris.csv.gz', contentType: 'application/gzip', body: gzipSync(irisLikeCsv()) },
    ]);
    const upload = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets', form.body, { 'content-type': form.contentType });
    expect(upload.statusCode, upload.body).toBe(201);
    expect(upload.json().dataset).toMatchObject({ name: 'iris-multipart', format: 'csv', rowCount: 12 });
  });

  it('uploads an IDX images/labels pair', async () => {
    const count = 5;
    const images = encodeIdx({ dataType: 'uint8', dims: [count, 3, 3], data: Uint8Array.from({ length: count * 9 }, (_, index) => (index * 17) % 256) });
    const labels = encodeIdx({ dataType: 'uint8', dims: [count], data: Uint8Array.from([0, 1, 2, 1, 0]) });
    const form = multipart([
      { name: 'file', fileName: 'images-idx3-ubyte', body: Buffer.from(images) },
      { name: 'labels', fileName: 'labels-idx1-ubyte', body: Buffer.from(labels) },
    ]);
    const upload = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=digits', form.body, { 'content-type': form.contentType });
    expect(upload.statusCode, upload.body).toBe(201);
    const dataset = upload.json().dataset;
    expect(dataset).toMatchObject({ format: 'idx', rowCount: 5, schema: { featureShape: [3, 3], labelShape: [], classes: 3 } });
    const loaded = await server.context.datasets.load(server.context.bootstrap.tenantId, dataset.id);
    expect(Array.from(loaded.labels)).toEqual([0, 1, 2, 1, 0]);
  });

  it('rejects a file that is not a dataset, and a duplicate name', async () => {
    const bad = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=noise&format=csv', 'a,b\n1,x\n', { 'content-type': 'text/csv' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('INVALID_DATA');
    await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=twice', irisLikeCsv(), { 'content-type': 'text/csv' });
    const again = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=twice', irisLikeCsv(), { 'content-type': 'text/csv' });
    expect(again.statusCode).toBe(409);
  });
});

describe('models, versions, aliases and inference', () => {
  const model = classifierModel(11);
  const samples = [
    [5.1, 3.5, 1.4, 0.2],
    [6.7, 3.1, 4.4, 1.4],
    [6.3, 2.9, 5.6, 1.8],
  ];

  it('uploads .onnx and saved-model .tar versions, aliases one, and serves both protocols with the engine\'s numbers', async () => {
    const v1 = await uploadOnnxModel(server, server.adminKey, 'iris', model.exportOnnx());
    expect(v1.statusCode, v1.body).toBe(201);
    const version1 = v1.json().version;
    expect(version1).toMatchObject({ model: 'iris', version: 1, source: 'upload', files: ['model.onnx'] });
    expect(version1.signature.inputs[0]).toMatchObject({ datatype: 'FP32', shape: [-1, 4] });
    expect(version1.signature.outputs[0]).toMatchObject({ datatype: 'FP32', shape: [-1, 3] });

    const trained = classifierModel(12);
    const files = savedModelBytes(trained, { accuracy: 0.9 });
    const tar = writeTar([
      { name: 'iris/spec.json', bytes: files.spec },
      { name: 'iris/model.safetensors', bytes: files.weights },
      { name: 'iris/model.onnx', bytes: files.onnx },
      { name: 'iris/metrics.json', bytes: files.metrics },
    ]);
    const v2 = await call(server.app, server.adminKey, 'POST', '/api/v1/models/iris/versions', Buffer.from(tar), { 'content-type': 'application/x-tar' });
    expect(v2.statusCode, v2.body).toBe(201);
    expect(v2.json().version).toMatchObject({ version: 2, metrics: { accuracy: 0.9 }, files: ['model.onnx', 'spec.json', 'model.safetensors', 'metrics.json'] });

    const spec = await call(server.app, server.adminKey, 'GET', '/api/v1/models/iris/versions/2/files/spec.json');
    expect(spec.statusCode).toBe(200);
    expect(spec.json()).toEqual(JSON.parse(new TextDecoder().decode(files.spec)));
    const onnx = await call(server.app, server.adminKey, 'GET', '/api/v1/models/iris/versions/1/files/model.onnx');
    expect(Buffer.compare(onnx.rawPayload, Buffer.from(model.exportOnnx()))).toBe(0);

    const alias = await call(server.app, server.adminKey, 'PUT', '/api/v1/models/iris/aliases/production', { version: 1 });
    expect(alias.statusCode, alias.body).toBe(200);
    expect(alias.json().alias).toMatchObject({ name: 'production', version: 1 });
    const listed = await call(server.app, server.adminKey, 'GET', '/api/v1/models/iris');
    expect(listed.json()).toMatchObject({ name: 'iris', versions: [1, 2], aliases: [{ name: 'production', version: 1 }] });

    const inputName = version1.signature.inputs[0].name;
    const expected = await model.predict(Float32Array.from(samples.flat()));
    const v2Response = await call(server.app, server.adminKey, 'POST', '/v2/models/iris/versions/production/infer', {
      id: 'abc',
      inputs: [{ name: inputName, datatype: 'FP32', shape: [3, 4], data: samples }],
    });
    expect(v2Response.statusCode, v2Response.body).toBe(200);
    expect(v2Response.json()).toMatchObject({ id: 'abc', model_name: 'iris', model_version: '1' });
    closeTo(v2Response.json().outputs[0].data, expected);

    const tfResponse = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/iris/labels/production:predict', { instances: samples });
    expect(tfResponse.statusCode, tfResponse.body).toBe(200);
    closeTo((tfResponse.json().predictions as number[][]).flat(), expected);

    // Latest is version 2: the other weights.
    const latest = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/iris:predict', { instances: samples });
    closeTo((latest.json().predictions as number[][]).flat(), await trained.predict(Float32Array.from(samples.flat())));

    const usage = await call(server.app, server.adminKey, 'GET', '/api/v1/usage?from=2000-01-01');
    expect(usage.json().usage).toEqual([expect.objectContaining({ model: 'iris', requests: 3 })]);
  });

  it('moves aliases atomically and guards versions and models they point at', async () => {
    await call(server.app, server.adminKey, 'PUT', '/api/v1/models/iris/aliases/production', { version: 2 });
    const guarded = await call(server.app, server.adminKey, 'DELETE', '/api/v1/models/iris/versions/2');
    expect(guarded.statusCode).toBe(409);
    expect(guarded.json().error).toMatchObject({ code: 'ALIAS_IN_USE', details: { aliases: ['production'] } });
    const modelGuard = await call(server.app, server.adminKey, 'DELETE', '/api/v1/models/iris');
    expect(modelGuard.statusCode).toBe(409);
    expect((await call(server.app, server.adminKey, 'DELETE', '/api/v1/models/iris/versions/1')).statusCode).toBe(204);
    expect((await call(server.app, server.adminKey, 'DELETE', '/api/v1/models/iris/aliases/production')).statusCode).toBe(204);
    expect((await call(server.app, server.adminKey, 'DELETE', '/api/v1/models/iris')).statusCode).toBe(204);
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/iris')).statusCode).toBe(404);
  });

  it('patches description and batching, and lists models', async () => {
    await call(server.app, server.adminKey, 'POST', '/api/v1/models', { name: 'patched', description: 'a' });
    const patched = await call(server.app, server.adminKey, 'PATCH', '/api/v1/models/patched', { description: 'b', batching: { maxBatchSize: 4 } });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json().model).toMatchObject({ description: 'b', batching: { maxBatchSize: 4 } });
    const invalid = await call(server.app, server.adminKey, 'PATCH', '/api/v1/models/patched', { batching: { maxBatchSize: 0 } });
    expect(invalid.statusCode).toBe(400);
    const list = await call(server.app, server.adminKey, 'GET', '/api/v1/models');
    expect(list.json().models.map((item: { name: string }) => item.name)).toContain('patched');
  });

  it('keeps the audit chain intact through all of it', async () => {
    const verify = await call(server.app, server.adminKey, 'GET', '/api/v1/audit/verify');
    expect(verify.json()).toMatchObject({ ok: true });
    const entries = (await call(server.app, server.adminKey, 'GET', '/api/v1/audit?limit=1000')).json().entries as { action: string; outcome: string }[];
    const actions = entries.map((entry) => entry.action);
    expect(actions).toEqual(expect.arrayContaining(['dataset.create', 'dataset.delete', 'model.create', 'version.create', 'alias.set', 'version.delete', 'model.delete', 'version.download']));
    expect(entries.find((entry) => entry.action === 'version.delete' && entry.outcome === 'error')).toBeDefined();
    const exported = await call(server.app, server.adminKey, 'GET', '/api/v1/audit/export');
    expect(exported.headers['content-type']).toContain('application/x-ndjson');
    expect(exported.body.trim().split('\n').length).toBeGreaterThanOrEqual(entries.length);
  });
});

describe('tenants and keys', () => {
  it('creates and lists tenants, refuses to delete the operator tenant, records key use', async () => {
    const created = await call(server.app, server.adminKey, 'POST', '/api/v1/tenants', { name: 'initech' });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().adminKey.key).toMatch(/^aiaas_/);
    const tenants = (await call(server.app, server.adminKey, 'GET', '/api/v1/tenants')).json().tenants;
    expect(tenants.map((tenant: { name: string }) => tenant.name)).toEqual(['default', 'initech']);
    const operator = await call(server.app, server.adminKey, 'DELETE', `/api/v1/tenants/${server.context.bootstrap.tenantId}`);
    expect(operator.statusCode).toBe(409);
    const missing = await call(server.app, server.adminKey, 'DELETE', '/api/v1/tenants/tnt_missing');
    expect(missing.statusCode).toBe(404);

    const newKey = created.json().adminKey.key as string;
    const me = (await call(server.app, newKey, 'GET', '/api/v1/me')).json();
    expect(me).toMatchObject({ tenant: { name: 'initech', operator: false }, key: { role: 'admin', allowedModels: null } });
    expect(me.permissions).toContain('keys:manage');
    const keys = (await call(server.app, newKey, 'GET', '/api/v1/keys')).json().keys;
    expect(keys).toHaveLength(1);
    expect(keys[0].lastUsedAt).not.toBeNull();
    const past = await call(server.app, newKey, 'POST', '/api/v1/keys', { name: 'old', role: 'viewer', expiresAt: '2001-01-01T00:00:00Z' });
    expect(past.statusCode).toBe(400);
    const badRole = await call(server.app, newKey, 'POST', '/api/v1/keys', { name: 'odd', role: 'root' });
    expect(badRole.statusCode).toBe(400);
  });
});
