import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, classifierModel, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from './helpers.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.close());

describe('smoke', () => {
  it('serves health, me, dataset, model, infer', async () => {
    expect((await call(server.app, undefined, 'GET', '/healthz')).json()).toEqual({ status: 'ok' });
    const me = await call(server.app, server.adminKey, 'GET', '/api/v1/me');
    expect(me.statusCode).toBe(200);
    const dataset = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=iris', irisLikeCsv(), { 'content-type': 'text/csv' });
    expect(dataset.statusCode, dataset.body).toBe(201);
    const model = classifierModel();
    const version = await uploadOnnxModel(server, server.adminKey, 'iris', model.exportOnnx());
    expect(version.statusCode, version.body).toBe(201);
    const input = [5.1, 3.5, 1.4, 0.2];
    const infer = await call(server.app, server.adminKey, 'POST', '/v2/models/iris/infer', {
      inputs: [{ name: version.json().version.signature.inputs[0].name, datatype: 'FP32', shape: [1, 4], data: input }],
    });
    expect(infer.statusCode, infer.body).toBe(200);
    const expected = await model.predict(Float32Array.from(input));
    const actual = infer.json().outputs[0].data as number[];
    actual.forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 5));
  });
});
