import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTenant, irisLikeCsv, startTestServer, type TestServer } from './helpers.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server.close();
});

describe('deleting a tenant', () => {
  it('cancels its unfinished training jobs (their data key is destroyed, so they could never finish)', async () => {
    const tenant = await createTenant(server, 'short-lived');
    const dataset = await call(server.app, tenant.adminKey, 'POST', '/api/v1/datasets?name=iris', irisLikeCsv(), { 'content-type': 'text/csv' });
    expect(dataset.statusCode).toBe(201);
    const submitted = await call(server.app, tenant.adminKey, 'POST', '/api/v1/jobs', {
      model: 'iris',
      spec: { input: { shape: [4] }, layers: [{ type: 'dense', units: 3, activation: 'softmax' }], compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' } },
      datasetId: dataset.json().dataset.id,
      epochs: 1000,
    });
    expect(submitted.statusCode).toBe(202);
    const jobId = submitted.json().job.id as string;

    const deleted = await call(server.app, server.adminKey, 'DELETE', `/api/v1/tenants/${tenant.id}`);
    expect(deleted.statusCode).toBe(204);
    const statuses = await server.context.database.db.selectFrom('jobs').select(['id', 'status']).where('tenant_id', '=', tenant.id).execute();
    expect(statuses).toEqual([{ id: jobId, status: 'cancelled' }]);
    // Its text went with the key: the job can no longer be read.
    await expect(server.context.repositories.jobs.get(tenant.id, jobId)).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
  });
});
