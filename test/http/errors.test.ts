import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openOnnxInWorkers } from '../../src/runtimes/onnx/onnx-worker-runtime.ts';
import type { Runtime } from '../../src/runtimes/runtime.ts';
import { call, classifierModel, createKey, startTestServer, uploadOnnxModel, type TestServer } from './helpers.ts';

/** Holds runtime calls until opened, so a queue can be filled without timing. */
class Gate {
  closed = false;
  entered = 0;
  #waiters: (() => void)[] = [];
  wrap(runtime: Runtime): Runtime {
    return {
      specificationVersion: 'v1',
      signature: () => runtime.signature(),
      memoryBytes: () => runtime.memoryBytes(),
      dispose: () => runtime.dispose(),
      infer: async (inputs, outputs) => {
        this.entered++;
        if (this.closed) await new Promise<void>((resolve) => this.#waiters.push(resolve));
        return runtime.infer(inputs, outputs);
      },
    };
  }
  open(): void {
    this.closed = false;
    for (const waiter of this.#waiters.splice(0)) waiter();
  }
}

const gate = new Gate();
let server: TestServer;
let inputName: string;
const model = classifierModel(3);

beforeAll(async () => {
  server = await startTestServer(
    { bodyLimitBytes: 64 * 1024, inferenceBodyLimitBytes: 16 * 1024, maxTensorElements: 400, batchMaxSize: 1, batchMaxQueueSize: 1, rateLimitBurst: 1000 },
    { loadRuntime: async (bytes) => gate.wrap(await openOnnxInWorkers(bytes, { instances: 1, intraOpThreads: 1 })) },
  );
  const uploaded = await uploadOnnxModel(server, server.adminKey, 'clf', model.exportOnnx());
  inputName = uploaded.json().version.signature.inputs[0].name;
});
afterAll(async () => server.close());

const infer = (rows: number[][], key = server.adminKey, url = '/v2/models/clf/infer') =>
  call(server.app, key, 'POST', url, { inputs: [{ name: inputName, datatype: 'FP32', shape: [rows.length, 4], data: rows }] });

describe('400', () => {
  it('INVALID_JSON for a malformed platform body', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/api/v1/models', '{\n  "name": "x",\n}', { 'content-type': 'application/json' });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe('INVALID_JSON');
    // The place as an editor shows it, not a character offset.
    expect(response.json().error.message).toBe('The request body is not valid JSON: line 3, column 1: trailing comma before }');
  });

  it('INVALID_JSON-coded 400 for a malformed inference body', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/clf/infer', '{"inputs": [', { 'content-type': 'application/json' });
    expect(response.statusCode).toBe(400);
    expect(response.headers['x-aiaas-error-code']).toBe('INVALID_JSON');
    expect(response.json().error).toContain('line 1, column 13');
  });

  it('INVALID_TENSOR naming the input', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/clf/infer', {
      inputs: [{ name: inputName, datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }],
    });
    expect(response.statusCode).toBe(400);
    expect(response.headers['x-aiaas-error-code']).toBe('INVALID_TENSOR');
    expect(response.json().error).toContain(inputName);
  });

  it('INVALID_REQUEST for unknown fields and query parameters', async () => {
    const field = await call(server.app, server.adminKey, 'POST', '/api/v1/models', { name: 'm', colour: 'red' });
    expect(field.statusCode).toBe(400);
    expect(field.json().error.details.field).toBe('colour');
    const parameter = await call(server.app, server.adminKey, 'GET', '/api/v1/datasets?sort=name');
    expect(parameter.statusCode).toBe(400);
  });

  it('every /api/v1 route refuses a query parameter it does not know, naming it', async () => {
    // A typo such as ?limt=5 must fail, not silently list everything (docs/api.md).
    const routes = server.app.registeredRoutes.filter((route) => route.url.startsWith('/api/v1/') && route.method !== 'HEAD' && route.method !== 'OPTIONS');
    expect(routes.length).toBeGreaterThan(20);
    for (const route of routes) {
      expect([route.method, route.url, route.schema?.querystring?.additionalProperties]).toEqual([route.method, route.url, false]);
      // Bodies are validated before query strings, so only body-less calls show the query error itself.
      if (route.method !== 'GET' && route.method !== 'DELETE') continue;
      // Path parameters get placeholder values: the query check runs before the handler looks them up.
      const url = `${route.url.replace(/:[A-Za-z]+/g, 'x')}?limt=5`;
      const response = await call(server.app, server.adminKey, route.method, url);
      expect([route.method, route.url, response.statusCode]).toEqual([route.method, route.url, 400]);
      expect(response.json().error.message).toContain('limt');
    }
  });
});

describe('401 and 403', () => {
  it('401 without a key, with a malformed key, with an unknown key', async () => {
    for (const headers of [{}, { authorization: 'Basic abc' }, { authorization: `Bearer aiaas_${'x'.repeat(43)}` }, { 'x-api-key': 'short' }] as Record<string, string>[]) {
      const response = await call(server.app, undefined, 'GET', '/api/v1/models', undefined, headers);
      expect(response.statusCode).toBe(401);
      expect(response.json().error.code).toBe('UNAUTHENTICATED');
    }
  });

  it('403 naming the missing permission', async () => {
    const viewer = await createKey(server, server.adminKey, 'viewer');
    const response = await call(server.app, viewer.key, 'POST', '/api/v1/models', { name: 'nope' });
    expect(response.statusCode).toBe(403);
    expect(response.json().error).toMatchObject({ code: 'FORBIDDEN', details: { permission: 'models:write', role: 'viewer' } });
    expect(response.json().error.message).toContain('models:write');
    const v2 = await infer([[1, 2, 3, 4]], viewer.key);
    expect(v2.statusCode).toBe(403);
    expect(v2.json().error).toContain('inference');
  });
});

