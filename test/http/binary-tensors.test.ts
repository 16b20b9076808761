/**
 * The binary tensor data extension through the whole server: auth, the inference body limit, and
 * the OpenAPI document describing both body forms.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linearModel, linearReference } from '../inference/fixtures/tiny-onnx.ts';
import { call, startTestServer, uploadOnnxModel, type TestServer } from './helpers.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ inferenceBodyLimitBytes: 4096 });
  const uploaded = await uploadOnnxModel(server, server.adminKey, 'linear', linearModel());
  expect(uploaded.statusCode).toBe(201);
});
afterAll(async () => {
  await server.close();
});

function binaryRequest(rows: number[][], extra: object = {}): { body: Buffer; headers: Record<string, string> } {
  const data = Buffer.from(Float32Array.from(rows.flat()).buffer);
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, 3], parameters: { binary_data_size: data.length } }], ...extra }));
  return { body: Buffer.concat([header, data]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } };
}

describe('binary tensors through the server', () => {
  it('answers a binary request with binary outputs, behind the API key', async () => {
    const rows = [[1, 2, 3]];
    const { body, headers } = binaryRequest(rows, { parameters: { binary_data_output: true } });
    expect((await call(server.app, undefined, 'POST', '/v2/models/linear/infer', body, headers)).statusCode).toBe(401);
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/linear/infer', body, headers);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/octet-stream');
    const headerLength = Number(response.headers['inference-header-content-length']);
    const header = JSON.parse(response.rawPayload.subarray(0, headerLength).toString('utf8'));
    expect(header.outputs.map((output: { parameters: object }) => output.parameters)).toEqual([{ binary_data_size: 8 }, { binary_data_size: 8 }]);
    const y = new Float32Array(Uint8Array.from(response.rawPayload.subarray(headerLength, headerLength + 8)).buffer);
    expect(Array.from(y)).toEqual(linearReference(rows).y[0]);
  });

  it('counts the binary section toward the inference body limit', async () => {
    const rows = Array.from({ length: 400 }, () => [1, 2, 3]);
    const { body, headers } = binaryRequest(rows);
    expect(body.length).toBeGreaterThan(4096);
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/linear/infer', body, headers);
    expect(response.statusCode).toBe(413);
    expect(response.headers['x-aiaas-error-code']).toBe('PAYLOAD_TOO_LARGE');
  });

  it('documents both body forms of the infer routes and the extension in /v2', async () => {
    const document = (await call(server.app, undefined, 'GET', '/openapi.json')).json();
    for (const path of ['/v2/models/{name}/infer', '/v2/models/{name}/versions/{version}/infer']) {
      const operation = document.paths[path].post;
      expect(Object.keys(operation.requestBody.content)).toEqual(['application/json', 'application/octet-stream']);
      expect(Object.keys(operation.responses['200'].content)).toEqual(['application/json', 'application/octet-stream']);
      expect(operation.summary).toMatch(/Inference-Header-Content-Length/);
    }
    const metadata = await call(server.app, server.adminKey, 'GET', '/v2');
    expect(metadata.json().extensions).toContain('binary_tensor_data');
  });
});
