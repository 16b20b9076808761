import { afterEach, describe, expect, it } from 'vitest';
import { identityModel, linearModel, linearReference } from './fixtures/tiny-onnx.ts';
import { buildTestServer, type TestServer } from './fixtures/app.ts';

let current: TestServer | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});
async function app() {
  current = await buildTestServer([
    { name: 'linear', version: '1', bytes: linearModel() },
    { name: 'linear', version: '2', bytes: linearModel(), aliases: ['canary'] },
    { name: 'identity', version: '3', bytes: identityModel() },
  ]);
  return current.app;
}

function expectClose(actual: unknown, expected: unknown): void {
  if (Array.isArray(expected)) {
    expect(actual).toHaveLength(expected.length);
    expected.forEach((item, index) => expectClose((actual as unknown[])[index], item));
  } else if (typeof expected === 'number') expect(actual as number).toBeCloseTo(expected, 5);
  else if (typeof expected === 'object' && expected !== null) {
    for (const [key, value] of Object.entries(expected)) expectClose((actual as Record<string, unknown>)[key], value);
  } else expect(actual).toEqual(expected);
}

describe('TF-Serving predict', () => {
  const rows = [[1, 2, 3], [0, -1, 0.5]];
  const expected = linearReference(rows);

  it('row format: instances of the single input give a list of objects per instance for two outputs', async () => {
    const server = await app();
    const response = await server.inject({ method: 'POST', url: '/tfserving/v1/models/linear:predict', payload: { instances: rows } });
    expect(response.statusCode).toBe(200);
    expectClose(response.json(), { predictions: rows.map((_, index) => ({ y: expected.y[index], r: expected.r[index] })) });
    expect(current!.usage).toEqual([{ model: 'linear', protocol: 'tfserving', outcome: 'ok' }]);
  });

  it('row format with named objects per instance, by version and by label', async () => {
    const server = await app();
    for (const url of ['/tfserving/v1/models/linear/versions/1:predict', '/tfserving/v1/models/linear/labels/canary:predict']) {
      const response = await server.inject({
        method: 'POST',
        url,
        payload: { signature_name: 'serving_default', instances: rows.map((row) => ({ x: row })) },
      });
      expect(response.statusCode).toBe(200);
      expectClose(response.json().predictions[1], { y: expected.y[1], r: expected.r[1] });
    }
  });

  it('columnar format: inputs as a bare tensor or a map give outputs keyed by name', async () => {
    const server = await app();
    for (const inputs of [rows, { x: rows }]) {
      const response = await server.inject({ method: 'POST', url: '/tfserving/v1/models/linear:predict', payload: { inputs } });
      expect(response.statusCode).toBe(200);
      expectClose(response.json(), { outputs: { y: expected.y, r: expected.r } });
    }
  });

  it('a single output is returned unnamed, and integer, boolean and NaN values map as api_rest.md says', async () => {
    const server = await app();
    const response = await server.inject({
      method: 'POST',
      url: '/tfserving/v1/models/identity:predict',
      headers: { 'content-type': 'application/json' },
      payload: '{"inputs": {"i64": [[1, 2]], "flag": [true], "u8": [7], "f64": [NaN], "i32": [-5]}}',
    });
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain('"f64_out":[NaN]');
    expect(response.body).toContain('"i64_out":[[1,2]]');
    expect(response.body).toContain('"flag_out":[true]');
  });

  it('accepts a form-encoded curl -d body as JSON', async () => {
    const server = await app();
    const response = await server.inject({
      method: 'POST',
      url: '/tfserving/v1/models/linear:predict',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: JSON.stringify({ instances: [[1, 1, 1]] }),
    });
    expect(response.statusCode).toBe(200);
  });

  const bad: [string, object, number, RegExp][] = [
    ['both formats', { instances: rows, inputs: rows }, 400, /exactly one of "instances".*"inputs"/],
    ['neither format', { signature_name: 'serving_default' }, 400, /exactly one of/],
    ['unknown signature', { signature_name: 'classify', instances: rows }, 400, /unknown signature_name "classify"/],
    ['ragged instances', { instances: [[1, 2, 3], [1, 2]] }, 400, /input 'x': ragged nesting/],
    ['wrong trailing dimension', { instances: [[1, 2]] }, 400, /input 'x'.*dimension 1 must be 3/],
    ['strings for FP32', { instances: [['a', 'b', 'c']] }, 400, /input 'x': element 0 is "a", expected a number for FP32/],
    ['unknown input name', { inputs: { z: rows } }, 400, /unknown input 'z'/],
  ];
  it.each(bad)('rejects %s as {"error": ...}', async (_label, payload, status, message) => {
    const server = await app();
    const response = await server.inject({ method: 'POST', url: '/tfserving/v1/models/linear:predict', payload });
    expect(response.statusCode).toBe(status);
    expect(Object.keys(response.json())).toEqual(['error']);
    expect(response.json().error).toMatch(message);
  });

  it('needs named inputs for a multi-input model and answers 404 for unknown models', async () => {
    const server = await app();
    const unnamed = await server.inject({ method: 'POST', url: '/tfserving/v1/models/identity:predict', payload: { instances: [1, 2] } });
    expect(unnamed.statusCode).toBe(400);
    expect(unnamed.json().error).toMatch(/5 inputs/);
    const missing = await server.inject({ method: 'POST', url: '/tfserving/v1/models/nope:predict', payload: { instances: [1] } });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: "model 'nope' not found" });
    const classify = await server.inject({ method: 'POST', url: '/tfserving/v1/models/linear:classify', payload: { examples: [] } });
    expect(classify.statusCode).toBe(400);
  });
});

describe('TF-Serving status and metadata', () => {
  it('reports every version, or the one selected by version or label', async () => {
    const server = await app();
    const all = await server.inject({ method: 'GET', url: '/tfserving/v1/models/linear' });
    expect(all.json()).toEqual({
      model_version_status: ['1', '2'].map((version) => ({ version, state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } })),
    });
    const labelled = await server.inject({ method: 'GET', url: '/tfserving/v1/models/linear/labels/canary' });
    expect(labelled.json().model_version_status).toHaveLength(1);
    expect(labelled.json().model_version_status[0].version).toBe('2');
    expect((await server.inject({ method: 'GET', url: '/tfserving/v1/models/linear/versions/7' })).statusCode).toBe(404);
  });

  it('describes the serving_default signature', async () => {
    const server = await app();
    const response = await server.inject({ method: 'GET', url: '/tfserving/v1/models/linear/versions/1/metadata' });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.model_spec).toEqual({ name: 'linear', signature_name: '', version: '1' });
    const signature = body.metadata.signature_def.signature_def.serving_default;
    expect(signature.method_name).toBe('tensorflow/serving/predict');
    expect(signature.inputs.x).toEqual({
      dtype: 'DT_FLOAT',
      tensor_shape: { dim: [{ size: '-1', name: '' }, { size: '3', name: '' }], unknown_rank: false },
      name: 'x',
    });
    expect(Object.keys(signature.outputs)).toEqual(['y', 'r']);
    expect((await server.inject({ method: 'GET', url: '/tfserving/v1/models/linear/metadata' })).json().model_spec.version).toBe('2');
  });
});