describe('404', () => {
  it('unknown model, version and alias on every protocol', async () => {
    const cases: [string, string, string][] = [
      ['GET', '/api/v1/models/ghost', 'MODEL_NOT_FOUND'],
      ['GET', '/api/v1/models/clf/versions/9', 'VERSION_NOT_FOUND'],
      ['GET', '/api/v1/models/clf/versions/staging', 'VERSION_NOT_FOUND'],
      ['DELETE', '/api/v1/models/clf/aliases/staging', 'NOT_FOUND'],
      ['GET', '/v2/models/ghost', 'MODEL_NOT_FOUND'],
      ['GET', '/v2/models/clf/versions/9', 'VERSION_NOT_FOUND'],
      ['GET', '/v2/models/clf/versions/staging/ready', 'VERSION_NOT_FOUND'],
      ['GET', '/tfserving/v1/models/ghost', 'MODEL_NOT_FOUND'],
      ['GET', '/tfserving/v1/models/clf/labels/staging', 'VERSION_NOT_FOUND'],
      ['GET', '/api/v1/datasets/ds_nope', 'DATASET_NOT_FOUND'],
    ];
    for (const [method, url, code] of cases) {
      const response = await call(server.app, server.adminKey, method as 'GET', url);
      expect(response.statusCode, url).toBe(404);
      const body = response.json();
      expect(typeof body.error === 'string' ? response.headers['x-aiaas-error-code'] : body.error.code, url).toBe(code);
    }
    const tf = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/clf/versions/7:predict', { instances: [[1, 2, 3, 4]] });
    expect(tf.statusCode).toBe(404);
  });

  it('unknown routes answer 404 JSON', async () => {
    const response = await call(server.app, undefined, 'GET', '/api/v2/nothing');
    expect(response.statusCode).toBe(404);
    expect(response.json().error.code).toBe('NOT_FOUND');
  });
});

describe('409', () => {
  it('alias guard on version and model deletion, duplicate names', async () => {
    await call(server.app, server.adminKey, 'PUT', '/api/v1/models/clf/aliases/live', { version: 1 });
    const version = await call(server.app, server.adminKey, 'DELETE', '/api/v1/models/clf/versions/1');
    expect(version.statusCode).toBe(409);
    expect(version.json().error.code).toBe('ALIAS_IN_USE');
    const model = await call(server.app, server.adminKey, 'DELETE', '/api/v1/models/clf');
    expect(model.statusCode).toBe(409);
    const duplicate = await call(server.app, server.adminKey, 'POST', '/api/v1/models', { name: 'clf' });
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json().error.code).toBe('CONFLICT');
    await call(server.app, server.adminKey, 'DELETE', '/api/v1/models/clf/aliases/live');
  });
});

describe('413', () => {
  it('oversized platform and inference bodies', async () => {
    const big = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=big', Buffer.alloc(65 * 1024, 0x31), { 'content-type': 'application/octet-stream' });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    const rows = Array.from({ length: 3000 }, () => [1, 2, 3, 4]);
    const inference = await infer(rows);
    expect(inference.statusCode).toBe(413);
    expect(inference.headers['x-aiaas-error-code']).toBe('PAYLOAD_TOO_LARGE');
  });

  it('tensor element cap', async () => {
    const rows = Array.from({ length: 101 }, () => [1, 2, 3, 4]);
    const response = await infer(rows);
    expect(response.statusCode).toBe(413);
    expect(response.headers['x-aiaas-error-code']).toBe('TOO_MANY_ELEMENTS');
  });
});

describe('400 on a bad model upload, and the server keeps serving', () => {
  it('rejects corrupted and truncated .onnx files', async () => {
    const good = model.exportOnnx();
    const truncated = good.subarray(0, Math.floor(good.length / 2));
    const corrupted = Uint8Array.from(good);
    for (let index = 16; index < corrupted.length; index += 7) corrupted[index] = corrupted[index]! ^ 0xa5;
    for (const bytes of [truncated, corrupted, new TextEncoder().encode('not a model at all')]) {
      const response = await call(server.app, server.adminKey, 'POST', '/api/v1/models/clf/versions', Buffer.from(bytes), { 'content-type': 'application/octet-stream' });
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json().error.code).toBe('INVALID_MODEL_FILE');
    }
    const versions = await call(server.app, server.adminKey, 'GET', '/api/v1/models/clf/versions');
    expect(versions.json().versions).toHaveLength(1);
    const served = await infer([[1, 2, 3, 4]]);
    expect(served.statusCode).toBe(200);
  });
});

describe('503 queue full', () => {
  it('answers QUEUE_FULL with Retry-After while the queue is full', async () => {
    gate.closed = true;
    const entered = gate.entered;
    const running = infer([[1, 1, 1, 1]]);
    while (gate.entered === entered) await new Promise((resolve) => setImmediate(resolve));
    const queued = infer([[2, 2, 2, 2]]);
    // Wait (by turns of the event loop, not by time) until the second request sits in the queue.
    while (!server.context.metrics.render().includes(`aiaas_inference_queue_depth{tenant="${server.context.bootstrap.tenantId}",model="clf",version="1"} 1`)) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    const refused = await infer([[3, 3, 3, 3]]);
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['x-aiaas-error-code']).toBe('QUEUE_FULL');
    expect(refused.headers['retry-after']).toBe('1');
    gate.open();
    expect((await running).statusCode).toBe(200);
    expect((await queued).statusCode).toBe(200);
  });
});
