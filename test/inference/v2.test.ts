import { afterEach, describe, expect, it } from 'vitest';
import { fixedBatchModel, identityModel, linearModel, linearReference, stringModel } from './fixtures/tiny-onnx.ts';
import { Gate, buildTestServer, type TestServer } from './fixtures/app.ts';

const servers: TestServer[] = [];
async function server(...args: Parameters<typeof buildTestServer>): Promise<TestServer> {
  const built = await buildTestServer(...args);
  servers.push(built);
  return built;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((item) => item.close()));
});

const standardModels = () => [
  { name: 'linear', version: '1', bytes: linearModel(), aliases: ['stable'] },
  { name: 'identity', version: '1', bytes: identityModel() },
  { name: 'fixed', version: '1', bytes: fixedBatchModel() },
  { name: 'text', version: '1', bytes: stringModel() },
];

function closeTo(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 5));
}

describe('V2 inference', () => {
  it('computes y = xW + b with flat data, echoes the id and returns every output', async () => {
    const { app, usage } = await server(standardModels());
    const rows = [[1, 2, 3], [-4, 0.5, 2]];
    const response = await app.inject({
      method: 'POST',
      url: '/v2/models/linear/infer',
      payload: { id: 'request-42', inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: rows.flat() }] },
    });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.model_name).toBe('linear');
    expect(body.model_version).toBe('1');
    expect(body.id).toBe('request-42');
    const expected = linearReference(rows);
    expect(body.outputs.map((output: { name: string }) => output.name)).toEqual(['y', 'r']);
    expect(body.outputs[0]).toMatchObject({ datatype: 'FP32', shape: [2, 2] });
    closeTo(body.outputs[0].data, expected.y.flat());
    closeTo(body.outputs[1].data, expected.r.flat());
    expect(usage).toEqual([{ model: 'linear', protocol: 'v2', outcome: 'ok' }]);
  });

  it('accepts nested data, versions and aliases, and returns only the requested outputs', async () => {
    const { app } = await server(standardModels());
    const rows = [[1, 1, 1]];
    for (const url of ['/v2/models/linear/versions/1/infer', '/v2/models/linear/versions/stable/infer']) {
      const response = await app.inject({
        method: 'POST',
        url,
        payload: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: rows }], outputs: [{ name: 'r' }], parameters: { priority: 1 } },
      });
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body.id).toBeUndefined();
      expect(body.outputs).toHaveLength(1);
      expect(body.outputs[0].name).toBe('r');
      closeTo(body.outputs[0].data, linearReference(rows).r.flat());
    }
  });

  it('round-trips INT64, BOOL, UINT8, FP64, INT32 and BYTES', async () => {
    const { app } = await server(standardModels());
    const response = await app.inject({
      method: 'POST',
      url: '/v2/models/identity/infer',
      payload: {
        inputs: [
          { name: 'i64', datatype: 'INT64', shape: [2, 2], data: [[1, -2], ['9007199254740993', 4]] },
          { name: 'flag', datatype: 'BOOL', shape: [2], data: [true, false] },
          { name: 'u8', datatype: 'UINT8', shape: [2], data: [0, 255] },
          { name: 'f64', datatype: 'FP64', shape: [2], data: [0.1, -1e300] },
          { name: 'i32', datatype: 'INT32', shape: [2], data: [-2147483648, 7] },
        ],
      },
    });
    expect(response.statusCode).toBe(200);
    // 2^53 + 1 must survive exactly, which JSON.parse would not: check the raw text.
    expect(response.body).toContain('[1,-2,9007199254740993,4]');
    const outputs = Object.fromEntries(response.json().outputs.map((output: { name: string; data: unknown }) => [output.name, output]));
    expect(outputs.flag_out).toMatchObject({ datatype: 'BOOL', shape: [2], data: [true, false] });
    expect(outputs.u8_out).toMatchObject({ datatype: 'UINT8', data: [0, 255] });
    expect(outputs.f64_out).toMatchObject({ datatype: 'FP64', data: [0.1, -1e300] });
    expect(outputs.i32_out).toMatchObject({ datatype: 'INT32', data: [-2147483648, 7] });

    const text = await app.inject({
      method: 'POST',
      url: '/v2/models/text/infer',
      payload: { inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], data: ['héllo', ''] }] },
    });
    expect(text.statusCode).toBe(200);
    expect(text.json().outputs[0]).toMatchObject({ datatype: 'BYTES', data: ['héllo', ''] });
  });

  const badRequests: [string, unknown, RegExp][] = [
    ['wrong datatype', { inputs: [{ name: 'x', datatype: 'INT32', shape: [1, 3], data: [1, 2, 3] }] }, /input 'x'.*INT32.*FP32/],
    ['wrong element count', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3] }] }, /input 'x'.*needs 6 elements, data has 3/],
    ['wrong fixed dimension', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }, /input 'x'.*\[1,4\].*\[-1,3\].*dimension 1 must be 3/],
    ['wrong rank', { inputs: [{ name: 'x', datatype: 'FP32', shape: [3], data: [1, 2, 3] }] }, /input 'x'.*rank 1, expected 2/],
    ['non-number element', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 'a', 3] }] }, /input 'x': element 1 is "a", expected a number/],
    ['ragged nested data', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: [[1, 2, 3], [4, 5]] }] }, /input 'x'.*data\[1\]/],
    ['unknown input', { inputs: [{ name: 'z', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }, /unknown input 'z'/],
    ['unknown datatype', { inputs: [{ name: 'x', datatype: 'FLOAT', shape: [1, 3], data: [1, 2, 3] }] }, /'inputs\.0\.datatype' must be one of .*FP32.*; got "FLOAT"/],
    ['unknown output', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }], outputs: [{ name: 'q' }] }, /unknown output 'q'/],
    ['missing inputs', { id: 'a' }, /'inputs' must be a non-empty array/],
    ['non-string id', { id: 7, inputs: [] }, /'id' must be a string/],
  ];
  it.each(badRequests)('rejects %s with 400 naming the problem', async (_label, payload, message) => {
    const { app } = await server(standardModels());
    const response = await app.inject({ method: 'POST', url: '/v2/models/linear/infer', payload: payload as object });
    expect(response.statusCode).toBe(400);
    expect(Object.keys(response.json())).toEqual(['error']);
    expect(response.json().error).toMatch(message);
    expect(response.headers['x-aiaas-error-code']).toMatch(/^INVALID_(TENSOR|REQUEST)$/);
  });

  it('tells a client sending an INT64 beyond 2^53 as a JSON number to send a string', async () => {
    const { app } = await server(standardModels());
    const response = await app.inject({
      method: 'POST',
      url: '/v2/models/identity/infer',
      headers: { 'content-type': 'application/json' },
      payload: '{"inputs": [{"name": "i64", "datatype": "INT64", "shape": [1], "data": [9007199254740993]}]}',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatch(/input 'i64': element 0 is 9007199254740992, expected a string for integers beyond 2\^53/);
  });

  it('rejects an out-of-range integer, a missing input and malformed JSON', async () => {
    const { app } = await server(standardModels());
    const range = await app.inject({
      method: 'POST',
      url: '/v2/models/identity/infer',
      payload: { inputs: [{ name: 'u8', datatype: 'UINT8', shape: [1], data: [256] }] },
    });
    expect(range.statusCode).toBe(400);
    expect(range.json().error).toMatch(/input 'u8': element 0 is 256, expected an integer in \[0, 255\]/);
    const missing = await app.inject({
      method: 'POST',
      url: '/v2/models/identity/infer',
      payload: { inputs: [{ name: 'u8', datatype: 'UINT8', shape: [1], data: [1] }] },
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error).toMatch(/missing input 'i64' \(INT64 \[-1,2\]\)/);
    const malformed = await app.inject({ method: 'POST', url: '/v2/models/linear/infer', headers: { 'content-type': 'application/json' }, payload: '{"inputs": [' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.headers['x-aiaas-error-code']).toBe('INVALID_JSON');
  });

  it('answers 404 for unknown models and versions', async () => {
    const { app } = await server(standardModels());
    const payload = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] };
    const model = await app.inject({ method: 'POST', url: '/v2/models/nope/infer', payload });
    expect(model.statusCode).toBe(404);
    expect(model.headers['x-aiaas-error-code']).toBe('MODEL_NOT_FOUND');
    expect(model.json()).toEqual({ error: "model 'nope' not found" });
    const version = await app.inject({ method: 'POST', url: '/v2/models/linear/versions/9/infer', payload });
    expect(version.statusCode).toBe(404);
    expect(version.headers['x-aiaas-error-code']).toBe('VERSION_NOT_FOUND');
    expect((await app.inject({ method: 'GET', url: '/v2/models/nope/ready' })).statusCode).toBe(404);
  });

  it('refuses requests above the element cap with 413 before reading the data', async () => {
    const { app } = await server(standardModels(), { maxTensorElements: 5 });
    const response = await app.inject({
      method: 'POST',
      url: '/v2/models/linear/infer',
      payload: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1000000, 3], data: [] }] },
    });
    expect(response.statusCode).toBe(413);
    expect(response.headers['x-aiaas-error-code']).toBe('TOO_MANY_ELEMENTS');
  });

  it('answers 503 with Retry-After when the queue is full', async () => {
    const gate = new Gate();
    const { app, usage } = await server(
      [{ name: 'linear', version: '1', bytes: linearModel(), batching: { maxBatchSize: 1, maxQueueSize: 1 } }],
      { gate },
    );
    const payload = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] };
    gate.close();
    const first = app.inject({ method: 'POST', url: '/v2/models/linear/infer', payload });
    await gate.waitEntered(1); // the first request now occupies the runtime
    const second = app.inject({ method: 'POST', url: '/v2/models/linear/infer', payload });
    const third = app.inject({ method: 'POST', url: '/v2/models/linear/infer', payload });
    // One of the two waits in the queue (size 1); the other must be refused. The refused one settles first.
    const refused = await Promise.race([second, third]);
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers['x-aiaas-error-code']).toBe('QUEUE_FULL');
    gate.open();
    const statuses = (await Promise.all([first, second, third])).map((response) => response.statusCode).sort();
    expect(statuses).toEqual([200, 200, 503]);
    expect(usage.filter((entry) => entry.outcome === 'error')).toHaveLength(1);
  });

  it('merges concurrent requests into one run and splits the results correctly', async () => {
    const { app, metrics } = await server([
      // A long delay and a batch of exactly four rows: the batch runs when the fourth request arrives.
      { name: 'linear', version: '1', bytes: linearModel(), batching: { maxBatchSize: 4, maxQueueDelayMicroseconds: 30_000_000 } },
    ]);
    const rows = [[1, 2, 3], [4, 5, 6], [-1, 0, 1], [0.5, 0.25, -2]];
    const responses = await Promise.all(
      rows.map((row) =>
        app.inject({ method: 'POST', url: '/v2/models/linear/infer', payload: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: row }] } }),
      ),
    );
    const expected = linearReference(rows);
    responses.forEach((response, index) => {
      expect(response.statusCode).toBe(200);
      expect(response.json().outputs[0].shape).toEqual([1, 2]);
      closeTo(response.json().outputs[0].data, expected.y[index]!);
      closeTo(response.json().outputs[1].data, expected.r[index]!);
    });
    const batches = metrics.batchRows.snapshot({ model: 'linear', version: '1' });
    expect(batches.count).toBe(1);
    expect(batches.max).toBe(4);
    expect(metrics.render()).toMatch(/aiaas_inference_batch_size_bucket\{tenant="",model="linear",version="1",le="4"\} 1/);
  });

  it('runs a fixed-batch model one request at a time', async () => {
    const { app, metrics } = await server(standardModels());
    const responses = await Promise.all(
      [[-1, 2, -3], [4, -5, 6]].map((row) =>
        app.inject({ method: 'POST', url: '/v2/models/fixed/infer', payload: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: row }] } }),
      ),
    );
    expect(responses.map((response) => response.json().outputs[0].data)).toEqual([[0, 2, 0], [4, 0, 6]]);
    expect(metrics.batchRows.snapshot({ model: 'fixed', version: '1' })).toMatchObject({ count: 2, max: 1 });
    const wrongBatch = await app.inject({
      method: 'POST',
      url: '/v2/models/fixed/infer',
      payload: { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }] },
    });
    expect(wrongBatch.statusCode).toBe(400);
    expect(wrongBatch.json().error).toMatch(/dimension 0 must be 1/);
  });
});

