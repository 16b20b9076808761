/**
 * Plans and quotas over the real server: the operator's plan API, tenants' plan history, and hard
 * caps enforced atomically on V2 and TF-Serving inference (64 parallel requests against a quota of
 * 50: exactly 50 pass), settled to the items used, with each protocol's error shape, Retry-After
 * to the period reset and x-ratelimit-* headers; soft caps audited once; models and datasets limits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, classifierModel, classifierSpec, createTenant, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';

// A fixed clock: 2026-11-29T12:00:00Z is 36 hours before the December period starts.
const now = new Date('2026-11-29T12:00:00.000Z');
const secondsToDecember = 36 * 3600;

let server: TestServer;
let tenant: { id: string; adminKey: string };

const plan = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  currency: 'USD',
  prices: { perThousandPredictions: 2_000_000, perMillionPromptTokens: 100_000, perMillionCompletionTokens: 300_000, perTrainingWorkerHour: 1_500_000, perGigabyteMonthStored: 25_000 },
  included: { predictions: 10 },
  ...extra,
});

const infer = (key: string, rows = 1) =>
  call(server.app, key, 'POST', '/v2/models/blobs/infer', { inputs: [{ name: 'input', shape: [rows, 4], datatype: 'FP32', data: Array.from({ length: rows * 4 }, (_, index) => index / 10) }] });

beforeAll(async () => {
  server = await startTestServer({ rateLimitBurst: 1000 }, { now: () => now });
  tenant = await createTenant(server, 'metered');
  const uploaded = await uploadOnnxModel(server, tenant.adminKey, 'blobs', classifierModel().exportOnnx());
  if (uploaded.statusCode !== 201) throw new Error(uploaded.body);
});
afterAll(async () => server?.close());

describe('the plans API (operator admins)', () => {
  it('creates, lists, replaces and deletes plans, with strict validation', async () => {
    const created = await call(server.app, server.adminKey, 'POST', '/api/v1/plans', plan('starter', { hardCap: { predictions: 1000 } }));
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ source: 'api', tenants: 0, plan: { name: 'starter', included: { predictions: 10, promptTokens: 0 }, hardCap: { predictions: 1000 } } });
    expect((await call(server.app, server.adminKey, 'POST', '/api/v1/plans', plan('starter'))).statusCode).toBe(409);

    const bad = await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/broken', { prices: { perThousandPredictions: 0.5 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'INVALID_REQUEST', details: { field: 'prices.perThousandPredictions' } });
    expect(bad.json().error.message).toContain('integer micro-units');
    const unknown = await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/broken', { hardCap: { request: 5 } });
    expect(unknown.json().error.details).toEqual({ field: 'hardCap.request' });
    const inverted = await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/broken', { hardCap: { tokens: 5 }, softCap: { tokens: 6 } });
    expect(inverted.statusCode).toBe(400);

    const replaced = await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/starter', plan('starter', { hardCap: { predictions: 2000 } }));
    expect(replaced.statusCode).toBe(200);
    expect(replaced.json().plan.hardCap).toEqual({ predictions: 2000 });
    const list = await call(server.app, server.adminKey, 'GET', '/api/v1/plans');
    expect(list.json().plans.map((entry: { plan: { name: string } }) => entry.plan.name)).toContain('starter');

    // Tenants cannot read or change plans.
    expect((await call(server.app, tenant.adminKey, 'GET', '/api/v1/plans')).statusCode).toBe(403);
    expect((await call(server.app, tenant.adminKey, 'PUT', '/api/v1/tenants/' + tenant.id + '/plan', { plan: 'starter' })).statusCode).toBe(403);

    expect((await call(server.app, server.adminKey, 'DELETE', '/api/v1/plans/starter')).statusCode).toBe(204);
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/plans/starter')).statusCode).toBe(404);
  });

  it('keeps a history of a tenant\'s plans; a plan in use cannot be deleted', async () => {
    await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/history-a', plan('history-a'));
    await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/history-b', plan('history-b'));
    const other = await createTenant(server, 'history');
    expect((await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${other.id}/plan`, { plan: 'history-a' })).json().plan).toBe('history-a');
    const moved = await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${other.id}/plan`, { plan: 'history-b' });
    expect(moved.json()).toEqual({
      tenantId: other.id,
      plan: 'history-b',
      history: [
        { plan: 'history-a', effectiveFrom: now.toISOString(), effectiveTo: now.toISOString() },
        { plan: 'history-b', effectiveFrom: now.toISOString(), effectiveTo: null },
      ],
    });
    const inUse = await call(server.app, server.adminKey, 'DELETE', '/api/v1/plans/history-b');
    expect(inUse.statusCode).toBe(409);
    expect((await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${other.id}/plan`, { plan: 'no-such-plan' })).statusCode).toBe(404);
    expect((await call(server.app, server.adminKey, 'PUT', '/api/v1/tenants/tenant_nope/plan', { plan: 'history-a' })).statusCode).toBe(404);
    const unlimited = await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${other.id}/plan`, { plan: null });
    expect(unlimited.json().plan).toBeNull();
    expect(unlimited.json().history).toHaveLength(2);
    expect((await call(server.app, server.adminKey, 'DELETE', '/api/v1/plans/history-b')).statusCode).toBe(204);
  });
});

describe('hard caps on inference', () => {
  it('lets exactly 50 of 64 parallel requests through a quota of 50; the other 14 get 429 QUOTA_EXCEEDED', async () => {
    await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/fifty', plan('fifty', { hardCap: { predictions: 50 }, softCap: { predictions: 40 } }));
    await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${tenant.id}/plan`, { plan: 'fifty' });
    const responses = await Promise.all(Array.from({ length: 64 }, () => infer(tenant.adminKey)));
    const statuses = responses.map((response) => response.statusCode);
    expect(statuses.filter((status) => status === 200)).toHaveLength(50);
    expect(statuses.filter((status) => status === 429)).toHaveLength(14);
    const refused = responses.find((response) => response.statusCode === 429)!;
    // V2's own error shape, the code in a header.
    expect(Object.keys(refused.json())).toEqual(['error']);
    expect(typeof refused.json().error).toBe('string');
    expect(refused.headers['x-aiaas-error-code']).toBe('QUOTA_EXCEEDED');
    expect(refused.headers['retry-after']).toBe(String(secondsToDecember));
    expect(refused.headers['x-ratelimit-limit-predictions']).toBe('50');
    expect(refused.headers['x-ratelimit-remaining-predictions']).toBe('0');
    expect(refused.headers['x-ratelimit-reset-predictions']).toBe(String(secondsToDecember));

    const quota = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/quota')).json();
    expect(quota).toMatchObject({ period: '2026-11', resetsInSeconds: secondsToDecember, used: { predictions: 50 }, remaining: { predictions: 0 } });
    // 40 predictions beyond the 10 included at 2 000 000 micro-units per 1 000: 80 000.
    expect(quota.spendMicros).toBe(80_000);

    // TF-Serving answers in its own shape too.
    const tfserving = await call(server.app, tenant.adminKey, 'POST', '/tfserving/v1/models/blobs:predict', { instances: [[0, 0, 0, 0]] });
    expect(tfserving.statusCode).toBe(429);
    expect(typeof tfserving.json().error).toBe('string');
    expect(tfserving.headers['x-aiaas-error-code']).toBe('QUOTA_EXCEEDED');

    // The soft cap (40) was crossed once: one audit entry for the period.
    const audit = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/audit?limit=1000')).json();
    const crossings = audit.entries.filter((entry: { action: string }) => entry.action === 'quota.soft_cap_crossed');
    expect(crossings).toHaveLength(1);
    expect(crossings[0].detail).toMatchObject({ period: '2026-11', plan: 'fifty', caps: ['predictions'] });
  });

  it('reserves a request\'s items and counts batch elements; refuses a batch larger than what is left', async () => {
    await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/batch', plan('batch', { hardCap: { predictions: 120 } }));
    await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${tenant.id}/plan`, { plan: 'batch' });
    // 50 used this period already (the counters are the tenant's, whatever its plan).
    expect((await infer(tenant.adminKey, 60)).statusCode).toBe(200);
    const tooMany = await infer(tenant.adminKey, 11);
    expect(tooMany.statusCode).toBe(429);
    expect(tooMany.headers['x-ratelimit-remaining-predictions']).toBe('10');
    expect((await infer(tenant.adminKey, 10)).statusCode).toBe(200);
    // A request that fails before running reserves nothing.
    const malformed = await call(server.app, tenant.adminKey, 'POST', '/v2/models/blobs/infer', { inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] });
    expect(malformed.statusCode).toBe(400);
    expect((await call(server.app, tenant.adminKey, 'GET', '/api/v1/quota')).json().used.predictions).toBe(120);
  });

  it('caps spend in money: the overage beyond the included amounts, in micro-units', async () => {
    // 120 used; 10 included; 2 000 000 per 1 000 → 220 000 so far. A cap of 222 000 leaves one more prediction.
    await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/money', plan('money', { hardCap: { spendMicros: 222_000 } }));
    await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${tenant.id}/plan`, { plan: 'money' });
    expect((await infer(tenant.adminKey, 1)).statusCode).toBe(200);
    const refused = await infer(tenant.adminKey, 1);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['x-ratelimit-limit-spend-micros']).toBe('222000');
    expect(refused.headers['x-ratelimit-remaining-spend-micros']).toBe('0');
  });

  it('applies the plan\'s rate limit per tenant', async () => {
    await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/slow', plan('slow', { rateLimit: { requestsPerSecond: 1, burst: 2 } }));
    await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${tenant.id}/plan`, { plan: 'slow' });
    const statuses = [];
    for (let index = 0; index < 3; index++) statuses.push((await infer(tenant.adminKey)).statusCode);
    // The clock stands still, so the bucket of 2 never refills.
    expect(statuses).toEqual([200, 200, 429]);
  });
});

describe('plan limits on uploads', () => {
  it('refuses a model beyond maxModels and a dataset beyond maxDatasetBytes with 429 QUOTA_EXCEEDED', async () => {
    await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/small', plan('small', { limits: { maxModels: 1, maxDatasetBytes: 1000 } }));
    await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${tenant.id}/plan`, { plan: 'small' });
    const model = await call(server.app, tenant.adminKey, 'POST', '/api/v1/models', { name: 'second' });
    expect(model.statusCode).toBe(429);
    expect(model.json().error).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { limit: 'maxModels', max: 1 } });
    const csv = irisLikeCsv();
    const first = await call(server.app, tenant.adminKey, 'POST', '/api/v1/datasets?name=one&label=label', csv, { 'content-type': 'text/csv' });
    expect(first.statusCode).toBe(201);
    const filler = Buffer.alloc(1000 - Buffer.byteLength(csv) + 1, 'x').toString();
    const second = await call(server.app, tenant.adminKey, 'POST', '/api/v1/datasets?name=two&label=label', `${csv}${filler}`, { 'content-type': 'text/csv' });
    expect(second.statusCode).toBe(429);
    expect(second.json().error.details).toMatchObject({ limit: 'maxDatasetBytes', max: 1000 });
  });
});

describe('plan limits on training jobs', () => {
  it('refuses a job beyond maxConcurrentJobs, and any job once the worker-seconds cap is spent', async () => {
    const trainer = await createTenant(server, 'trainer');
    const upload = await call(server.app, trainer.adminKey, 'POST', '/api/v1/datasets?name=iris&label=label', irisLikeCsv(), { 'content-type': 'text/csv' });
    const datasetId = upload.json().dataset.id;
    await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/trainer', plan('trainer', { hardCap: { trainingWorkerSeconds: 3600 }, limits: { maxConcurrentJobs: 1 } }));
    await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${trainer.id}/plan`, { plan: 'trainer' });
    const job = { model: 'fit', spec: classifierSpec, datasetId, epochs: 1 };
    // The test server runs no jobs: the first stays queued.
    expect((await call(server.app, trainer.adminKey, 'POST', '/api/v1/jobs', job)).statusCode).toBe(202);
    const second = await call(server.app, trainer.adminKey, 'POST', '/api/v1/jobs', job);
    expect(second.statusCode).toBe(429);
    expect(second.json().error).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { limit: 'maxConcurrentJobs', max: 1 } });

    await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/trainer', plan('trainer', { hardCap: { trainingWorkerSeconds: 3600 }, limits: { maxConcurrentJobs: 5 } }));
    // What a finished job's hour of worker time records.
    await server.context.quotas.record(trainer.id, { trainingWorkerSeconds: 3600 });
    const spent = await call(server.app, trainer.adminKey, 'POST', '/api/v1/jobs', job);
    expect(spent.statusCode).toBe(429);
    expect(spent.json().error.details).toMatchObject({ cap: 'trainingWorkerSeconds', limit: 3600, used: 3600 });
    expect(spent.headers['retry-after']).toBe(String(secondsToDecember));
  });
});
