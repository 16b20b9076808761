/**
 * Issue 8's ordering test: while a model that takes well over half a second per run is busy, the
 * health check, a management read and an inference on another model all complete first. Before
 * inference moved to worker threads, ONNX Runtime's synchronous run held the event loop and every
 * one of them waited for the slow run. The test asserts the order of completion, never a duration.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';
import { linearModel, slowModel } from './fixtures/tiny-onnx.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ warmup: false });
  expect((await uploadOnnxModel(server, server.adminKey, 'slow', slowModel())).statusCode).toBe(201);
  expect((await uploadOnnxModel(server, server.adminKey, 'fast', linearModel())).statusCode).toBe(201);
  // Both load before the race, so it measures inference, not loading.
  for (const name of ['slow', 'fast']) expect((await call(server.app, server.adminKey, 'POST', `/v2/repository/models/${name}/load`, {})).statusCode).toBe(200);
});

afterAll(async () => {
  await server?.close();
});

describe('a slow model does not hold up the server', () => {
  it('answers /healthz, a management GET and another model while the slow model runs', async () => {
    const order: string[] = [];
    const slow = call(server.app, server.adminKey, 'POST', '/v2/models/slow/infer', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [0.01, 0.02, 0.03, 0.04] }],
    }).then((response) => {
      order.push(`slow ${response.statusCode}`);
    });
    // Let the slow request reach its worker before the others start.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const others = [
      call(server.app, undefined, 'GET', '/healthz').then((response) => order.push(`healthz ${response.statusCode}`)),
      call(server.app, server.adminKey, 'GET', '/api/v1/models').then((response) => order.push(`models ${response.statusCode}`)),
      call(server.app, server.adminKey, 'POST', '/v2/models/fast/infer', {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }],
      }).then((response) => order.push(`fast ${response.statusCode}`)),
    ];
    await Promise.all([slow, ...others]);
    expect(order.slice(0, 3).sort()).toEqual(['fast 200', 'healthz 200', 'models 200']);
    expect(order[3]).toBe('slow 200');
  });
});