describe('V2 metadata, health and repository extension', () => {
  it('serves server metadata, health and model metadata', async () => {
    const { app } = await server(standardModels());
    expect((await app.inject({ method: 'GET', url: '/v2' })).json()).toEqual({ name: 'aiaas', version: '0.1.0', extensions: ['model_repository', 'binary_tensor_data', 'classification'] });
    expect((await app.inject({ method: 'GET', url: '/v2/health/live' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v2/health/ready' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v2/models/linear/ready' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v2/models/linear/versions/1/ready' })).statusCode).toBe(200);
    const metadata = await app.inject({ method: 'GET', url: '/v2/models/linear' });
    expect(metadata.json()).toEqual({
      name: 'linear',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [-1, 2] },
        { name: 'r', datatype: 'FP32', shape: [-1, 2] },
      ],
    });
    expect((await app.inject({ method: 'GET', url: '/v2/models/linear/versions/1' })).json().name).toBe('linear');
  });

  it('indexes, loads and unloads models', async () => {
    const { app, manager } = await server(standardModels());
    const index = async (body?: object) => (await app.inject({ method: 'POST', url: '/v2/repository/index', ...(body === undefined ? {} : { payload: body }) })).json();
    expect(await index({ ready: true })).toEqual([]);
    const load = await app.inject({ method: 'POST', url: '/v2/repository/models/linear/load' });
    expect(load.statusCode).toBe(200);
    expect(manager.isLoaded('linear@1')).toBe(true);
    expect(await index({ ready: true })).toEqual([{ name: 'linear', version: '1', state: 'READY', reason: '' }]);
    expect(await index()).toHaveLength(4);
    const unload = await app.inject({ method: 'POST', url: '/v2/repository/models/linear/unload', headers: { 'content-type': 'application/json' }, payload: '' });
    expect(unload.statusCode).toBe(200);
    expect(manager.isLoaded('linear@1')).toBe(false);
    const missing = await app.inject({ method: 'POST', url: '/v2/repository/models/nope/load' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toMatch(/nope/);
  });
});
