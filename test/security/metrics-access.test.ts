/**
 * Issue 7, finding 8: `/metrics` needed no key and named every tenant's models, deleted tenants
 * included. Now each per-model series carries a `tenant` label, the route needs `metrics:read`
 * (unless `--metrics-public`), a tenant sees only its own series, and deletion drops a tenant's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, classifierModel, createKey, createTenant, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';

let server: TestServer;
let tenantA: { id: string; adminKey: string };
let tenantB: { id: string; adminKey: string };

async function infer(target: TestServer, key: string, model: string): Promise<void> {
  const response = await call(target.app, key, 'POST', `/v2/models/${model}/infer`, { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
  expect(response.statusCode, response.body).toBe(200);
}

/** The series lines (no HELP / TYPE comments). */
function series(text: string): string[] {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

beforeAll(async () => {
  server = await startTestServer();
  tenantA = await createTenant(server, 'acme');
  tenantB = await createTenant(server, 'globex');
  const onnx = classifierModel(2).exportOnnx();
  for (const [tenant, model] of [[tenantA, 'acme-fraud'], [tenantB, 'globex-churn'], [tenantB, 'globex-secret']] as const) {
    expect((await uploadOnnxModel(server, tenant.adminKey, model, onnx)).statusCode).toBe(201);
    await infer(server, tenant.adminKey, model);
  }
});
afterAll(async () => server.close());

describe('/metrics', () => {
  it('needs a key (401) with metrics:read (403 for inference keys)', async () => {
    expect((await call(server.app, undefined, 'GET', '/metrics')).statusCode).toBe(401);
    const inference = await createKey(server, tenantA.adminKey, 'inference');
    const refused = await call(server.app, inference.key, 'GET', '/metrics');
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.message).toContain('metrics:read');
    for (const role of ['viewer', 'developer', 'admin']) {
      const key = await createKey(server, tenantA.adminKey, role);
      expect((await call(server.app, key.key, 'GET', '/metrics')).statusCode, role).toBe(200);
    }
  });

  it("labels every per-model series with its tenant, and shows a tenant only its own", async () => {
    const text = (await call(server.app, tenantB.adminKey, 'GET', '/metrics')).body;
    expect(text).toContain(`aiaas_inference_requests_total{tenant="${tenantB.id}",model="globex-churn",version="1",protocol="v2",outcome="ok"} 1`);
    expect(text).toContain('globex-secret');
    expect(text).not.toContain('acme-fraud');
    expect(text).not.toContain(tenantA.id);
    const lines = series(text);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line, line).toContain(`tenant="${tenantB.id}"`);
    // Server-wide totals are the operator's.
    expect(text).not.toMatch(/^aiaas_loaded_models /m);
  });

  it('shows a key restricted to some models only their series', async () => {
    const restricted = await createKey(server, tenantB.adminKey, 'viewer', { allowedModels: ['globex-churn'] });
    const text = (await call(server.app, restricted.key, 'GET', '/metrics')).body;
    expect(text).toContain('globex-churn');
    expect(text).not.toContain('globex-secret');
    for (const line of series(text)) expect(line, line).toContain('model="globex-churn"');
  });

  it('shows the operator every tenant, and drops a deleted tenant’s series for good', async () => {
    const before = (await call(server.app, server.adminKey, 'GET', '/metrics')).body;
    expect(before).toContain('acme-fraud');
    expect(before).toContain('globex-churn');
    expect(before).toMatch(/^aiaas_loaded_models \d+/m);
    expect((await call(server.app, server.adminKey, 'DELETE', `/api/v1/tenants/${tenantA.id}`)).statusCode).toBe(204);
    const after = (await call(server.app, server.adminKey, 'GET', '/metrics')).body;
    expect(after).not.toContain('acme-fraud');
    expect(after).not.toContain(tenantA.id);
    expect(after).toContain('globex-churn');
  });
});

describe('/metrics with --metrics-public', () => {
  it('answers without a key, with every tenant', async () => {
    const open = await startTestServer({ metricsPublic: true });
    try {
      const tenant = await createTenant(open, 'initech');
      expect((await uploadOnnxModel(open, tenant.adminKey, 'initech-model', classifierModel(2).exportOnnx())).statusCode).toBe(201);
      await infer(open, tenant.adminKey, 'initech-model');
      const response = await call(open.app, undefined, 'GET', '/metrics');
      expect(response.statusCode).toBe(200);
      expect(response.body).toContain(`tenant="${tenant.id}",model="initech-model"`);
    } finally {
      await open.close();
    }
  });
});
