import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteForError } from '../../src/errors.ts';
import { call, classifierModel, classifierSpec, startTestServer, uploadOnnxModel, type TestServer } from './helpers.ts';

let server: TestServer;
let inputName: string;

beforeAll(async () => {
  server = await startTestServer({ rateLimitBurst: 1000 });
  const uploaded = await uploadOnnxModel(server, server.adminKey, 'clf', classifierModel(3).exportOnnx());
  inputName = uploaded.json().version.signature.inputs[0].name;
});
afterAll(async () => server.close());

const nested = (levels: number, leaf = '1'): string => `${'['.repeat(levels)}${leaf}${']'.repeat(levels)}`;

function expectProtocolError(response: { statusCode: number; headers: Record<string, unknown>; json(): unknown }, status: number, code: string): void {
  expect(response.statusCode).toBe(status);
  expect(response.headers['x-aiaas-error-code']).toBe(code);
  expect(typeof (response.json() as { error: unknown }).error).toBe('string');
}

function expectPlatformError(response: { statusCode: number; json(): unknown }, status: number, code: string): void {
  expect(response.statusCode).toBe(status);
  expect((response.json() as { error: { code: string; message: string } }).error.code).toBe(code);
}

describe('deep nesting is a 400, not a stack overflow', () => {
  it('TF-Serving instances nested 200k deep', async () => {
    const body = `{"instances": ${nested(200_000)}}`;
    const response = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/clf:predict', body, { 'content-type': 'application/json' });
    expectProtocolError(response, 400, 'NESTING_TOO_DEEP');
  });

  it('a V2 tensor of rank 5000 with data nested as deep', async () => {
    const shape = JSON.stringify(Array.from({ length: 5000 }, () => 1));
    const body = `{"inputs":[{"name":"${inputName}","datatype":"FP32","shape":${shape},"data":${nested(5000)}}]}`;
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/clf/infer', body, { 'content-type': 'application/json' });
    expectProtocolError(response, 400, 'NESTING_TOO_DEEP');
  });

  it('a V2 shape of rank 5000 with flat data (the body itself is shallow)', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/clf/infer', {
      inputs: [{ name: inputName, datatype: 'FP32', shape: Array.from({ length: 5000 }, () => 1), data: [1] }],
    });
    expectProtocolError(response, 400, 'NESTING_TOO_DEEP');
    expect(response.json().error).toContain('rank 5000');
  });

  it('TF-Serving columnar inputs nested 80 deep (within the body limit, beyond the rank limit)', async () => {
    const body = `{"inputs": {"${inputName}": ${nested(80)}}}`;
    const response = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/clf:predict', body, { 'content-type': 'application/json' });
    expectProtocolError(response, 400, 'NESTING_TOO_DEEP');
  });

  it('a management JSON body nested 200k deep', async () => {
    const body = `{"name": "deep", "description": ${nested(200_000)}}`;
    const response = await call(server.app, server.adminKey, 'POST', '/api/v1/models', body, { 'content-type': 'application/json' });
    expectPlatformError(response, 400, 'NESTING_TOO_DEEP');
  });
});

describe('framework errors go through the catalogue, in each surface shape', () => {
  it('a bad percent-encoding on a V2 route: 400 INVALID_URL with the header', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/a%zz/infer', {});
    expectProtocolError(response, 400, 'INVALID_URL');
    expect(response.headers['x-request-id']).toBeTruthy();
  });

  it('a bad percent-encoding on a management route: 400 INVALID_URL as {"error":{code,...}}', async () => {
    const response = await call(server.app, server.adminKey, 'GET', '/api/v1/models/a%zz');
    expectPlatformError(response, 400, 'INVALID_URL');
  });

  it('an over-long path parameter: 414 URI_TOO_LONG on both surfaces', async () => {
    const long = 'x'.repeat(300);
    expectPlatformError(await call(server.app, server.adminKey, 'GET', `/api/v1/models/${long}`), 414, 'URI_TOO_LONG');
    expectProtocolError(await call(server.app, server.adminKey, 'POST', `/v2/models/${long}/infer`, {}), 414, 'URI_TOO_LONG');
  });

  it('a 128-character model name (the longest valid one) still routes', async () => {
    const response = await call(server.app, server.adminKey, 'GET', `/api/v1/models/${'m'.repeat(128)}`);
    expectPlatformError(response, 404, 'MODEL_NOT_FOUND');
  });

  it('a body that fails to parse on the way to an unknown inference route answers in the protocol shape', async () => {
    // No route, so no response schema: sent without call()'s schema check.
    const response = await server.app.inject({
      method: 'POST',
      url: '/v2/nowhere',
      payload: '{',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBeGreaterThanOrEqual(400);
    expect(response.statusCode).toBeLessThan(500);
    expect(typeof response.json().error).toBe('string');
    expect(response.headers['x-aiaas-error-code']).toBeTruthy();
  });

  it('an unsupported media type on a management route: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/api/v1/models', '<a/>', { 'content-type': 'application/xml' });
    expectPlatformError(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('errors never echo unbounded input', () => {
  const huge = 'z'.repeat(1024 * 1024);

  it('a 1 MB string as epochs', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/api/v1/jobs', { model: 'clf', spec: classifierSpec, datasetId: 'x', epochs: huge });
    expectPlatformError(response, 400, 'INVALID_REQUEST');
    expect(response.json().error.message).toContain('epochs');
    expect(response.rawPayload.length).toBeLessThan(4096);
  });

  it('a 1 MB field name in a job submission', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/api/v1/jobs', { model: 'clf', spec: classifierSpec, datasetId: 'x', [huge]: 1 });
    expectPlatformError(response, 400, 'INVALID_REQUEST');
    expect(response.rawPayload.length).toBeLessThan(4096);
  });

  it('a 1 MB key name', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/api/v1/keys', { name: huge, role: 'viewer' });
    expectPlatformError(response, 400, 'INVALID_REQUEST');
    expect(response.rawPayload.length).toBeLessThan(4096);
  });

  it('a 1 MB V2 input name and datatype', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/clf/infer', { inputs: [{ name: huge, datatype: huge, shape: [1], data: [1] }] });
    expectProtocolError(response, 400, 'INVALID_TENSOR');
    expect(response.rawPayload.length).toBeLessThan(4096);
  });

  it('quoteForError cuts strings and survives values JSON.stringify cannot write', () => {
    expect(quoteForError('short')).toBe('"short"');
    const cut = quoteForError('a'.repeat(1000), 10);
    expect(cut).toBe('"aaaaaaaaaa…" (1000 characters)');
    const deep: unknown[] = [];
    let cursor = deep;
    for (let level = 0; level < 100_000; level++) {
      const next: unknown[] = [];
      cursor.push(next);
      cursor = next;
    }
    expect(quoteForError(deep)).toBe('an array');
    expect(quoteForError({ a: 'b'.repeat(500) }).length).toBeLessThanOrEqual(121);
  });
});
