/**
 * Issue 7, findings 4 to 7 and the alias rule: a key's `allowedModels` and expiry bound everything it
 * reaches — training jobs on every route, the keys it manages, the audit entries it reads, the keys it
 * mints — and changing what is loaded needs `models:write`. Two tenants, every role involved.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, classifierModel, createKey, createTenant, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';

let clock = Date.parse('2026-03-01T00:00:00.000Z');
const now = () => new Date(clock);

let server: TestServer;
let tenantA: { id: string; adminKey: string };
let tenantB: { id: string; adminKey: string };
let datasetB: string;
let inputName: string;

const spec = {
  input: { shape: [4] },
  layers: [{ type: 'dense', units: 3, activation: 'softmax' }],
  compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' },
};
const jobBody = (model: string) => ({ model, spec, datasetId: datasetB, epochs: 1 });
const inferBody = () => ({ inputs: [{ name: inputName, datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });

beforeAll(async () => {
  server = await startTestServer({ rateLimitBurst: 10_000, rateLimitPerSecond: 10_000, maxConcurrentJobsPerTenant: 100 }, { now });
  tenantA = await createTenant(server, 'acme');
  tenantB = await createTenant(server, 'globex');
  const onnx = classifierModel(3).exportOnnx();
  const uploaded = await uploadOnnxModel(server, tenantB.adminKey, 'secret-model', onnx);
  inputName = uploaded.json().version.signature.inputs[0].name;
  expect((await uploadOnnxModel(server, tenantB.adminKey, 'other-model', onnx)).statusCode).toBe(201);
  expect((await uploadOnnxModel(server, tenantA.adminKey, 'alpha-model', onnx)).statusCode).toBe(201);
  const dataset = await call(server.app, tenantB.adminKey, 'POST', '/api/v1/datasets?name=b-data', irisLikeCsv(), { 'content-type': 'text/csv' });
  datasetB = dataset.json().dataset.id;
});
afterAll(async () => server.close());

describe('finding 4: allowedModels on training jobs', () => {
  let restricted: { id: string; key: string };
  let secretJob: string;
  let otherJob: string;

  beforeAll(async () => {
    restricted = await createKey(server, tenantB.adminKey, 'developer', { allowedModels: ['other-model'] });
    secretJob = (await call(server.app, tenantB.adminKey, 'POST', '/api/v1/jobs', jobBody('secret-model'))).json().job.id;
    otherJob = (await call(server.app, tenantB.adminKey, 'POST', '/api/v1/jobs', jobBody('other-model'))).json().job.id;
  });

  it('refuses to submit a job for a model outside the list, existing or new, like a missing model (404)', async () => {
    const before = (await call(server.app, tenantB.adminKey, 'GET', '/api/v1/jobs')).json().jobs.length;
    for (const model of ['secret-model', 'brand-new-model']) {
      const response = await call(server.app, restricted.key, 'POST', '/api/v1/jobs', jobBody(model));
      expect(response.statusCode, model).toBe(404);
      expect(response.json().error.code).toBe('MODEL_NOT_FOUND');
    }
    expect((await call(server.app, tenantB.adminKey, 'GET', '/api/v1/jobs')).json().jobs.length).toBe(before);
    expect((await call(server.app, tenantB.adminKey, 'GET', '/api/v1/models/brand-new-model')).statusCode).toBe(404);
    const allowed = await call(server.app, restricted.key, 'POST', '/api/v1/jobs', jobBody('other-model'));
    expect(allowed.statusCode).toBe(202);
  });

  it('answers reading, streaming and cancelling a job of another model exactly like a missing job', async () => {
    for (const [method, url] of [
      ['GET', `/api/v1/jobs/${secretJob}`],
      ['GET', `/api/v1/jobs/${secretJob}/events`],
      ['POST', `/api/v1/jobs/${secretJob}/cancel`],
    ] as const) {
      const probe = await call(server.app, restricted.key, method, url);
      const missing = await call(server.app, restricted.key, method, url.replace(secretJob, 'job_neverexisted0000000'));
      expect(probe.statusCode, url).toBe(404);
      expect(probe.json().error.code).toBe('JOB_NOT_FOUND');
      expect(probe.body.replace(secretJob, 'X')).toBe(missing.body.replace('job_neverexisted0000000', 'X'));
    }
    const untouched = (await call(server.app, tenantB.adminKey, 'GET', `/api/v1/jobs/${secretJob}`)).json().job;
    expect(untouched).toMatchObject({ status: 'queued', cancelRequested: false });
    expect((await call(server.app, restricted.key, 'GET', `/api/v1/jobs/${otherJob}`)).statusCode).toBe(200);
  });

  it('lists only jobs of allowed models, and pages through those alone', async () => {
    const jobs = (await call(server.app, restricted.key, 'GET', '/api/v1/jobs')).json().jobs as { id: string; model: string }[];
    expect(jobs.length).toBeGreaterThanOrEqual(2);
    expect(new Set(jobs.map((job) => job.model))).toEqual(new Set(['other-model']));
    // The newest job is secret-model's for the tenant admin: a page of one must still show an allowed one.
    await call(server.app, tenantB.adminKey, 'POST', '/api/v1/jobs', jobBody('secret-model'));
    const page = (await call(server.app, restricted.key, 'GET', '/api/v1/jobs?limit=1')).json().jobs as { model: string }[];
    expect(page.map((job) => job.model)).toEqual(['other-model']);
    const all = (await call(server.app, tenantB.adminKey, 'GET', '/api/v1/jobs')).json().jobs as { model: string }[];
    expect(new Set(all.map((job) => job.model))).toEqual(new Set(['other-model', 'secret-model']));
  });

  it('still lets the restricted key cancel a job of its own model', async () => {
    const cancelled = await call(server.app, restricted.key, 'POST', `/api/v1/jobs/${otherJob}/cancel`);
    expect(cancelled.statusCode).toBe(202);
    expect(cancelled.json().job.status).toBe('cancelled');
  });
});

describe('finding 5: a model-restricted key manages only keys within its scope, and reads only its models’ audit entries', () => {
  let restrictedAdmin: { id: string; key: string };
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    restrictedAdmin = await createKey(server, tenantB.adminKey, 'admin', { allowedModels: ['other-model'] });
    ids.unrestrictedAdmin = (await createKey(server, tenantB.adminKey, 'admin')).id;
    ids.unrestrictedViewer = (await createKey(server, tenantB.adminKey, 'viewer')).id;
    ids.secretDeveloper = (await createKey(server, tenantB.adminKey, 'developer', { allowedModels: ['secret-model'] })).id;
    ids.bothDeveloper = (await createKey(server, tenantB.adminKey, 'developer', { allowedModels: ['other-model', 'secret-model'] })).id;
    ids.starDeveloper = (await createKey(server, tenantB.adminKey, 'developer', { allowedModels: ['*'] })).id;
    ids.otherInference = (await createKey(server, tenantB.adminKey, 'inference', { allowedModels: ['other-model'] })).id;
    ids.otherAdmin = (await createKey(server, tenantB.adminKey, 'admin', { allowedModels: ['other-model'] })).id;
    ids.noneViewer = (await createKey(server, tenantB.adminKey, 'viewer', { allowedModels: [] })).id;
  });

  it('lists only keys whose models and permissions are both within its own', async () => {
    const listed = new Set(((await call(server.app, restrictedAdmin.key, 'GET', '/api/v1/keys')).json().keys as { id: string }[]).map((key) => key.id));
    for (const name of ['otherInference', 'otherAdmin', 'noneViewer']) expect(listed.has(ids[name]!), name).toBe(true);
    expect(listed.has(restrictedAdmin.id)).toBe(true);
    for (const name of ['unrestrictedAdmin', 'unrestrictedViewer', 'secretDeveloper', 'bothDeveloper', 'starDeveloper']) expect(listed.has(ids[name]!), name).toBe(false);
    // The tenant's unrestricted admin still sees them all.
    const all = new Set(((await call(server.app, tenantB.adminKey, 'GET', '/api/v1/keys')).json().keys as { id: string }[]).map((key) => key.id));
    for (const id of Object.values(ids)) expect(all.has(id)).toBe(true);
  });

  it('cannot revoke a wider key (404, as if missing), and the key keeps working; it can revoke one within', async () => {
    for (const name of ['unrestrictedAdmin', 'secretDeveloper', 'bothDeveloper', 'starDeveloper']) {
      const response = await call(server.app, restrictedAdmin.key, 'DELETE', `/api/v1/keys/${ids[name]}`);
      expect(response.statusCode, name).toBe(404);
      expect(response.json().error.code).toBe('NOT_FOUND');
    }
    const keys = (await call(server.app, tenantB.adminKey, 'GET', '/api/v1/keys')).json().keys as { id: string; revokedAt: string | null }[];
    for (const name of ['unrestrictedAdmin', 'secretDeveloper', 'bothDeveloper', 'starDeveloper']) {
      expect(keys.find((key) => key.id === ids[name])!.revokedAt, name).toBeNull();
    }
    // The tenant's own admin key (the widest) is untouched and still authenticates.
    expect((await call(server.app, tenantB.adminKey, 'GET', '/api/v1/me')).statusCode).toBe(200);
    expect((await call(server.app, restrictedAdmin.key, 'DELETE', `/api/v1/keys/${ids.otherInference}`)).statusCode).toBe(204);
  });

  it('reads only audit entries about its models, in /audit and /audit/export', async () => {
    await call(server.app, tenantB.adminKey, 'PATCH', '/api/v1/models/secret-model', { description: 'touched' });
    await call(server.app, tenantB.adminKey, 'PATCH', '/api/v1/models/other-model', { description: 'touched' });
    const entries = (await call(server.app, restrictedAdmin.key, 'GET', '/api/v1/audit?limit=1000')).json().entries as { model: string | null; action: string; tenantId: string }[];
    expect(entries.length).toBeGreaterThan(0);
    expect(new Set(entries.map((entry) => entry.model))).toEqual(new Set(['other-model']));
    expect(entries.every((entry) => entry.tenantId === tenantB.id)).toBe(true);
    expect(entries.map((entry) => entry.action)).toEqual(expect.arrayContaining(['model.create', 'version.create', 'model.update', 'job.submit']));
    const exported = (await call(server.app, restrictedAdmin.key, 'GET', '/api/v1/audit/export')).body.trim().split('\n').map((line) => JSON.parse(line) as { model: string | null });
    expect(exported.length).toBe(entries.length);
    expect(exported.every((entry) => entry.model === 'other-model')).toBe(true);
    // The unrestricted admin reads the rest: other models and key management.
    const everything = (await call(server.app, tenantB.adminKey, 'GET', '/api/v1/audit?limit=1000')).json().entries as { model: string | null; action: string }[];
    expect(everything.some((entry) => entry.model === 'secret-model')).toBe(true);
    expect(everything.some((entry) => entry.action === 'key.create' && entry.model === null)).toBe(true);
    // A key limited to no model reads nothing.
    const none = await createKey(server, tenantB.adminKey, 'admin', { allowedModels: [] });
    expect((await call(server.app, none.key, 'GET', '/api/v1/audit')).json().entries).toEqual([]);
  });

  it('records the model of refused attempts on model routes too, and the chain still verifies', async () => {
    const viewer = await createKey(server, tenantB.adminKey, 'viewer', { allowedModels: ['other-model'] });
    expect((await call(server.app, viewer.key, 'DELETE', '/api/v1/models/other-model')).statusCode).toBe(403);
    const entries = (await call(server.app, restrictedAdmin.key, 'GET', '/api/v1/audit?limit=1000')).json().entries as { action: string; outcome: string; keyId: string }[];
    expect(entries.find((entry) => entry.keyId === viewer.id)).toMatchObject({ action: 'model.delete', outcome: 'denied' });
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/audit/verify')).json()).toMatchObject({ ok: true });
  });
});

describe('finding 5: a model-restricted operator admin cannot act across tenants', () => {
  it('refuses tenant management and chain verification with 403 (a new tenant would come with an unrestricted key)', async () => {
    const restrictedOperator = await createKey(server, server.adminKey, 'admin', { allowedModels: ['some-model'] });
    for (const [method, url, body] of [
      ['POST', '/api/v1/tenants', { name: 'escape' }],
      ['GET', '/api/v1/tenants', undefined],
      ['DELETE', `/api/v1/tenants/${tenantA.id}`, undefined],
      ['GET', '/api/v1/audit/verify', undefined],
    ] as const) {
      const response = await call(server.app, restrictedOperator.key, method, url, body);
      expect(response.statusCode, url).toBe(403);
      expect(response.json().error.code).toBe('FORBIDDEN');
    }
    expect((await call(server.app, tenantA.adminKey, 'GET', '/api/v1/me')).statusCode).toBe(200);
    // Its audit read is its own tenant's entries about its models, not the whole chain.
    const entries = (await call(server.app, restrictedOperator.key, 'GET', '/api/v1/audit?limit=1000')).json().entries as { tenantId: string; model: string | null }[];
    expect(entries.every((entry) => entry.tenantId === server.context.bootstrap.tenantId && entry.model === 'some-model')).toBe(true);
  });
});

describe('finding 6: a child key never outlives its parent', () => {
  it('inherits the parent expiry when none is given, refuses a later one, accepts an earlier one', async () => {
    const inOneHour = new Date(clock + 60 * 60 * 1000).toISOString();
    const parent = await createKey(server, tenantB.adminKey, 'admin', { expiresAt: inOneHour });
    const inherited = await call(server.app, parent.key, 'POST', '/api/v1/keys', { name: 'child', role: 'developer' });
    expect(inherited.statusCode).toBe(201);
    expect(inherited.json().expiresAt).toBe(inOneHour);
    const later = await call(server.app, parent.key, 'POST', '/api/v1/keys', { name: 'late', role: 'developer', expiresAt: new Date(clock + 2 * 60 * 60 * 1000).toISOString() });
    expect(later.statusCode).toBe(400);
    expect(later.json().error).toMatchObject({ code: 'INVALID_REQUEST', details: { field: 'expiresAt' } });
    const earlier = await call(server.app, parent.key, 'POST', '/api/v1/keys', { name: 'early', role: 'viewer', expiresAt: new Date(clock + 30 * 60 * 1000).toISOString() });
    expect(earlier.statusCode).toBe(201);
    // A grandchild inherits too (through an admin child: developers cannot create keys).
    const childAdmin = await call(server.app, parent.key, 'POST', '/api/v1/keys', { name: 'child-admin', role: 'admin' });
    const grand = await call(server.app, childAdmin.json().key, 'POST', '/api/v1/keys', { name: 'grand', role: 'viewer' });
    expect(grand.json().expiresAt).toBe(inOneHour);

    clock += 2 * 60 * 60 * 1000;
    for (const key of [parent.key, inherited.json().key, childAdmin.json().key, grand.json().key]) {
      expect((await call(server.app, key, 'GET', '/api/v1/me')).statusCode).toBe(401);
    }
    // A key without expiry still mints keys without expiry.
    const forever = await call(server.app, tenantB.adminKey, 'POST', '/api/v1/keys', { name: 'forever', role: 'viewer' });
    expect(forever.json().expiresAt).toBeNull();
  });
});

describe('finding 7: the V2 repository load and unload need models:write', () => {
  it('refuses inference and viewer keys with 403 naming the permission, and lets developers load', async () => {
    const inference = await createKey(server, tenantB.adminKey, 'inference');
    const viewer = await createKey(server, tenantB.adminKey, 'viewer');
    const developer = await createKey(server, tenantB.adminKey, 'developer');
    for (const action of ['load', 'unload']) {
      for (const key of [inference.key, viewer.key]) {
        const response = await call(server.app, key, 'POST', `/v2/repository/models/other-model/${action}`);
        expect(response.statusCode, action).toBe(403);
        expect(response.headers['x-aiaas-error-code']).toBe('FORBIDDEN');
        expect(response.json().error).toContain('models:write');
      }
    }
    expect(server.context.manager.isLoaded((await server.context.registry.resolve(tenantB.id, 'other-model')).versionId)).toBe(false);
    expect((await call(server.app, developer.key, 'POST', '/v2/repository/models/other-model/load')).statusCode).toBe(200);
    expect(server.context.manager.isLoaded((await server.context.registry.resolve(tenantB.id, 'other-model')).versionId)).toBe(true);
    // An inference key still infers.
    expect((await call(server.app, inference.key, 'POST', '/v2/models/other-model/infer', inferBody())).statusCode).toBe(200);
    expect((await call(server.app, developer.key, 'POST', '/v2/repository/models/other-model/unload')).statusCode).toBe(200);
  });
});

describe('alias names follow the model-name character rules', () => {
  it('refuses ":", ";", "$", "/" and spaces with 400, and accepts letters, digits, ".", "_" and "-"', async () => {
    for (const alias of ['predict:predict', 'a;b', '$x', 'a b', '-lead', '.hidden']) {
      const response = await call(server.app, tenantB.adminKey, 'PUT', `/api/v1/models/other-model/aliases/${encodeURIComponent(alias)}`, { version: 1 });
      expect(response.statusCode, alias).toBe(400);
      expect(response.json().error.code).toBe('INVALID_REQUEST');
    }
    const tfPath = await call(server.app, tenantB.adminKey, 'POST', '/tfserving/v1/models/other-model/labels/predict:predict:predict', { instances: [[1, 2, 3, 4]] });
    expect(tfPath.statusCode).not.toBe(200);
    const aliases = (await call(server.app, tenantB.adminKey, 'GET', '/api/v1/models/other-model/aliases')).json().aliases;
    expect(aliases).toEqual([]);
    const good = await call(server.app, tenantB.adminKey, 'PUT', '/api/v1/models/other-model/aliases/prod.v1_b-2', { version: 1 });
    expect(good.statusCode).toBe(200);
  });
});

describe('finding 8: failed inferences are not usage', () => {
  it('counts a served inference, and not one refused for its body or shape', async () => {
    const day = now().toISOString().slice(0, 10);
    const usage = async () =>
      ((await call(server.app, tenantA.adminKey, 'GET', `/api/v1/usage?model=alpha-model&from=${day}&to=${day}`)).json().usage as { requests: number }[]).reduce((sum, row) => sum + row.requests, 0);
    const before = await usage();
    expect((await call(server.app, tenantA.adminKey, 'POST', '/v2/models/alpha-model/infer', { inputs: [{ name: inputName, datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }] })).statusCode).toBe(400);
    expect((await call(server.app, tenantA.adminKey, 'POST', '/v2/models/alpha-model/infer', { inputs: [] })).statusCode).toBe(400);
    expect((await call(server.app, tenantA.adminKey, 'POST', '/tfserving/v1/models/alpha-model:predict', { instances: [['x']] })).statusCode).toBe(400);
    expect(await usage()).toBe(before);
    expect((await call(server.app, tenantA.adminKey, 'POST', '/v2/models/alpha-model/infer', inferBody())).statusCode).toBe(200);
    expect(await usage()).toBe(before + 1);
  });
});
