/**
 * OWASP API Security Top 10 (2023), one block per item that applies to aiaas, each sending the
 * real requests. Training-job routes (BOLA on jobs and their event streams) are covered with the
 * job routes' own tests.
 */
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../src/http/app.ts';
import { routeDescriptions, routeKey } from '../../src/http/openapi.ts';
import { writeTar } from '../../src/platform/tar.ts';
import { call, classifierModel, createKey, createTenant, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from './helpers.ts';

let clock = Date.parse('2026-03-01T00:00:00.000Z');
const now = () => new Date(clock);

let server: TestServer;
let tenantA: { id: string; adminKey: string };
let tenantB: { id: string; adminKey: string };
let datasetB: string;
let keyB: string;
let inputName: string;

beforeAll(async () => {
  server = await startTestServer({ rateLimitBurst: 10_000, rateLimitPerSecond: 10_000 }, { now });
  tenantA = await createTenant(server, 'acme');
  tenantB = await createTenant(server, 'globex');
  const model = classifierModel(5);
  // Both tenants own a model called "shared-name"; only B owns "secret-model".
  for (const tenant of [tenantA, tenantB]) expect((await uploadOnnxModel(server, tenant.adminKey, 'shared-name', model.exportOnnx())).statusCode).toBe(201);
  const secret = await uploadOnnxModel(server, tenantB.adminKey, 'secret-model', model.exportOnnx());
  inputName = secret.json().version.signature.inputs[0].name;
  await call(server.app, tenantB.adminKey, 'PUT', '/api/v1/models/secret-model/aliases/production', { version: 1 });
  const dataset = await call(server.app, tenantB.adminKey, 'POST', '/api/v1/datasets?name=b-data', irisLikeCsv(), { 'content-type': 'text/csv' });
  datasetB = dataset.json().dataset.id;
  keyB = (await createKey(server, tenantB.adminKey, 'viewer')).id;
});
afterAll(async () => server.close());

const inferBody = () => ({ inputs: [{ name: inputName, datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });

describe('API1:2023 Broken Object Level Authorization', () => {
  const byName: [string, string, unknown?][] = [
    ['GET', '/api/v1/models/secret-model'],
    ['PATCH', '/api/v1/models/secret-model', { description: 'pwned' }],
    ['DELETE', '/api/v1/models/secret-model'],
    ['GET', '/api/v1/models/secret-model/versions'],
    ['GET', '/api/v1/models/secret-model/versions/1'],
    ['GET', '/api/v1/models/secret-model/versions/production'],
    ['DELETE', '/api/v1/models/secret-model/versions/1'],
    ['GET', '/api/v1/models/secret-model/versions/1/files/model.onnx'],
    ['GET', '/api/v1/models/secret-model/aliases'],
    ['PUT', '/api/v1/models/secret-model/aliases/production', { version: 1 }],
    ['DELETE', '/api/v1/models/secret-model/aliases/production'],
    ['GET', '/v2/models/secret-model'],
    ['GET', '/v2/models/secret-model/ready'],
    ['GET', '/v2/models/secret-model/versions/production'],
    ['POST', '/v2/models/secret-model/infer', inferBody],
    ['POST', '/v2/models/secret-model/versions/1/infer', inferBody],
    ['POST', '/v2/repository/models/secret-model/load'],
    ['POST', '/v2/repository/models/secret-model/unload'],
    ['GET', '/tfserving/v1/models/secret-model'],
    ['GET', '/tfserving/v1/models/secret-model/metadata'],
    ['GET', '/tfserving/v1/models/secret-model/labels/production'],
    ['POST', '/tfserving/v1/models/secret-model:predict', { instances: [[1, 2, 3, 4]] }],
    ['POST', '/tfserving/v1/models/secret-model/labels/production:predict', { instances: [[1, 2, 3, 4]] }],
  ];

  it("answers tenant B's models, versions and aliases by name to tenant A exactly like missing ones (404)", async () => {
    for (const [method, url, bodyOrBuilder] of byName) {
      // Built now: the model's input name is known only after beforeAll, and a body without it is a 400.
      const body = typeof bodyOrBuilder === 'function' ? (bodyOrBuilder as () => unknown)() : bodyOrBuilder;
      const probe = await call(server.app, tenantA.adminKey, method as 'GET', url, body);
      const missing = await call(server.app, tenantA.adminKey, method as 'GET', url.replace('secret-model', 'never-existed'), body);
      expect(probe.statusCode, `${method} ${url}`).toBe(404);
      expect(missing.statusCode, `${method} ${url}`).toBe(404);
      const code = (response: typeof probe) => response.headers['x-aiaas-error-code'] ?? response.json().error.code;
      expect(code(probe), `${method} ${url}`).toBe(code(missing));
      expect(probe.body.replaceAll('secret-model', 'X')).toBe(missing.body.replaceAll('never-existed', 'X'));
    }
  });

  it("answers tenant B's dataset and key ids to tenant A with 404", async () => {
    for (const [method, url] of [
      ['GET', `/api/v1/datasets/${datasetB}`],
      ['DELETE', `/api/v1/datasets/${datasetB}`],
      ['DELETE', `/api/v1/keys/${keyB}`],
    ] as const) {
      const response = await call(server.app, tenantA.adminKey, method, url);
      expect(response.statusCode, url).toBe(404);
    }
    const list = await call(server.app, tenantA.adminKey, 'GET', '/api/v1/datasets');
    expect(list.json().datasets).toEqual([]);
  });

  it("answers tenant B's training job, its event stream and its cancellation to tenant A with 404", async () => {
    const submitted = await call(server.app, tenantB.adminKey, 'POST', '/api/v1/jobs', {
      model: 'b-trained',
      spec: { input: { shape: [4] }, layers: [{ type: 'dense', units: 3, activation: 'softmax' }], compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' } },
      datasetId: datasetB,
      epochs: 1,
    });
    expect(submitted.statusCode).toBe(202);
    const jobId = submitted.json().job.id as string;
    for (const [method, url] of [
      ['GET', `/api/v1/jobs/${jobId}`],
      ['GET', `/api/v1/jobs/${jobId}/events`],
      ['POST', `/api/v1/jobs/${jobId}/cancel`],
    ] as const) {
      const probe = await call(server.app, tenantA.adminKey, method, url);
      const missing = await call(server.app, tenantA.adminKey, method, url.replace(jobId, 'job_neverexisted0000000'));
      expect(probe.statusCode, url).toBe(404);
      expect(probe.json()).toEqual({ error: { ...missing.json().error, message: missing.json().error.message.replace('job_neverexisted0000000', jobId) } });
    }
    expect((await call(server.app, tenantA.adminKey, 'GET', '/api/v1/jobs')).json().jobs).toEqual([]);
    expect((await call(server.app, tenantB.adminKey, 'GET', `/api/v1/jobs/${jobId}`)).statusCode).toBe(200);
    // Nor can A train on B's dataset by naming its id.
    const borrowed = await call(server.app, tenantA.adminKey, 'POST', '/api/v1/jobs', { ...submitted.json().job.settings, model: 'stolen', spec: { input: { shape: [4] }, layers: [{ type: 'dense', units: 3, activation: 'softmax' }], compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' } }, datasetId: datasetB });
    expect(borrowed.statusCode).toBe(404);
    expect(borrowed.json().error.code).toBe('DATASET_NOT_FOUND');
  });

  it("serves each tenant its own model under a shared name, and leaves B's objects untouched", async () => {
    const models = (await call(server.app, tenantA.adminKey, 'GET', '/api/v1/models')).json().models;
    expect(models.map((model: { name: string }) => model.name)).toEqual(['shared-name']);
    const index = await call(server.app, tenantA.adminKey, 'POST', '/v2/repository/index', {});
    expect(index.json().map((entry: { name: string }) => entry.name)).toEqual(['shared-name']);
    expect((await call(server.app, tenantB.adminKey, 'GET', '/api/v1/models/secret-model')).json()).toMatchObject({ description: '', aliases: [{ name: 'production' }] });
    expect((await call(server.app, tenantB.adminKey, 'GET', `/api/v1/datasets/${datasetB}`)).statusCode).toBe(200);
    const keys = (await call(server.app, tenantB.adminKey, 'GET', '/api/v1/keys')).json().keys;
    expect(keys.find((key: { id: string }) => key.id === keyB).revokedAt).toBeNull();
  });

  it('applies the same rule to a key restricted to some models (allow-list → 404, not 403)', async () => {
    const restricted = await createKey(server, tenantB.adminKey, 'developer', { allowedModels: ['shared-name'] });
    const hidden = await call(server.app, restricted.key, 'POST', '/v2/models/secret-model/infer', inferBody());
    expect(hidden.statusCode).toBe(404);
    expect((await call(server.app, restricted.key, 'POST', '/v2/models/shared-name/infer', inferBody())).statusCode).toBe(200);
    const models = (await call(server.app, restricted.key, 'GET', '/api/v1/models')).json().models;
    expect(models.map((model: { name: string }) => model.name)).toEqual(['shared-name']);
    expect((await call(server.app, tenantB.adminKey, 'POST', '/v2/models/secret-model/infer', inferBody())).statusCode).toBe(200);
    const usage = (await call(server.app, restricted.key, 'GET', '/api/v1/usage')).json().usage;
    expect(usage.map((record: { model: string }) => record.model)).toEqual(['shared-name']);
    const all = (await call(server.app, tenantB.adminKey, 'GET', '/api/v1/usage')).json().usage;
    expect(all.map((record: { model: string }) => record.model).sort()).toEqual(['secret-model', 'shared-name']);
  });
});

describe('API2:2023 Broken Authentication', () => {
  it('refuses missing, malformed, unknown, expired and revoked keys with 401', async () => {
    const expiring = await createKey(server, tenantA.adminKey, 'developer', { expiresAt: new Date(clock + 60 * 60 * 1000).toISOString() });
    expect((await call(server.app, expiring.key, 'GET', '/api/v1/models')).statusCode).toBe(200);
    clock += 2 * 60 * 60 * 1000;
    const expired = await call(server.app, expiring.key, 'GET', '/api/v1/models');
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error.message).toContain('expired');

    for (const headers of [{}, { authorization: 'Bearer' }, { authorization: 'Token abc' }, { authorization: `Bearer aiaas_${'A'.repeat(43)}` }] as Record<string, string>[]) {
      expect((await call(server.app, undefined, 'GET', '/api/v1/me', undefined, headers)).statusCode).toBe(401);
    }
    const withHeader = await call(server.app, undefined, 'GET', '/api/v1/me');
    expect(withHeader.headers['www-authenticate']).toBe('Bearer');
  });

  it('makes revocation effective on the very next request, on every protocol', async () => {
    const key = await createKey(server, tenantA.adminKey, 'developer');
    expect((await call(server.app, key.key, 'POST', '/v2/models/shared-name/infer', inferBody())).statusCode).toBe(200);
    expect((await call(server.app, tenantA.adminKey, 'DELETE', `/api/v1/keys/${key.id}`)).statusCode).toBe(204);
    const platform = await call(server.app, key.key, 'GET', '/api/v1/models');
    expect(platform.statusCode).toBe(401);
    const v2 = await call(server.app, key.key, 'POST', '/v2/models/shared-name/infer', inferBody());
    expect(v2.statusCode).toBe(401);
    expect(v2.headers['x-aiaas-error-code']).toBe('UNAUTHENTICATED');
  });

  it('refuses a key that expires while its lookup is still cached', async () => {
    const expiring = await createKey(server, tenantA.adminKey, 'developer', { expiresAt: new Date(clock + 1000).toISOString() });
    expect((await call(server.app, expiring.key, 'POST', '/v2/models/shared-name/infer', inferBody())).statusCode).toBe(200);
    expect(server.context.access.authenticateCached(expiring.key)?.principal.keyId).toBe(expiring.id);
    // Within the access cache's window (2 s), but past the key's expiry.
    clock += 1000;
    const expired = await call(server.app, expiring.key, 'POST', '/v2/models/shared-name/infer', inferBody());
    expect(expired.statusCode).toBe(401);
    expect(expired.headers['x-aiaas-error-code']).toBe('UNAUTHENTICATED');
    expect(server.context.access.authenticateCached(expiring.key)).toBeUndefined();
  });

  it('tells keys apart on one connection: the principal of the key presented now, never the one presented before', async () => {
    const first = await createKey(server, tenantA.adminKey, 'developer');
    const second = await createKey(server, tenantA.adminKey, 'viewer');
    const connection = {};
    for (const key of [first, second]) await server.context.access.authenticate(key.key);
    expect(server.context.access.authenticateCached(first.key, connection)?.principal.keyId).toBe(first.id);
    expect(server.context.access.authenticateCached(second.key, connection)?.principal.keyId).toBe(second.id);
    expect(server.context.access.authenticateCached(first.key, connection)?.principal.keyId).toBe(first.id);
    // A key one character off, on the same connection, is not taken for the one before it.
    expect(server.context.access.authenticateCached(`${first.key.slice(0, -1)}${first.key.endsWith('x') ? 'y' : 'x'}`, connection)).toBeUndefined();
    expect(server.context.access.authenticateCached(first.key, {})?.principal.keyId).toBe(first.id);
  });

  it('accepts the key in either header, but not two different keys', async () => {
    const key = await createKey(server, tenantA.adminKey, 'viewer');
    expect((await call(server.app, undefined, 'GET', '/api/v1/me', undefined, { 'x-api-key': key.key })).statusCode).toBe(200);
    const conflicting = await call(server.app, undefined, 'GET', '/api/v1/me', undefined, { 'x-api-key': key.key, authorization: `Bearer ${tenantA.adminKey}` });
    expect(conflicting.statusCode).toBe(401);
  });
});

describe('API3:2023 Broken Object Property Level Authorization', () => {
  const forbidden = [/keyHash/i, /key_hash/i, /wrapped/i, /artifactRef/i, /onnxRef/i, /savedModelRefs/i, /sha256:[0-9a-f]{64}/];

  it('never returns key hashes, wrapped data keys or artifact references', async () => {
    const created = await call(server.app, tenantA.adminKey, 'POST', '/api/v1/keys', { name: 'fresh', role: 'viewer' });
    const secret = created.json().key as string;
    const hash = server.context.access.hashKey(secret);
    const bodies = [
      created.body,
      (await call(server.app, tenantA.adminKey, 'GET', '/api/v1/keys')).body,
      (await call(server.app, tenantA.adminKey, 'GET', '/api/v1/me')).body,
      (await call(server.app, tenantB.adminKey, 'GET', '/api/v1/datasets')).body,
      (await call(server.app, tenantB.adminKey, 'GET', `/api/v1/datasets/${datasetB}`)).body,
      (await call(server.app, tenantB.adminKey, 'GET', '/api/v1/models/secret-model/versions')).body,
      (await call(server.app, tenantB.adminKey, 'GET', '/api/v1/models/secret-model/versions/1')).body,
      (await call(server.app, tenantB.adminKey, 'GET', '/api/v1/models')).body,
      (await call(server.app, server.adminKey, 'GET', '/api/v1/audit?limit=1000')).body,
      (await call(server.app, server.adminKey, 'GET', '/api/v1/tenants')).body,
    ];
    for (const body of bodies) {
      for (const pattern of forbidden) expect(body).not.toMatch(pattern);
      expect(body).not.toContain(hash);
    }
    // The secret appears once, in the creation response, and nowhere afterwards.
    expect(bodies[0]).toContain(secret);
    for (const body of bodies.slice(1)) expect(body).not.toContain(secret);
  });

  it('refuses mass assignment of fields the client does not own', async () => {
    const key = await call(server.app, tenantA.adminKey, 'POST', '/api/v1/keys', { name: 'x', role: 'viewer', tenantId: tenantB.id });
    expect(key.statusCode).toBe(400);
    const model = await call(server.app, tenantA.adminKey, 'POST', '/api/v1/models', { name: 'x', tenantId: tenantB.id });
    expect(model.statusCode).toBe(400);
    const alias = await call(server.app, tenantA.adminKey, 'PUT', '/api/v1/models/shared-name/aliases/a', { version: 1, versionId: 'ver_x' });
    expect(alias.statusCode).toBe(400);
  });
});

describe('API4:2023 Unrestricted Resource Consumption', () => {
  let limited: TestServer;
  let limitedClock = 0;
  beforeAll(async () => {
    limited = await startTestServer(
      { rateLimitBurst: 3, rateLimitPerSecond: 1, bodyLimitBytes: 8192, inferenceBodyLimitBytes: 4096, maxTensorElements: 64, maxDatasetBytes: 4096 },
      { now: () => new Date(limitedClock) },
    );
  });
  afterAll(async () => limited.close());

  it('rate limits per key with 429 and Retry-After, refilling with time', async () => {
    const other = await createKey(limited, limited.adminKey, 'viewer');
    limitedClock += 10_000;
    const statuses: number[] = [];
    let last;
    for (let index = 0; index < 5; index++) {
      last = await call(limited.app, limited.adminKey, 'GET', '/api/v1/me');
      statuses.push(last.statusCode);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(last!.json().error.code).toBe('RATE_LIMITED');
    expect(Number(last!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Another key has its own bucket.
    expect((await call(limited.app, other.key, 'GET', '/api/v1/me')).statusCode).toBe(200);
    limitedClock += 1000;
    expect((await call(limited.app, limited.adminKey, 'GET', '/api/v1/me')).statusCode).toBe(200);
  });

  it('rate limits failed authentication attempts per client address', async () => {
    limitedClock += 10_000;
    const statuses: number[] = [];
    for (let index = 0; index < 5; index++) {
      statuses.push((await call(limited.app, `aiaas_${'B'.repeat(43)}`, 'GET', '/api/v1/me')).statusCode);
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
  });

  it('caps body size (413), tensor elements (413) and decompressed dataset size (413)', async () => {
    limitedClock += 10_000;
    const body = await call(limited.app, limited.adminKey, 'POST', '/api/v1/datasets?name=big', Buffer.alloc(9000, 0x41), { 'content-type': 'application/octet-stream' });
    expect(body.statusCode).toBe(413);
    limitedClock += 10_000;
    const bomb = await call(limited.app, limited.adminKey, 'POST', '/api/v1/datasets?name=bomb&format=csv', gzipSync(Buffer.alloc(1024 * 1024, 0x30)), {
      'content-type': 'application/gzip',
    });
    expect(bomb.statusCode).toBe(413);
    expect(bomb.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    limitedClock += 10_000;
    await uploadOnnxModel(limited, limited.adminKey, 'small', classifierModel().exportOnnx());
    limitedClock += 10_000;
    const rows = Array.from({ length: 17 }, () => [1, 2, 3, 4]);
    const tensor = await call(limited.app, limited.adminKey, 'POST', '/v2/models/small/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [17, 4], data: rows }] });
    expect(tensor.statusCode).toBe(413);
    expect(tensor.headers['x-aiaas-error-code']).toBe('TOO_MANY_ELEMENTS');
  });
});

describe('API5:2023 Broken Function Level Authorization', () => {
  it('does not let a key restricted to some models create a key that reaches further', async () => {
    const restricted = await createKey(server, tenantB.adminKey, 'admin', { allowedModels: ['shared-name'] });
    for (const allowedModels of [undefined, null, ['*'], ['shared-name', 'secret-model']]) {
      const wider = await call(server.app, restricted.key, 'POST', '/api/v1/keys', { name: 'wider', role: 'developer', ...(allowedModels === undefined ? {} : { allowedModels }) });
      expect(wider.statusCode).toBe(403);
      expect(wider.json().error.code).toBe('FORBIDDEN');
    }
    const narrower = await call(server.app, restricted.key, 'POST', '/api/v1/keys', { name: 'narrower', role: 'developer', allowedModels: ['shared-name'] });
    expect(narrower.statusCode).toBe(201);
  });

  it('refuses functions outside the role with 403 naming the permission', async () => {
    const viewer = await createKey(server, tenantA.adminKey, 'viewer');
    const inference = await createKey(server, tenantA.adminKey, 'inference');
    const developer = await createKey(server, tenantA.adminKey, 'developer');
    const cases: [string, string, string, unknown, string][] = [
      [viewer.key, 'POST', '/api/v1/keys', { name: 'k', role: 'admin' }, 'keys:manage'],
      [developer.key, 'POST', '/api/v1/keys', { name: 'k', role: 'admin' }, 'keys:manage'],
      [inference.key, 'POST', '/api/v1/datasets?name=d', irisLikeCsv(), 'datasets:write'],
      [inference.key, 'GET', '/api/v1/models', undefined, 'models:read'],
      [developer.key, 'GET', '/api/v1/audit', undefined, 'audit:read'],
      [developer.key, 'POST', '/api/v1/tenants', { name: 't' }, 'tenants:manage'],
      [viewer.key, 'GET', '/api/v1/models/shared-name/versions/1/files/model.onnx', undefined, 'models:download'],
      [viewer.key, 'POST', '/v2/models/shared-name/infer', inferBody(), 'inference'],
      [viewer.key, 'PUT', '/api/v1/models/shared-name/aliases/x', { version: 1 }, 'aliases:write'],
    ];
    for (const [key, method, url, body, permission] of cases) {
      const response = await call(server.app, key, method as 'GET', url, body, typeof body === 'string' ? { 'content-type': 'text/csv' } : {});
      expect(response.statusCode, `${method} ${url}`).toBe(403);
      const message = response.headers['x-aiaas-error-code'] === undefined ? response.json().error.message : response.json().error;
      expect(message, `${method} ${url}`).toContain(permission);
    }
  });

  it("reserves cross-tenant functions to the operator tenant's admins", async () => {
    for (const [method, url] of [
      ['GET', '/api/v1/tenants'],
      ['POST', '/api/v1/tenants'],
      ['DELETE', `/api/v1/tenants/${tenantB.id}`],
      ['GET', '/api/v1/audit/verify'],
    ] as const) {
      const response = await call(server.app, tenantA.adminKey, method, url, method === 'POST' ? { name: 'evil' } : undefined);
      expect(response.statusCode, url).toBe(403);
    }
    // A tenant admin reads only its own tenant's audit entries.
    const entries = (await call(server.app, tenantA.adminKey, 'GET', '/api/v1/audit?limit=1000')).json().entries as { tenantId: string }[];
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((entry) => entry.tenantId === tenantA.id)).toBe(true);
  });
});

describe('API6:2023 Unrestricted Access to Sensitive Business Flows (bootstrap)', () => {
  it('has no default credentials: one random admin key, not stored in plaintext, not re-created on restart', async () => {
    const keys = (await call(server.app, server.adminKey, 'GET', '/api/v1/keys')).json().keys;
    expect(keys).toHaveLength(1);
    expect(server.adminKey).toMatch(/^aiaas_[0-9A-Za-z]{43}$/);
    const files = await listFiles(server.dataDir);
    for (const file of files) expect((await readFile(file)).includes(Buffer.from(server.adminKey)), file).toBe(false);
    const again = await buildApp(server.context);
    await again.close();
    expect((await server.context.access.bootstrap()).created).toBe(false);
  });
});

describe('API7:2023 Server Side Request Forgery', () => {
  it('never fetches URLs: dataset uploads take bytes, and URL parameters or bodies are refused', async () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    const byParameter = await call(server.app, tenantA.adminKey, 'POST', '/api/v1/datasets?name=x&url=http://169.254.169.254/latest/meta-data', '');
    expect(byParameter.statusCode).toBe(400);
    expect(byParameter.json().error.details.parameter).toBe('url');
    const byBody = await call(server.app, tenantA.adminKey, 'POST', '/api/v1/datasets?name=x', 'http://169.254.169.254/latest/meta-data', { 'content-type': 'text/uri-list' });
    expect(byBody.statusCode).toBe(400);
    expect(byBody.json().error.code).toBe('INVALID_DATA');
    const byModel = await call(server.app, tenantA.adminKey, 'POST', '/api/v1/models/shared-name/versions', 'https://example.com/model.onnx', { 'content-type': 'text/plain' });
    expect(byModel.statusCode).toBe(400);
    expect(fetchSpy).not.toHaveBeenCalled();
    fetchSpy.mockRestore();
  });
});

describe('API8:2023 Security Misconfiguration', () => {
  it('sends security headers on API, inference, error and public responses', async () => {
    const responses = [
      await call(server.app, tenantA.adminKey, 'GET', '/api/v1/me'),
      await call(server.app, tenantA.adminKey, 'POST', '/v2/models/shared-name/infer', inferBody()),
      await call(server.app, undefined, 'GET', '/api/v1/me'),
      await call(server.app, undefined, 'GET', '/healthz'),
      await call(server.app, undefined, 'GET', '/nowhere'),
    ];
    for (const response of responses) {
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['x-frame-options']).toBe('DENY');
      expect(response.headers['referrer-policy']).toBe('no-referrer');
      expect(response.headers['x-powered-by']).toBeUndefined();
      expect(response.headers['access-control-allow-origin']).toBeUndefined();
      expect(response.headers['x-request-id']).toBeDefined();
    }
    expect(responses[0]!.headers['cache-control']).toBe('no-store');
    expect(responses[0]!.headers['strict-transport-security']).toBeUndefined();
  });

  it('answers unexpected failures with a bare 500: no stack, no paths, no message', async () => {
    const context = server.context;
    const app = await buildApp(context, {
      extraRoutes: async (routes) => {
        routes.get('/explode', async () => {
          throw new Error(`ENOENT: open '${join(server.dataDir, 'secret')}' at Object.<anonymous> (/srv/app/index.js:1:1)`);
        });
      },
    });
    const response = await call(app, tenantA.adminKey, 'GET', '/api/v1/explode');
    await app.close();
    expect(response.statusCode).toBe(500);
    expect(response.json().error.code).toBe('INTERNAL');
    expect(response.body).not.toContain('ENOENT');
    expect(response.body).not.toContain(server.dataDir);
    expect(response.body).not.toMatch(/at .*\(|\.js:|\.ts:/);
  });

  it('answers unknown routes and methods with 404 JSON', async () => {
    for (const [method, url] of [['GET', '/admin'], ['DELETE', '/healthz'], ['GET', '/api/v1/../../etc/passwd']] as const) {
      const response = await call(server.app, undefined, method, url);
      expect(response.statusCode).toBe(404);
      expect(response.headers['content-type']).toContain('application/json');
      expect(response.json().error.code).toBe('NOT_FOUND');
    }
  });
});

describe('API9:2023 Improper Inventory Management', () => {
  it('documents every registered route in /openapi.json, and documents nothing that is not served', async () => {
    const document = (await call(server.app, undefined, 'GET', '/openapi.json')).json();
    const documented = new Set<string>();
    for (const [path, operations] of Object.entries(document.paths as Record<string, Record<string, { summary: string }>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        documented.add(`${method.toUpperCase()} ${path}`);
        expect(operation.summary, `${method} ${path}`).not.toBe('UNDOCUMENTED');
      }
    }
    const registered = server.app.registeredRoutes.map((route) => `${route.method} ${route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
    expect(new Set(registered)).toEqual(documented);
    // Every description belongs to a served route.
    const served = new Set(server.app.registeredRoutes.map(routeKey));
    const stale = Object.keys(routeDescriptions).filter((key) => !served.has(key));
    expect(stale).toEqual([]);
    const page = await call(server.app, undefined, 'GET', '/docs');
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).not.toMatch(/<script|https?:\/\/(?!localhost)/);
    for (const path of Object.keys(document.paths)) expect(page.body).toContain(path);
  });
});

describe('API10:2023 Unsafe Consumption of APIs (uploaded models and archives)', () => {
  it('opens uploaded models in a child process: a crashing or hanging loader is rejected and the server keeps serving', async () => {
    const crasher = join(server.dataDir, 'crash-child.mjs');
    const hanger = join(server.dataDir, 'hang-child.mjs');
    await writeFile(crasher, "process.stdin.resume(); process.stdin.on('end', () => process.kill(process.pid, 'SIGSEGV'));\n");
    await writeFile(hanger, 'setInterval(() => {}, 1000);\n');
    // The crasher gets a generous limit so a loaded machine cannot turn its crash into a time-out; the
    // hanger never finishes, so a short limit is enough to tell the two apart.
    for (const [script, expected, timeoutMs] of [
      [crasher, 'crashed', 60_000],
      [hanger, 'did not finish', 500],
    ] as const) {
      const isolated = await startTestServer({ validationTimeoutMs: timeoutMs }, { validationScriptPath: script });
      try {
        const response = await uploadOnnxModel(isolated, isolated.adminKey, 'm', classifierModel().exportOnnx());
        expect(response.statusCode).toBe(400);
        expect(response.json().error.code).toBe('INVALID_MODEL_FILE');
        expect(response.json().error.message).toContain(expected);
        expect((await call(isolated.app, undefined, 'GET', '/healthz')).statusCode).toBe(200);
        expect((await call(isolated.app, isolated.adminKey, 'GET', '/api/v1/models/m/versions')).json().versions).toEqual([]);
      } finally {
        await isolated.close();
      }
    }
  });

  it('reads saved-model archives in memory: traversal paths never reach the disk', async () => {
    const onnx = classifierModel().exportOnnx();
    const tar = writeTar([{ name: '../../../escaped/model.onnx', bytes: onnx }]);
    const response = await call(server.app, tenantA.adminKey, 'POST', '/api/v1/models/shared-name/versions', Buffer.from(tar), { 'content-type': 'application/x-tar' });
    expect(response.statusCode, response.body).toBe(201);
    for (const depth of ['', '..', '../..', '../../..']) {
      await expect(access(join(server.dataDir, depth, 'escaped'))).rejects.toThrow();
    }
  });
});

async function listFiles(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}
